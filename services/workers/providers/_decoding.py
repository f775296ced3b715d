"""Reading vendor JSON into private wire models, turning every failure into
``VendorProtocolError`` so the worker sees one exception for "the vendor sent garbage".

The parser's own text (orjson's position report, pydantic's error kinds) is logged here and
kept out of the error the caller sees.
"""

from __future__ import annotations

import logging
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from services.workers.providers.base import VendorProtocolError

_Wire = TypeVar("_Wire", bound=BaseModel)

log = logging.getLogger(__name__)


def load_json(raw: bytes | str, *, what: str, logged: bool = True) -> Any:
    """``logged=False`` where an unreadable body is expected (an error page)."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if logged:
            log.warning("vendor %s is not valid JSON: %s", what, exc)
        raise VendorProtocolError(f"the {what} is not valid JSON") from exc


def parse_wire(model: type[_Wire], raw: bytes | str, *, what: str, logged: bool = True) -> _Wire:
    return validate_wire(model, load_json(raw, what=what, logged=logged), what=what, logged=logged)


def validate_wire(model: type[_Wire], value: Any, *, what: str, logged: bool = True) -> _Wire:
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        if logged:
            # Only field locations and error kinds: the input may hold completion text.
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['type']}"
                for err in exc.errors()[:5]
            )
            log.warning("vendor %s has an unexpected shape: %s", what, problems)
        raise VendorProtocolError(f"the {what} has an unexpected shape") from exc
