"""The README's API example works as written."""

from __future__ import annotations

import asyncio

import streams


def test_readme_agent_counts_and_yields_through_group_by():
    app = streams.App("surge", broker="memory://")

    class Ride(streams.Record):
        zone: str
        rider: str

    rides = app.topic("ride-requests", value_type=Ride, partitions=8)
    prices = app.topic("surge-prices")
    demand = app.Table("demand", default=int).tumbling(60, expires=3600)

    @app.agent(rides, sink=[prices])
    async def count(stream):
        async for ride in stream.group_by(Ride.zone):
            demand[ride.zone] += 1
            yield {"zone": ride.zone, "demand": demand[ride.zone].current()}

    async def main():
        async with count.test_context() as agent:
            await agent.put(Ride(zone="a", rider="r1"))
            await agent.put(Ride(zone="a", rider="r2"))
            await agent.put(Ride(zone="b", rider="r3"))
            assert agent.results == [
                {"zone": "a", "demand": 1},
                {"zone": "a", "demand": 2},
                {"zone": "b", "demand": 1},
            ]

    asyncio.run(main())
