"""parse_chat_request: valid shapes become the right contract, invalid ones name their param."""

from __future__ import annotations

import json
from typing import Any

import pytest

from contracts.chat import (
    ImagePart,
    ResponseFormat,
    Role,
    TextPart,
    ToolCallPart,
    ToolChoice,
    ToolChoiceMode,
    ToolResultPart,
)
from contracts.errors import ErrorCode
from services.ingress.protocols import openai_chat
from services.ingress.protocols.openai_chat import (
    ParsedChatRequest,
    ProtocolError,
    parse_chat_request,
)

USER_HI = {"role": "user", "content": "hi"}
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
ASSISTANT_CALL = {
    "role": "assistant",
    "content": None,
    "tool_calls": [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
        }
    ],
}


def parse(**fields: Any) -> ParsedChatRequest:
    body: dict[str, Any] = {"model": "gpt-4o", "messages": [USER_HI]}
    body.update(fields)
    return parse_chat_request(body)


def test_public_surface_is_pinned() -> None:
    assert set(openai_chat.__all__) == {
        "SIMULATED_FINGERPRINT",
        "ChunkRenderer",
        "ParsedChatRequest",
        "ProtocolError",
        "parse_chat_request",
        "render_completion",
        "render_error",
        "render_usage",
    }


def test_minimal_request_has_defaults() -> None:
    parsed = parse()
    assert parsed.model == "gpt-4o"
    assert parsed.stream is False
    assert parsed.include_usage is False
    assert parsed.tags == {}
    assert parsed.chat.system is None
    assert parsed.chat.tool_choice is None
    assert parsed.chat.response_format is None
    assert [m.role for m in parsed.chat.messages] == [Role.USER]
    assert parsed.chat.messages[0].content == [TextPart(text="hi")]


def test_system_and_developer_messages_fold_into_one_system_prompt() -> None:
    parsed = parse(
        messages=[
            {"role": "system", "content": "Be terse."},
            {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
            USER_HI,
            {"role": "assistant", "content": "salut"},
            {"role": "system", "content": "Now answer in German."},
            {"role": "user", "content": "again"},
        ]
    )
    assert parsed.chat.system == "Be terse.\n\nAnswer in French.\n\nNow answer in German."
    assert [m.role for m in parsed.chat.messages] == [Role.USER, Role.ASSISTANT, Role.USER]


def test_text_parts_of_one_system_message_are_concatenated() -> None:
    parsed = parse(
        messages=[
            {
                "role": "system",
                "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
            },
            USER_HI,
        ]
    )
    assert parsed.chat.system == "ab"


def test_user_content_parts_map_to_text_and_image() -> None:
    parsed = parse(
        messages=[
            {
                "role": "user",
                "name": "alice",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": "https://img.test/cat.png"}},
                    {
                        "type": "image_url",
                        "image_url": {
                            "url": "data:image/png;base64,iVBORw0KGgo=",
                            "detail": "high",
                        },
                    },
                ],
            }
        ]
    )
    message = parsed.chat.messages[0]
    assert message.name == "alice"
    assert message.content == [
        TextPart(text="What is this?"),
        ImagePart(url="https://img.test/cat.png"),
        ImagePart(url="data:image/png;base64,iVBORw0KGgo=", detail="high"),
    ]


def test_tool_conversation_round_trips_ids() -> None:
    parsed = parse(
        messages=[
            USER_HI,
            ASSISTANT_CALL,
            {"role": "tool", "tool_call_id": "call_1", "content": "18C and sunny"},
        ],
        tools=[WEATHER_TOOL],
    )
    assistant, tool = parsed.chat.messages[1:]
    assert assistant.role is Role.ASSISTANT
    assert assistant.content == [
        ToolCallPart(id="call_1", name="get_weather", arguments='{"city":"Paris"}')
    ]
    assert tool.role is Role.TOOL
    assert tool.content == [
        ToolResultPart(tool_call_id="call_1", content=[TextPart(text="18C and sunny")])
    ]
    assert parsed.chat.tools[0].name == "get_weather"
    assert parsed.chat.tools[0].description == "Weather for a city"
    assert parsed.chat.tools[0].parameters["properties"] == {"city": {"type": "string"}}


