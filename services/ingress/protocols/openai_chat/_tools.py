"""OpenAI's ``tools``, ``tool_choice`` and ``parallel_tool_calls`` -> the contract's tool specs.

The deprecated ``functions`` / ``function_call`` pair is accepted as well and means the same as
``tools`` / ``tool_choice`` with function tools: old clients still send it, and the contract has
only one notion of a tool.
"""

from __future__ import annotations

import re

from contracts.chat import ToolChoice, ToolChoiceMode, ToolSpec
from services.ingress.protocols._json import Fields, child, invalid, unsupported, wrong_type

# OpenAI's documented rule for function names; vendors we route to accept a superset of it.
_TOOL_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_MODES = {"none": ToolChoiceMode.NONE, "auto": ToolChoiceMode.AUTO}


def parse_tools(body: Fields) -> list[ToolSpec]:
    tools = body.array("tools")
    functions = body.array("functions")
    if tools is not None and functions is not None:
        raise invalid("functions", "'functions' is deprecated; send 'tools' alone, not both.")
    specs: list[ToolSpec] = []
    seen: set[str] = set()
    for index, raw in enumerate(tools or []):
        tool = Fields.of(raw, child("tools", index))
        kind = tool.require_string("type")
        if kind != "function":
            raise unsupported(tool.at("type"), f"tool type {kind!r}")
        specs.append(_function_spec(tool.require_nested("function"), seen))
    for index, raw in enumerate(functions or []):
        specs.append(_function_spec(Fields.of(raw, child("functions", index)), seen))
    return specs


def _function_spec(function: Fields, seen: set[str]) -> ToolSpec:
    name = function.require_string("name")
    if not _TOOL_NAME.fullmatch(name):
        raise invalid(
            function.at("name"),
            f"string does not match pattern. Expected a string that matches the pattern "
            f"'^[a-zA-Z0-9_-]{{1,64}}$', but got {name!r} instead.",
        )
    if name in seen:
        raise invalid(function.at("name"), f"duplicate tool name {name!r}; names must be unique.")
    seen.add(name)
    parameters = function.nested("parameters")
    if parameters is None:
        return ToolSpec(
            name=name,
            description=function.string("description"),
            strict=function.boolean("strict"),
        )
    return ToolSpec(
        name=name,
        description=function.string("description"),
        parameters=parameters.obj,
        strict=function.boolean("strict"),
    )


def parse_tool_choice(body: Fields, tools: list[ToolSpec]) -> ToolChoice | None:
    parallel = body.boolean("parallel_tool_calls")
    if body.has("tool_choice"):
        choice = _tool_choice(body.get("tool_choice"), tools)
    elif body.has("function_call"):
        choice = _legacy_function_call(body.get("function_call"), tools)
    elif parallel is not None:
        choice = ToolChoice()
    else:
        return None
    return choice.model_copy(update={"parallel": parallel})


def _tool_choice(raw: object, tools: list[ToolSpec]) -> ToolChoice:
    path = "tool_choice"
    if isinstance(raw, str):
        if raw == "required":
            _require_tools(path, tools)
            return ToolChoice(mode=ToolChoiceMode.REQUIRED)
        if raw not in _MODES:
            raise invalid(
                path, f"expected one of 'none', 'auto', 'required', but got {raw!r} instead."
            )
        return ToolChoice(mode=_MODES[raw])
    if not isinstance(raw, dict):
        raise wrong_type(path, "one of a string or object", raw)
    choice = Fields.of(raw, path)
    kind = choice.require_string("type")
    if kind != "function":
        raise unsupported(choice.at("type"), f"tool_choice type {kind!r}")
    name = choice.require_nested("function").require_string("name")
    return _named(child(path, "function.name"), name, tools)


def _legacy_function_call(raw: object, tools: list[ToolSpec]) -> ToolChoice:
    path = "function_call"
    if isinstance(raw, str):
        if raw not in _MODES:
            raise invalid(path, f"expected one of 'none', 'auto', but got {raw!r} instead.")
        return ToolChoice(mode=_MODES[raw])
    choice = Fields.of(raw, path)
    return _named(choice.at("name"), choice.require_string("name"), tools)


def _named(path: str, name: str, tools: list[ToolSpec]) -> ToolChoice:
    _require_tools(path, tools)
    if all(tool.name != name for tool in tools):
        raise invalid(path, f"no tool named {name!r} is among the request's tools.")
    return ToolChoice(mode=ToolChoiceMode.TOOL, name=name)


def _require_tools(path: str, tools: list[ToolSpec]) -> None:
    if not tools:
        raise invalid(path, "a tool may only be required when 'tools' are specified.")
