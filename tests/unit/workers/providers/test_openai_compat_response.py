"""Chat Completions answers -> contract: whole responses and SSE streams."""

from __future__ import annotations

import orjson
import pytest

from contracts.chat import ChatDelta, FinishReason, ToolCallPart, Usage
from contracts.errors import ErrorCode
from services.workers.providers.base import VendorProtocolError, VendorStreamError
from services.workers.providers.openai_compat import OpenAICompatAdapter, OpenAIStreamDecoder
from tests.unit.workers.providers.provider_testkit import decode_stream, read_payload, read_sse

ADAPTER = OpenAICompatAdapter()


def test_text_completion_with_cached_tokens() -> None:
    response = ADAPTER.parse_response(read_payload("openai/completion_text.json"))
    assert response.text() == "The capital of France is Paris."
    assert response.finish_reason is FinishReason.STOP
    assert response.usage == Usage(input_tokens=1843, output_tokens=9, cache_read_tokens=1536)
    assert response.vendor_response_id == "chatcmpl-BqZ3u8Jv0m4XeUoVw2kYqL1pNfT7c"
    assert response.vendor_model == "gpt-4o-2024-08-06"


def test_parallel_tool_calls_with_reasoning_tokens() -> None:
    response = ADAPTER.parse_response(read_payload("openai/completion_tool_calls.json"))
    assert response.finish_reason is FinishReason.TOOL_CALLS
    assert response.text() == ""
    assert response.tool_calls() == [
        ToolCallPart(
            id="call_Xk2M8vR4cN0pQ7sT1uW9yZ3b",
            name="get_weather",
            arguments='{"location":"Paris, France","unit":"celsius"}',
        ),
        ToolCallPart(
            id="call_Lm5N6oP7qR8sT9uV0wX1yZ2a",
            name="get_weather",
            arguments='{"location":"Tokyo, Japan","unit":"celsius"}',
        ),
    ]
    assert response.usage.reasoning_tokens == 192
    assert response.usage.output_tokens == 251


def test_deepseek_reasoning_content_is_not_the_answer() -> None:
    response = ADAPTER.parse_response(read_payload("openai/deepseek_completion.json"))
    assert response.text() == "9.11 is smaller than 9.9."
    assert response.usage == Usage(input_tokens=28, output_tokens=212, reasoning_tokens=198)


def test_deepseek_cache_hit_tokens_count_as_cache_reads() -> None:
    response = ADAPTER.parse_response(read_payload("openai/deepseek_cache_hit.json"))
    assert response.usage.cache_read_tokens == 1984
    assert response.usage.input_tokens == 2100


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("stop", FinishReason.STOP),
        ("length", FinishReason.LENGTH),
        ("content_filter", FinishReason.CONTENT_FILTER),
        ("function_call", FinishReason.TOOL_CALLS),
        ("model_length", FinishReason.LENGTH),
        ("something_new", FinishReason.STOP),
        (None, FinishReason.STOP),
    ],
)
def test_finish_reasons(raw: str | None, expected: FinishReason) -> None:
    body = {
        "id": "x",
        "model": "m",
        "choices": [{"index": 0, "message": {"content": "ok"}, "finish_reason": raw}],
    }
    assert ADAPTER.parse_response(orjson.dumps(body)).finish_reason is expected


def test_stop_with_tool_calls_reads_as_tool_calls() -> None:
    # Gemini's compatibility layer reports "stop" after a tool call.
    body = {
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "id": "function-call-1",
                            "type": "function",
                            "function": {"name": "f", "arguments": '{"a":1}'},
                        }
                    ],
                },
                "finish_reason": "stop",
            }
        ]
    }
    response = ADAPTER.parse_response(orjson.dumps(body))
    assert response.finish_reason is FinishReason.TOOL_CALLS
    assert response.usage == Usage()


def test_mistral_content_chunks_and_moonshot_cached_tokens() -> None:
    body = {
        "id": "cmpl-1",
        "model": "magistral-medium-2507",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": [
                        {"type": "thinking", "thinking": [{"type": "text", "text": "hmm"}]},
                        {"type": "text", "text": "42"},
                    ],
                },
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "cached_tokens": 8},
    }
    response = ADAPTER.parse_response(orjson.dumps(body))
    assert response.text() == "42"
    assert response.usage.cache_read_tokens == 8


def test_refusal_is_returned_as_text() -> None:
    body = {
        "choices": [
            {
                "index": 0,
                "message": {"content": None, "refusal": "I can't help with that."},
                "finish_reason": "stop",
            }
        ]
    }
    assert ADAPTER.parse_response(orjson.dumps(body)).text() == "I can't help with that."


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"<html>502 Bad Gateway</html>",
        b'{"id": "x", "choices": []}',
        b'{"id": "x"}',
        b'{"choices": [{"index": 0}]}',
        b'{"choices": [{"index": 0, "message": {"tool_calls": [{"id": "c", "function": {}}]}}]}',
        b"[1, 2]",
    ],
)
def test_malformed_bodies(body: bytes) -> None:
    with pytest.raises(VendorProtocolError) as caught:
        ADAPTER.parse_response(body)
    assert caught.value.info.code is ErrorCode.VENDOR_BAD_RESPONSE


# ---- streaming -----------------------------------------------------------------------------