def test_assistant_text_beside_tool_calls_comes_first() -> None:
    message = {**ASSISTANT_CALL, "content": "Let me check."}
    parsed = parse(messages=[USER_HI, message])
    kinds = [type(part) for part in parsed.chat.messages[1].content]
    assert kinds == [TextPart, ToolCallPart]


def test_assistant_refusal_and_content_parts() -> None:
    parsed = parse(
        messages=[
            USER_HI,
            {"role": "assistant", "content": None, "refusal": "I can't help with that."},
            USER_HI,
            {
                "role": "assistant",
                "content": [{"type": "text", "text": "x"}, {"type": "refusal", "refusal": "no"}],
            },
        ]
    )
    assert parsed.chat.messages[1].text() == "I can't help with that."
    assert parsed.chat.messages[3].content == [TextPart(text="x"), TextPart(text="no")]


def test_legacy_function_call_and_function_role_are_paired() -> None:
    parsed = parse(
        messages=[
            USER_HI,
            {
                "role": "assistant",
                "content": None,
                "function_call": {"name": "get_weather", "arguments": "{}"},
            },
            {"role": "function", "name": "get_weather", "content": "rainy"},
        ],
        functions=[WEATHER_TOOL["function"]],
        function_call={"name": "get_weather"},
    )
    call = parsed.chat.messages[1].content[0]
    result = parsed.chat.messages[2].content[0]
    assert isinstance(call, ToolCallPart)
    assert isinstance(result, ToolResultPart)
    assert call.name == "get_weather"
    assert result.tool_call_id == call.id
    assert result.content == [TextPart(text="rainy")]
    assert parsed.chat.tool_choice == ToolChoice(mode=ToolChoiceMode.TOOL, name="get_weather")
    assert [tool.name for tool in parsed.chat.tools] == ["get_weather"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("none", ToolChoice(mode=ToolChoiceMode.NONE)),
        ("auto", ToolChoice(mode=ToolChoiceMode.AUTO)),
        ("required", ToolChoice(mode=ToolChoiceMode.REQUIRED)),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            ToolChoice(mode=ToolChoiceMode.TOOL, name="get_weather"),
        ),
    ],
)
def test_tool_choice_modes(raw: object, expected: ToolChoice) -> None:
    assert parse(tools=[WEATHER_TOOL], tool_choice=raw).chat.tool_choice == expected


def test_parallel_tool_calls_alone_gives_auto_with_parallel_flag() -> None:
    parsed = parse(tools=[WEATHER_TOOL], parallel_tool_calls=False)
    assert parsed.chat.tool_choice == ToolChoice(mode=ToolChoiceMode.AUTO, parallel=False)
    parsed = parse(tools=[WEATHER_TOOL], tool_choice="required", parallel_tool_calls=True)
    assert parsed.chat.tool_choice == ToolChoice(mode=ToolChoiceMode.REQUIRED, parallel=True)


def test_tool_without_parameters_gets_an_empty_object_schema() -> None:
    parsed = parse(tools=[{"type": "function", "function": {"name": "ping", "strict": True}}])
    assert parsed.chat.tools[0].parameters == {"type": "object", "properties": {}}
    assert parsed.chat.tools[0].strict is True


def test_sampling_parameters() -> None:
    sampling = parse(
        temperature=0,
        top_p=1,
        max_completion_tokens=256,
        stop=["\n", "END"],
        seed=-7,
        presence_penalty=-2,
        frequency_penalty=1.5,
        reasoning_effort="low",
    ).chat.sampling
    assert sampling.temperature == 0.0
    assert sampling.top_p == 1.0
    assert sampling.max_output_tokens == 256
    assert sampling.stop == ["\n", "END"]
    assert sampling.seed == -7
    assert sampling.presence_penalty == -2.0
    assert sampling.frequency_penalty == 1.5
    assert sampling.reasoning_effort == "low"


def test_max_tokens_is_accepted_as_the_legacy_spelling() -> None:
    assert parse(max_tokens=10).chat.sampling.max_output_tokens == 10
    assert parse(max_tokens=10, max_completion_tokens=10).chat.sampling.max_output_tokens == 10


