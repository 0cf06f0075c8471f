"""agent.ask() of an agent that takes batches, replies decoded into a model, and
the reply topic in the topics plan."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import streams
from streams.worker import Worker

APPS = Path(__file__).parent / "apps"


def test_each_asked_event_of_a_taken_batch_gets_the_batch_reply(make_app):
    app = make_app("asktake")
    questions = app.topic("questions", value_type=int, partitions=1)
    batches: list[list[int]] = []

    @app.agent(questions)
    async def total(stream):
        async for values in stream.take(3, within=0.2):
            batches.append(values)
            yield sum(values)

    async def main() -> None:
        async with Worker(app):
            # three asks in one batch (full at 3): each gets the batch's sum
            answers = await asyncio.gather(*(total.ask(v, timeout=20) for v in (1, 2, 4)))
            # one alone: its batch closes `within` after it came
            alone = await total.ask(10, timeout=20)
        return answers, alone

    answers, alone = asyncio.run(main())
    assert batches[-1] == [10] and alone == 10
    assert sum(len(b) for b in batches) == 4
    # each ask gets the sum of the batch it came in
    by_value = {v: sum(b) for b in batches for v in b}
    assert answers == [by_value[1], by_value[2], by_value[4]]


class Quote(streams.Record):
    zone: str
    fare: float


def test_a_reply_decodes_into_a_record_or_fails_clearly(tmp_path):
    app = streams.App("askrec", broker="memory://", data_dir=str(tmp_path))
    rides = app.topic("rides", value_type=str, partitions=1)

    @app.agent(rides)
    async def quote(stream):
        async for zone in stream:
            if zone == "nowhere":
                yield {"zone": zone}  # no fare: not a Quote
            elif zone == "list":
                yield [1, 2]
            else:
                yield Quote(zone=zone, fare=12.5)

    async def main() -> None:
        async with Worker(app):
            assert await quote.ask("a", timeout=20, value_type=Quote) == Quote(zone="a", fare=12.5)
            assert await quote.ask("a", timeout=20) == {"zone": "a", "fare": 12.5}
            with pytest.raises(streams.AskError, match=r"not a Quote: .*fare"):
                await quote.ask("nowhere", timeout=20, value_type=Quote)
            with pytest.raises(streams.AskError, match=r"replied \[1, 2\], not an object"):
                await quote.ask("list", timeout=20, value_type=Quote)
            with pytest.raises(TypeError, match=r"value_type must be a streams\.Record"):
                await quote.ask("a", timeout=20, value_type=dict)

    asyncio.run(main())


def test_the_reply_topic_is_planned_when_the_app_has_agents(tmp_path):
    from streams.topic_plan import app_topics

    app = streams.App("askplan", broker="memory://", data_dir=str(tmp_path))
    source = app.topic("questions", partitions=3)
    assert "askplan-replies" not in [s.name for s in app_topics(app)]  # none to ask

    @app.agent(source)
    async def answer(stream):
        async for value in stream:
            yield value

    planned = {s.name: s for s in app_topics(app)}
    assert planned["askplan-replies"].partitions == 1
    assert planned["askplan-replies"].configs == (("retention.ms", "3600000"),)
