"""Request/reply with an agent: `await agent.ask(value, key=, timeout=)`.

    @app.agent(questions)
    async def answer(stream):
        async for q in stream:
            yield q * 2                    # the reply to an ask, and what sinks get

    doubled = await answer.ask(21)         # 42, from a worker or an `async with app:` client

The request is the value sent to the agent's topic as any other, with two
headers: `streams-reply-to` (the reply topic, `<app>-replies`, one partition,
created on first use) and `streams-correlation-id`. What the agent yields
while that event is the current one is the reply: keyed by the correlation id
and JSON-encoded, with `streams-reply-status: ok`. An agent that raises on an
asked event replies `error` (the exception's type and message) before it stops
its worker; the asker raises AskError. No reply within `timeout` seconds is
a TimeoutError (asyncio's), and a reply that comes later is ignored. A worker
answers only its own app's reply topic (a header naming another is ignored).

An agent over `stream.take(n, within=)` handles lists: what it yields for a
list (or the error it raises) answers every request in the list, so each asker
gets the value computed from its own request's batch. `ask(...,
value_type=Model)` decodes the reply into that model (a reply that does not fit
is an AskError).

Each asker reads the reply topic from its end as of its first ask (before it
sends a request, so no reply is missed) and keeps the replies whose
correlation ids it waits for; `PENDING_MAX` bounds how many it waits for.

Invariants:
- a correlation id is in `pending` from before its request is sent until its
  reply came or its asker gave up; a reply resolves at most one future.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import TYPE_CHECKING, Any

import orjson

from runtime.errors import TopicCreationRefusedError
from runtime.log.records import decode_batches, iter_batches
from runtime.types import TopicPartition
from streams.codec import get_codec
from streams.errors import AskError
from streams.event import Event, current_batch, current_event
from streams.model import Record
from streams.topic import Topic

if TYPE_CHECKING:
    from runtime.transport import Transport
    from streams.agent import Agent
    from streams.wiring import Wiring

logger = logging.getLogger(__name__)

REPLY_TO = "streams-reply-to"
CORRELATION_ID = "streams-correlation-id"
STATUS = "streams-reply-status"
PENDING_MAX = 10_000
FETCH_WAIT_S = 0.5
RETRY_S = 0.5
# A reply is read within its timeout or never: an hour of them is plenty.
REPLY_CONFIG = {"retention.ms": str(3_600_000)}


_reply_topics: dict[str, Topic] = {}  # app id -> its reply topic, for the agents' side


def reply_topic_name(app_id: str) -> str:
    return f"{app_id}-replies"


class Replies:
    """One asker's reader of the reply topic and the asks it waits on."""

    def __init__(self, wiring: Wiring, transport: Transport) -> None:
        self._wiring = wiring
        self.transport = transport
        self.tp = TopicPartition(reply_topic_name(wiring.app_id), 0)
        self.pending: dict[bytes, asyncio.Future[tuple[bytes, bytes | None]]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._starting = asyncio.Lock()

    async def ask(
        self, agent: Agent, value: Any, key: Any, timeout: float, value_type: Any = None
    ) -> Any:
        if timeout <= 0:
            raise ValueError(f"ask: timeout must be > 0 seconds, not {timeout!r}")
        if value_type is not None and not (
            isinstance(value_type, type) and issubclass(value_type, Record)
        ):
            raise TypeError(f"ask: value_type must be a streams.Record class, not {value_type!r}")
        if len(self.pending) >= PENDING_MAX:
            raise AskError(f"ask {agent.name!r}: {PENDING_MAX} asks wait already", agent.name)
        await self._start()
        correlation = uuid.uuid4().hex.encode()
        future: asyncio.Future[tuple[bytes, bytes | None]] = (
            asyncio.get_running_loop().create_future()
        )
        self.pending[correlation] = future
        try:
            headers = ((REPLY_TO, self.tp.topic.encode()), (CORRELATION_ID, correlation))
            sent = await agent.source.send(key, value, headers=headers)
            async with asyncio.timeout(timeout):
                await sent
                status, data = await future
        finally:
            self.pending.pop(correlation, None)
        return _result(agent.name, status, data, value_type)

    async def _start(self) -> None:
        async with self._starting:
            if self._reader is not None:
                return
            from streams.conductor import declare_topic

            topic = _reply_topic(self._wiring)
            try:
                await declare_topic(self.transport, topic)
            except TopicCreationRefusedError as exc:
                from streams.topic_plan import MissingTopicsError, spec

                reason = str(exc).split(":")[0]
                missing = [spec(topic.name, 1, topic.config)]
                raise MissingTopicsError(missing, self.transport.url, reason) from exc
            _, end = await self.transport.offsets(self.tp)
            self._reader = asyncio.get_running_loop().create_task(
                self._read(end), name=f"replies {self.tp.topic}"
            )

    async def _read(self, position: int) -> None:
        while True:
            try:
                data = await self.transport.fetch(self.tp, position, max_wait_s=FETCH_WAIT_S)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a broker away for a while: asks time out meanwhile
                logger.warning("reading replies from %s failed: %s; retrying", self.tp, exc)
                await asyncio.sleep(RETRY_S)
                continue
            for record in decode_batches(data):
                if record.offset < position:
                    continue
                future = self.pending.get(record.key or b"")
                if future is not None and not future.done():
                    status = dict(record.headers).get(STATUS, b"ok")
                    future.set_result((status, record.value))
            # Past every batch, control ones too (replies sent under exactly_once).
            position = max([position, *(h.next_offset for _, h in iter_batches(data))])

    async def close(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        for future in self.pending.values():
            if not future.done():
                future.cancel()


def _result(agent: str, status: bytes, data: bytes | None, value_type: Any = None) -> Any:
    value = None if data is None else orjson.loads(data)
    if status == b"error":
        error = value if isinstance(value, dict) else {}
        raise AskError(
            f"agent {agent!r} raised {error.get('type', 'an error')}: {error.get('message', '')}",
            agent,
            error_type=error.get("type"),
        )
    if value_type is None or value is None:
        return value
    if not isinstance(value, dict):
        raise AskError(
            f"agent {agent!r} replied {value!r}, not an object to make a {value_type.__name__} of",
            agent,
        )
    try:
        return value_type.from_dict(value)
    except (TypeError, ValueError, KeyError) as exc:
        raise AskError(
            f"agent {agent!r} replied {value!r}, not a {value_type.__name__}: {exc}", agent
        ) from exc


def replies_for(wiring: Wiring) -> Replies:
    """The running app's asker (one per started transport)."""
    transport = wiring.require_transport()
    replies = wiring.replies
    if replies is None or replies.transport is not transport:
        replies = wiring.replies = Replies(wiring, transport)
    return replies


# --- the agent's side ------------------------------------------------------------------


def asked(event: Event | None) -> tuple[str, bytes] | None:
    """(reply topic, correlation id) if `event` is a request."""
    if event is None or not event.message.headers:
        return None
    headers = dict(event.message.headers)
    reply_to, correlation = headers.get(REPLY_TO), headers.get(CORRELATION_ID)
    if reply_to is None or correlation is None:
        return None
    return reply_to.decode(errors="replace"), correlation


async def reply(wiring: Wiring, value: Any, *, error: BaseException | None = None) -> None:
    """Answer the current event if it is a request (the agent yielded `value`,
    or raised `error`), or each request of the list from `take()` the agent
    handles. Only the app's own reply topic is answered: a header naming
    another (a stray or hostile record) must not make the worker write to, or
    create, a topic it does not know."""
    batch = current_batch()
    events = batch if batch is not None else (current_event(),)
    requests = [where for where in map(asked, events) if where is not None]
    if not requests:
        return
    topic = _reply_topic(wiring)
    if error is None:
        status, data = b"ok", get_codec("json").dumps(value)
    else:
        status = b"error"
        data = orjson.dumps({"type": type(error).__name__, "message": str(error)})
    sent = []
    for reply_to, correlation in requests:
        if reply_to != topic.name:
            logger.debug(
                "not answering a request whose reply-to is %r, not %s", reply_to, topic.name
            )
            continue
        sent.append(topic.send_soon(key=correlation, value=data, headers=((STATUS, status),)))
    if error is not None and sent:  # the worker stops next: the replies must be out first
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.gather(*sent), RETRY_S * 10)


def _reply_topic(wiring: Wiring) -> Topic:
    topic = _reply_topics.get(wiring.app_id)
    if topic is None or topic._wiring is not wiring:
        topic = _reply_topics[wiring.app_id] = Topic(
            wiring,
            reply_topic_name(wiring.app_id),
            key_serializer="raw",
            value_serializer="raw",
            partitions=1,
            config=REPLY_CONFIG,
            internal=True,
        )
    return topic
