"""Contract -> Anthropic Messages request translation."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from anthropic.types.message_create_params import (
    MessageCreateParamsNonStreaming,
    MessageCreateParamsStreaming,
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
from services.workers.providers.anthropic import (
    ANTHROPIC_VERSION,
    DEFAULT_MAX_TOKENS,
    AnthropicAdapter,
)
from services.workers.providers.base import ProviderEndpoint, RequestTranslationError
from tests.unit.workers.providers.provider_testkit import (
    PNG_BASE64,
    WEATHER_TOOL,
    shape_problems,
    weather_conversation,
)

ADAPTER = AnthropicAdapter()
ENDPOINT = ProviderEndpoint(
    provider="anthropic",
    base_url="https://api.anthropic.com",
    api_key="sk-ant-test",
    simulated=False,
)


def build(chat: ChatRequest, *, stream: bool = False) -> dict[str, Any]:
    return ADAPTER.build_request(ENDPOINT, "claude-sonnet-4-5", chat, stream=stream).json


def user(*parts: Any) -> Message:
    return Message(role=Role.USER, content=list(parts))


def test_url_and_headers() -> None:
    request = ADAPTER.build_request(
        ENDPOINT, "claude-sonnet-4-5", weather_conversation(), stream=False
    )
    assert request.url == "https://api.anthropic.com/v1/messages"
    assert request.headers["x-api-key"] == "sk-ant-test"
    assert request.headers["anthropic-version"] == ANTHROPIC_VERSION == "2023-06-01"
    assert request.headers["content-type"] == "application/json"
    assert "authorization" not in request.headers

    simulated = ProviderEndpoint(
        provider="anthropic", base_url="http://127.0.0.1:8700/", api_key=None, simulated=True
    )
    keyless = ADAPTER.build_request(simulated, "claude", weather_conversation(), stream=True)
    assert keyless.url == "http://127.0.0.1:8700/v1/messages"
    assert "x-api-key" not in keyless.headers


def test_conversation_with_images_tool_calls_and_results() -> None:
    body = build(weather_conversation())
    assert body["model"] == "claude-sonnet-4-5"
    assert body["system"] == "You are a concise weather assistant."
    assert body["max_tokens"] == 512
    assert body["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What's the weather in both cities on this postcard?"},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": PNG_BASE64},
                },
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Let me check."},
                {
                    "type": "tool_use",
                    "id": "call_Xk2M8vR4cN0pQ7sT1uW9yZ3b",
                    "name": "get_weather",
                    "input": {"location": "Paris, France"},
                },
                {
                    "type": "tool_use",
                    "id": "call_Lm5N6oP7qR8sT9uV0wX1yZ2a",
                    "name": "get_weather",
                    "input": {"location": "Tokyo, Japan"},
                },
            ],
        },
        {
            # Two tool messages and the follow-up question merge into one user turn, results first.
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "call_Xk2M8vR4cN0pQ7sT1uW9yZ3b",
                    "content": [{"type": "text", "text": '{"temp_c": 18, "sky": "overcast"}'}],
                },
                {
                    "type": "tool_result",
                    "tool_use_id": "call_Lm5N6oP7qR8sT9uV0wX1yZ2a",
                    "content": [{"type": "text", "text": "upstream weather service timed out"}],
                    "is_error": True,
                },
                {"type": "text", "text": "And which is warmer?"},
            ],
        },
    ]
    assert body["tools"] == [
        {
            "name": "get_weather",
            "description": "Current weather for a city.",
            "input_schema": WEATHER_TOOL.parameters,
        }
    ]
    assert body["tool_choice"] == {"type": "auto"}
    assert body["temperature"] == 0.3


def test_tool_results_open_the_user_turn() -> None:
    chat = ChatRequest(
        messages=[
            user(TextPart(text="weather?")),
            Message(role=Role.ASSISTANT, content=[ToolCallPart(id="toolu_1", name="get_weather")]),
            user(TextPart(text="here you go"), ToolResultPart(tool_call_id="toolu_1")),
        ]
    )
    last = build(chat)["messages"][-1]["content"]
    assert [block["type"] for block in last] == ["tool_result", "text"]
    assert last[0] == {"type": "tool_result", "tool_use_id": "toolu_1"}


def test_default_max_tokens_and_dropped_knobs() -> None:
    chat = ChatRequest(
        messages=[user(TextPart(text="hi"))],
        sampling=Sampling(
            seed=3, presence_penalty=0.5, frequency_penalty=0.5, reasoning_effort="high"
        ),
    )
    body = build(chat)
    assert body == {
        "model": "claude-sonnet-4-5",
        "max_tokens": DEFAULT_MAX_TOKENS,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
    }


def test_sampling() -> None:
    chat = ChatRequest(
        messages=[user(TextPart(text="hi"))],
        sampling=Sampling(temperature=1.6, top_k=40, stop=["\n\nHuman:"], max_output_tokens=64),
        user="user-42",
    )
    body = build(chat, stream=True)
    assert body["temperature"] == 1.0  # clamped into Anthropic's [0, 1]
    assert body["top_k"] == 40
    assert body["stop_sequences"] == ["\n\nHuman:"]
    assert body["max_tokens"] == 64
    assert body["metadata"] == {"user_id": "user-42"}
    assert body["stream"] is True


def test_top_p_only_without_temperature() -> None:
    both = build(
        ChatRequest(
            messages=[user(TextPart(text="x"))], sampling=Sampling(temperature=0.5, top_p=0.9)
        )
    )
    assert "top_p" not in both
    alone = build(ChatRequest(messages=[user(TextPart(text="x"))], sampling=Sampling(top_p=0.9)))
    assert alone["top_p"] == 0.9


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        (ToolChoice(mode=ToolChoiceMode.AUTO), {"type": "auto"}),
        (ToolChoice(mode=ToolChoiceMode.REQUIRED), {"type": "any"}),
        (ToolChoice(mode=ToolChoiceMode.NONE, parallel=False), {"type": "none"}),
        (
            ToolChoice(mode=ToolChoiceMode.TOOL, name="get_weather", parallel=False),
            {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True},
        ),
        (
            ToolChoice(mode=ToolChoiceMode.AUTO, parallel=False),
            {"type": "auto", "disable_parallel_tool_use": True},
        ),
    ],
)
def test_tool_choice(choice: ToolChoice, expected: dict[str, Any]) -> None:
    assert build(weather_conversation(tool_choice=choice))["tool_choice"] == expected


def test_json_schema_becomes_a_system_instruction() -> None:
    schema = {"type": "object", "properties": {"warmer": {"type": "string"}}}
    body = build(
        weather_conversation(
            response_format=ResponseFormat(
                type="json_schema", schema_name="answer", json_schema=schema
            )
        )
    )
    system = body["system"]
    assert system.startswith("You are a concise weather assistant.\n\n")
    assert "JSON" in system
    assert orjson.dumps(schema).decode() in system

    no_system = build(
        weather_conversation(system=None, response_format=ResponseFormat(type="json_object"))
    )
    assert no_system["system"].startswith("Respond with a single JSON object")


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [('{"a": 1}', {"a": 1}), ("{not json", {}), ("[1, 2]", {}), ("", {})],
)
def test_tool_arguments_become_an_input_object(arguments: str, expected: dict[str, Any]) -> None:
    chat = ChatRequest(
        messages=[
            user(TextPart(text="go")),
            Message(
                role=Role.ASSISTANT, content=[ToolCallPart(id="t1", name="f", arguments=arguments)]
            ),
        ]
    )
    assert build(chat)["messages"][1]["content"][0]["input"] == expected


def test_foreign_tool_ids_are_made_safe() -> None:
    chat = ChatRequest(
        messages=[
            Message(role=Role.ASSISTANT, content=[ToolCallPart(id="function-call.1:a", name="f")]),
            user(ToolResultPart(tool_call_id="function-call.1:a")),
        ]
    )
    messages = build(chat)["messages"]
    assert messages[0]["content"][0]["id"] == "function-call_1_a"
    assert messages[1]["content"][0]["tool_use_id"] == "function-call_1_a"


def test_images() -> None:
    url = build(ChatRequest(messages=[user(ImagePart(url="https://x.test/cat.jpg"))]))
    assert url["messages"][0]["content"] == [
        {"type": "image", "source": {"type": "url", "url": "https://x.test/cat.jpg"}}
    ]
    for bad in ("data:image/bmp;base64,Qk0=", "data:image/png,rawbytes", "ftp://x.test/a.png"):
        with pytest.raises(RequestTranslationError):
            build(ChatRequest(messages=[user(ImagePart(url=bad))]))


def test_empty_text_and_trailing_whitespace_are_removed() -> None:
    chat = ChatRequest(
        messages=[
            user(TextPart(text="Write a haiku")),
            Message(role=Role.ASSISTANT, content=[TextPart(text="")]),
            user(TextPart(text="about rain")),
            Message(role=Role.ASSISTANT, content=[TextPart(text="Soft rain \n")]),
        ]
    )
    messages = build(chat)["messages"]
    assert messages == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Write a haiku"},
                {"type": "text", "text": "about rain"},
            ],
        },
        {"role": "assistant", "content": [{"type": "text", "text": "Soft rain"}]},
    ]


@pytest.mark.parametrize("stream", [False, True])
def test_requests_conform_to_the_anthropic_sdk_param_types(stream: bool) -> None:
    chat = weather_conversation(
        sampling=Sampling(temperature=0.2, top_k=5, stop=["x"], max_output_tokens=100),
        response_format=ResponseFormat(type="json_object"),
        user="u-1",
        tool_choice=ToolChoice(mode=ToolChoiceMode.TOOL, name="get_weather", parallel=False),
    )
    body = build(chat, stream=stream)
    params = MessageCreateParamsStreaming if stream else MessageCreateParamsNonStreaming
    # The pinned SDK no longer lists the sampling knobs; the published Messages API spec still
    # documents temperature, top_p and top_k, so they are checked by value elsewhere.
    sampling_keys = {"temperature", "top_p", "top_k"}
    assert sampling_keys & body.keys() == {"temperature", "top_k"}
    checked = {key: value for key, value in body.items() if key not in sampling_keys}
    assert shape_problems(checked, params) == []
    bad = {**body, "messages": [{"role": "user", "content": [{"type": "image_url", "url": "x"}]}]}
    assert shape_problems(bad, params) != []
