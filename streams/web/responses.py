"""JSON answers of the web server: values as the app's codecs give them, errors as
{"error": code, "message": text, ...} with a fitting status."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        status=status,
        body=orjson.dumps(data, default=_jsonable, option=orjson.OPT_NON_STR_KEYS),
        content_type="application/json",
    )


def error_response(status: int, error: str, message: str, **fields: Any) -> web.Response:
    return json_response({"error": error, "message": message, **fields}, status=status)


def _jsonable(value: Any) -> Any:
    to_dict = getattr(value, "to_dict", None)  # a streams.Record
    if to_dict is not None:
        return to_dict()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
