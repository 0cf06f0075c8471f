"""The worker's web server: Prometheus metrics, health, table lookups, pages, dashboard."""

from streams.web.address import DEFAULT_WEB, WebAddress, parse_web_address
from streams.web.metrics import WorkerMetrics
from streams.web.server import WebServer

__all__ = ["DEFAULT_WEB", "WebAddress", "WebServer", "WorkerMetrics", "parse_web_address"]