def test_nullable_parameters_may_be_null() -> None:
    parsed = parse(
        temperature=None,
        top_p=None,
        stop=None,
        n=None,
        stream=None,
        stream_options=None,
        metadata=None,
        tools=None,
        tool_choice=None,
        response_format=None,
        logprobs=None,
        store=None,
        parallel_tool_calls=None,
        reasoning_effort=None,
        max_tokens=None,
    )
    assert parsed.chat.sampling.temperature is None
    assert parsed.stream is False


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"type": "text"}, None),
        ({"type": "json_object"}, ResponseFormat(type="json_object")),
        (
            {
                "type": "json_schema",
                "json_schema": {
                    "name": "city",
                    "schema": {"type": "object", "properties": {"name": {"type": "string"}}},
                    "strict": True,
                },
            },
            ResponseFormat(
                type="json_schema",
                schema_name="city",
                json_schema={"type": "object", "properties": {"name": {"type": "string"}}},
                strict=True,
            ),
        ),
    ],
)
def test_response_formats(raw: object, expected: ResponseFormat | None) -> None:
    assert parse(response_format=raw).chat.response_format == expected


def test_stream_with_usage_and_metadata_and_user() -> None:
    parsed = parse(
        stream=True,
        stream_options={"include_usage": True},
        metadata={"team": "search", "ticket": "SY-1"},
        user="user-42",
        store=True,
        n=1,
        logprobs=False,
    )
    assert parsed.stream is True
    assert parsed.include_usage is True
    assert parsed.tags == {"team": "search", "ticket": "SY-1"}
    assert parsed.chat.user == "user-42"


def test_metadata_at_the_documented_limits_is_accepted() -> None:
    metadata = {f"{i:064d}": "v" * 512 for i in range(16)}
    assert parse(metadata=metadata).tags == metadata


def test_unknown_top_level_fields_are_ignored() -> None:
    parsed = parse(prompt_cache_key="abc", safety_identifier="u1", some_future_flag={"x": 1})
    assert parsed.model == "gpt-4o"


def test_unicode_passes_through_untouched() -> None:
    text = "héllo 👋🏽 مرحبا שלום \u0000 \u200f end \U0001f9d1\u200d\U0001f4bb"
    decoded = json.loads(
        json.dumps({"model": "m", "messages": [{"role": "user", "content": text}]})
    )
    parsed = parse_chat_request(decoded)
    assert parsed.chat.messages[0].text() == text


def test_empty_text_parts_are_dropped_not_kept_as_empty_parts() -> None:
    content = [{"type": "text", "text": ""}, {"type": "text", "text": "hi"}]
    parsed = parse(messages=[{"role": "user", "content": content}])
    assert parsed.chat.messages[0].content == [TextPart(text="hi")]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "string too short. Expected a string with minimum length 1"),
        ([], "empty array. Expected an array with minimum length 1"),
        ([{"type": "text", "text": ""}], "expected at least one content part"),
    ],
)
def test_a_user_message_with_no_content_is_refused_naming_it(content: object, message: str) -> None:
    # Not dropped: a conversation left without it fails at the vendor, with a misleading reason.
    later_turn = [
        USER_HI,
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": content},
    ]
    with pytest.raises(ProtocolError) as refused:
        parse(messages=later_turn)
    assert refused.value.param == "messages[2].content"
    assert refused.value.info.message.startswith(f"Invalid 'messages[2].content': {message}")


EMPTY_TEXT = {"type": "text", "text": ""}


@pytest.mark.parametrize("role", ["system", "developer"])
def test_a_conversation_of_empty_system_messages_only_is_refused(role: str) -> None:
    with pytest.raises(ProtocolError) as refused:
        parse(messages=[{"role": role, "content": ""}, {"role": role, "content": [EMPTY_TEXT]}])
    assert refused.value.param == "messages[1].content"


def test_an_empty_system_message_beside_a_real_turn_is_accepted() -> None:
    parsed = parse(messages=[{"role": "system", "content": ""}, USER_HI])
    assert parsed.chat.system == ""
    assert [m.role for m in parsed.chat.messages] == [Role.USER]


# ---- refusals ------------------------------------------------------------------------------

