"""Provider and model health (issue 5): a model failing every call trips its circuit, no call
reaches it while the circuit is open, and it closes by itself once the vendor is back.

The test stack's routing config (tests/routing.test.yaml) gives the ``zai`` provider tight
thresholds: 3 failures within 10 s open a circuit for 3 s, and 1 probe success closes it. The
outage is the simulator's (``POST /_sim/outage``), so the vendor really fails every call.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from services.cli import app
from services.stack import RunningStack
from tests.e2e.failover.failover_support import end_sim_outages, sim_calls_by_model, sim_outage

pytestmark = pytest.mark.e2e

MODEL = "zai/glm-4.6"
VENDOR_MODEL = "glm-4.6"
OUTAGE_S = 5.0
COOLDOWN_S = 3.0


def ask(http: httpx.Client, label: str) -> httpx.Response:
    return http.post(
        "/v1/chat/completions",
        json={
            "model": MODEL,
            "messages": [{"role": "user", "content": f"{label} {uuid.uuid4().hex}"}],
        },
        headers={"x-switchyard-timeout": "30"},
    )


def circuit_of(http: httpx.Client, model: str) -> dict[str, Any]:
    body = http.get("/v1/providers", params={"provider": model.split("/")[0]}).json()
    [provider] = body["data"]
    for item in provider["models"]:
        if item["id"] == model:
            found: dict[str, Any] = item
            return found
    raise AssertionError(f"{model} not listed: {provider}")


def test_a_failing_model_trips_its_circuit_sends_nothing_while_open_and_recovers_alone(
    full_stack: RunningStack,
) -> None:
    with httpx.Client(
        base_url=f"http://127.0.0.1:{full_stack.layout.ingress_port}",
        headers={"authorization": f"Bearer {full_stack.admin_key}"},
        timeout=60.0,
        trust_env=False,
    ) as http:
        sim_outage(full_stack, model=VENDOR_MODEL, status=503, seconds=OUTAGE_S)
        try:
            # One request makes three attempts (no other target), three failures: the circuit
            # opens on the third.
            first = ask(http, "trip")
            assert first.status_code == 503
            assert first.headers["x-switchyard-attempts"] == "3"
            time.sleep(1.0)  # every replica's snapshot of the shared state is refreshed by now
            state = circuit_of(http, MODEL)
            assert state["circuit"]["state"] == "open", state
            assert state["errors"] >= 3

            calls_before = sim_calls_by_model(full_stack).get(VENDOR_MODEL, 0)
            refused = [ask(http, "while open") for _ in range(5)]
            assert sim_calls_by_model(full_stack).get(VENDOR_MODEL, 0) == calls_before
            for response in refused:
                assert response.status_code == 503
                assert response.json()["error"]["code"] == "unavailable"
                assert 1 <= int(response.headers["retry-after"]) <= COOLDOWN_S + 1

            # Back after the outage: probes close the circuit with no one resetting anything.
            deadline = time.monotonic() + 30
            while True:
                answer = ask(http, "after")
                if answer.status_code == 200:
                    break
                assert answer.status_code == 503, answer.text
                assert time.monotonic() < deadline, "the circuit never closed"
                time.sleep(0.5)
            time.sleep(1.0)
            assert circuit_of(http, MODEL)["circuit"]["state"] == "closed"
            assert ask(http, "closed again").status_code == 200
        finally:
            end_sim_outages(full_stack)


def test_providers_lists_replicas_capacity_and_model_health(full_stack: RunningStack) -> None:
    with httpx.Client(
        base_url=f"http://127.0.0.1:{full_stack.layout.ingress_port}",
        headers={"authorization": f"Bearer {full_stack.admin_key}"},
        timeout=30.0,
        trust_env=False,
    ) as http:
        assert ask(http, "providers listing").status_code in (200, 503)
        # Workers flush their statistics to Redis once a second.
        deadline = time.monotonic() + 10
        while True:
            body = http.get("/v1/providers").json()
            zai = next(p for p in body["data"] if p["id"] == "zai")
            if any(m["id"] == MODEL for m in zai["models"]) or time.monotonic() > deadline:
                break
            time.sleep(0.25)
        refused = http.get("/v1/providers", headers={"authorization": "Bearer nope"})
        unknown = http.get("/v1/providers", params={"provider": "acme"})
    assert refused.status_code == 401
    assert unknown.status_code == 400
    by_id = {p["id"]: p for p in body["data"]}
    assert {"openai", "anthropic", "zai", "moonshot"} <= set(by_id)
    openai = by_id["openai"]
    assert openai["replicas"], openai
    assert all(r["simulated"] for r in openai["replicas"])
    assert by_id["moonshot"]["capacity"]["rpm"] == 20
    zai = by_id["zai"]
    [model] = [m for m in zai["models"] if m["id"] == MODEL]
    assert model["requests"] >= 1
    assert 0 <= model["error_rate"] <= 1


def test_the_providers_command_prints_the_same_state(
    full_stack: RunningStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWITCHYARD_BASE_URL", full_stack.base_url)
    monkeypatch.setenv("SWITCHYARD_ADMIN_KEY", full_stack.admin_key)
    runner = CliRunner()
    as_json = runner.invoke(app, ["providers", "--json", "--provider", "moonshot"])
    assert as_json.exit_code == 0, as_json.output
    [moonshot] = json.loads(as_json.output)["data"]
    assert moonshot["capacity"]["rpm"] == 20
    table = runner.invoke(app, ["providers"])
    assert table.exit_code == 0, table.output
    assert "moonshot" in table.output
    assert "Providers" in table.output
    monkeypatch.setenv("SWITCHYARD_ADMIN_KEY", "not-the-key-at-all")
    refused = runner.invoke(app, ["providers"])
    assert refused.exit_code == 1
    assert "401" in refused.output
