"""The configs changed at run time, persisted in the broker's data directory.

File format: `<data dir>/dynamic-configs.json`, UTF-8 JSON:

    {"version": 1, "broker": {<name>: <str>}, "cluster": {<name>: <str>},
     "groups": {<group id>: {<name>: <str>}}}

`broker` holds the configs set on this broker (resource name "0"), `cluster`
the cluster-wide defaults (resource name ""), `groups` each group's configs.
The file is replaced atomically (temporary file, fsync, rename, fsync of the
directory); a broker on memory:// keeps them in memory only.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from runtime.errors import StorageError
from runtime.log.index import write_file_atomically
from runtime.log.storage import fsync_dir

DYNAMIC_CONFIGS_FILE = "dynamic-configs.json"
_VERSION = 1


@dataclass(frozen=True, slots=True)
class DynamicConfigs:
    broker: dict[str, str] = field(default_factory=dict)
    cluster: dict[str, str] = field(default_factory=dict)
    groups: dict[str, dict[str, str]] = field(default_factory=dict)

    def replace(self, **changes: object) -> DynamicConfigs:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


def load(directory: Path | None) -> DynamicConfigs:
    if directory is None:
        return DynamicConfigs()
    path = directory / DYNAMIC_CONFIGS_FILE
    if not path.exists():
        return DynamicConfigs()
    try:
        doc = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"{path}: not a dynamic configs file: {exc}") from None
    if not isinstance(doc, dict) or doc.get("version") != _VERSION:
        version = doc.get("version") if isinstance(doc, dict) else None
        raise ValueError(f"{path}: unsupported dynamic configs version {version!r}")
    return DynamicConfigs(
        {str(k): str(v) for k, v in doc.get("broker", {}).items()},
        {str(k): str(v) for k, v in doc.get("cluster", {}).items()},
        {
            str(g): {str(k): str(v) for k, v in configs.items()}
            for g, configs in doc.get("groups", {}).items()
        },
    )


def save(directory: Path | None, configs: DynamicConfigs) -> None:
    if directory is None:
        return
    doc = {
        "version": _VERSION,
        "broker": configs.broker,
        "cluster": configs.cluster,
        "groups": {g: c for g, c in sorted(configs.groups.items()) if c},
    }
    try:
        write_file_atomically(
            directory / DYNAMIC_CONFIGS_FILE,
            orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS),
        )
        fsync_dir(directory)
    except OSError as exc:
        raise StorageError.from_os_error("writing the dynamic configs", exc) from exc
