"""Surge pricing: ride demand against driver supply, per zone, in real time.

Run it from the repository root:

    streams -A examples.surge_pricing worker          # until Ctrl-C
    python -m examples.surge_pricing --seconds 60     # for one minute

A timer plays the city: riders request rides and drivers report where they
are, in a handful of zones. A rush moves from zone to zone, and drivers drift
towards the zone that pays the most. Two agents count requests (demand) and
positions (supply) per zone in tumbling windows; after each event the zone's
surge multiplier is demand/supply over the current and the previous window,
in steps of 0.1, between 1.0x and 3.0x. Both agents join their events with the
`fares` table (the base fare per zone, kept from the `zone-fares` topic) to quote
the fare: base fare times multiplier. Change a zone's base fare, on a broker
while the worker runs (or on the embedded log while it is stopped):

    streams send zone-fares '{"zone": "airport", "fare": 42.0}' --broker kafka://127.0.0.1:9092

Every change of a multiplier or a quoted fare goes to the `surge-prices` topic;
read it once the worker has stopped with

    streams -A examples.surge_pricing tail surge-prices --from-beginning --no-follow

Every couple of seconds the worker prints zone -> demand, supply, multiplier.
Its web server shows the dashboard at http://127.0.0.1:6066/, a zone's
multiplier at /surge/ZONE and a table's key at /tables/surge/ZONE.

The log and the tables live under ./streams-data ($STREAMS_DATA moves them).
SURGE_FORMAT=avro (or json_schema) writes the three topics in Confluent's
wire format through a schema registry instead of plain JSON: run it against
a broker, whose --http port serves the registry,

    streams broker --http 127.0.0.1:8082 &
    SURGE_FORMAT=avro STREAMS_SCHEMA_REGISTRY=http://127.0.0.1:8082 \
        python -m examples.surge_pricing --broker kafka://127.0.0.1:9092 --seconds 60

Time scales, in seconds, from the environment: SURGE_WINDOW_S (10),
SURGE_TICK_S (0.1, the generator), SURGE_REPORT_S (2), SURGE_RUSH_S (30, how
long the rush stays in a zone).
"""

from __future__ import annotations

import math
import os
import random
import time
from collections import defaultdict

import streams
from examples._common import data_dir, env_seconds, main

WINDOW_S = env_seconds("SURGE_WINDOW_S", 10.0)
TICK_S = env_seconds("SURGE_TICK_S", 0.1)
REPORT_S = env_seconds("SURGE_REPORT_S", 2.0)
RUSH_S = env_seconds("SURGE_RUSH_S", 30.0)

ZONES = ("airport", "downtown", "harbor", "stadium", "university")
MULTIPLIER_MIN, MULTIPLIER_MAX = 1.0, 3.0
# The simulated city, per second: ride requests in a quiet zone and in the rush
# zone, position reports per driver, and the chance that a driver moves.
REQUESTS_PER_S, RUSH_REQUESTS_PER_S = 3.0, 15.0
DRIVERS = 30
# Base fares of zones without one in the `fares` table.
BASE_FARES = {"airport": 30.0, "downtown": 12.0, "harbor": 15.0, "stadium": 18.0}
BASE_FARE = 10.0
PINGS_PER_DRIVER_PER_S = 1.0
MOVES_PER_DRIVER_PER_S = 0.02

app = streams.App("surge", data_dir=data_dir(), topic_partitions=4)


class RideRequest(streams.Record):
    zone: str
    rider: str
    at: float


class DriverPosition(streams.Record):
    zone: str
    driver: str
    at: float


class SurgePrice(streams.Record):
    zone: str
    multiplier: float
    demand: int
    supply: int
    at: float
    fare: float = 0.0


class ZoneFare(streams.Record):
    zone: str
    fare: float


FORMAT = os.environ.get("SURGE_FORMAT", "json")  # json, avro, json_schema
ride_requests = app.topic("ride-requests", value_type=RideRequest, value_serializer=FORMAT)
driver_positions = app.topic("driver-positions", value_type=DriverPosition, value_serializer=FORMAT)
surge_prices = app.topic("surge-prices", value_type=SurgePrice, value_serializer=FORMAT)
# Keyed by the zone as text, or not at all: `streams send` sends keys as they are typed.
zone_fares = app.topic("zone-fares", key_type=str, value_type=ZoneFare)

demand = app.Table("demand", default=int, help="ride requests per zone").tumbling(
    WINDOW_S, expires=max(60.0, 2 * WINDOW_S)
)
supply = app.Table("supply", default=int, help="driver positions per zone").tumbling(
    WINDOW_S, expires=max(60.0, 2 * WINDOW_S)
)
surge = app.Table("surge", help="the current multiplier per zone")
quoted = app.Table("quoted", help="the fare last quoted per zone")
fares = app.Table("fares", help="the base fare per zone, from zone-fares")


def multiplier(demand: int, supply: int) -> float:
    """demand/supply rounded to 0.1, between 1.0 and 3.0; demand with no
    supply at all is the maximum."""
    if demand <= 0:
        return MULTIPLIER_MIN
    if supply <= 0:
        return MULTIPLIER_MAX
    tenths = math.floor(demand * 10 / supply + 0.5)
    return min(MULTIPLIER_MAX, max(MULTIPLIER_MIN, tenths / 10))


