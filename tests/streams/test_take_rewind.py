"""stream.take() across an aborted transaction's rewind, step by step on one
channel: what the reader had handed to take() when the channel was rewound is
not handled (it is fetched again), the reader leaves the rewound batch even
once the channel is resumed, a commit pausing the channel while take() waits
with a full list does not wait for it forever, and a commit cutting right
after a list was handled cuts past the list's last event."""

from __future__ import annotations

import asyncio

from waiting import wait_until_async

from streams.channel import Channel
from streams.event_batch import EventBatch
from streams.stream import Stream, StreamContext
from streams.topic import Topic
from streams.wiring import Wiring

TIMEOUT_S = 5.0


def _batch(offsets: range) -> EventBatch:
    topic = Topic(Wiring("app"), "words", key_type=str, partitions=1)
    return topic.decode_batch([(o, 1_000 + o, b"k", str(o).encode(), ()) for o in offsets], 0)


def _stream(channel: Channel) -> Stream:
    return Stream(channel, StreamContext(Wiring("app"), "agent"))


async def _abort(channel: Channel, again: EventBatch) -> None:
    """What an aborted commit does to a paused channel: once its reader is
    between events, forget everything and fetch again from the commit."""
    await channel.wait_idle()
    channel.discard_all()
    channel.put_nowait(again)
    channel.resume()


def test_a_rewind_while_take_hands_out_a_full_list_forgets_the_rest_of_the_batch():
    async def main() -> list[list[int]]:
        channel = Channel()
        channel.put_nowait(_batch(range(4)))
        handled: list[list[int]] = []
        aborting = None
        async for values in _stream(channel).take(2, within=30.0):
            handled.append(values)
            if aborting is None:  # a commit starts while the list is handled, and aborts
                channel.pause()
                aborting = asyncio.ensure_future(_abort(channel, _batch(range(4))))
            if sum(map(len, handled)) >= 6:
                break
        assert aborting is not None
        await aborting
        return handled

    # The aborted list comes again, then the rest: 2 and 3 once, from the fetch again.
    assert asyncio.run(main()) == [[0, 1], [0, 1], [2, 3]]


def test_an_event_handed_to_take_before_a_rewind_is_not_buffered_after_it():
    async def main() -> list[list[int]]:
        channel = Channel()
        channel.put_nowait(_batch(range(1)))
        handled: list[list[int]] = []
        aborting = None
        async for values in _stream(channel).take(10, within=0.05):
            handled.append(values)
            if aborting is None:  # a list cut by `within`: the reader reads on meanwhile
                more = _batch(range(1, 3))
                channel.put_nowait(more)
                await wait_until_async(
                    lambda more=more: channel.batch is more and channel.busy,
                    timeout_s=TIMEOUT_S,
                    what="the reader handing out offset 1",
                )
                channel.pause()
                aborting = asyncio.ensure_future(_abort(channel, _batch(range(3))))
            if sum(map(len, handled[1:])) >= 3:
                break
        assert aborting is not None
        await aborting
        return handled

    handled = asyncio.run(main())
    assert handled[0] == [0]
    assert sorted(v for values in handled[1:] for v in values) == [0, 1, 2]


def test_a_commit_pausing_before_take_sees_its_full_list_gets_the_channel_idle():
    async def main() -> list[list[int]]:
        channel = Channel()
        channel.put_nowait(_batch(range(4)))
        committed = []

        async def commit() -> None:
            try:
                await asyncio.wait_for(channel.wait_idle(), TIMEOUT_S)
                committed.append(channel.pending_offsets())
            finally:
                channel.resume()

        def pause_at_1(value: int) -> bool:
            if value == 1:  # as the reader hands out the list's last event
                channel.pause()
                committing.append(asyncio.ensure_future(commit()))
            return True

        async def consume() -> None:
            async for values in _stream(channel).filter(pause_at_1).take(2, within=30.0):
                handled.append(values)
                if len(handled) == 2:
                    break

        committing: list[asyncio.Future[None]] = []
        handled: list[list[int]] = []
        await asyncio.wait_for(consume(), 2 * TIMEOUT_S)
        await asyncio.gather(*committing)
        # The list was buffered, not handled, when the commit cut: it stays uncommitted.
        assert [{tp.partition: o for tp, o in c.items()} for c in committed] == [{0: 0}]
        return handled

    assert asyncio.run(main()) == [[0, 1], [2, 3]]


def test_a_commit_cutting_right_after_a_full_list_commits_past_its_last_event():
    async def main() -> list[dict[int, int]]:
        channel = Channel()
        channel.put_nowait(_batch(range(4)))
        loop = asyncio.get_running_loop()
        cuts: list[dict[int, int]] = []
        note_idle = channel.note_idle

        def cut() -> None:
            cuts.append({tp.partition: o for tp, o in channel.pending_offsets().items()})
            channel.resume()

        def cut_first() -> None:  # a commit waking before the reader moves on
            note_idle()
            if channel.paused:
                loop.call_soon(cut)

        channel.note_idle = cut_first  # type: ignore[method-assign]

        async def consume() -> None:
            async for values in _stream(channel).take(2, within=30.0):
                if values == [0, 1]:
                    channel.pause()
                elif values == [2, 3]:
                    break

        await asyncio.wait_for(consume(), TIMEOUT_S)
        return cuts

    # 0 and 1 are processed: the cut is at 2, not at 1 (1 would be processed twice).
    assert asyncio.run(main())[0] == {0: 2}


def test_a_commit_waits_for_a_list_while_the_reader_skips_filtered_events():
    async def main() -> tuple[bool, list[list[int]]]:
        channel = Channel()
        channel.put_nowait(_batch(range(1)))
        asked, answer = asyncio.Event(), asyncio.Event()

        async def not_1(value: int) -> bool:
            if value == 1:
                asked.set()
                await answer.wait()
            return value != 1

        handled: list[list[int]] = []
        idle_during_the_list = True
        async for values in _stream(channel).filter(not_1).take(10, within=0.05):
            handled.append(values)
            if len(handled) == 2:
                break
            # A list cut by `within` is handled; the reader reads on meanwhile and
            # is filtering 1 when a commit starts: 1 is skipped during the pause.
            channel.put_nowait(_batch(range(1, 3)))
            await asyncio.wait_for(asked.wait(), TIMEOUT_S)
            channel.pause()
            idle = asyncio.ensure_future(channel.wait_idle())
            answer.set()
            await wait_until_async(lambda: not channel.busy, timeout_s=TIMEOUT_S, what="1 skipped")
            for _ in range(5):  # the commit's turn, were the channel idle
                await asyncio.sleep(0)
            idle_during_the_list = idle.done()
            idle.add_done_callback(lambda _: channel.resume())
        return idle_during_the_list, handled

    # Not idle while the list is handled; the commit cuts once it is, then 2 comes.
    assert asyncio.run(main()) == (False, [[0], [2]])
