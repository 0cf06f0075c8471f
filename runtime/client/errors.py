"""Errors of the Kafka-protocol client.

    StreamsRuntimeError                      (runtime.errors)
    └── KafkaClientError
        ├── KafkaConnectionError             (also a ConnectionError)
        │   ├── ConnectionClosedError        closed by us: close() was called
        │   └── ConnectionBrokenError        broken by the peer or the network, or
        │                                    a connect that failed or timed out
        ├── KafkaTimeoutError                (also a TimeoutError) no answer in time
        ├── NoCompatibleVersionError         no version of an API both sides speak
        ├── AuthenticationFailedError        SASL credentials refused, a mechanism the
        │                                    broker does not offer, or a TLS certificate
        │                                    that does not verify: never retried
        ├── KafkaError                       an error code in a broker's answer
        ├── ClientClosedError                use of a producer, consumer or group
        │                                    member after close()
        └── TransactionError                 a transactional producer's operation failed
            ├── TransactionStateError        a call the producer's state does not allow
            │                                (begin twice, commit without begin, send
            │                                outside a transaction): nothing changed; or
            │                                the coordinator's INVALID_TXN_STATE, after
            │                                which the producer is unusable
            ├── TransactionAbortableError    a send or offset commit of the open
            │                                transaction failed: abort_transaction(),
            │                                then do the transaction again
            ├── TransactionAbortedError      a record buffered in a transaction that was
            │                                aborted before it was sent
            └── TransactionFatalError        the producer is unusable: close it
                └── ProducerFencedError      (also runtime.errors.ProducerFencedError)
                                             a newer instance took the transactional id,
                                             or the coordinator aborted a transaction
                                             that ran past its timeout

KafkaError carries `code` (int) and `name` (ErrorCode name), `retriable`, and the
`topic` / `partition` it is about when it is about one. A TransactionError carries
the broker's `code` when an answer caused it (None for a misuse), and the
KafkaError behind it as its `__cause__`. A connection error is always worth a
retry on a fresh connection; `is_retriable(exc)` says which exceptions are.
"""

from __future__ import annotations

from runtime.errors import ProducerFencedError as LogProducerFencedError
from runtime.errors import StreamsRuntimeError
from runtime.protocol.codes import ErrorCode

RETRIABLE_CODES = frozenset(
    {
        ErrorCode.CORRUPT_MESSAGE,
        ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
        ErrorCode.LEADER_NOT_AVAILABLE,
        ErrorCode.NOT_LEADER_OR_FOLLOWER,
        ErrorCode.REQUEST_TIMED_OUT,
        ErrorCode.REPLICA_NOT_AVAILABLE,
        ErrorCode.NETWORK_EXCEPTION,
        ErrorCode.COORDINATOR_LOAD_IN_PROGRESS,
        ErrorCode.COORDINATOR_NOT_AVAILABLE,
        ErrorCode.NOT_COORDINATOR,
        ErrorCode.NOT_ENOUGH_REPLICAS,
        ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
        ErrorCode.NOT_CONTROLLER,
        ErrorCode.KAFKA_STORAGE_ERROR,
        ErrorCode.FETCH_SESSION_ID_NOT_FOUND,
        ErrorCode.INVALID_FETCH_SESSION_EPOCH,
        ErrorCode.LISTENER_NOT_FOUND,
        ErrorCode.FENCED_LEADER_EPOCH,
        ErrorCode.UNKNOWN_LEADER_EPOCH,
        ErrorCode.OFFSET_NOT_AVAILABLE,
        ErrorCode.PREFERRED_LEADER_NOT_AVAILABLE,
        ErrorCode.ELIGIBLE_LEADERS_NOT_AVAILABLE,
        ErrorCode.UNSTABLE_OFFSET_COMMIT,
        ErrorCode.THROTTLING_QUOTA_EXCEEDED,
        ErrorCode.CONCURRENT_TRANSACTIONS,
    }
)
"""Codes a client retries after a backoff (what Kafka marks RetriableException)."""

