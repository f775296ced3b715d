"""The whole stack, started by the ``full_stack`` fixture exactly as `make up` starts it."""

from __future__ import annotations

import signal

import httpx
import pytest

from services.stack import RunningStack

pytestmark = pytest.mark.e2e


def test_every_component_is_healthy(full_stack: RunningStack) -> None:
    unhealthy = {s.name: s.problem for s in full_stack.stack.status() if not s.healthy}
    assert unhealthy == {}
    assert full_stack.base_url == f"http://127.0.0.1:{full_stack.layout.ingress_port}/v1"


def test_a_worker_killed_hard_is_restarted(full_stack: RunningStack) -> None:
    stack = full_stack.stack
    before = stack.pid("worker-openai")
    stack.kill("worker-openai", signal.SIGKILL)
    assert not stack.is_running("worker-openai")
    # The rest of the stack does not depend on one worker process being alive.
    assert stack.is_running("worker-anthropic")
    assert stack.is_running("ingress")

    stack.restart("worker-openai")

    assert stack.pid("worker-openai") not in (None, before)
    assert {s.name: s.healthy for s in stack.status()}["worker-openai"]


def test_the_ingress_answers_with_the_admin_key(full_stack: RunningStack) -> None:
    response = httpx.get(
        f"{full_stack.base_url}/models",
        headers={"Authorization": f"Bearer {full_stack.admin_key}"},
        timeout=10.0,
        trust_env=False,
    )
    assert response.status_code == 200
    assert response.json()["object"] == "list"
