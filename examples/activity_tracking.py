"""Activity tracking: page views per page and per user, over the last minute.

Run it from the repository root:

    streams -A examples.activity_tracking worker          # until Ctrl-C
    python -m examples.activity_tracking --seconds 60     # for one minute

A timer plays a web site: users view pages, a few users much more than the
rest, and which pages are popular shifts over time. Page views go to the
`page-views` topic keyed by user. One agent counts views per user (the topic
is already keyed by user); another regroups the views by page and counts
them per page. Both counts live in hopping windows (a minute long, starting
every 10 seconds), so "the last minute" moves forward every 10 seconds.
Every couple of seconds the worker prints the top pages and the most active
users of the oldest window still open, the one closest to the last minute.

The per-user agent also counts views per user session (session windows: a
session ends after ACTIVITY_SESSION_GAP_S seconds without a view); each finished
session goes once to the `finished-sessions` topic, and the report says how
many sessions finished and how many views they had on average.

The log and the tables live under ./streams-data ($STREAMS_DATA moves them).
Time scales, in seconds, from the environment: ACTIVITY_WINDOW_S (60),
ACTIVITY_STEP_S (10), ACTIVITY_TICK_S (0.1, the generator), ACTIVITY_REPORT_S
(2), ACTIVITY_TREND_S (20, how long a page stays in fashion),
ACTIVITY_SESSION_GAP_S (5).
"""

from __future__ import annotations

import random
import time
from collections import Counter

import streams
from examples._common import data_dir, env_seconds, main

WINDOW_S = env_seconds("ACTIVITY_WINDOW_S", 60.0)
STEP_S = env_seconds("ACTIVITY_STEP_S", 10.0)
TICK_S = env_seconds("ACTIVITY_TICK_S", 0.1)
REPORT_S = env_seconds("ACTIVITY_REPORT_S", 2.0)
TREND_S = env_seconds("ACTIVITY_TREND_S", 20.0)
SESSION_GAP_S = env_seconds("ACTIVITY_SESSION_GAP_S", 5.0)
# Views a little out of order still join their session.
SESSION_GRACE_S = 1.0

PAGES = ("/", "/search", "/cart", "/checkout", "/help", "/blog/streams", "/blog/kafka", "/about")
USERS = tuple(f"user{i:02d}" for i in range(40))
VIEWS_PER_S = 30.0
TOP_N = 5

app = streams.App("activity", data_dir=data_dir(), topic_partitions=4)


class PageView(streams.Record):
    user: str
    page: str
    at: float


page_views = app.topic("page-views", value_type=PageView)
finished_sessions = app.topic("finished-sessions")

expires_s = max(WINDOW_S, 2 * STEP_S)
views_per_page = app.Table("views-per-page", default=int).hopping(
    WINDOW_S, STEP_S, expires=expires_s
)
views_per_user = app.Table("views-per-user", default=int).hopping(
    WINDOW_S, STEP_S, expires=expires_s
)
views_per_session = app.Table("views-per-session", default=int).session(
    SESSION_GAP_S,
    grace=SESSION_GRACE_S,
    expires=max(60.0, 10 * SESSION_GAP_S),
    emit="final",
    on_final=finished_sessions,
)


@app.agent(page_views)
async def count_pages(stream: streams.Stream) -> None:
    """Views per page, regrouped by page."""
    async for view in stream.group_by(PageView.page):
        views_per_page[view.page] += 1


@app.agent(page_views)
async def count_users(stream: streams.Stream) -> None:
    """Views per user and per user session: the topic is keyed by user already."""
    async for view in stream:
        views_per_user[view.user] += 1
        views_per_session[view.user] += 1


# Finished sessions seen by this worker: how many, and their views in all.
session_totals = {"sessions": 0, "views": 0}


@app.agent(finished_sessions)
async def tally_sessions(stream: streams.Stream) -> None:
    """Each finished session, once: {"key": user, "start", "end", "value": views}."""
    async for finished in stream:
        session_totals["sessions"] += 1
        session_totals["views"] += finished["value"]


# --- the simulated site ----------------------------------------------------------------

rng = random.Random()
# A few heavy users: user i views pages with weight 1/(i+1).
USER_WEIGHTS = tuple(1.0 / (i + 1) for i in range(len(USERS)))


def page_weights(now: float) -> list[float]:
    """Every page is viewed; the page in fashion five times more."""
    hot = int(now // TREND_S) % len(PAGES)
    return [5.0 if i == hot else 1.0 for i in range(len(PAGES))]


@app.timer(TICK_S)
def browse() -> None:
    now = time.time()
    expected = VIEWS_PER_S * TICK_S
    count = int(expected) + (rng.random() < expected - int(expected))
    users = rng.choices(USERS, USER_WEIGHTS, k=count)
    pages = rng.choices(PAGES, page_weights(now), k=count)
    for user, page in zip(users, pages, strict=True):
        page_views.send_soon(key=user, value=PageView(user=user, page=page, at=now))


# --- the report -----------------------------------------------------------------------


def last_window(table: streams.WindowedTable, now: float) -> Counter[str]:
    """Counts in the oldest window holding `now`: about the last WINDOW_S seconds."""
    start = table.window.earliest(now).start
    return Counter({key: n for (key, window_start), n in table.items() if window_start == start})


def report_lines(now: float) -> list[str]:
    pages, users = last_window(views_per_page, now), last_window(views_per_user, now)
    lines = [
        f"activity at {time.strftime('%H:%M:%S', time.localtime(now))}"
        f" (last {WINDOW_S:g}s: {sum(pages.values())} views, {len(users)} users)"
    ]
    lines.append("  top pages:  " + ", ".join(f"{p} {n}" for p, n in pages.most_common(TOP_N)))
    lines.append("  top users:  " + ", ".join(f"{u} {n}" for u, n in users.most_common(TOP_N)))
    sessions, views = session_totals["sessions"], session_totals["views"]
    average = f"{views / sessions:.1f}" if sessions else "-"
    lines.append(f"  sessions:   {sessions} finished, {average} views each")
    return lines


@app.timer(REPORT_S)
def report() -> None:
    print("\n".join(report_lines(time.time())), flush=True)


if __name__ == "__main__":
    main(app)