METADATA_CODES = frozenset(
    {
        ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
        ErrorCode.LEADER_NOT_AVAILABLE,
        ErrorCode.NOT_LEADER_OR_FOLLOWER,
        ErrorCode.REPLICA_NOT_AVAILABLE,
        ErrorCode.FENCED_LEADER_EPOCH,
        ErrorCode.UNKNOWN_LEADER_EPOCH,
        ErrorCode.KAFKA_STORAGE_ERROR,
        ErrorCode.NOT_CONTROLLER,
    }
)
"""Codes that mean our metadata is stale: refresh it before the retry."""

COORDINATOR_CODES = frozenset({ErrorCode.COORDINATOR_NOT_AVAILABLE, ErrorCode.NOT_COORDINATOR})
"""Codes that mean the group coordinator moved or is not ready: find it again."""

REJOIN_CODES = frozenset(
    {ErrorCode.REBALANCE_IN_PROGRESS, ErrorCode.ILLEGAL_GENERATION, ErrorCode.UNKNOWN_MEMBER_ID}
)
"""Codes that mean a group member must rejoin its group."""


def error_name(code: int) -> str:
    try:
        return ErrorCode(code).name
    except ValueError:
        return f"UNKNOWN_ERROR_CODE_{code}"


class KafkaClientError(StreamsRuntimeError):
    pass


class KafkaConnectionError(KafkaClientError, ConnectionError):
    pass


class ConnectionClosedError(KafkaConnectionError):
    pass


class ConnectionBrokenError(KafkaConnectionError):
    pass


class KafkaTimeoutError(KafkaClientError, TimeoutError):
    pass


class NoCompatibleVersionError(KafkaClientError):
    pass


class ClientClosedError(KafkaClientError):
    pass


class AuthenticationFailedError(KafkaClientError):
    """The broker refused who we are, or we refused the broker; `code` is the
    broker's error code when it answered one."""

    def __init__(self, message: str, *, code: int | None = None) -> None:
        self.code = code
        super().__init__(message if code is None else f"{message} ({error_name(code)})")


class KafkaError(KafkaClientError):
    """An error code a broker answered with."""

    def __init__(
        self,
        code: int,
        message: str | None = None,
        *,
        topic: str | None = None,
        partition: int | None = None,
        offset: int | None = None,
    ) -> None:
        self.code = code
        self.name = error_name(code)
        where = f" ({topic}[{partition}])" if topic is not None and partition is not None else ""
        where = where or (f" ({topic})" if topic is not None else "")
        text = f"{self.name} ({code}){where}" + (f": {message}" if message else "")
        super().__init__(text, topic=topic, partition=partition, offset=offset)

    @property
    def retriable(self) -> bool:
        return self.code in RETRIABLE_CODES


class TransactionError(KafkaClientError):
    """A transactional producer's operation failed; `code` is the broker's, if any."""

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        topic: str | None = None,
        partition: int | None = None,
    ) -> None:
        self.code = code
        if code is not None:
            message = f"{message} ({error_name(code)})"
        super().__init__(message, topic=topic, partition=partition)


class TransactionStateError(TransactionError):
    pass


class TransactionAbortableError(TransactionError):
    pass


class TransactionAbortedError(TransactionError):
    pass


class TransactionFatalError(TransactionError):
    pass


class ProducerFencedError(TransactionFatalError, LogProducerFencedError):
    """Fenced: the embedded log's ProducerFencedError too, so that code written
    against either transport catches one class."""


def is_retriable(exc: BaseException) -> bool:
    """Whether an operation that failed with `exc` may succeed when tried again."""
    if isinstance(exc, KafkaError):
        return exc.retriable
    return isinstance(exc, KafkaConnectionError | KafkaTimeoutError)


def check(code: int, message: str | None = None, **where: object) -> None:
    """Raise KafkaError for a non-zero error code."""
    if code != ErrorCode.NONE:
        raise KafkaError(code, message, **where)  # type: ignore[arg-type]
