"""Errors raised by the streams user API.

    StreamsError
    ├── DecodeError            a stored key or value its codec or model could not decode
    │   ├── KeyDecodeError
    │   └── ValueDecodeError
    ├── ModelError             a Record given a missing field or a value of the wrong type
    ├── ConfigurationError     an app, topic, table or agent declared with bad settings
    └── AskError               agent.ask(): the agent raised on the request (or too many wait)

Errors about a record carry the coordinates they know (`topic`, `partition`,
`offset`); the codec's own exception is the `cause` (and `__cause__`). ModelError
names the `model` and the `field`. All but the root are also ValueErrors.
"""

from __future__ import annotations

from runtime.errors import LocatedError


class StreamsError(LocatedError):
    pass


class DecodeError(StreamsError, ValueError):
    def __init__(
        self,
        message: str,
        *,
        topic: str | None = None,
        partition: int | None = None,
        offset: int | None = None,
        cause: BaseException | None = None,
    ) -> None:
        super().__init__(message, topic=topic, partition=partition, offset=offset)
        self._cause = cause

    @property
    def cause(self) -> BaseException | None:
        """The codec's exception: as given, else the exception this was raised from."""
        return self._cause if self._cause is not None else self.__cause__


class KeyDecodeError(DecodeError):
    pass


class ValueDecodeError(DecodeError):
    pass


class ModelError(StreamsError, ValueError):
    model: str | None = None
    field: str | None = None

    def __init__(self, message: str, *, model: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.model = model
        self.field = field


class ConfigurationError(StreamsError, ValueError):
    pass


class AskError(StreamsError):
    """The agent asked raised while handling the request; `error_type` names
    its exception's class (the exception itself stayed in the worker)."""

    def __init__(self, message: str, agent: str, *, error_type: str | None = None) -> None:
        super().__init__(message)
        self.agent = agent
        self.error_type = error_type
