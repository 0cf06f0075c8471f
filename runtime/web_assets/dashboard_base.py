"""What the worker's and the broker's dashboards serve alike: the page, the
static files (the dashboard's own script and the shared chart and stylesheet),
and a task taking one sample a second for the charts' history. A dashboard
adds its data: `take_sample()` and the `/api/dashboard` handler."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from aiohttp import web

from runtime.web_assets import ASSETS, SHARED

SAMPLE_INTERVAL_S = 1.0


class DashboardBase:
    def __init__(self, page: Path, script: Path) -> None:
        self._page = page
        self._files = {script.name: (script.parent, "application/javascript")} | {
            name: (ASSETS, kind) for name, kind in SHARED.items()
        }
        self._task: asyncio.Task[None] | None = None

    def add_to(self, app: web.Application) -> None:
        app.router.add_get("/", self.page)
        app.router.add_get("/static/{name}", self.static)
        app.router.add_get("/api/dashboard", self.api)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._sample(), name="dashboard")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def page(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(self._page)

    async def static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        found = self._files.get(name)
        if found is None:
            return self.not_found(f"no static file {name!r}")
        directory, kind = found
        return web.FileResponse(directory / name, headers={"Content-Type": kind})

    def not_found(self, message: str) -> web.StreamResponse:
        raise web.HTTPNotFound(text=message)

    async def api(self, request: web.Request) -> web.StreamResponse:
        raise NotImplementedError

    def take_sample(self) -> None:
        raise NotImplementedError

    async def _sample(self) -> None:
        while True:
            self.take_sample()
            await asyncio.sleep(SAMPLE_INTERVAL_S)
