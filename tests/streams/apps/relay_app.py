"""An app with an input and an output topic, for the tests of a shared log:// log
(run as a real process): every word sent to `words` comes out upper-cased in
`shouts`, with its key. Keys are JSON (the default codec), so a key sent as raw
text does not decode (and goes to `relay-dead-letters`)."""

import os

import streams

app = streams.App(
    "relay",
    data_dir=os.environ.get("RELAY_APP_DATA", "./streams-data"),
    commit_interval_s=0.2,
)
words = app.topic("words", value_type=str, partitions=2)
shouts = app.topic("shouts", value_type=str, partitions=2)


@app.agent(words)
async def shout(stream):
    async for event in stream.events():
        await shouts.send(key=event.key, value=event.value.upper())
