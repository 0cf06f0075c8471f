"""The built-in log: topic partitions as segment files of Kafka record batches."""

from runtime.log.config import FlushPolicy, TopicConfig, TopicInfo, validate_topic_name
from runtime.log.manager import Log
from runtime.log.offsets import OffsetStore

__all__ = [
    "FlushPolicy",
    "Log",
    "OffsetStore",
    "TopicConfig",
    "TopicInfo",
    "validate_topic_name",
]