# --- the pipeline ------------------------------------------------------------------


@app.agent(zone_fares)
async def keep_fares(stream: streams.Stream) -> None:
    """Base fares per zone, regrouped by zone like the counting agents' streams,
    so that `fares` is co-partitioned with them."""
    async for zone_fare in stream.group_by(ZoneFare.zone):
        fares[zone_fare.zone] = zone_fare.fare


@app.agent(ride_requests)
async def count_demand(stream: streams.Stream) -> None:
    """Ride requests per zone and window; reprices the zone."""
    async for ride, base in stream.group_by(RideRequest.zone).join(fares, how="left"):
        demand[ride.zone] += 1
        reprice(ride.zone, ride.at, base)


@app.agent(driver_positions)
async def count_supply(stream: streams.Stream) -> None:
    """Driver positions per zone and window; reprices the zone."""
    async for position, base in stream.group_by(DriverPosition.zone).join(fares, how="left"):
        supply[position.zone] += 1
        reprice(position.zone, position.at, base)


def reprice(zone: str, at: float, base: float | None) -> None:
    """Set the zone's multiplier from its last two windows and quote its fare;
    publish changes.

    Runs inside an event of a stream grouped by zone, so `demand`, `supply`,
    `surge` and `quoted` are all read and written in the zone's partition."""
    zone_demand, zone_supply = demand[zone], supply[zone]
    wanted = zone_demand.current() + zone_demand.delta(WINDOW_S)
    offered = zone_supply.current() + zone_supply.delta(WINDOW_S)
    price = multiplier(wanted, offered)
    fare = round((BASE_FARES.get(zone, BASE_FARE) if base is None else base) * price, 2)
    if surge.get(zone) != price or quoted.get(zone) != fare:
        surge[zone] = price
        quoted[zone] = fare
        surge_prices.send_soon(
            key=zone,
            value=SurgePrice(
                zone=zone, multiplier=price, demand=wanted, supply=offered, at=at, fare=fare
            ),
        )


# --- the simulated city --------------------------------------------------------------

rng = random.Random()
drivers = {f"d{i:02d}": ZONES[i % len(ZONES)] for i in range(DRIVERS)}


def rush_zone(now: float) -> str:
    return ZONES[int(now // RUSH_S) % len(ZONES)]


def arrivals(rate_per_s: float) -> int:
    """How many of a steady `rate_per_s` happen in one tick (no clumping)."""
    expected = rate_per_s * TICK_S
    whole = int(expected)
    return whole + (rng.random() < expected - whole)


@app.timer(TICK_S)
def simulate() -> None:
    """One tick of the city: ride requests, driver moves and position reports."""
    now = time.time()
    busy = rush_zone(now)
    for zone in ZONES:
        rate = RUSH_REQUESTS_PER_S if zone == busy else REQUESTS_PER_S
        for _ in range(arrivals(rate)):
            rider = f"r{rng.randrange(100_000):05d}"
            ride_requests.send_soon(key=rider, value=RideRequest(zone=zone, rider=rider, at=now))
    best = max(ZONES, key=lambda zone: (surge.get(zone) or MULTIPLIER_MIN, rng.random()))
    move_p = MOVES_PER_DRIVER_PER_S * TICK_S
    ping_p = PINGS_PER_DRIVER_PER_S * TICK_S
    for driver, zone in drivers.items():
        if rng.random() < move_p:
            zone = drivers[driver] = best
        if rng.random() < ping_p:
            driver_positions.send_soon(
                key=driver, value=DriverPosition(zone=zone, driver=driver, at=now)
            )


# --- the report ---------------------------------------------------------------------

previous: dict[str, float] = {}


def recent(table: streams.WindowedTable, now: float) -> dict[str, int]:
    """Per zone, the counts of the window holding `now` and the one before."""
    start = table.window.current(now).start
    starts = (start, start - WINDOW_S)
    totals: dict[str, int] = defaultdict(int)
    for (zone, window_start), count in table.items():
        if window_start in starts:
            totals[zone] += count
    return totals


def report_lines(now: float) -> list[str]:
    wanted, offered = recent(demand, now), recent(supply, now)
    lines = [
        f"surge at {time.strftime('%H:%M:%S', time.localtime(now))}"
        f" (last {2 * WINDOW_S:g}s, rush in {rush_zone(now)})",
        f"  {'zone':<12}{'demand':>7}{'supply':>7}{'multiplier':>12}",
    ]
    for zone in ZONES:
        price = surge.get(zone) or MULTIPLIER_MIN
        change = price - previous.get(zone, price)
        trend = f" {change:+.1f}" if abs(change) >= 0.05 else ""
        previous[zone] = price
        lines.append(f"  {zone:<12}{wanted[zone]:>7}{offered[zone]:>7}{price:>11.1f}x{trend}")
    return lines


@app.page("/surge/{zone}")
async def zone_price(request: object, zone: str) -> dict[str, object]:
    """The zone's multiplier now (a worker that holds the zone's partition answers)."""
    return {"zone": zone, "multiplier": surge.get(zone) or MULTIPLIER_MIN}


@app.timer(REPORT_S)
def report() -> None:
    print("\n".join(report_lines(time.time())), flush=True)


if __name__ == "__main__":
    main(app)
