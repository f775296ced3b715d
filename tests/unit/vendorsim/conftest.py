"""Fixtures for the vendor simulator: the app in-process (a fresh one per test, reached through
``httpx.ASGITransport``) and a real server on a free local port (one per session, reset after
each test that uses it) for the official SDKs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from services.vendorsim import SimKnobs, VendorSim, create_app
from services.vendorsim.server import RunningSim, serve_in_background


@pytest.fixture
def sim_app() -> VendorSim:
    # The defaults, not the environment: a developer's SWITCHYARD_VENDORSIM_* must not leak in.
    return create_app(SimKnobs.model_construct())


@pytest.fixture
async def sim(sim_app: VendorSim) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=sim_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://vendorsim") as client:
        yield client


@pytest.fixture(scope="session")
def _sim_server() -> Iterator[RunningSim]:
    with serve_in_background(SimKnobs.model_construct()) as running:
        yield running


@pytest.fixture
def live_sim(_sim_server: RunningSim) -> Iterator[RunningSim]:
    yield _sim_server
    httpx.post(f"{_sim_server.base_url}/_sim/reset").raise_for_status()
