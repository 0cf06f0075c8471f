"""Which codec the framework's producer side uses for each topic.

`App(compression=...)` sets the default for every topic the app writes (its
topics, table changelogs, repartition topics); `app.topic(name, compression=)`
overrides it for one topic ("none": uncompressed under a compressing app).
Codecs: "gzip", "snappy", "lz4", "zstd" (runtime.compression).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from runtime.compression import CompressionChoice, codec_id

if TYPE_CHECKING:
    from streams.topic import Topic


def compression_choice(
    default: str | None, topics: Mapping[str, Topic]
) -> CompressionChoice | None:
    """topic name -> codec id for the transport; None when nothing is compressed."""
    default_codec = codec_id(default)
    chosen = {name: topic.codec for name, topic in topics.items() if topic.compression is not None}
    if not default_codec and not any(chosen.values()):
        return None

    def choose(name: str) -> int:
        return chosen.get(name, default_codec)

    return choose
