"""Anthropic Messages answers -> contract: whole messages and event streams."""

from __future__ import annotations

import orjson
import pytest

from contracts.chat import ChatDelta, FinishReason, TextPart, ToolCallDelta, ToolCallPart, Usage
from contracts.errors import ErrorCode
from services.workers.providers.anthropic import AnthropicAdapter, AnthropicStreamDecoder
from services.workers.providers.base import VendorProtocolError, VendorStreamError
from tests.unit.workers.providers.provider_testkit import decode_stream, read_payload, read_sse

ADAPTER = AnthropicAdapter()


def test_text_message_counts_cached_tokens_as_input() -> None:
    response = ADAPTER.parse_response(read_payload("anthropic/message_text.json"))
    assert response.content == [TextPart(text="The capital of France is Paris.")]
    assert response.finish_reason is FinishReason.STOP
    # input_tokens (21) excludes the cache; ours counts every prompt token.
    assert response.usage == Usage(
        input_tokens=21 + 2048 + 1024,
        output_tokens=11,
        cache_read_tokens=2048,
        cache_write_tokens=1024,
    )
    assert response.vendor_response_id == "msg_01XFDUDYJgAACzvnptvVoYEL"
    assert response.vendor_model == "claude-sonnet-4-5-20250929"


def test_tool_use_message_skips_thinking() -> None:
    response = ADAPTER.parse_response(read_payload("anthropic/message_tool_use.json"))
    assert response.finish_reason is FinishReason.TOOL_CALLS
    assert response.text() == "I'll check both cities."
    calls = response.tool_calls()
    assert [(c.id, c.name) for c in calls] == [
        ("toolu_01A09q90qw90lq917835lq9", "get_weather"),
        ("toolu_01B19r91rx91mr928946mr0", "get_weather"),
    ]
    assert orjson.loads(calls[0].arguments) == {"location": "Paris, France", "unit": "celsius"}
    assert isinstance(response.content[1], ToolCallPart)
    assert response.usage == Usage(input_tokens=512, output_tokens=164)


@pytest.mark.parametrize(
    ("stop_reason", "expected"),
    [
        ("end_turn", FinishReason.STOP),
        ("stop_sequence", FinishReason.STOP),
        ("max_tokens", FinishReason.LENGTH),
        ("tool_use", FinishReason.TOOL_CALLS),
        ("refusal", FinishReason.CONTENT_FILTER),
        ("pause_turn", FinishReason.STOP),
        (None, FinishReason.STOP),
    ],
)
def test_stop_reasons(stop_reason: str | None, expected: FinishReason) -> None:
    body = {"id": "msg_1", "content": [{"type": "text", "text": "x"}], "stop_reason": stop_reason}
    assert ADAPTER.parse_response(orjson.dumps(body)).finish_reason is expected


def test_refusal_message() -> None:
    response = ADAPTER.parse_response(read_payload("anthropic/message_refusal.json"))
    assert response.finish_reason is FinishReason.CONTENT_FILTER
    assert response.content == []


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b'{"id": "msg_1"}',
        b'{"content": [{"text": "no type"}]}',
        b'{"content": [{"type": "tool_use", "input": {}}]}',
        b'{"content": "text"}',
    ],
)
def test_malformed_bodies(body: bytes) -> None:
    with pytest.raises(VendorProtocolError) as caught:
        ADAPTER.parse_response(body)
    assert caught.value.info.code is ErrorCode.VENDOR_BAD_RESPONSE


# ---- streaming -----------------------------------------------------------------------------


def test_text_stream() -> None:
    decoder = ADAPTER.stream_decoder()
    events = read_sse("anthropic/stream_text.sse")
    deltas = decode_stream(decoder, events[:-1])
    assert [d.text for d in deltas] == ["Hello", "! How can I", " help you today?"]
    assert not decoder.finished
    final = decoder.feed(*events[-1])
    assert final == [
        ChatDelta(
            finish_reason=FinishReason.STOP,
            usage=Usage(input_tokens=25 + 1800, output_tokens=12, cache_read_tokens=1800),
        )
    ]
    assert decoder.finished
    assert decoder.feed("ping", '{"type": "ping"}') == []


