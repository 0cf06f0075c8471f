from __future__ import annotations

import logging

from log_helpers import seq_batch

from runtime.log import Log
from runtime.log.records import decode_batches, iter_batches
from runtime.types import TopicPartition

TP = TopicPartition("t", 0)


def _write(path, batches=10, **configs):
    with Log.open(path) as log:
        log.create_topic("t", 1, {k.replace("_", "."): v for k, v in configs.items()})
        for i in range(batches):
            log.append(TP, seq_batch(i))
    return sorted((path / "t-0").glob("*.log"))


def _values(log):
    return [r.value for r in decode_batches(log.read(TP, log.offsets(TP)[0], 1 << 30))]


def test_recovery_truncates_torn_tail_batch(tmp_path, caplog):
    segment = _write(tmp_path)[-1]
    size = segment.stat().st_size
    with open(segment, "r+b") as f:
        f.truncate(size - 5)
    with caplog.at_level(logging.WARNING), Log.open(tmp_path) as log:
        assert log.offsets(TP) == (0, 27)
        assert _values(log)[-1] == b"8:2"
        partition = log._partitions["t"][0]
        assert partition.recovered_bytes == len(seq_batch(9)) - 5
        assert log.append(TP, seq_batch(99)) == 27
    warning = next(r for r in caplog.records if r.levelno == logging.WARNING).getMessage()
    assert "topic=t" in warning and "partition=0" in warning
    assert f"truncated_bytes={len(seq_batch(9)) - 5}" in warning
    with Log.open(tmp_path) as log:  # the new append is durable after the truncation
        assert _values(log)[-1] == b"99:2"


def test_recovery_with_corrupt_crc(tmp_path):
    segment = _write(tmp_path)[-1]
    batch_size = len(seq_batch(0))
    data = bytearray(segment.read_bytes())
    data[5 * batch_size + 40] ^= 0xFF  # inside batch 5
    segment.write_bytes(data)
    with Log.open(tmp_path) as log:
        assert log.offsets(TP) == (0, 15)
        assert log._partitions["t"][0].recovered_bytes == 5 * batch_size
    assert segment.stat().st_size == 5 * batch_size


def test_recovery_with_garbage_appended(tmp_path):
    segment = _write(tmp_path)[-1]
    with open(segment, "ab") as f:
        f.write(b"\xff" * 100)
    with Log.open(tmp_path) as log:
        assert log.offsets(TP) == (0, 30)
        assert log._partitions["t"][0].recovered_bytes == 100


def test_recovery_of_empty_segment_file(tmp_path):
    segments = _write(tmp_path, batches=0)
    assert segments[0].stat().st_size == 0
    with Log.open(tmp_path) as log:
        assert log.offsets(TP) == (0, 0)
        assert log.append(TP, seq_batch(0)) == 0


def test_recovery_rebuilds_missing_index(tmp_path):
    segments = _write(tmp_path, batches=300, segment_bytes="10000")
    assert len(segments) > 2
    with Log.open(tmp_path) as log:
        expected = _values(log)
        original = list(log._partitions["t"][0].segments[0].offset_index.offsets)
    assert original
    segments[0].with_suffix(".index").unlink()
    segments[1].with_suffix(".timeindex").unlink()
    with Log.open(tmp_path) as log:
        rebuilt = log._partitions["t"][0].segments[0]
        assert list(rebuilt.offset_index.offsets) == original
        assert _values(log) == expected
    assert segments[0].with_suffix(".index").exists()
    assert segments[1].with_suffix(".timeindex").exists()


def test_recovery_rebuilds_corrupt_index(tmp_path):
    segments = _write(tmp_path, batches=300, segment_bytes="10000")
    index = segments[0].with_suffix(".index")
    good = index.read_bytes()
    index.write_bytes(good[:-3])
    with Log.open(tmp_path) as log:
        assert len(_values(log)) == 900
        assert log.read(TP, 100, 1)
    assert index.read_bytes() == good


def test_corrupt_middle_segment_truncates_the_rest(tmp_path):
    segments = _write(tmp_path, batches=300, segment_bytes="10000")
    data = bytearray(segments[1].read_bytes())
    third_batch = [pos for pos, _ in iter_batches(data)][2]
    data[third_batch + 70] ^= 0xFF  # in the records: covered by the CRC
    segments[1].write_bytes(data)
    segments[1].with_suffix(".index").unlink()
    with Log.open(tmp_path) as log:
        start, end = log.offsets(TP)
        assert start == 0 and end < int(segments[2].stem)
        values = _values(log)
        assert len(values) == end and values == [b"%d:%d" % (i // 3, i % 3) for i in range(end)]
    assert not segments[2].exists()


def test_leftover_cleaned_files_are_removed(tmp_path):
    segments = _write(tmp_path)
    leftover = segments[0].with_name(segments[0].name + ".cleaned")
    leftover.write_bytes(b"junk")
    with Log.open(tmp_path) as log:
        assert log.offsets(TP) == (0, 30)
    assert not leftover.exists()
