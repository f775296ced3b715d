"""A decoded ``POST /v1/chat/completions`` body -> ``ParsedChatRequest``.

Validation follows OpenAI's: wrong types and out-of-range values of known parameters are refused
with a 400 naming the parameter, while unknown top-level fields are ignored, because newer SDKs
send parameters this router does not know yet. Parameters that would change the answer and that
the router cannot honour (``n`` > 1, ``logprobs``, audio) are refused rather than dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from contracts.chat import ChatRequest, ResponseFormat, Sampling
from services.ingress.protocols._json import (
    Fields,
    as_string,
    child,
    invalid,
    unsupported,
    wrong_type,
)
from services.ingress.protocols.errors import ProtocolError
from services.ingress.protocols.openai_chat._messages import parse_messages
from services.ingress.protocols.openai_chat._tools import parse_tool_choice, parse_tools

_MAX_STOP_SEQUENCES = 4
# A fallback list longer than this is a mistake, not a plan: each entry may cost a vendor call.
MAX_MODELS = 10
# OpenAI's documented limits for `metadata`.
_MAX_TAGS = 16
_MAX_TAG_KEY_CHARS = 64
_MAX_TAG_VALUE_CHARS = 512
_SCHEMA_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")

_Effort = Literal["minimal", "low", "medium", "high"]
_REASONING_EFFORTS: dict[str, _Effort] = {
    "minimal": "minimal",
    "low": "low",
    "medium": "medium",
    "high": "high",
}
# Valid in OpenAI's protocol, but the contract cannot carry them yet.
_UNSUPPORTED_EFFORTS = ("none", "xhigh", "max")


@dataclass(frozen=True, kw_only=True)
class ParsedChatRequest:
    """What ingress needs from a Chat Completions request: the contract request plus the
    protocol-level switches that shape the reply."""

    model: str
    # The models to try, in order, when the caller gave a fallback list (``models``); the
    # primary is ``model``. Empty when the caller named one model.
    models: list[str]
    chat: ChatRequest
    stream: bool
    include_usage: bool
    tags: dict[str, str]


def parse_chat_request(payload: object) -> ParsedChatRequest:
    """Translate a JSON-decoded request body; raises ``ProtocolError`` on anything refused."""
    if not isinstance(payload, dict):
        raise ProtocolError("The request body must be a JSON object.")
    body = Fields.of(payload, "")
    models = _models(body)
    model = body.string("model") if models else body.require_string("model")
    if model is None:
        model = models[0]
    if not model:
        raise invalid("model", "expected a non-empty string.")
    if models:
        models = [model, *(m for m in models if m != model)]
    conversation = parse_messages(body.require("messages"))
    _refuse_unsupported(body)
    tools = parse_tools(body)
    stream = body.boolean("stream") or False
    body.boolean("store")  # accepted and ignored: nothing is stored, but the type must be right
    chat = ChatRequest(
        system=conversation.system,
        messages=conversation.messages,
        tools=tools,
        tool_choice=parse_tool_choice(body, tools),
        sampling=_sampling(body),
        response_format=_response_format(body),
        user=body.string("user"),
    )
    return ParsedChatRequest(
        model=model,
        models=models,
        chat=chat,
        stream=stream,
        include_usage=_include_usage(body, stream),
        tags=_tags(body),
    )


def _models(body: Fields) -> list[str]:
    """OpenRouter's ``models``: the models to try in order. With ``model`` as well, ``model``
    comes first and the list follows it."""
    raw = body.array("models")
    if raw is None:
        return []
    if not raw or len(raw) > MAX_MODELS:
        raise invalid(
            "models",
            f"expected an array of 1 to {MAX_MODELS} model names, but got {len(raw)}.",
        )
    models: list[str] = []
    for index, item in enumerate(raw):
        name = as_string(item, child("models", index))
        if not name:
            raise invalid(child("models", index), "expected a non-empty string.")
        if name not in models:
            models.append(name)
    return models


def _refuse_unsupported(body: Fields) -> None:
    n = body.integer("n")
    if n is not None and n != 1:
        raise invalid("n", f"only n=1 is supported, but got {n}.")
    if body.boolean("logprobs"):
        raise unsupported("logprobs", "'logprobs'")
    if body.has("top_logprobs"):
        raise unsupported("top_logprobs", "'top_logprobs'")
    for index, raw in enumerate(body.array("modalities") or []):
        modality = as_string(raw, child("modalities", index))
        if modality != "text":
            raise unsupported(child("modalities", index), f"output modality {modality!r}")
    if body.has("audio"):
        raise unsupported("audio", "audio output")
    logit_bias = body.nested("logit_bias")
    if logit_bias is not None and logit_bias.obj:
        raise unsupported("logit_bias", "'logit_bias'")


def _sampling(body: Fields) -> Sampling:
    return Sampling(
        temperature=body.number("temperature", minimum=0, maximum=2),
        top_p=body.number("top_p", minimum=0, maximum=1),
        max_output_tokens=_max_output_tokens(body),
        stop=_stop(body),
        seed=body.integer("seed"),
        presence_penalty=body.number("presence_penalty", minimum=-2, maximum=2),
        frequency_penalty=body.number("frequency_penalty", minimum=-2, maximum=2),
        reasoning_effort=_reasoning_effort(body),
    )


def _max_output_tokens(body: Fields) -> int | None:
    """``max_completion_tokens`` replaced the deprecated ``max_tokens``; both mean the same cap
    here, so either is accepted, and both only when they agree."""
    legacy = _positive_int(body, "max_tokens")
    current = _positive_int(body, "max_completion_tokens")
    if legacy is not None and current is not None and legacy != current:
        raise invalid(
            "max_tokens",
            "'max_tokens' and 'max_completion_tokens' disagree; send 'max_completion_tokens' only.",
        )
    return current if current is not None else legacy


def _positive_int(body: Fields, key: str) -> int | None:
    value = body.integer(key)
    if value is not None and value < 1:
        raise invalid(
            key, f"integer below minimum value. Expected a value >= 1, but got {value} instead."
        )
    return value


def _stop(body: Fields) -> list[str]:
    raw = body.get("stop")
    if raw is None:
        return []
    if isinstance(raw, str):
        return [raw]
    if not isinstance(raw, list):
        raise wrong_type("stop", "one of a string or array of strings", raw)
    if len(raw) > _MAX_STOP_SEQUENCES:
        raise invalid(
            "stop",
            f"array too long. Expected an array with maximum length {_MAX_STOP_SEQUENCES}, "
            f"but got an array with length {len(raw)} instead.",
        )
    return [as_string(item, child("stop", index)) for index, item in enumerate(raw)]


def _reasoning_effort(body: Fields) -> _Effort | None:
    effort = body.choice("reasoning_effort", (*_REASONING_EFFORTS, *_UNSUPPORTED_EFFORTS))
    if effort is None:
        return None
    if effort in _UNSUPPORTED_EFFORTS:
        raise unsupported("reasoning_effort", f"reasoning effort {effort!r}")
    return _REASONING_EFFORTS[effort]


def _response_format(body: Fields) -> ResponseFormat | None:
    response_format = body.nested("response_format")
    if response_format is None:
        return None
    kind = response_format.choice("type", ("text", "json_object", "json_schema"))
    if kind is None:
        raise invalid(response_format.at("type"), "missing the format type.")
    if kind == "text":
        # Plain text is the default; None keeps a single spelling of "no constraint".
        return None
    if kind == "json_object":
        return ResponseFormat(type="json_object")
    spec = response_format.require_nested("json_schema")
    name = spec.require_string("name")
    if not _SCHEMA_NAME.fullmatch(name):
        raise invalid(
            spec.at("name"),
            f"string does not match pattern. Expected a string that matches the pattern "
            f"'^[a-zA-Z0-9_-]{{1,64}}$', but got {name!r} instead.",
        )
    schema = spec.nested("schema")
    return ResponseFormat(
        type="json_schema",
        schema_name=name,
        json_schema=None if schema is None else schema.obj,
        strict=spec.boolean("strict"),
    )


def _include_usage(body: Fields, stream: bool) -> bool:
    options = body.nested("stream_options")
    if options is None:
        return False
    if not stream:
        raise invalid("stream_options", "only allowed when 'stream' is true.")
    return options.boolean("include_usage") or False


def _tags(body: Fields) -> dict[str, str]:
    metadata = body.nested("metadata")
    if metadata is None:
        return {}
    if len(metadata.obj) > _MAX_TAGS:
        raise invalid(
            "metadata",
            f"too many keys. Expected at most {_MAX_TAGS} keys, "
            f"but got {len(metadata.obj)} instead.",
        )
    tags: dict[str, str] = {}
    for key, value in metadata.obj.items():
        path = metadata.at(key)
        if len(key) > _MAX_TAG_KEY_CHARS:
            raise invalid(
                path,
                f"key too long. Expected a key of at most {_MAX_TAG_KEY_CHARS} characters, "
                f"but got {len(key)} instead.",
            )
        text = as_string(value, path)
        if len(text) > _MAX_TAG_VALUE_CHARS:
            raise invalid(
                path,
                f"value too long. Expected a value of at most {_MAX_TAG_VALUE_CHARS} "
                f"characters, but got {len(text)} instead.",
            )
        tags[key] = text
    return tags
