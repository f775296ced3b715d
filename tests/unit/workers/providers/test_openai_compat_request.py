"""Contract -> Chat Completions request translation."""

from __future__ import annotations

from typing import Any

import pytest
from openai.types.chat.completion_create_params import (
    CompletionCreateParamsNonStreaming,
    CompletionCreateParamsStreaming,
)

from contracts.chat import (
    ChatRequest,
    ImagePart,
    Message,
    ResponseFormat,
    Role,
    Sampling,
    TextPart,
    ToolCallPart,
    ToolChoice,
    ToolChoiceMode,
    ToolResultPart,
)
from services.workers.providers.base import ProviderEndpoint, RequestTranslationError
from services.workers.providers.openai_compat import (
    GENERIC_DIALECT,
    MISTRAL_DIALECT,
    OPENAI_DIALECT,
    OpenAICompatAdapter,
)
from tests.unit.workers.providers.provider_testkit import (
    PNG_DATA_URL,
    WEATHER_TOOL,
    shape_problems,
    weather_conversation,
)

OPENAI = ProviderEndpoint(
    provider="openai", base_url="https://api.openai.com/v1/", api_key="sk-test", simulated=False
)
KEYLESS = ProviderEndpoint(
    provider="deepseek", base_url="http://127.0.0.1:8700/v1", api_key=None, simulated=True
)


def build(
    chat: ChatRequest, *, stream: bool = False, adapter: OpenAICompatAdapter | None = None
) -> dict[str, Any]:
    adapter = adapter or OpenAICompatAdapter(OPENAI_DIALECT)
    return adapter.build_request(OPENAI, "gpt-4o", chat, stream=stream).json


def test_url_and_headers_with_and_without_key() -> None:
    adapter = OpenAICompatAdapter(OPENAI_DIALECT)
    chat = ChatRequest(messages=[Message(role=Role.USER, content=[TextPart(text="hi")])])
    request = adapter.build_request(OPENAI, "gpt-4o", chat, stream=False)
    assert request.url == "https://api.openai.com/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-test"
    assert request.headers["content-type"] == "application/json"

    keyless = adapter.build_request(KEYLESS, "deepseek-chat", chat, stream=True)
    assert keyless.url == "http://127.0.0.1:8700/v1/chat/completions"
    assert "authorization" not in keyless.headers
    assert keyless.headers["accept"] == "text/event-stream"


def test_minimal_request_omits_every_unset_field() -> None:
    chat = ChatRequest(messages=[Message(role=Role.USER, content=[TextPart(text="hi")])])
    assert build(chat) == {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}


def test_conversation_with_images_tool_calls_and_results() -> None:
    body = build(weather_conversation())
    assert body["messages"] == [
        {"role": "system", "content": "You are a concise weather assistant."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What's the weather in both cities on this postcard?"},
                {"type": "image_url", "image_url": {"url": PNG_DATA_URL, "detail": "high"}},
            ],
        },
        {
            "role": "assistant",
            "content": "Let me check.",
            "tool_calls": [
                {
                    "id": "call_Xk2M8vR4cN0pQ7sT1uW9yZ3b",
                    "type": "function",
                    "function": {
                        "name": "get_weather",
                        "arguments": '{"location":"Paris, France"}',
                    },
                },
                {
                    "id": "call_Lm5N6oP7qR8sT9uV0wX1yZ2a",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"location":"Tokyo, Japan"}'},
                },
            ],
        },
        {
            "role": "tool",
            "tool_call_id": "call_Xk2M8vR4cN0pQ7sT1uW9yZ3b",
            "content": '{"temp_c": 18, "sky": "overcast"}',
        },
        {
            "role": "tool",
            "tool_call_id": "call_Lm5N6oP7qR8sT9uV0wX1yZ2a",
            "content": "upstream weather service timed out",
        },
        {"role": "user", "content": "And which is warmer?"},
    ]
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Current weather for a city.",
                "parameters": WEATHER_TOOL.parameters,
                "strict": True,
            },
        }
    ]
    assert body["tool_choice"] == "auto"
    assert body["parallel_tool_calls"] is True
    assert body["temperature"] == 0.3


