"""The Admin API's JSON as the admin commands carry it: parsed with ``parse_float=Decimal``, so
that no amount passes through a float, and written back (``--json``) with its numbers as they
came."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

# An answer's JSON object.
Json = dict[str, Any]


def read_json(content: bytes) -> Any:
    """``content`` parsed, its fractions as Decimals; ``ValueError`` if it is not JSON."""
    return json.loads(content, parse_float=Decimal)


def json_text(value: Any, depth: int = 0) -> str:
    """``json.dumps(value, indent=2)``, with the Decimals answers are parsed into written as
    the numbers they are."""
    pad, inner = "  " * depth, "  " * (depth + 1)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict) and value:
        members = (f"{inner}{json.dumps(k)}: {json_text(v, depth + 1)}" for k, v in value.items())
        return "{\n" + ",\n".join(members) + f"\n{pad}}}"
    if isinstance(value, list) and value:
        elements = (f"{inner}{json_text(v, depth + 1)}" for v in value)
        return "[\n" + ",\n".join(elements) + f"\n{pad}]"
    return json.dumps(value)


def excerpt(value: object) -> str:
    """The start of an answer a command cannot use, for its error message."""
    text = value if isinstance(value, str) else json_text(value)
    return text.strip()[:300]
