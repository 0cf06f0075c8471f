"""streams beside its Python peers, on the same input from one `streams broker`.

    python -m benchmarks.peers [--events N] [--slow-events N]
                               [--only streams-log,streams-kafka,floor,faust,quix,bytewax,pathway]
                               [--workloads stateless,count,window,join]
                               [--rate E] [--latency-s S] [--cache DIR] [--json FILE|-]

Each peer gets its own virtual environment under --cache (default
~/.cache/streams-bench/peers/<name>, or $STREAMS_BENCH_PEERS), pinned releases
pip-installed there once and reused (benchmarks.peers.envs), so their pins never
meet ours. A `streams broker` process runs on a free loopback port with a
temporary data directory and is stopped at the end. The input (spec.py: JSON
events of ~85 bytes, 10,000 keys, 8 partitions) is produced once with
confluent-kafka; the log:// runs read the same records written into a log
directory (copied for each run).

Every workload of every system is its own process, run with that system's
Python (the app scripts beside this file: streams_app.py, faust_app.py,
quix_app.py, bytewax_app.py, pathway_app.py, floor_app.py):
  1. stateless: parse JSON, keep half, forward to an output topic;
  2. count: events per key in a changelogged table (RocksDB where there is one);
  3. window: events per key per 10-second tumbling window of the payload's time;
  4. join: each event with its user's row of a table (streams' Stream.join).
Workloads a peer cannot run are shown as not run, with the reason (systems.py).

Figures: events/s from the first to the last event, as the app's own probe
saw them (probe.py; pathway's are taken per minibatch, see pathway_app.py), and
the app process's CPU seconds (all threads) per million events over the same
span. A figure counts only when the result is right (checks.py): the output
topic's record count, the counts per key, the window counts, each equal to the
truth, else FAILED. Latency (latency.py): the stateless workload following its
input at --rate events/s over 8 partitions, p99 of output receive time - send
time. The Python floor (floor_app.py) is one process doing confluent-kafka
consume + orjson parse + a dict count on the count workload.

faust runs ~3,000 events/s, so it reads the first --slow-events of the same
stream (its own topic). Each run is bounded (runner.RUN_TIMEOUT_S); a default
full run takes a few minutes. The machine's other work shows in the rates:
the load average before and after is printed with the table.
"""
