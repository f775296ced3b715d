"""render_completion, ChunkRenderer, render_usage and render_error, checked against the official
SDK's own response models."""

from __future__ import annotations

from typing import Any

import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from contracts.chat import (
    ChatDelta,
    ChatResponse,
    FinishReason,
    TextPart,
    ToolCallDelta,
    ToolCallPart,
    Usage,
)
from contracts.errors import ErrorCode, ErrorInfo
from services.ingress.protocols.openai_chat import (
    SIMULATED_FINGERPRINT,
    ChunkRenderer,
    ProtocolError,
    render_completion,
    render_error,
    render_usage,
)

USAGE = Usage(
    input_tokens=120,
    output_tokens=30,
    cache_read_tokens=100,
    cache_write_tokens=7,
    reasoning_tokens=12,
)
CALL = ToolCallPart(id="call_a", name="get_weather", arguments='{"city":"Paris"}')


def completion(response: ChatResponse, *, simulated: bool = False) -> dict[str, Any]:
    return render_completion(
        response,
        completion_id="chatcmpl-1",
        model="gpt-4o",
        created=1_700_000_000,
        simulated=simulated,
    )


def test_text_completion_validates_and_carries_everything() -> None:
    body = completion(ChatResponse(content=[TextPart(text="Bonjour 👋")], usage=USAGE))
    parsed = ChatCompletion.model_validate(body)
    assert parsed.id == "chatcmpl-1"
    assert parsed.object == "chat.completion"
    assert parsed.created == 1_700_000_000
    assert parsed.model == "gpt-4o"
    choice = parsed.choices[0]
    assert choice.index == 0
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    assert choice.message.content == "Bonjour 👋"
    assert choice.message.tool_calls is None
    assert "tool_calls" not in body["choices"][0]["message"]
    assert parsed.usage is not None
    assert parsed.usage.total_tokens == 150
    assert "service_tier" not in body
    assert "system_fingerprint" not in body


def test_simulated_completion_is_labelled() -> None:
    body = completion(ChatResponse(content=[TextPart(text="x")]), simulated=True)
    assert ChatCompletion.model_validate(body).system_fingerprint == SIMULATED_FINGERPRINT


def test_tool_call_only_completion_has_null_content() -> None:
    body = completion(ChatResponse(content=[CALL], finish_reason=FinishReason.TOOL_CALLS))
    message = ChatCompletion.model_validate(body).choices[0].message
    assert body["choices"][0]["message"]["content"] is None
    assert body["choices"][0]["finish_reason"] == "tool_calls"
    assert message.tool_calls is not None
    call = message.tool_calls[0]
    assert call.type == "function"
    assert call.id == "call_a"
    assert call.function.name == "get_weather"
    assert call.function.arguments == '{"city":"Paris"}'


def test_text_and_several_tool_calls() -> None:
    second = ToolCallPart(id="call_b", name="get_time", arguments="{}")
    body = completion(
        ChatResponse(
            content=[TextPart(text="Checking."), CALL, second],
            finish_reason=FinishReason.TOOL_CALLS,
        )
    )
    message = ChatCompletion.model_validate(body).choices[0].message
    assert message.content == "Checking."
    assert [c.id for c in message.tool_calls or []] == ["call_a", "call_b"]


def test_empty_response_renders_empty_string_content() -> None:
    body = completion(ChatResponse(finish_reason=FinishReason.LENGTH))
    assert body["choices"][0]["message"]["content"] == ""
    assert ChatCompletion.model_validate(body).choices[0].finish_reason == "length"


@pytest.mark.parametrize("reason", list(FinishReason))
def test_every_finish_reason_is_an_openai_finish_reason(reason: FinishReason) -> None:
    body = completion(ChatResponse(content=[TextPart(text="x")], finish_reason=reason))
    assert ChatCompletion.model_validate(body).choices[0].finish_reason == reason.value


def test_usage_shape() -> None:
    assert render_usage(USAGE) == {
        "prompt_tokens": 120,
        "completion_tokens": 30,
        "total_tokens": 150,
        "prompt_tokens_details": {"cached_tokens": 100},
        "completion_tokens_details": {"reasoning_tokens": 12},
    }


@pytest.mark.parametrize(
    ("code", "openai_type"),
    [
        (ErrorCode.INVALID_REQUEST, "invalid_request_error"),
        (ErrorCode.AUTHENTICATION, "authentication_error"),
        (ErrorCode.RATE_LIMITED, "rate_limit_error"),
        (ErrorCode.VENDOR_ERROR, "api_error"),
    ],
)
def test_error_body(code: ErrorCode, openai_type: str) -> None:
    body = render_error(ErrorInfo(code=code, message="nope", param="temperature"))
    assert body == {
        "error": {
            "message": "nope",
            "type": openai_type,
            "param": "temperature",
            "code": code.value,
        }
    }


