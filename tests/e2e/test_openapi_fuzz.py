"""Schemathesis against the live ingress, driven by the OpenAPI document the ingress serves:
bounded, seeded examples for every operation, none of which may be answered with a 5xx or with
a body the document does not describe. Also the edge's refusals that only a real connection
shows: a malformed request, and a too-deep body on a kept-alive connection."""

from __future__ import annotations

import json
import socket
from typing import Any

import httpx
import hypothesis
import pytest
import schemathesis
from schemathesis import Case
from schemathesis.checks import not_a_server_error
from schemathesis.schemas import APIOperation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from services.ingress.openapi import openapi_document
from services.stack import RunningStack

pytestmark = pytest.mark.e2e

# Loaded in-process, since the operations become tests when this module is collected, before
# any stack runs; test_the_document_is_the_one_served pins it to what the ingress serves.
# (schemathesis.pytest.from_fixture would load it from the live ingress, but does not work
# with pytest 9.)
schema = schemathesis.openapi.from_dict(json.loads(openapi_document()))


def test_the_document_is_the_one_served(ingress: httpx.Client) -> None:
    response = ingress.get("/openapi.json")
    assert response.status_code == 200
    assert response.content == openapi_document()


@schema.parametrize()
@hypothesis.settings(
    max_examples=50,
    derandomize=True,  # the same examples every run
    database=None,
    deadline=None,
    suppress_health_check=list(hypothesis.HealthCheck),
)
def test_no_operation_answers_a_5xx(
    case: Case[APIOperation[Any, Any, Any, Any]], full_stack: RunningStack
) -> None:
    case.call_and_validate(
        base_url=f"http://127.0.0.1:{full_stack.layout.ingress_port}",
        headers={"authorization": f"Bearer {full_stack.admin_key}"},
        timeout=30,
        checks=[not_a_server_error, response_schema_conformance, content_type_conformance],
    )


def test_a_malformed_request_gets_openais_error_shape(full_stack: RunningStack) -> None:
    with socket.create_connection(
        ("127.0.0.1", full_stack.layout.ingress_port), timeout=10
    ) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    assert b"content-type: application/json" in head.lower()
    assert json.loads(body)["error"]["type"] == "invalid_request_error"


def test_a_too_deep_body_leaves_the_connection_usable(
    ingress: httpx.Client, full_stack: RunningStack
) -> None:
    auth = {"authorization": f"Bearer {full_stack.admin_key}"}
    deep = b"[" * 300 + b"]" * 300
    body = b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], '
    body += b'"tools": [{"type": "function", "function": {"name": "f", "parameters": {"x": '
    body += deep + b"}}}]}"
    refused = ingress.post(
        "/v1/chat/completions",
        content=body,
        headers={**auth, "content-type": "application/json"},
    )
    assert refused.status_code == 400
    assert refused.json()["error"]["param"].startswith("tools[0].function.parameters.x[0]")
    assert ingress.get("/v1/models", headers=auth).status_code == 200
