"""streams: stream processing for Python with a built-in, Kafka-compatible log."""

from streams.agent import Agent, AgentError
from streams.app import App
from streams.codec import Codec, get_codec, register_codec
from streams.errors import (
    AskError,
    ConfigurationError,
    DecodeError,
    KeyDecodeError,
    ModelError,
    StreamsError,
    ValueDecodeError,
)
from streams.event import Event, Message, current_event
from streams.joins import JoinedStream
from streams.logging_handler import TopicHandler
from streams.model import FieldDescriptor, Record
from streams.sessions import SessionSet, SessionTable
from streams.sliding import SlidingSet, SlidingTable
from streams.stream import Stream
from streams.stream_joins import JoinResult, JoinWindows, StreamJoin
from streams.table import GlobalTable, Table
from streams.table_joins import JoinedTable
from streams.topic import RecordMetadata, Topic
from streams.window_close import FinalResult
from streams.windowed import WindowedTable, WindowSet
from streams.worker import Worker

__all__ = [
    "Agent",
    "AgentError",
    "App",
    "AskError",
    "Codec",
    "ConfigurationError",
    "DecodeError",
    "Event",
    "FieldDescriptor",
    "FinalResult",
    "GlobalTable",
    "JoinResult",
    "JoinWindows",
    "JoinedStream",
    "JoinedTable",
    "KeyDecodeError",
    "Message",
    "ModelError",
    "Record",
    "RecordMetadata",
    "SessionSet",
    "SessionTable",
    "SlidingSet",
    "SlidingTable",
    "Stream",
    "StreamJoin",
    "StreamsError",
    "Table",
    "Topic",
    "TopicHandler",
    "ValueDecodeError",
    "WindowSet",
    "WindowedTable",
    "Worker",
    "current_event",
    "get_codec",
    "register_codec",
]
