"""The organisation's owner, as an HTTP client of the stack's ingress."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from services.stack import RunningStack


@pytest.fixture
def admin(full_stack: RunningStack) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=f"http://127.0.0.1:{full_stack.layout.ingress_port}",
        headers={"authorization": f"Bearer {full_stack.admin_key}"},
        timeout=30.0,
        trust_env=False,
    ) as client:
        yield client