def test_tool_use_stream_numbers_calls_from_zero() -> None:
    deltas = decode_stream(ADAPTER.stream_decoder(), read_sse("anthropic/stream_tool_use.sse"))
    assert [d.text for d in deltas if d.text] == ["Checking both."]  # thinking is not text
    calls = [d.tool_call for d in deltas if d.tool_call is not None]
    assert calls[0] == ToolCallDelta(
        index=0, id="toolu_01T1x1fJ34qAmk2tNTrN7Up6", name="get_weather"
    )
    assert calls[-2] == ToolCallDelta(
        index=1, id="toolu_01U2y2gK45rBnl3uOsUo8Vq7", name="get_weather"
    )
    by_index: dict[int, str] = {}
    for call in calls:
        by_index[call.index] = by_index.get(call.index, "") + call.arguments
    assert orjson.loads(by_index[0]) == {"location": "Paris, France"}
    assert orjson.loads(by_index[1]) == {"location": "Tokyo, Japan"}
    assert deltas[-1] == ChatDelta(
        finish_reason=FinishReason.TOOL_CALLS, usage=Usage(input_tokens=472, output_tokens=89)
    )
    assert [d for d in deltas if d.finish_reason is not None] == [deltas[-1]]


def test_message_delta_may_carry_cumulative_input_usage() -> None:
    decoder = AnthropicStreamDecoder()
    start = {
        "type": "message_start",
        "message": {"id": "m", "usage": {"input_tokens": 10, "output_tokens": 1}},
    }
    delta = {
        "type": "message_delta",
        "delta": {"stop_reason": "max_tokens"},
        "usage": {"input_tokens": 12, "cache_read_input_tokens": 100, "output_tokens": 64},
    }
    decoder.feed("message_start", orjson.dumps(start).decode())
    decoder.feed("message_delta", orjson.dumps(delta).decode())
    assert decoder.feed("message_stop", '{"type": "message_stop"}') == [
        ChatDelta(
            finish_reason=FinishReason.LENGTH,
            usage=Usage(input_tokens=112, output_tokens=64, cache_read_tokens=100),
        )
    ]


def test_in_stream_error_event() -> None:
    decoder = ADAPTER.stream_decoder()
    events = read_sse("anthropic/stream_overloaded.sse")
    assert decode_stream(decoder, events[:-1])[-1].text == "Once upon"
    with pytest.raises(VendorStreamError) as caught:
        decoder.feed(*events[-1])
    info = caught.value.info
    assert (info.code, info.retryable, info.message) == (
        ErrorCode.VENDOR_OVERLOADED,
        True,
        "Overloaded",
    )
    assert not decoder.finished


def test_unknown_events_are_ignored_and_event_name_fills_a_missing_type() -> None:
    decoder = AnthropicStreamDecoder()
    assert decoder.feed("future_event", '{"type": "future_event", "x": 1}') == []
    assert decoder.feed("message_stop", "{}") == [ChatDelta(finish_reason=FinishReason.STOP)]
    assert decoder.finished


@pytest.mark.parametrize(
    ("event", "data"),
    [
        ("message_start", "{truncated"),
        ("message_start", '{"type": "message_start"}'),
        ("content_block_start", '{"type": "content_block_start", "index": 0}'),
        ("content_block_delta", '{"type": "content_block_delta", "index": 0}'),
        (
            "content_block_delta",  # input for a block that never started as tool_use
            '{"type": "content_block_delta", "index": 5,'
            ' "delta": {"type": "input_json_delta", "partial_json": "{"}}',
        ),
        ("", "[]"),
    ],
)
def test_malformed_events(event: str, data: str) -> None:
    with pytest.raises(VendorProtocolError):
        AnthropicStreamDecoder().feed(event, data)
