"""Clients of the whole stack (``full_stack``) for the end-to-end tests."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest

from services.stack import RunningStack
from tests.e2e.e2e_support import Metering


@pytest.fixture(scope="session")
def client(full_stack: RunningStack) -> Iterator[openai.OpenAI]:
    """The official OpenAI SDK pointed at the ingress; the worker owns retries, not the SDK."""
    with openai.OpenAI(
        base_url=full_stack.base_url, api_key=full_stack.admin_key, max_retries=0, timeout=120.0
    ) as sdk:
        yield sdk


@pytest.fixture(scope="session")
def metering(full_stack: RunningStack) -> Metering:
    return Metering(full_stack.layout.metering_port, full_stack.admin_key)


@pytest.fixture(scope="session")
def ingress(full_stack: RunningStack) -> Iterator[httpx.Client]:
    """Plain HTTP to the ingress root (``/healthz``, ``/metrics``, ``/v1/...``), for what the
    SDK cannot send. No key by default: each test says which it presents."""
    with httpx.Client(
        base_url=f"http://127.0.0.1:{full_stack.layout.ingress_port}",
        timeout=120.0,
        trust_env=False,
    ) as http:
        yield http


@pytest.fixture
def admin(full_stack: RunningStack) -> Iterator[httpx.Client]:
    """The organisation's owner (the bootstrap key), as an HTTP client of the ingress."""
    with httpx.Client(
        base_url=f"http://127.0.0.1:{full_stack.layout.ingress_port}",
        headers={"authorization": f"Bearer {full_stack.admin_key}"},
        timeout=30.0,
        trust_env=False,
    ) as http:
        yield http
