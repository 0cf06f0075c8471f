"""The benchmarks read the broker's requests by API from its /metrics text."""

from __future__ import annotations

from benchmarks.broker_process import requests_by_api

METRICS = """\
# HELP streams_broker_requests_total Requests answered
# TYPE streams_broker_requests_total counter
streams_broker_requests_total{api="produce"} 4012.0
streams_broker_requests_total{api="fetch"} 1.2e+03
streams_broker_requests_total{api="api_versions"} 2.0
# HELP streams_broker_request_seconds Time to answer a request
# TYPE streams_broker_request_seconds histogram
streams_broker_request_seconds_bucket{api="produce",le="0.001"} 4000.0
streams_broker_bytes_in_total{topic="events"} 123456.0
"""


def test_requests_are_read_by_api_and_nothing_else_is():
    assert requests_by_api(METRICS) == {"produce": 4012.0, "fetch": 1200.0, "api_versions": 2.0}


def test_no_requests_yet_reads_as_none():
    assert requests_by_api("# HELP streams_broker_connections open\n") == {}
