"""An idempotent producer's retry after a broker crash is not stored twice.

The producer's batch was stored and fsynced, the broker died before the answer
went out, and the producer sends the same batch again to the restarted broker:
it must get the original offset back, and the partition must hold the batch
once. The producer state is rebuilt from the log on open (snapshots + scan).
"""

from __future__ import annotations

import pytest
from kafka_wire import WireClient, create_topics_codes, fetch_body, produce_body

from runtime.log.records import decode_batches, encode_batch
from runtime.protocol.codes import ApiKey, ErrorCode

pytestmark = pytest.mark.slow

PRODUCER_ID = 4242


def idem_batch(seq: int, epoch: int = 0) -> bytes:
    rows = [(None, b"seq-%d" % seq, 1_700_000_000_000, [])]
    return bytes(
        encode_batch(rows, producer_id=PRODUCER_ID, producer_epoch=epoch, base_sequence=seq)
    )


def produce(wire: WireClient, records: bytes) -> tuple[int, int]:
    answer = wire.request(ApiKey.PRODUCE, 8, produce_body("idem", 0, records))
    part = answer["responses"][0]["partitions"][0]
    return part["error_code"], part["base_offset"]


def stored_values(wire: WireClient) -> list[bytes]:
    answer = wire.request(ApiKey.FETCH, 11, fetch_body("idem", 0, 0))
    return [r.value for r in decode_batches(answer["responses"][0]["partitions"][0]["records"])]


@pytest.mark.parametrize("segment_bytes", ["1048576", "200"])
def test_retry_after_broker_sigkill_gets_the_original_offset(start_broker, segment_bytes) -> None:
    broker = start_broker("--flush", "batch")
    with WireClient(broker.bootstrap) as wire:
        assert create_topics_codes(wire, ("idem", 1, {"segment.bytes": segment_bytes})) == [0]
        acked = [produce(wire, idem_batch(seq)) for seq in range(6)]
    assert acked == [(ErrorCode.NONE, seq) for seq in range(6)]
    broker.kill()
    broker.start()
    with WireClient(broker.bootstrap) as wire:
        assert produce(wire, idem_batch(5)) == (ErrorCode.NONE, 5)  # the lost answer, again
        assert produce(wire, idem_batch(3)) == (ErrorCode.NONE, 3)
        assert produce(wire, idem_batch(8))[0] == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
        assert produce(wire, idem_batch(6)) == (ErrorCode.NONE, 6)
        assert stored_values(wire) == [b"seq-%d" % s for s in range(7)]
