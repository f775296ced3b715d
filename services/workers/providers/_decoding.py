"""Reading vendor JSON into private wire models, turning every failure into
``VendorProtocolError`` so the worker sees one exception for "the vendor sent garbage"."""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from services.workers.providers.base import VendorProtocolError

_Wire = TypeVar("_Wire", bound=BaseModel)


def load_json(raw: bytes | str, *, what: str) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise VendorProtocolError(f"{what} is not valid JSON: {exc}") from exc


def parse_wire(model: type[_Wire], raw: bytes | str, *, what: str) -> _Wire:
    return validate_wire(model, load_json(raw, what=what), what=what)


def validate_wire(model: type[_Wire], value: Any, *, what: str) -> _Wire:
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        # Only field locations and error kinds: the input may hold completion text.
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['type']}"
            for err in exc.errors()[:5]
        )
        raise VendorProtocolError(f"{what} has an unexpected shape ({problems})") from exc
