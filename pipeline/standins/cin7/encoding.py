"""The Cin7-style JSON of the Cin7 stand-in: ``Decimal`` amounts written as numbers with their own digits.

Cin7 writes ``12.3456`` and ``358`` as they are held; ``json.dumps`` would need floats and lose that.
``loads`` reads request bodies back with ``Decimal`` for every JSON number with a fraction.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any


def _number(value: Decimal) -> str:
    if not value.is_finite():
        raise ValueError(f"cannot serialise {value} as JSON")
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _encode(value: Any, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(json.dumps(value, ensure_ascii=False))
    elif isinstance(value, Decimal):
        out.append(_number(value))
    elif isinstance(value, int | float):
        out.append(json.dumps(value))
    elif isinstance(value, dict):
        out.append("{")
        first = True
        for key, item in value.items():
            if not first:
                out.append(",")
            first = False
            out.append(json.dumps(str(key), ensure_ascii=False))
            out.append(":")
            _encode(item, out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _encode(item, out)
        out.append("]")
    else:
        raise TypeError(f"cannot serialise {type(value).__name__} as JSON")


def dumps(value: Any) -> str:
    """JSON text with ``Decimal`` written as a JSON number using exactly its digits (``12.3456``, ``358``)."""
    out: list[str] = []
    _encode(value, out)
    return "".join(out)


def loads(body: bytes) -> Any:
    """A JSON request body with ``Decimal`` numbers; ``None`` for an empty body."""
    return json.loads(body.decode("utf-8"), parse_float=Decimal) if body.strip() else None
