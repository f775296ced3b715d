"""Typed reads from a decoded JSON body, each failure naming the parameter's path.

A path is written the way OpenAI's error bodies write ``param`` (``messages[2].content``), so a
client sees exactly which part of its request was refused. Helpers treat JSON ``null`` as absent,
because every optional parameter of the protocols we speak is nullable.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from services.ingress.protocols.errors import ProtocolError

JsonObject = dict[str, object]


def child(path: str, key: str | int) -> str:
    """The path of ``key`` inside ``path``: ``child("messages", 2) == "messages[2]"``."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def json_type(value: object) -> str:
    """How a JSON value's type is named in an error message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def wrong_type(path: str, expected: str, value: object) -> ProtocolError:
    return ProtocolError(
        f"Invalid type for '{path}': expected {expected}, but got {json_type(value)} instead.",
        param=path,
    )


def invalid(path: str, reason: str) -> ProtocolError:
    return ProtocolError(f"Invalid '{path}': {reason}", param=path)


def missing(path: str) -> ProtocolError:
    return ProtocolError(f"Missing required parameter: '{path}'.", param=path)


def unsupported(path: str, what: str) -> ProtocolError:
    return ProtocolError(f"Invalid '{path}': {what} is not supported yet.", param=path)


def check_nesting(value: object, *, max_depth: int) -> None:
    """Refuse a decoded value whose objects and arrays nest more than ``max_depth`` levels deep
    (``value`` itself is level 1), naming the path of the first value found too deep.

    The walk is iterative, so any depth is checked without recursion; a path is only spelt out
    for the value refused, since a large body holds many values and nearly every body passes.
    """
    stack = [_Node(value, 1, None, "")]
    while stack:
        node = stack.pop()
        items: Iterable[tuple[str | int, object]]
        if isinstance(node.value, dict):
            items = node.value.items()
        elif isinstance(node.value, list):
            items = enumerate(node.value)
        else:
            continue
        for key, item in items:
            if not isinstance(item, dict | list):
                continue
            inner = _Node(item, node.depth + 1, node, key)
            if inner.depth > max_depth:
                raise invalid(
                    inner.path(),
                    f"nested too deeply. Expected at most {max_depth} levels of objects and "
                    f"arrays in the request body, but this value is at level {inner.depth}.",
                )
            stack.append(inner)


@dataclass(frozen=True, slots=True)
class _Node:
    """A container met by ``check_nesting``, linked to its parent to spell its path on demand."""

    value: object
    depth: int
    parent: _Node | None
    key: str | int

    def path(self) -> str:
        keys: list[str | int] = []
        node: _Node | None = self
        while node is not None and node.parent is not None:
            keys.append(node.key)
            node = node.parent
        path = ""
        for key in reversed(keys):
            path = child(path, key)
        return path


def as_object(value: object, path: str) -> JsonObject:
    if not isinstance(value, dict) or not all(isinstance(key, str) for key in value):
        raise wrong_type(path, "an object", value)
    return value


def as_list(value: object, path: str) -> list[object]:
    if not isinstance(value, list):
        raise wrong_type(path, "an array", value)
    return value


def as_string(value: object, path: str) -> str:
    if not isinstance(value, str):
        raise wrong_type(path, "a string", value)
    return value


def as_bool(value: object, path: str) -> bool:
    if not isinstance(value, bool):
        raise wrong_type(path, "a boolean", value)
    return value


def as_int(value: object, path: str) -> int:
    # bool is an int subclass in Python, but `true` is not an integer in JSON.
    if isinstance(value, bool) or not isinstance(value, int):
        raise wrong_type(path, "an integer", value)
    return value


def as_number(value: object, path: str, *, minimum: float, maximum: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise wrong_type(path, "a decimal", value)
    # The stdlib decoder accepts NaN and Infinity; neither is a usable sampling parameter.
    if not math.isfinite(value):
        raise invalid(path, f"expected a finite number, but got {value} instead.")
    if value < minimum:
        raise invalid(
            path,
            f"decimal below minimum value. Expected a value >= {minimum:g}, "
            f"but got {value:g} instead.",
        )
    if value > maximum:
        raise invalid(
            path,
            f"decimal above maximum value. Expected a value <= {maximum:g}, "
            f"but got {value:g} instead.",
        )
    return float(value)


class Fields:
    """The members of one JSON object, read by name with the object's path attached.

    Every getter returns ``None`` for a member that is absent or ``null``; the ``require_*``
    getters refuse both.
    """

    def __init__(self, obj: JsonObject, path: str = "") -> None:
        self.obj = obj
        self.path = path

    @classmethod
    def of(cls, value: object, path: str) -> Fields:
        return cls(as_object(value, path), path)

    def at(self, key: str) -> str:
        return child(self.path, key)

    def get(self, key: str) -> object:
        return self.obj.get(key)

    def has(self, key: str) -> bool:
        return self.obj.get(key) is not None

    def require(self, key: str) -> object:
        value = self.obj.get(key)
        if value is None:
            raise missing(self.at(key))
        return value

    def string(self, key: str) -> str | None:
        value = self.obj.get(key)
        return None if value is None else as_string(value, self.at(key))

    def require_string(self, key: str) -> str:
        return as_string(self.require(key), self.at(key))

    def boolean(self, key: str) -> bool | None:
        value = self.obj.get(key)
        return None if value is None else as_bool(value, self.at(key))

    def integer(self, key: str) -> int | None:
        value = self.obj.get(key)
        return None if value is None else as_int(value, self.at(key))

    def number(self, key: str, *, minimum: float, maximum: float) -> float | None:
        value = self.obj.get(key)
        if value is None:
            return None
        return as_number(value, self.at(key), minimum=minimum, maximum=maximum)

    def nested(self, key: str) -> Fields | None:
        value = self.obj.get(key)
        return None if value is None else Fields.of(value, self.at(key))

    def require_nested(self, key: str) -> Fields:
        return Fields.of(self.require(key), self.at(key))

    def array(self, key: str) -> list[object] | None:
        value = self.obj.get(key)
        return None if value is None else as_list(value, self.at(key))

    def choice(self, key: str, allowed: tuple[str, ...]) -> str | None:
        value = self.string(key)
        if value is not None and value not in allowed:
            raise invalid(
                self.at(key),
                f"expected one of {', '.join(repr(a) for a in allowed)}, "
                f"but got {value!r} instead.",
            )
        return value