def test_anthropic_style_tool_results_come_before_the_user_text() -> None:
    # An Anthropic client sends results and a follow-up in one user message.
    chat = ChatRequest(
        messages=[
            Message(
                role=Role.ASSISTANT,
                content=[ToolCallPart(id="toolu_01A", name="get_weather", arguments="{}")],
            ),
            Message(
                role=Role.USER,
                content=[
                    TextPart(text="Thanks, and now?"),
                    ToolResultPart(
                        tool_call_id="toolu_01A",
                        content=[TextPart(text="sunny"), ImagePart(url="https://x.test/map.png")],
                    ),
                ],
            ),
        ],
        tools=[WEATHER_TOOL],
    )
    messages = build(chat)["messages"]
    assert messages[0] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "toolu_01A",
                "type": "function",
                "function": {"name": "get_weather", "arguments": "{}"},
            }
        ],
    }
    assert messages[1] == {"role": "tool", "tool_call_id": "toolu_01A", "content": "sunny"}
    # The tool's image cannot ride in a tool message; it follows in a user message.
    assert messages[2]["role"] == "user"
    assert {"type": "image_url", "image_url": {"url": "https://x.test/map.png"}} in messages[2][
        "content"
    ]
    assert {"type": "text", "text": "Thanks, and now?"} in messages[2]["content"]
    assert len(messages) == 3


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        (ToolChoice(mode=ToolChoiceMode.AUTO), "auto"),
        (ToolChoice(mode=ToolChoiceMode.NONE), "none"),
        (ToolChoice(mode=ToolChoiceMode.REQUIRED), "required"),
        (
            ToolChoice(mode=ToolChoiceMode.TOOL, name="get_weather"),
            {"type": "function", "function": {"name": "get_weather"}},
        ),
    ],
)
def test_tool_choice(choice: ToolChoice, expected: object) -> None:
    body = build(weather_conversation(tool_choice=choice))
    assert body["tool_choice"] == expected
    assert "parallel_tool_calls" not in body


def test_tool_choice_without_tools_is_not_sent() -> None:
    # OpenAI answers 400 to tool_choice or parallel_tool_calls without tools.
    body = build(
        weather_conversation(
            tools=[], tool_choice=ToolChoice(mode=ToolChoiceMode.AUTO, parallel=False)
        )
    )
    assert "tool_choice" not in body
    assert "parallel_tool_calls" not in body
    assert "tools" not in body


def test_tool_choice_naming_no_tool_is_rejected() -> None:
    with pytest.raises(RequestTranslationError) as caught:
        build(weather_conversation(tool_choice=ToolChoice(mode=ToolChoiceMode.TOOL)))
    assert caught.value.info.param == "tool_choice"


def test_sampling_and_max_tokens_name_per_dialect() -> None:
    sampling = Sampling(
        temperature=0.7,
        top_p=0.9,
        top_k=40,  # no Chat Completions equivalent: dropped
        max_output_tokens=256,
        stop=["\n\n", "END"],
        seed=7,
        presence_penalty=0.1,
        frequency_penalty=0.2,
        reasoning_effort="low",
    )
    chat = weather_conversation(sampling=sampling, user="user-42", tools=[], tool_choice=None)
    openai = build(chat, adapter=OpenAICompatAdapter(OPENAI_DIALECT))
    assert openai["max_completion_tokens"] == 256
    assert "max_tokens" not in openai
    assert {k: openai[k] for k in ("temperature", "top_p", "stop", "seed", "user")} == {
        "temperature": 0.7,
        "top_p": 0.9,
        "stop": ["\n\n", "END"],
        "seed": 7,
        "user": "user-42",
    }
    assert openai["presence_penalty"] == 0.1
    assert openai["frequency_penalty"] == 0.2
    assert openai["reasoning_effort"] == "low"
    assert "top_k" not in openai

    generic = build(chat, adapter=OpenAICompatAdapter(GENERIC_DIALECT))
    assert generic["max_tokens"] == 256
    assert "max_completion_tokens" not in generic

    mistral = build(chat, adapter=OpenAICompatAdapter(MISTRAL_DIALECT), stream=True)
    assert mistral["random_seed"] == 7
    assert "seed" not in mistral
    assert "user" not in mistral
    assert "stream_options" not in mistral
    assert mistral["stream"] is True


