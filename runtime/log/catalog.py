"""The persisted list of topics of a data directory.

File format: `<data dir>/topics.json`, UTF-8 JSON:

    {"version": 1, "topics": {"<name>": {"partitions": <int>, "configs": {<kafka name>: <str>},
                                         "overrides": [<kafka name>, ...]}}}

configs holds every config the log honours and the other standard ones set to
something else than Kafka's default (TopicConfig.stored_configs), so a topic keeps
its settings when the default config of a later open differs; overrides names those
set on the topic itself (a catalog written before overrides were kept has none:
then the configs whose value is not the default count as set).

Invariants:
- The file is replaced atomically (write a temporary file, fsync, rename, fsync
  the directory): after a crash it is either the old or the new catalog. A write
  that fails (a full disk) raises StorageError and leaves no temporary file;
  unless only the final directory fsync failed, the old catalog is in place.
- Every name in it passes validate_topic_name.
"""

from __future__ import annotations

from pathlib import Path

import orjson

from runtime.errors import StorageError
from runtime.log.config import TopicConfig, TopicInfo, validate_topic_name
from runtime.log.index import write_file_atomically
from runtime.log.storage import fsync_dir

CATALOG_FILE = "topics.json"
_VERSION = 1


def load_catalog(directory: Path) -> dict[str, TopicInfo]:
    path = directory / CATALOG_FILE
    if not path.exists():
        return {}
    doc = orjson.loads(path.read_bytes())
    if doc.get("version") != _VERSION:
        raise ValueError(f"{path}: unsupported catalog version {doc.get('version')!r}")
    topics = {}
    for name, entry in doc["topics"].items():
        validate_topic_name(name)
        partitions = int(entry["partitions"])
        if partitions < 1:
            raise ValueError(f"{path}: topic {name!r} has {partitions} partitions")
        config = TopicConfig.from_configs(entry["configs"])
        overrides = entry.get("overrides")
        if overrides is None:
            defaults = TopicConfig().to_configs()
            overrides = [k for k, v in config.to_configs().items() if defaults.get(k) != v]
        topics[name] = TopicInfo(name, partitions, config.replace(overrides=frozenset(overrides)))
    return topics


def save_catalog(directory: Path, topics: dict[str, TopicInfo]) -> None:
    doc = {
        "version": _VERSION,
        "topics": {
            info.name: {
                "partitions": info.partitions,
                "configs": info.config.stored_configs(),
                "overrides": sorted(info.config.overrides),
            }
            for info in sorted(topics.values(), key=lambda info: info.name)
        },
    }
    try:
        write_file_atomically(
            directory / CATALOG_FILE, orjson.dumps(doc, option=orjson.OPT_INDENT_2)
        )
        fsync_dir(directory)
    except OSError as exc:
        raise StorageError.from_os_error("writing the topic catalog", exc) from exc
