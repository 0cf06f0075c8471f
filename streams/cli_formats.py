"""How `streams send` turns command-line text into key and value bytes, and how
`streams tail` turns stored bytes back into text.

Formats, for keys and values alike (`--key-format`, `--value-format`):

    str    the text as UTF-8
    raw    the argument's bytes as they are (even if they are not UTF-8)
    json   the text as a JSON value: parsed if it is JSON (`42`, `{"a": 1}`,
           `"quoted"`), else taken as a string (`r2` is stored as `"r2"`)

With `-A app`, a topic the app declares is written and read with the app's
own codecs and types (a Record from a JSON object, a str key through a JSON
codec as a JSON string, ...), so that what `send` writes, the app decodes;
an explicit `--key-format`/`--value-format` wins over the app's.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from typing import Any

import orjson

from streams.model import Record as Model

FORMATS = ("json", "raw", "str")

Encode = Callable[[str], bytes]
Decode = Callable[[bytes], Any]


class FormatError(ValueError):
    """Text that its format (or the app's type) refuses."""


def text_encoder(fmt: str) -> Encode:
    if fmt == "str":
        return _utf8
    if fmt == "raw":
        return os.fsencode  # argv's undecodable bytes come back as they were given
    if fmt == "json":
        return lambda text: orjson.dumps(_json_or_string(text))
    raise ValueError(f"unknown format {fmt!r}: expected one of {', '.join(FORMATS)}")


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise FormatError(f"{text!r} is not UTF-8 text (use the raw format)") from exc


def _json_or_string(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


def app_encoder(typ: Any, codec: Any) -> Encode:
    """Text -> the object the app's type wants -> the app codec's bytes."""

    def encode(text: str) -> bytes:
        obj = text_to_object(text, typ)
        try:
            return bytes(codec.dumps(obj))
        except (TypeError, ValueError) as exc:
            raise FormatError(f"{text!r}: the app's codec refuses it: {exc}") from exc

    return encode


def text_to_object(text: str, typ: Any) -> Any:
    if typ is str:
        return text
    if typ is bytes:
        return os.fsencode(text)
    if isinstance(typ, type) and issubclass(typ, Model):
        try:
            return typ.from_dict(orjson.loads(text))
        except orjson.JSONDecodeError as exc:
            raise FormatError(f"{text!r} is not a JSON object for {typ.__name__}") from exc
        except (TypeError, ValueError) as exc:
            raise FormatError(f"{text!r} is not a {typ.__name__}: {exc}") from exc
    if typ is None:
        return _json_or_string(text)
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise FormatError(f"{text!r} is not JSON (the app's type is {typ.__name__})") from exc
    if isinstance(typ, type) and not isinstance(obj, typ):
        raise FormatError(f"{text!r} is not a {typ.__name__}")
    return obj


# --- reading -------------------------------------------------------------------------


def as_text(data: bytes | None, load: Decode | None) -> str:
    """For `tail --format text`: the app's decoding if it has one, else UTF-8."""
    if data is None:
        return "null"
    if load is not None:
        try:
            return _object_text(load(data))
        except Exception:
            pass  # not what the app expects: show what is there
    return data.decode("utf-8", errors="replace")


def _object_text(obj: Any) -> str:
    if isinstance(obj, str):
        return obj
    if isinstance(obj, bytes):
        return obj.decode("utf-8", errors="replace")
    return orjson.dumps(_jsonable(obj)).decode()


def as_json(data: bytes | None, load: Decode | None) -> Any:
    """For `tail --format json`: a JSON value. Bytes that are not UTF-8 text are
    `{"base64": "..."}`, so that they cannot be taken for a string."""
    if data is None:
        return None
    if load is not None:
        try:
            return _jsonable(load(data))
        except Exception:
            pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode()}


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Model):
        return obj.to_dict()
    if isinstance(obj, bytes):
        try:
            return obj.decode("utf-8")
        except UnicodeDecodeError:
            return {"base64": base64.b64encode(obj).decode()}
    return obj