INVALID: list[tuple[str, dict[str, Any], str | None]] = [
    # (case, fields merged over a valid body, expected param)
    ("model missing", {"model": None}, "model"),
    ("model empty", {"model": ""}, "model"),
    ("model not a string", {"model": 4}, "model"),
    ("messages missing", {"messages": None}, "messages"),
    ("messages empty", {"messages": []}, "messages"),
    ("messages not a list", {"messages": "hi"}, "messages"),
    ("message not an object", {"messages": ["hi"]}, "messages[0]"),
    ("role missing", {"messages": [{"content": "x"}]}, "messages[0].role"),
    ("role unknown", {"messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
    ("user content missing", {"messages": [{"role": "user"}]}, "messages[0].content"),
    (
        "user content wrong type",
        {"messages": [{"role": "user", "content": 3}]},
        "messages[0].content",
    ),
    (
        "user content empty list",
        {"messages": [{"role": "user", "content": []}]},
        "messages[0].content",
    ),
    (
        "part type unknown",
        {"messages": [{"role": "user", "content": [{"type": "video"}]}]},
        "messages[0].content[0].type",
    ),
    (
        "text part without text",
        {"messages": [{"role": "user", "content": [{"type": "text"}]}]},
        "messages[0].content[0].text",
    ),
    (
        "audio input",
        {
            "messages": [
                USER_HI,
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "listen"},
                        {"type": "input_audio", "input_audio": {"data": "AA==", "format": "wav"}},
                    ],
                },
            ]
        },
        "messages[1].content[1]",
    ),
    (
        "file input",
        {"messages": [{"role": "user", "content": [{"type": "file", "file": {"file_id": "f"}}]}]},
        "messages[0].content[0]",
    ),
    (
        "image url missing",
        {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
        "messages[0].content[0].image_url.url",
    ),
    (
        "image url scheme",
        {
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": "file:///etc/passwd"}}],
                }
            ]
        },
        "messages[0].content[0].image_url.url",
    ),
    (
        "image detail",
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": "https://x", "detail": "max"}}
                    ],
                }
            ]
        },
        "messages[0].content[0].image_url.detail",
    ),
    (
        "image in system message",
        {
            "messages": [
                {
                    "role": "system",
                    "content": [{"type": "image_url", "image_url": {"url": "https://x"}}],
                },
                USER_HI,
            ]
        },
        "messages[0].content[0].type",
    ),
    ("system content missing", {"messages": [{"role": "system"}, USER_HI]}, "messages[0].content"),
    (
        "assistant without content or tool calls",
        {"messages": [USER_HI, {"role": "assistant", "content": None}]},
        "messages[1].content",
    ),
    (
        "tool call without id",
        {
            "messages": [
                USER_HI,
                {
                    "role": "assistant",
                    "tool_calls": [
                        {"type": "function", "function": {"name": "f", "arguments": "{}"}}
                    ],
                },
            ]
        },
        "messages[1].tool_calls[0].id",
    ),
    (
        "tool call arguments not a string",
        {
            "messages": [
                USER_HI,
                {
                    "role": "assistant",
                    "tool_calls": [
                        {"id": "c", "type": "function", "function": {"name": "f", "arguments": {}}}
                    ],
                },
            ]
        },
        "messages[1].tool_calls[0].function.arguments",
    ),
    (
        "custom tool call",
        {
            "messages": [
                USER_HI,
                {"role": "assistant", "tool_calls": [{"id": "c", "type": "custom", "custom": {}}]},
            ]
        },
        "messages[1].tool_calls[0].type",
    ),
    (
        "tool result without tool_call_id",
        {"messages": [USER_HI, ASSISTANT_CALL, {"role": "tool", "content": "x"}]},
        "messages[2].tool_call_id",
    ),
    (
        "orphan tool result",
        {"messages": [USER_HI, {"role": "tool", "tool_call_id": "call_9", "content": "x"}]},
        "messages[1].tool_call_id",
    ),
    (
        "function result without a legacy call",
        {"messages": [USER_HI, {"role": "function", "name": "f", "content": "x"}]},
        "messages[1].name",
    ),
    ("temperature above 2", {"temperature": 2.5}, "temperature"),
    ("temperature below 0", {"temperature": -0.1}, "temperature"),
    ("temperature a string", {"temperature": "0.5"}, "temperature"),
    ("temperature a boolean", {"temperature": True}, "temperature"),
    ("temperature NaN", {"temperature": float("nan")}, "temperature"),
    ("top_p above 1", {"top_p": 1.01}, "top_p"),
    ("presence_penalty below -2", {"presence_penalty": -2.5}, "presence_penalty"),
    ("frequency_penalty above 2", {"frequency_penalty": 3}, "frequency_penalty"),
    ("max_tokens zero", {"max_tokens": 0}, "max_tokens"),
    ("max_completion_tokens negative", {"max_completion_tokens": -1}, "max_completion_tokens"),
    ("max_completion_tokens a float", {"max_completion_tokens": 10.5}, "max_completion_tokens"),
    ("max tokens disagree", {"max_tokens": 5, "max_completion_tokens": 6}, "max_tokens"),
    ("stop too many", {"stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ("stop item not a string", {"stop": ["a", 1]}, "stop[1]"),
    ("stop wrong type", {"stop": 5}, "stop"),
    ("seed a string", {"seed": "1"}, "seed"),
    ("reasoning_effort unknown", {"reasoning_effort": "extreme"}, "reasoning_effort"),
    ("reasoning_effort not representable", {"reasoning_effort": "xhigh"}, "reasoning_effort"),
    ("n above 1", {"n": 2}, "n"),
    ("n wrong type", {"n": "1"}, "n"),
    ("logprobs", {"logprobs": True}, "logprobs"),
    ("top_logprobs", {"top_logprobs": 3}, "top_logprobs"),
    ("audio output modality", {"modalities": ["text", "audio"]}, "modalities[1]"),
    ("logit_bias", {"logit_bias": {"50256": -100}}, "logit_bias"),
    ("stream wrong type", {"stream": "yes"}, "stream"),
    ("store wrong type", {"store": "no"}, "store"),
    ("user wrong type", {"user": 7}, "user"),
    (
        "stream_options without stream",
        {"stream_options": {"include_usage": True}},
        "stream_options",
    ),
    (
        "include_usage wrong type",
        {"stream": True, "stream_options": {"include_usage": "yes"}},
        "stream_options.include_usage",
    ),
    ("metadata not an object", {"metadata": ["a"]}, "metadata"),
    ("metadata too many keys", {"metadata": {f"k{i}": "v" for i in range(17)}}, "metadata"),
    ("metadata key too long", {"metadata": {"k" * 65: "v"}}, "metadata." + "k" * 65),
    ("metadata value too long", {"metadata": {"k": "v" * 513}}, "metadata.k"),
    ("metadata value not a string", {"metadata": {"k": 1}}, "metadata.k"),
    ("tools not a list", {"tools": {"type": "function"}}, "tools"),
    ("tool type custom", {"tools": [{"type": "custom", "custom": {"name": "x"}}]}, "tools[0].type"),
    ("tool without function", {"tools": [{"type": "function"}]}, "tools[0].function"),
    (
        "tool name pattern",
        {"tools": [{"type": "function", "function": {"name": "get weather"}}]},
        "tools[0].function.name",
    ),
    (
        "tool name too long",
        {"tools": [{"type": "function", "function": {"name": "x" * 65}}]},
        "tools[0].function.name",
    ),
    ("duplicate tool names", {"tools": [WEATHER_TOOL, WEATHER_TOOL]}, "tools[1].function.name"),
    (
        "tool parameters not an object",
        {"tools": [{"type": "function", "function": {"name": "f", "parameters": "{}"}}]},
        "tools[0].function.parameters",
    ),
    (
        "tools and functions together",
        {"tools": [WEATHER_TOOL], "functions": [WEATHER_TOOL["function"]]},
        "functions",
    ),
    ("tool_choice unknown mode", {"tools": [WEATHER_TOOL], "tool_choice": "any"}, "tool_choice"),
    ("tool_choice wrong type", {"tools": [WEATHER_TOOL], "tool_choice": 1}, "tool_choice"),
    ("tool_choice required without tools", {"tool_choice": "required"}, "tool_choice"),
    (
        "tool_choice names an absent tool",
        {
            "tools": [WEATHER_TOOL],
            "tool_choice": {"type": "function", "function": {"name": "nope"}},
        },
        "tool_choice.function.name",
    ),
    (
        "tool_choice allowed_tools",
        {"tools": [WEATHER_TOOL], "tool_choice": {"type": "allowed_tools", "allowed_tools": {}}},
        "tool_choice.type",
    ),
    (
        "parallel_tool_calls wrong type",
        {"tools": [WEATHER_TOOL], "parallel_tool_calls": "yes"},
        "parallel_tool_calls",
    ),
    (
        "legacy function_call unknown",
        {"functions": [WEATHER_TOOL["function"]], "function_call": "required"},
        "function_call",
    ),
    ("response_format unknown type", {"response_format": {"type": "yaml"}}, "response_format.type"),
    ("response_format without type", {"response_format": {}}, "response_format.type"),
    (
        "json_schema missing",
        {"response_format": {"type": "json_schema"}},
        "response_format.json_schema",
    ),
    (
        "json_schema without name",
        {"response_format": {"type": "json_schema", "json_schema": {"schema": {}}}},
        "response_format.json_schema.name",
    ),
    (
        "json_schema schema not an object",
        {"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": []}}},
        "response_format.json_schema.schema",
    ),
]


