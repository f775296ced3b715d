"""The official openai SDK against the translation, through httpx.MockTransport.

The transport's handler plays a minimal ingress: it parses what the SDK sent with
``parse_chat_request`` and answers with ``render_completion`` / ``ChunkRenderer`` over SSE (or
``render_error`` with a 400), so both directions are checked against the real client.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import openai
import pydantic
import pytest

from contracts.chat import (
    ChatDelta,
    ChatResponse,
    FinishReason,
    ImagePart,
    Role,
    TextPart,
    ToolCallDelta,
    ToolCallPart,
    ToolChoice,
    ToolChoiceMode,
    ToolResultPart,
    Usage,
)
from services.ingress.protocols.openai_chat import (
    SIMULATED_FINGERPRINT,
    ChunkRenderer,
    ParsedChatRequest,
    ProtocolError,
    parse_chat_request,
    render_completion,
    render_error,
)

USAGE = Usage(input_tokens=50, output_tokens=8, cache_read_tokens=32, reasoning_tokens=3)


class FakeIngress:
    """Records what the SDK sent and answers with one scripted turn."""

    def __init__(self) -> None:
        self.bodies: list[object] = []
        self.parsed: list[ParsedChatRequest] = []
        self.response = ChatResponse(content=[TextPart(text="ok")], usage=USAGE)
        self.deltas: list[ChatDelta] = [
            ChatDelta(text="o"),
            ChatDelta(text="k"),
            ChatDelta(finish_reason=FinishReason.STOP),
            ChatDelta(usage=USAGE),
        ]

    def handle(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/chat/completions"
        body = json.loads(request.content)
        self.bodies.append(body)
        try:
            parsed = parse_chat_request(body)
        except ProtocolError as error:
            return httpx.Response(error.info.code.http_status, json=render_error(error.info))
        self.parsed.append(parsed)
        if not parsed.stream:
            return httpx.Response(
                200,
                json=render_completion(
                    self.response,
                    completion_id="chatcmpl-sdk",
                    model=parsed.model,
                    created=1_700_000_000,
                    simulated=True,
                ),
            )
        renderer = ChunkRenderer(
            completion_id="chatcmpl-sdk",
            model=parsed.model,
            created=1_700_000_000,
            include_usage=parsed.include_usage,
            simulated=True,
        )
        chunks = [renderer.first(), *(c for d in self.deltas for c in renderer.render(d))]
        sse = "".join(f"data: {json.dumps(chunk)}\n\n" for chunk in chunks) + "data: [DONE]\n\n"
        return httpx.Response(
            200, headers={"content-type": "text/event-stream"}, content=sse.encode()
        )

    @property
    def last(self) -> ParsedChatRequest:
        return self.parsed[-1]


@pytest.fixture
def ingress() -> FakeIngress:
    return FakeIngress()


@pytest.fixture
def client(ingress: FakeIngress) -> Iterator[openai.OpenAI]:
    http = httpx.Client(transport=httpx.MockTransport(ingress.handle))
    with openai.OpenAI(
        api_key="sk-test",
        base_url="http://switchyard.test/v1",
        # The SDK annotates its own httpx fork here but accepts a plain httpx client at runtime,
        # which is what most users pass.
        http_client=http,  # type: ignore[arg-type]
        max_retries=0,
    ) as sdk:
        yield sdk


class Weather(pydantic.BaseModel):
    city: str
    unit: str = "C"


def test_plain_call_with_sampling_and_metadata(client: openai.OpenAI, ingress: FakeIngress) -> None:
    result = client.chat.completions.create(
        model="gpt-4o",
        messages=[
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": "Hi 🌍 مرحبا", "name": "bob"},
        ],
        temperature=0.2,
        top_p=0.9,
        max_completion_tokens=64,
        stop=["\n\n"],
        seed=42,
        presence_penalty=0.5,
        frequency_penalty=-0.5,
        reasoning_effort="medium",
        user="end-user-1",
        metadata={"team": "search"},
        store=False,
        n=1,
    )
    parsed = ingress.last
    assert parsed.model == "gpt-4o"
    assert parsed.tags == {"team": "search"}
    assert parsed.chat.system == "Be brief."
    assert parsed.chat.messages[0].text() == "Hi 🌍 مرحبا"
    assert parsed.chat.messages[0].name == "bob"
    sampling = parsed.chat.sampling
    assert (sampling.temperature, sampling.top_p, sampling.max_output_tokens) == (0.2, 0.9, 64)
    assert (sampling.stop, sampling.seed, sampling.reasoning_effort) == (["\n\n"], 42, "medium")
    assert (sampling.presence_penalty, sampling.frequency_penalty) == (0.5, -0.5)
    assert parsed.chat.user == "end-user-1"
    # and the SDK understood the answer
    assert result.choices[0].message.content == "ok"
    assert result.system_fingerprint == SIMULATED_FINGERPRINT
    assert result.usage is not None
    assert result.usage.prompt_tokens == 50
    assert result.usage.completion_tokens == 8
    assert result.usage.prompt_tokens_details is not None
    assert result.usage.prompt_tokens_details.cached_tokens == 32
    assert result.usage.completion_tokens_details is not None
    assert result.usage.completion_tokens_details.reasoning_tokens == 3


def test_image_parts(client: openai.OpenAI, ingress: FakeIngress) -> None:
    client.chat.completions.create(
        model="gpt-4o",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Describe"},
                    {
                        "type": "image_url",
                        "image_url": {"url": "https://img.test/a.jpg", "detail": "low"},
                    },
                ],
            }
        ],
    )
    assert ingress.last.chat.messages[0].content == [
        TextPart(text="Describe"),
        ImagePart(url="https://img.test/a.jpg", detail="low"),
    ]


def test_tool_loop_with_the_sdks_own_message_objects(
    client: openai.OpenAI, ingress: FakeIngress
) -> None:
    tool = openai.pydantic_function_tool(Weather, name="get_weather", description="Weather")
    ingress.response = ChatResponse(
        content=[ToolCallPart(id="call_w", name="get_weather", arguments='{"city":"Oslo"}')],
        finish_reason=FinishReason.TOOL_CALLS,
        usage=USAGE,
    )
    first = client.chat.completions.create(
        model="claude-sonnet",
        messages=[{"role": "user", "content": "Weather in Oslo?"}],
        tools=[tool],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        parallel_tool_calls=False,
    )
    parsed = ingress.last
    assert [spec.name for spec in parsed.chat.tools] == ["get_weather"]
    assert parsed.chat.tools[0].strict is True
    assert parsed.chat.tools[0].parameters["required"] == ["city", "unit"]
    assert parsed.chat.tool_choice == ToolChoice(
        mode=ToolChoiceMode.TOOL, name="get_weather", parallel=False
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    calls = [c for c in choice.message.tool_calls or [] if c.type == "function"]
    assert [(c.id, c.function.name, c.function.arguments) for c in calls] == [
        ("call_w", "get_weather", '{"city":"Oslo"}')
    ]

    # Clients append the SDK's message object as-is: it serialises nulls for unused fields.
    ingress.response = ChatResponse(content=[TextPart(text="Cold.")], usage=USAGE)
    second = client.chat.completions.create(
        model="claude-sonnet",
        messages=[
            {"role": "user", "content": "Weather in Oslo?"},
            choice.message,  # type: ignore[list-item]
            {"role": "tool", "tool_call_id": "call_w", "content": "-3C"},
        ],
        tools=[tool],
    )
    assistant, result = ingress.last.chat.messages[1:]
    assert assistant.role is Role.ASSISTANT
    assert assistant.content == [
        ToolCallPart(id="call_w", name="get_weather", arguments='{"city":"Oslo"}')
    ]
    assert result.content == [ToolResultPart(tool_call_id="call_w", content=[TextPart(text="-3C")])]
    assert second.choices[0].message.content == "Cold."


def test_structured_output_through_parse(client: openai.OpenAI, ingress: FakeIngress) -> None:
    ingress.response = ChatResponse(content=[TextPart(text='{"city":"Lima","unit":"F"}')])
    result = client.chat.completions.parse(
        model="gpt-4o", messages=[{"role": "user", "content": "x"}], response_format=Weather
    )
    response_format = ingress.last.chat.response_format
    assert response_format is not None
    assert response_format.type == "json_schema"
    assert response_format.schema_name == "Weather"
    assert response_format.strict is True
    assert response_format.json_schema is not None
    assert set(response_format.json_schema["properties"]) == {"city", "unit"}
    assert result.choices[0].message.parsed == Weather(city="Lima", unit="F")


def test_json_mode(client: openai.OpenAI, ingress: FakeIngress) -> None:
    client.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "json please"}],
        response_format={"type": "json_object"},
    )
    assert ingress.last.chat.response_format is not None
    assert ingress.last.chat.response_format.type == "json_object"


def test_legacy_functions(client: openai.OpenAI, ingress: FakeIngress) -> None:
    client.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "x"}],
        functions=[{"name": "lookup", "parameters": {"type": "object", "properties": {}}}],
        function_call="auto",
    )
    assert [tool.name for tool in ingress.last.chat.tools] == ["lookup"]
    assert ingress.last.chat.tool_choice == ToolChoice(mode=ToolChoiceMode.AUTO)


def test_stream_with_usage(client: openai.OpenAI, ingress: FakeIngress) -> None:
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert ingress.last.stream is True
    assert ingress.last.include_usage is True
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "ok"
    assert chunks[0].choices[0].delta.role == "assistant"
    finish = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finish == ["stop"]
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == 58
    assert all(c.usage is None for c in chunks[:-1])


def test_stream_without_usage_has_no_usage_chunk(
    client: openai.OpenAI, ingress: FakeIngress
) -> None:
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True
        )
    )
    assert ingress.last.include_usage is False
    assert all(c.choices for c in chunks)
    assert all(c.usage is None for c in chunks)


def test_streamed_tool_calls_accumulate_in_the_sdks_stream_helper(
    client: openai.OpenAI, ingress: FakeIngress
) -> None:
    ingress.deltas = [
        ChatDelta(text="Looking up. "),
        ChatDelta(tool_call=ToolCallDelta(index=0, id="call_1", name="get_weather")),
        ChatDelta(tool_call=ToolCallDelta(index=0, arguments='{"city":')),
        ChatDelta(tool_call=ToolCallDelta(index=0, arguments='"Rome"}')),
        ChatDelta(tool_call=ToolCallDelta(index=1, id="call_2", name="get_weather", arguments="{")),
        ChatDelta(tool_call=ToolCallDelta(index=1, arguments='"city":"Nice"}')),
        ChatDelta(finish_reason=FinishReason.TOOL_CALLS, usage=USAGE),
    ]
    with client.chat.completions.stream(
        model="gpt-4o",
        messages=[{"role": "user", "content": "Rome and Nice?"}],
        tools=[openai.pydantic_function_tool(Weather, name="get_weather")],
        stream_options={"include_usage": True},
    ) as stream:
        final = stream.get_final_completion()
    message = final.choices[0].message
    assert message.content == "Looking up. "
    assert final.choices[0].finish_reason == "tool_calls"
    calls = message.tool_calls or []
    assert [(c.id, c.function.name, c.function.arguments) for c in calls] == [
        ("call_1", "get_weather", '{"city":"Rome"}'),
        ("call_2", "get_weather", '{"city":"Nice"}'),
    ]
    assert [c.function.parsed_arguments for c in calls] == [
        Weather(city="Rome"),
        Weather(city="Nice"),
    ]
    assert final.usage is not None
    assert final.usage.prompt_tokens == 50


@pytest.mark.parametrize(
    ("extra", "param"),
    [({"n": 2}, "n"), ({"temperature": 2.5}, "temperature"), ({"logprobs": True}, "logprobs")],
)
def test_refusals_reach_the_sdk_as_bad_request_errors(
    client: openai.OpenAI, extra: dict[str, object], param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "hi"}],
            extra_body=extra,
        )
    error = caught.value
    assert error.status_code == 400
    assert error.code == "invalid_request"
    assert error.param == param
    assert error.type == "invalid_request_error"
    assert param in error.message