def test_reasoning_effort_only_when_set() -> None:
    assert "reasoning_effort" not in build(weather_conversation())


def test_stream_asks_for_usage() -> None:
    body = build(weather_conversation(), stream=True)
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert "stream" not in build(weather_conversation())


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        (ResponseFormat(type="text"), None),
        (ResponseFormat(type="json_object"), {"type": "json_object"}),
        (
            ResponseFormat(
                type="json_schema",
                schema_name="city_weather",
                json_schema={"type": "object", "properties": {"temp_c": {"type": "number"}}},
                strict=True,
            ),
            {
                "type": "json_schema",
                "json_schema": {
                    "name": "city_weather",
                    "schema": {"type": "object", "properties": {"temp_c": {"type": "number"}}},
                    "strict": True,
                },
            },
        ),
        (
            ResponseFormat(type="json_schema", json_schema={"type": "object"}),
            {
                "type": "json_schema",
                "json_schema": {"name": "response", "schema": {"type": "object"}},
            },
        ),
    ],
)
def test_response_format(fmt: ResponseFormat, expected: dict[str, Any] | None) -> None:
    body = build(weather_conversation(response_format=fmt))
    assert body.get("response_format") == expected


def test_mistral_tool_call_ids_are_mapped_consistently() -> None:
    body = build(weather_conversation(), adapter=OpenAICompatAdapter(MISTRAL_DIALECT))
    calls = body["messages"][2]["tool_calls"]
    results = [m for m in body["messages"] if m["role"] == "tool"]
    assert [c["id"] for c in calls] == [r["tool_call_id"] for r in results]
    assert all(len(c["id"]) == 9 and c["id"].isalnum() for c in calls)
    assert calls[0]["id"] != calls[1]["id"]
    # Ids already in Mistral's form are left alone.
    chat = weather_conversation(
        messages=[
            Message(
                role=Role.ASSISTANT, content=[ToolCallPart(id="D681PevKs", name="get_weather")]
            ),
            Message(role=Role.TOOL, content=[ToolResultPart(tool_call_id="D681PevKs")]),
        ]
    )
    mistral = build(chat, adapter=OpenAICompatAdapter(MISTRAL_DIALECT))
    assert mistral["messages"][1]["tool_calls"][0]["id"] == "D681PevKs"


def test_tool_call_in_a_user_message_is_rejected() -> None:
    chat = ChatRequest(
        messages=[Message(role=Role.USER, content=[ToolCallPart(id="c1", name="get_weather")])]
    )
    with pytest.raises(RequestTranslationError):
        build(chat)


@pytest.mark.parametrize("stream", [False, True])
def test_requests_conform_to_the_openai_sdk_param_types(stream: bool) -> None:
    chat = weather_conversation(
        sampling=Sampling(temperature=1.0, max_output_tokens=100, stop=["x"], seed=1),
        response_format=ResponseFormat(type="json_schema", json_schema={"type": "object"}),
        user="u-1",
        tool_choice=ToolChoice(mode=ToolChoiceMode.TOOL, name="get_weather", parallel=False),
    )
    body = build(chat, stream=stream)
    params = CompletionCreateParamsStreaming if stream else CompletionCreateParamsNonStreaming
    assert shape_problems(body, params) == []


def test_the_shape_check_catches_a_misshapen_request() -> None:
    # The check above would be worthless if it accepted anything.
    bad = {"model": "m", "messages": [{"role": "user", "content": [{"type": "image", "url": "x"}]}]}
    assert shape_problems(bad, CompletionCreateParamsNonStreaming) != []
    assert shape_problems(
        {"model": "m", "messages": [], "max_tokenz": 1}, CompletionCreateParamsNonStreaming
    )