@pytest.mark.parametrize(("fields", "param"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_requests_name_the_param(fields: dict[str, Any], param: str) -> None:
    body: dict[str, Any] = {"model": "gpt-4o", "messages": [USER_HI]}
    body.update(fields)
    body = {key: value for key, value in body.items() if value is not None}
    with pytest.raises(ProtocolError) as caught:
        parse_chat_request(body)
    info = caught.value.info
    assert info.param == param
    assert info.code is ErrorCode.INVALID_REQUEST
    assert info.code.http_status == 400
    assert param.split(".")[0].split("[")[0] in info.message


@pytest.mark.parametrize("payload", [None, [], "text", 3, [{"model": "m"}]])
def test_payload_that_is_not_an_object_is_refused(payload: object) -> None:
    with pytest.raises(ProtocolError) as caught:
        parse_chat_request(payload)
    assert caught.value.info.param is None
    assert "JSON object" in caught.value.info.message


def test_messages_are_checked_with_their_message_text() -> None:
    with pytest.raises(ProtocolError) as caught:
        parse(temperature=3)
    assert caught.value.info.message == (
        "Invalid 'temperature': decimal above maximum value. Expected a value <= 2, "
        "but got 3 instead."
    )
    with pytest.raises(ProtocolError) as caught:
        parse(messages=[{"role": "user", "content": [{"type": "input_audio"}]}])
    assert "not supported" in caught.value.info.message


def test_a_models_list_follows_model_and_may_stand_in_for_it() -> None:
    parsed = parse(models=["claude-haiku-4-5", "gpt-4o", "gemini-2.5-flash", "claude-haiku-4-5"])
    assert parsed.model == "gpt-4o"
    assert parsed.models == ["gpt-4o", "claude-haiku-4-5", "gemini-2.5-flash"]

    alone = parse_chat_request({"models": ["claude-haiku-4-5", "gpt-4o"], "messages": [USER_HI]})
    assert alone.model == "claude-haiku-4-5"
    assert alone.models == ["claude-haiku-4-5", "gpt-4o"]
    assert parse().models == []


@pytest.mark.parametrize(
    ("models", "param"),
    [
        ([], "models"),
        ([f"m{i}" for i in range(11)], "models"),
        (["gpt-4o", 3], "models[1]"),
        (["gpt-4o", ""], "models[1]"),
        ("gpt-4o", "models"),
    ],
)
def test_a_bad_models_list_is_refused_naming_the_entry(models: object, param: str) -> None:
    with pytest.raises(ProtocolError) as refused:
        parse(models=models)
    assert refused.value.info.param == param


def test_without_model_or_models_the_model_is_required() -> None:
    with pytest.raises(ProtocolError) as refused:
        parse_chat_request({"messages": [USER_HI]})
    assert refused.value.info.param == "model"
