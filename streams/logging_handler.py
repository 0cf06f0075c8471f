"""TopicHandler: ship application log records into a topic.

    logs = app.topic("logs")
    handler = TopicHandler(logs, service="checkout")
    handler.attach(app)                     # a timer drains it into the topic
    logging.getLogger("checkout").addHandler(handler)

Each record becomes one value `{service, level, logger, message, at}` keyed by
the service, so every record of a service lands in one partition, in order.

Invariants:
- `emit` never blocks, never sends, never logs: it appends to a bounded
  buffer, or counts the record in `dropped` when the buffer is full;
- records are shipped by `drain()`, on the worker's event loop, in the order
  they were emitted; a record logged while `drain()` runs on the same thread
  (by the producer, say) is discarded, so shipping logs cannot feed itself;
- a message is cut at `message_chars_max` characters.

Records still buffered when the worker stops are not shipped.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from streams.app import App
    from streams.topic import Topic

__all__ = ["TopicHandler"]

BUFFER_RECORDS_MAX = 10_000
MESSAGE_CHARS_MAX = 16_384
DRAIN_INTERVAL_S = 0.1
# Framework loggers: records from the machinery that ships the logs.
EXCLUDED_LOGGERS = ("streams", "runtime", "stores")
_PLAIN = logging.Formatter()


class TopicHandler(logging.Handler):
    """A logging.Handler that buffers records for a topic.

    topic:              where records go (its value codec must take a dict)
    service:            the `service` field; a record's own `service`
                        attribute (`extra={"service": ...}`) wins
    buffer_records_max: records held until the next drain; more are dropped
    exclude:            logger name prefixes ignored (default: the framework's)
    """

    def __init__(
        self,
        topic: Topic,
        *,
        service: str,
        level: int | str = logging.NOTSET,
        buffer_records_max: int = BUFFER_RECORDS_MAX,
        message_chars_max: int = MESSAGE_CHARS_MAX,
        exclude: tuple[str, ...] = EXCLUDED_LOGGERS,
    ) -> None:
        if buffer_records_max < 1:
            raise ValueError(f"buffer_records_max must be >= 1, got {buffer_records_max}")
        if message_chars_max < 1:
            raise ValueError(f"message_chars_max must be >= 1, got {message_chars_max}")
        super().__init__(level)
        self.topic = topic
        self.service = service
        self.buffer_records_max = buffer_records_max
        self.message_chars_max = message_chars_max
        self.exclude = tuple(exclude)
        self.dropped = 0
        self.shipped = 0
        self._buffer: deque[dict[str, Any]] = deque()
        self._draining = threading.local()

    def __repr__(self) -> str:
        return (
            f"<TopicHandler topic={self.topic.name} service={self.service} "
            f"buffered={len(self._buffer)} dropped={self.dropped}>"
        )

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    # --- logging side: any thread, never blocks -------------------------------

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(self._draining, "active", False) or self._excluded(record.name):
            return
        if len(self._buffer) >= self.buffer_records_max:
            self.dropped += 1  # Handler.handle holds self.lock around emit
            return
        try:
            self._buffer.append(self._entry(record))
        except Exception:
            self.handleError(record)  # prints to stderr; never logs

    def _excluded(self, name: str) -> bool:
        return any(name == prefix or name.startswith(prefix + ".") for prefix in self.exclude)

    def _entry(self, record: logging.LogRecord) -> dict[str, Any]:
        message = record.getMessage()
        if record.exc_info:
            formatter = self.formatter or _PLAIN
            message = f"{message}\n{record.exc_text or formatter.formatException(record.exc_info)}"
        return {
            "service": getattr(record, "service", None) or self.service,
            "level": record.levelname,
            "logger": record.name,
            "message": message[: self.message_chars_max],
            "at": record.created,
        }

    # --- worker side: the event loop ---------------------------------------------

    def drain(self) -> int:
        """Hand every buffered record to the topic's producer; returns how many.

        Call it on the running worker's loop (`attach` does, from a timer)."""
        buffer, send = self._buffer, self.topic.send_soon
        sent = 0
        self._draining.active = True
        try:
            while buffer:
                entry = buffer[0]
                send(key=entry["service"], value=entry)
                buffer.popleft()
                sent += 1
        finally:
            self._draining.active = False
            self.shipped += sent
        return sent

    def attach(self, app: App, interval_s: float = DRAIN_INTERVAL_S) -> TopicHandler:
        """Drain into the topic every `interval_s` while `app`'s worker runs."""

        def drain_logs() -> None:
            self.drain()

        drain_logs.__name__ = f"drain_logs_{self.service}"
        app.timer(interval_s)(drain_logs)
        return self
