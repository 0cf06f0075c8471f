"""The compiled record-batch reader and writer (runtime/log/_crecords*.c); the rest of the
build is in pyproject.toml. optional=True: without a C compiler the install
still succeeds and runtime.log.records uses its pure-Python reader."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "runtime.log._crecords",
            [f"runtime/log/_crecords{part}.c" for part in ("", "_decode", "_encode")],
            depends=["runtime/log/_crecords.h"],
            optional=True,
        ),
    ]
)
