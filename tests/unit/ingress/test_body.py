"""Reading the body of ``POST /v1/chat/completions``: content type, syntax and nesting are
refused with a 400 in OpenAI's error shape before anything else looks at the body."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from services.ingress.body import MAX_JSON_DEPTH, decode_json_body
from services.ingress.errors import ApiError

CHAT = "/v1/chat/completions"
VALID = {"model": "no-such-vendor/no-such-model", "messages": [{"role": "user", "content": "hi"}]}


def nested(depth: int, leaf: object = 1) -> object:
    """``depth`` levels of arrays around ``leaf``, built without recursion."""
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


def error_of(response: httpx.Response) -> dict[str, Any]:
    assert response.headers["content-type"] == "application/json"
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


async def post_raw(
    client: httpx.AsyncClient, body: bytes, content_type: str | None
) -> httpx.Response:
    headers = {} if content_type is None else {"content-type": content_type}
    return await client.post(CHAT, content=body, headers=headers)


# ---- content type ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/jsonx"]
)
async def test_a_non_json_content_type_is_refused_in_openais_words(
    app_client: httpx.AsyncClient, content_type: str
) -> None:
    response = await post_raw(app_client, orjson.dumps(VALID), content_type)
    assert response.status_code == 400
    error = error_of(response)
    assert error["type"] == "invalid_request_error"
    assert error["message"] == (
        f"Unsupported content type: '{content_type}'. This API method only accepts "
        f"'application/json' requests, but you specified the header "
        f"'Content-Type: {content_type}'. Please try again with a supported content type."
    )


async def test_a_missing_content_type_is_refused(app_client: httpx.AsyncClient) -> None:
    response = await post_raw(app_client, orjson.dumps(VALID), None)
    assert response.status_code == 400
    message = error_of(response)["message"]
    assert "Missing content type" in message
    assert "'Content-Type: application/json'" in message


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", "Application/JSON"]
)
async def test_json_with_or_without_parameters_passes_the_content_type_check(
    app_client: httpx.AsyncClient, content_type: str
) -> None:
    # The model is unknown, so the request stops at the catalogue: past the body checks.
    response = await post_raw(app_client, orjson.dumps(VALID), content_type)
    assert response.status_code == 404, response.text
    assert error_of(response)["param"] == "model"


async def test_the_key_is_checked_before_the_content_type(app_client: httpx.AsyncClient) -> None:
    response = await app_client.post(
        CHAT, content=b"hi", headers={"content-type": "text/plain", "authorization": "Bearer x"}
    )
    assert response.status_code == 401


# ---- nesting -----------------------------------------------------------------------------------


def tool_with_parameters(parameters: object) -> dict[str, Any]:
    return {
        **VALID,
        "tools": [{"type": "function", "function": {"name": "f", "parameters": parameters}}],
    }


def deep_tool_body(depth: int) -> bytes:
    """A body whose tool parameters hold arrays down to level ``depth``; written as text, since
    orjson refuses to serialise past 255 levels."""
    # The body, its tools array, the tool, its function and `parameters` are the first 5 levels.
    arrays = depth - 5
    marker = b'"DEEP"'
    template = orjson.dumps(tool_with_parameters({"type": "object", "x": "DEEP"}))
    return template.replace(marker, b"[" * arrays + b"1" + b"]" * arrays)


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 199, 255, 256, 1000])
async def test_too_deep_tool_parameters_are_a_400_naming_the_path(
    app_client: httpx.AsyncClient, depth: int
) -> None:
    response = await post_raw(app_client, deep_tool_body(depth), "application/json")
    assert response.status_code == 400, response.text
    error = error_of(response)
    deepest = "tools[0].function.parameters.x" + "[0]" * (MAX_JSON_DEPTH - 5)
    assert error["param"] == deepest
    assert error["message"] == (
        f"Invalid '{deepest}': nested too deeply. Expected at most {MAX_JSON_DEPTH} levels of "
        f"objects and arrays in the request body, but this value is at level {MAX_JSON_DEPTH + 1}."
    )


async def test_a_too_deep_response_format_schema_names_its_path(
    app_client: httpx.AsyncClient,
) -> None:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(40):
        schema = {"type": "object", "properties": {"a": schema}}
    body = {
        **VALID,
        "response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": schema}},
    }
    response = await post_raw(app_client, orjson.dumps(body), "application/json")
    assert response.status_code == 400
    param = error_of(response)["param"]
    assert param.startswith("response_format.json_schema.schema.properties.a.properties.a.")


async def test_nesting_at_the_limit_is_accepted(app_client: httpx.AsyncClient) -> None:
    response = await post_raw(app_client, deep_tool_body(MAX_JSON_DEPTH), "application/json")
    assert response.status_code == 404, response.text  # past the body checks: unknown model


async def test_a_body_deeper_than_orjson_reads_is_a_clear_400(
    app_client: httpx.AsyncClient,
) -> None:
    raw = b'{"model": "m", "messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    response = await post_raw(app_client, raw, "application/json")
    assert response.status_code == 400
    error = error_of(response)
    assert error["message"] == (
        f"The request body is nested too deeply: at most {MAX_JSON_DEPTH} levels of objects "
        f"and arrays are allowed."
    )


def test_the_depth_check_walks_any_depth_without_recursing() -> None:
    # Deeper than orjson would ever hand over, and far past Python's recursion limit.
    from services.ingress.protocols._json import check_nesting
    from services.ingress.protocols.errors import ProtocolError

    with pytest.raises(ProtocolError) as refused:
        check_nesting({"a": nested(100_000)}, max_depth=MAX_JSON_DEPTH)
    assert refused.value.param == "a" + "[0]" * (MAX_JSON_DEPTH - 1)


def test_the_depth_check_counts_levels_not_items() -> None:
    wide = {"messages": [{"content": [{"text": str(i)} for i in range(50)]} for _ in range(200)]}
    assert decode_json_body(orjson.dumps(wide)) == wide


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "The request body is empty."),
        (b"  \n", "The request body is empty."),
        (b"{", "The request body is not valid JSON"),
    ],
)
def test_empty_and_malformed_bodies_are_refused(raw: bytes, message: str) -> None:
    with pytest.raises(ApiError) as refused:
        decode_json_body(raw)
    assert refused.value.info.message.startswith(message)
    assert refused.value.info.code.http_status == 400
