"""The app of the table lookup tests: the latest value per key, in a table
co-partitioned with its topic (string keys hash like every Kafka client's)."""

import streams

app = streams.App("lookup", topic_partitions=4, commit_interval_s=0.2, session_timeout_s=6.0)
events = app.topic("lookup-events", key_type=str, value_type=str, partitions=4)
latest = app.Table("latest", key_type=str, partitions=4)


@app.agent(events)
async def remember(stream: streams.Stream) -> None:
    async for key, value in stream.items():
        latest[key] = value
