"""Log aggregation: application logs shipped into a topic, counted, errors split off.

Run it from the repository root:

    streams -A examples.log_aggregation worker          # until Ctrl-C
    python -m examples.log_aggregation --seconds 60     # for one minute

Three fake services (auth, payments, search) log through the standard
`logging` module at random levels; payments has bad spells where errors
pile up. A `streams.TopicHandler` on each service's logger ships its records
into the `logs` topic without blocking the code that logs. One agent counts
records per service and level; another forwards ERROR records to their own
topic, `errors`, where a third agent keeps the latest error per service.
Every couple of seconds the worker prints the counts, the errors forwarded,
and how many records the handlers shipped (and dropped, if their buffers
ever filled up).

Once the worker has stopped, read the errors with

    streams -A examples.log_aggregation tail errors --from-beginning --no-follow

The log and the tables live under ./streams-data ($STREAMS_DATA moves them).
Time scales, in seconds, from the environment: LOGS_TICK_S (0.1, the
services), LOGS_REPORT_S (2), LOGS_INCIDENT_S (15, how often payments has
a bad spell).
"""

from __future__ import annotations

import logging
import random
import time

import streams
from examples._common import data_dir, env_seconds, main

TICK_S = env_seconds("LOGS_TICK_S", 0.1)
REPORT_S = env_seconds("LOGS_REPORT_S", 2.0)
INCIDENT_S = env_seconds("LOGS_INCIDENT_S", 15.0)

SERVICES = ("auth", "payments", "search")
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
# Relative weights of DEBUG, INFO, WARNING, ERROR in calm times and in a bad spell.
CALM_WEIGHTS = (30, 60, 8, 2)
INCIDENT_WEIGHTS = (10, 30, 20, 40)
RECORDS_PER_S = 10.0  # per service
MESSAGES = {
    "DEBUG": ("cache hit key=%s", "query planned in %sms"),
    "INFO": ("request served user=%s", "session renewed user=%s"),
    "WARNING": ("slow upstream took %sms", "retrying call attempt=%s"),
    "ERROR": ("upstream timed out after %sms", "card declined order=%s"),
}

app = streams.App("logagg", data_dir=data_dir(), topic_partitions=4)


class LogEntry(streams.Record):
    service: str
    level: str
    logger: str
    message: str
    at: float


logs = app.topic("logs", value_type=LogEntry)
errors = app.topic("errors", value_type=LogEntry)

records_per_level = app.Table("records-per-level", default=int, help="'service/LEVEL' -> count")
last_error = app.Table("last-error", help="service -> its latest ERROR message")


@app.agent(logs)
async def count_records(stream: streams.Stream) -> None:
    """Records per service and level (the topic is keyed by service)."""
    async for entry in stream:
        records_per_level[f"{entry.service}/{entry.level}"] += 1


errors_seen: dict[str, int] = {}  # records read back from `errors` by this worker


@app.agent(logs)
async def forward_errors(stream: streams.Stream) -> None:
    """ERROR records, forwarded to the `errors` topic, still keyed by service.

    (A `sink=` would send what the agent yields without a key.)"""
    async for entry in stream.filter(lambda entry: entry.level == "ERROR"):
        errors.send_soon(key=entry.service, value=entry)


@app.agent(errors)
async def track_errors(stream: streams.Stream) -> None:
    """The latest error of each service, and how many were forwarded."""
    async for entry in stream:
        last_error[entry.service] = entry.message
        errors_seen[entry.service] = errors_seen.get(entry.service, 0) + 1


# --- the fake services -----------------------------------------------------------------

handlers: dict[str, streams.TopicHandler] = {}
service_loggers: dict[str, logging.Logger] = {}
for _service in SERVICES:
    _logger = logging.getLogger(f"shop.{_service}")
    _logger.setLevel(logging.DEBUG)
    _logger.propagate = False  # to the topic only, not to the worker's stderr
    handlers[_service] = streams.TopicHandler(logs, service=_service).attach(app)
    _logger.addHandler(handlers[_service])
    service_loggers[_service] = _logger

rng = random.Random()


def in_incident(service: str, now: float) -> bool:
    return service == "payments" and now % INCIDENT_S < INCIDENT_S / 3


@app.timer(TICK_S)
def serve() -> None:
    """One tick of work in every service: a few log records each."""
    now = time.time()
    expected = RECORDS_PER_S * TICK_S
    for service, logger in service_loggers.items():
        weights = INCIDENT_WEIGHTS if in_incident(service, now) else CALM_WEIGHTS
        count = int(expected) + (rng.random() < expected - int(expected))
        for level in rng.choices(LEVELS, weights, k=count):
            template = rng.choice(MESSAGES[level])
            logger.log(logging.getLevelName(level), template, rng.randrange(1000))


# --- the report ---------------------------------------------------------------------


def report_lines(now: float) -> list[str]:
    counted = dict(records_per_level.items())
    shipped = sum(h.shipped for h in handlers.values())
    dropped = sum(h.dropped for h in handlers.values())
    lines = [
        f"logs at {time.strftime('%H:%M:%S', time.localtime(now))}"
        f" (shipped {shipped}, dropped {dropped})",
        f"  {'service':<10}" + "".join(f"{level:>9}" for level in LEVELS) + f"{'errors':>9}",
    ]
    for service in SERVICES:
        row = "".join(f"{counted.get(f'{service}/{level}', 0):>9}" for level in LEVELS)
        lines.append(f"  {service:<10}{row}{errors_seen.get(service, 0):>9}")
    for service in SERVICES:
        message = last_error.get(service)
        if message is not None:
            lines.append(f"  last error in {service}: {message}")
    return lines


@app.timer(REPORT_S)
def report() -> None:
    print("\n".join(report_lines(time.time())), flush=True)


if __name__ == "__main__":
    main(app)
