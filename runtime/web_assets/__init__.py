"""What the worker's and the broker's dashboards share: a tiny SVG line chart
(chart.js, no dependencies) and the stylesheet. Served from the package at run
time: nothing is fetched from elsewhere."""

from pathlib import Path

ASSETS = Path(__file__).parent
SHARED = {"chart.js": "application/javascript", "dashboard.css": "text/css"}

__all__ = ["ASSETS", "SHARED"]