def test_protocol_error_renders_as_a_400_body() -> None:
    info = ProtocolError("Invalid 'n': only n=1 is supported, but got 2.", param="n").info
    assert render_error(info)["error"]["param"] == "n"
    assert info.code.http_status == 400


# ---- streaming -----------------------------------------------------------------------------


def renderer(*, include_usage: bool, simulated: bool = False) -> ChunkRenderer:
    return ChunkRenderer(
        completion_id="chatcmpl-2",
        model="gpt-4o-mini",
        created=1_700_000_001,
        include_usage=include_usage,
        simulated=simulated,
    )


def stream_chunks(include_usage: bool) -> list[dict[str, Any]]:
    chunks = renderer(include_usage=include_usage)
    deltas = [
        ChatDelta(text="Hel"),
        ChatDelta(text="lo"),
        ChatDelta(tool_call=ToolCallDelta(index=0, id="call_a", name="get_weather")),
        ChatDelta(tool_call=ToolCallDelta(index=0, arguments='{"city":')),
        ChatDelta(tool_call=ToolCallDelta(index=0, arguments='"Paris"}')),
        ChatDelta(finish_reason=FinishReason.TOOL_CALLS),
        ChatDelta(usage=USAGE),
    ]
    return [chunks.first(), *(chunk for delta in deltas for chunk in chunks.render(delta))]


def test_every_chunk_validates_and_repeats_the_envelope() -> None:
    rendered = stream_chunks(include_usage=True)
    parsed = [ChatCompletionChunk.model_validate(chunk) for chunk in rendered]
    assert len(parsed) == 8
    assert {(c.id, c.created, c.model, c.object) for c in parsed} == {
        ("chatcmpl-2", 1_700_000_001, "gpt-4o-mini", "chat.completion.chunk")
    }
    assert parsed[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in parsed if c.choices) == "Hello"


def test_tool_call_fragments_carry_id_and_name_once() -> None:
    rendered = stream_chunks(include_usage=False)
    fragments = [
        call for chunk in rendered for call in chunk["choices"][0]["delta"].get("tool_calls", [])
    ]
    assert fragments == [
        {
            "index": 0,
            "id": "call_a",
            "type": "function",
            "function": {"name": "get_weather", "arguments": ""},
        },
        {"index": 0, "function": {"arguments": '{"city":'}},
        {"index": 0, "function": {"arguments": '"Paris"}'}},
    ]


def test_finish_then_usage_order_with_include_usage() -> None:
    rendered = stream_chunks(include_usage=True)
    finish, usage = rendered[-2:]
    assert finish["choices"][0]["finish_reason"] == "tool_calls"
    assert finish["choices"][0]["delta"] == {}
    assert finish["usage"] is None
    assert usage["choices"] == []
    assert usage["usage"] == render_usage(USAGE)
    assert all(chunk["usage"] is None for chunk in rendered[:-1])
    assert [c["choices"][0]["finish_reason"] for c in rendered[:-1]].count("tool_calls") == 1


def test_without_include_usage_no_usage_key_and_no_usage_chunk() -> None:
    rendered = stream_chunks(include_usage=False)
    assert len(rendered) == 7
    assert all("usage" not in chunk for chunk in rendered)
    assert rendered[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_one_delta_with_text_finish_and_usage_gives_three_chunks_in_order() -> None:
    chunks = renderer(include_usage=True).render(
        ChatDelta(text="end", finish_reason=FinishReason.STOP, usage=USAGE)
    )
    assert [c["choices"][0]["delta"] if c["choices"] else "usage" for c in chunks] == [
        {"content": "end"},
        {},
        "usage",
    ]
    assert chunks[1]["choices"][0]["finish_reason"] == "stop"


def test_empty_delta_renders_nothing() -> None:
    assert renderer(include_usage=True).render(ChatDelta()) == []


def test_simulated_stream_is_labelled_on_every_chunk() -> None:
    chunks = renderer(include_usage=False, simulated=True)
    rendered = [
        chunks.first(),
        *chunks.render(ChatDelta(text="x", finish_reason=FinishReason.STOP)),
    ]
    assert {chunk["system_fingerprint"] for chunk in rendered} == {SIMULATED_FINGERPRINT}
