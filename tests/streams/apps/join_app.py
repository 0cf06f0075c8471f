"""An app with a windowed stream-stream join, for a test that kills its worker
process mid-stream: each pair of `views` and `clicks` events with one key within
25 s goes to `joined` as [view, click]; the log says how far it got, and how many
views wait in the buffer."""

import asyncio
import logging
import os

import streams

logger = logging.getLogger("join_app")

app = streams.App(
    "joinapp",
    data_dir=os.environ.get("JOIN_APP_DATA", "./streams-data"),
    commit_interval_s=0.2,
    session_timeout_s=2.0,  # on kafka://: the killed worker's partitions come back soon
)
views = app.topic("views", key_type=str, partitions=2)
clicks = app.topic("clicks", key_type=str, partitions=2)
joined = app.topic("joined", key_type=str, partitions=2)
windows = app.JoinWindows("views-clicks", within=25)


@app.agent(views)
async def attribute(stream):
    count = 0
    async for result in stream.join(clicks, windows=windows).results():
        await joined.send(key=result.key, value=[result.left, result.right])
        count += 1
        if count % 100 == 0:
            logger.warning("join results=%d", count)
        if result.key.startswith("end-"):
            logger.warning("joined the last events key=%s", result.key)
        await asyncio.sleep(0.001)  # slow enough to be killed in the middle


@app.timer(0.1)
async def report_buffered():
    count = sum(
        len(bucket)
        for state in windows.buffered.values()
        for (side, _), bucket in state.entries.items()
        if side == b"L"
    )
    if count != getattr(report_buffered, "last", None):
        report_buffered.last = count
        logger.warning("buffered views=%d", count)
