"""The compiled record-batch reader and writer (runtime/log/_crecords*.c); the rest of the
build is in pyproject.toml. optional=True: without a C compiler the install
still succeeds and runtime.log.records uses its pure-Python reader."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "runtime.log._crecords",
            ["runtime/log/_crecords.c", "runtime/log/_crecords_encode.c"],
            optional=True,
        ),
    ]
)