def test_text_stream_holds_finish_until_the_usage_chunk() -> None:
    decoder = ADAPTER.stream_decoder()
    events = read_sse("openai/stream_text.sse")
    deltas: list[ChatDelta] = []
    for name, data in events[:-2]:  # up to and including the finish_reason chunk
        deltas.extend(decoder.feed(name, data))
    assert all(d.finish_reason is None for d in deltas)
    assert "".join(d.text for d in deltas) == "Hello! How can I help you today?"

    final = decoder.feed(*events[-2])  # the usage chunk
    assert final == [
        ChatDelta(finish_reason=FinishReason.STOP, usage=Usage(input_tokens=19, output_tokens=10))
    ]
    assert not decoder.finished
    assert decoder.feed(*events[-1]) == []  # [DONE]: already said everything
    assert decoder.finished


def test_tool_call_stream() -> None:
    deltas = decode_stream(ADAPTER.stream_decoder(), read_sse("openai/stream_tool_calls.sse"))
    calls = [d.tool_call for d in deltas if d.tool_call is not None]
    assert [(c.index, c.id, c.name) for c in calls if c.id] == [
        (0, "call_Xk2M8vR4cN0pQ7sT1uW9yZ3b", "get_weather"),
        (1, "call_Lm5N6oP7qR8sT9uV0wX1yZ2a", "get_weather"),
    ]
    by_index: dict[int, str] = {}
    for call in calls:
        by_index[call.index] = by_index.get(call.index, "") + call.arguments
    assert orjson.loads(by_index[0]) == {"location": "Paris, France"}
    assert orjson.loads(by_index[1]) == {"location": "Tokyo, Japan"}
    assert deltas[-1].finish_reason is FinishReason.TOOL_CALLS
    assert deltas[-1].usage == Usage(input_tokens=84, output_tokens=52)
    assert [d for d in deltas if d.finish_reason is not None] == [deltas[-1]]


def test_deepseek_stream_with_usage_in_the_finish_chunk() -> None:
    decoder = ADAPTER.stream_decoder()
    events = read_sse("openai/deepseek_stream.sse")
    deltas = decode_stream(decoder, events[:-1])  # the final delta comes before [DONE]
    assert "".join(d.text for d in deltas) == "Bonjour !"
    assert deltas[-1] == ChatDelta(
        finish_reason=FinishReason.STOP,
        usage=Usage(input_tokens=1200, output_tokens=4, cache_read_tokens=1152),
    )
    assert decoder.feed(*events[-1]) == []
    assert decoder.finished


def test_stream_without_usage_ends_on_done() -> None:
    decoder = OpenAIStreamDecoder()
    chunk = {"choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": "length"}]}
    assert decoder.feed("", orjson.dumps(chunk).decode()) == [ChatDelta(text="hi")]
    assert decoder.feed("", "[DONE]") == [ChatDelta(finish_reason=FinishReason.LENGTH, usage=None)]
    assert decoder.finished


def test_moonshot_usage_inside_the_choice() -> None:
    decoder = OpenAIStreamDecoder()
    chunk = {
        "choices": [
            {
                "index": 0,
                "delta": {},
                "finish_reason": "stop",
                "usage": {"prompt_tokens": 8, "completion_tokens": 2, "cached_tokens": 4},
            }
        ]
    }
    assert decoder.feed("", orjson.dumps(chunk).decode()) == [
        ChatDelta(
            finish_reason=FinishReason.STOP,
            usage=Usage(input_tokens=8, output_tokens=2, cache_read_tokens=4),
        )
    ]


def test_tool_calls_without_index_are_placed_by_id() -> None:
    decoder = OpenAIStreamDecoder()

    def feed(calls: list[dict[str, object]]) -> list[ChatDelta]:
        chunk = {"choices": [{"index": 0, "delta": {"tool_calls": calls}}]}
        return decoder.feed("", orjson.dumps(chunk).decode())

    first = feed([{"id": "a", "function": {"name": "f", "arguments": '{"x":'}}])
    more = feed([{"function": {"arguments": "1}"}}])
    second = feed([{"id": "b", "function": {"name": "g", "arguments": "{}"}}])
    indexes = [d.tool_call.index for d in first + more + second if d.tool_call]
    assert indexes == [0, 0, 1]


def test_in_stream_error_chunk() -> None:
    decoder = OpenAIStreamDecoder()
    decoder.feed("", orjson.dumps({"choices": [{"index": 0, "delta": {"content": "Hi"}}]}).decode())
    error = {"error": {"message": "The server had an error", "type": "server_error"}}
    with pytest.raises(VendorStreamError) as caught:
        decoder.feed("", orjson.dumps(error).decode())
    assert caught.value.info.code is ErrorCode.VENDOR_ERROR
    assert caught.value.info.retryable
    assert caught.value.info.message == "The server had an error"


@pytest.mark.parametrize("data", ["{not json", '{"choices": "nope"}', "[]"])
def test_malformed_stream_events(data: str) -> None:
    with pytest.raises(VendorProtocolError):
        OpenAIStreamDecoder().feed("", data)


def test_keepalive_and_events_after_done_are_ignored() -> None:
    decoder = OpenAIStreamDecoder()
    assert decoder.feed("", "") == []
    decoder.feed("", "[DONE]")
    assert decoder.feed("", '{"choices": [{"index": 0, "delta": {"content": "late"}}]}') == []
