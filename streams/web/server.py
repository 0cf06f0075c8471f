"""The worker's web server (aiohttp): metrics, health, table lookups, pages, dashboard.

    GET /metrics                  Prometheus text (streams/web/metrics.py)
    GET /health                   200 while the worker runs, 503 once it failed
    GET /ready                    200 once partitions are assigned and tables recovered
    GET /tables/{table}/{key}     a table lookup, forwarded to the key's owner (tables.py)
    GET /                         the live dashboard (dashboard.py)
    GET /api/dashboard            what the dashboard shows, as JSON
    @app.page("/path/{arg}")      the app's own views

Lifecycle: `await server.start()` binds (port 0 picks a free one: `url` says
which), `await server.stop()` closes every connection; the worker does both.
A port that cannot be bound is a ConfigurationError naming it.
"""

from __future__ import annotations

import inspect
import logging
import socket
from typing import TYPE_CHECKING, Any

from aiohttp import web

from stores.errors import StoreError
from streams.errors import ConfigurationError
from streams.web.address import WebAddress, insecure, is_loopback
from streams.web.dashboard import Dashboard
from streams.web.metrics import WorkerMetrics
from streams.web.responses import error_response, json_response
from streams.web.tables import TableRoutes

if TYPE_CHECKING:
    from streams.worker import Worker

logger = logging.getLogger(__name__)

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"
SHUTDOWN_S = 2.0  # requests in flight when the worker stops get this long


class WebServer:
    def __init__(self, worker: Worker, address: WebAddress) -> None:
        self.worker = worker
        self.address = address
        self.host, self.port = address.host, address.port
        self.metrics = WorkerMetrics(worker)
        self.dashboard = Dashboard(worker, self.metrics)
        self._runner: web.AppRunner | None = None
        self.url = _url(self.host, self.port)

    def application(self) -> web.Application:
        app = web.Application(middlewares=[_errors])
        app.router.add_get("/metrics", self.get_metrics)
        app.router.add_get("/health", self.get_health)
        app.router.add_get("/ready", self.get_ready)
        TableRoutes(self.worker).add_to(app)
        self.dashboard.add_to(app)
        for path, view in self.worker.app.pages:
            app.router.add_get(path, _page_handler(view))
        return app

    async def start(self) -> None:
        refusal = insecure(self.address)
        if refusal:
            raise ConfigurationError(refusal)
        self._runner = web.AppRunner(
            self.application(), access_log=None, shutdown_timeout=SHUTDOWN_S
        )
        await self._runner.setup()
        try:
            site = await self._bind(self.port)
        except OSError as exc:
            if not self.address.fallback:
                await self.stop()
                raise ConfigurationError(
                    f"cannot serve the web interface on {self.host}:{self.port}: "
                    f"{exc.strerror} (choose another with --web HOST:PORT, or --web none)"
                ) from exc
            logger.warning(
                "web address %s:%d is in use (%s): taking a free port",
                self.host,
                self.port,
                exc.strerror,
            )
            site = await self._bind(0)
        server = site._server  # the bound port, when asked for port 0
        if server is not None and server.sockets:  # type: ignore[attr-defined]
            self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self.url = _url(self.host, self.port)
        self.dashboard.start()
        logger.info("web server listening on %s", self.url)
        if not is_loopback(self.host):
            logger.warning(
                "the web server on %s has no authentication (--web-allow-insecure)", self.url
            )

    async def _bind(self, port: int) -> web.TCPSite:
        assert self._runner is not None
        site = web.TCPSite(self._runner, self.host, port)
        await site.start()
        return site

    async def stop(self) -> None:
        await self.dashboard.stop()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    # --- handlers --------------------------------------------------------------------

    async def get_metrics(self, request: web.Request) -> web.Response:
        await self.metrics.refresh()
        return web.Response(body=self.metrics.render(), headers={"Content-Type": PROMETHEUS_TEXT})

    async def get_health(self, request: web.Request) -> web.Response:
        failure = self.worker.failure
        if failure is not None:
            return json_response({"status": "failed", "error": str(failure)}, status=503)
        return json_response({"status": "ok"})

    async def get_ready(self, request: web.Request) -> web.Response:
        waiting = readiness(self.worker)
        if waiting:
            return json_response({"status": "not ready", "waiting_for": waiting}, status=503)
        return json_response({"status": "ready"})


def _url(host: str, port: int) -> str:
    """The URL other workers reach this one at (a wildcard bind: by host name)."""
    if host in ("", "0.0.0.0", "::"):
        host = socket.gethostname()
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@web.middleware
async def _errors(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except StoreError as exc:  # a store closed under the request: a rebalance, a stop
        return error_response(503, "store_unavailable", f"{exc}: retry")
    except KeyError as exc:  # a page read a table partition this worker does not hold
        return error_response(404, "not_here", str(exc).strip("'\""))
    except Exception:
        logger.exception("web request failed path=%s", request.path)
        return error_response(500, "internal_error", "the worker failed to answer; see its log")


def readiness(worker: Worker) -> list[str]:
    """What the worker still waits for before it is ready (empty: ready)."""
    waiting = []
    if worker.failure is not None:
        waiting.append(f"a restart: the worker failed ({worker.failure})")
    if not worker.running:
        waiting.append("the worker to start")
    # each assignment is counted once placed (tables recovered), each revoke once done
    if worker.group_mode and worker.assignments <= worker.revocations:
        waiting.append("a partition assignment from the group (joining or rebalancing)")
    recovering = sorted(str(tp) for tp in worker.placement.recovering)
    if recovering:
        waiting.append("table recovery of " + ", ".join(recovering))
    return waiting


def _page_handler(view: Any) -> Any:
    async def handle(request: web.Request) -> web.StreamResponse:
        result = view(request, **request.match_info)
        if inspect.isawaitable(result):
            result = await result
        if isinstance(result, web.StreamResponse):
            return result
        if isinstance(result, str):
            return web.Response(text=result, content_type="text/html")
        return json_response(result)

    return handle
