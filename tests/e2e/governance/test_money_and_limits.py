"""Rate limits, spend limits, prepaid credit and spend alerts, enforced at the ingress before
any vendor call (issue 7), against the real stack."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from decimal import ROUND_CEILING, Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from services.stack import RunningStack
from tests.e2e.e2e_support import Metering, unique
from tests.e2e.faults.fault_support import kill, restart, restored
from tests.e2e.governance.governance_support import (
    ORG,
    assert_shape,
    bearer,
    chat_with,
    credit,
    grant,
    new_account,
    new_key,
    new_project,
    ok,
)

pytestmark = pytest.mark.e2e

NANO = Decimal("1e-9")


def ceil_nano(cost: Decimal) -> Decimal:
    """A cost as the admission ledger counts it: rounded up to a billionth of a dollar."""
    return cost.quantize(NANO, rounding=ROUND_CEILING)


def test_a_rate_limit_refuses_with_openais_headers_and_counts_per_model(
    admin: httpx.Client,
) -> None:
    project = new_project(admin)
    key = new_key(admin, project["id"])
    limit = ok(
        admin.post(
            f"{ORG}/projects/{project['id']}/rate_limits/rl-openai__gpt-4o-mini",
            json={"max_requests_per_1_minute": 3},
        )
    )
    assert_shape("ProjectRateLimit", limit)
    assert limit["model"] == "openai/gpt-4o-mini"
    listed = ok(admin.get(f"{ORG}/projects/{project['id']}/rate_limits"))
    assert_shape("ProjectRateLimitListResponse", listed)
    assert [r["id"] for r in listed["data"]] == ["rl-openai__gpt-4o-mini"]

    answers = [chat_with(admin, key, unique("rl")) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert answers[-1].headers["x-ratelimit-limit-requests"] == "3"
    assert answers[-1].headers["x-ratelimit-remaining-requests"] == "0"
    refused = chat_with(admin, key, unique("rl"))
    assert refused.status_code == 429
    assert refused.json()["error"]["type"] == "rate_limit_error"
    assert int(refused.headers["retry-after"]) >= 1
    # Another model of the project is not limited by this one's limit.
    assert chat_with(admin, key, unique("rl"), model="gpt-4o").status_code == 200

    # Tokens per minute: a request that can never fit is refused without a retry-after.
    ok(
        admin.post(
            f"{ORG}/projects/{project['id']}/rate_limits/rl-openai__gpt-4o",
            json={"max_tokens_per_1_minute": 500},
        )
    )
    too_big = chat_with(admin, key, unique("rl"), model="gpt-4o", max_tokens=1000)
    assert too_big.status_code == 429
    assert "retry-after" not in too_big.headers
    # A model chosen by `auto` (here the only one the project may use) is limited as well.
    ok(
        admin.post(
            f"{ORG}/projects/{project['id']}/model_permissions",
            json={"mode": "allow_list", "model_ids": ["claude-haiku-4-5"]},
        )
    )
    ok(
        admin.post(
            f"{ORG}/projects/{project['id']}/rate_limits/rl-anthropic__claude-haiku-4-5",
            json={"max_requests_per_1_minute": 1},
        )
    )
    chosen = [chat_with(admin, key, unique("auto"), model="auto:cheap") for _ in range(2)]
    assert chosen[0].status_code == 200, chosen[0].text
    assert chosen[0].headers["x-switchyard-model"] == "anthropic/claude-haiku-4-5"
    assert chosen[1].status_code == 429
    assert chosen[1].json()["error"]["type"] == "rate_limit_error"

    bad = admin.post(
        f"{ORG}/projects/{project['id']}/rate_limits/rl-openai__gpt-4o",
        json={"max_requests_per_1_minute": -1},
    )
    assert bad.status_code == 400
    assert (
        admin.post(f"{ORG}/projects/{project['id']}/rate_limits/rl-nope", json={}).status_code
        == 404
    )


def test_a_spend_limit_stops_the_project_before_the_vendor(
    admin: httpx.Client, metering: Metering
) -> None:
    project = new_project(admin)
    key = new_key(admin, project["id"])
    shown = ok(admin.get(f"{ORG}/projects/{project['id']}/spend_limit"))
    assert_shape("ProjectSpendLimitResource", shown)
    assert shown["enforcement"]["status"] == "inactive"
    limit = ok(
        admin.post(
            f"{ORG}/projects/{project['id']}/spend_limit",
            json={"threshold_amount": 1, "currency": "USD", "interval": "month"},
        )
    )
    assert_shape("ProjectSpendLimitResource", limit)
    assert limit["enforcement"]["status"] == "enforcing"
    # One cent of gpt-4o: a few hundred-token answers, then 402 before any vendor call.
    statuses = []
    for _ in range(30):
        answer = chat_with(
            admin, key, f"{unique('spend')} [sim:tokens=300]", model="gpt-4o", max_tokens=300
        )
        statuses.append(answer.status_code)
        if answer.status_code == 402:
            body = answer.json()["error"]
            assert body["code"] == "insufficient_quota"
            assert "spend limit" in body["message"]
            break
        assert answer.status_code == 200, answer.text
        metering.wait_rows(answer.headers["x-request-id"])
    assert statuses[-1] == 402
    assert 1 < len(statuses) < 30
    removed = ok(admin.delete(f"{ORG}/projects/{project['id']}/spend_limit"))
    assert_shape("ProjectSpendLimitDeletedResource", removed)
    assert chat_with(admin, key, unique("spend"), model="gpt-4o").status_code == 200


def test_bad_money_is_refused_cleanly(admin: httpx.Client) -> None:
    project = new_project(admin)
    for amount in ("-1", "0", "abc", "1e400", "0.0000001", "1000001", None, True):
        refused = admin.post(
            f"{ORG}/projects/{project['id']}/credit/grants", json={"amount": amount}
        )
        assert refused.status_code == 400, (amount, refused.text)
        assert refused.json()["error"]["param"] == "amount"
    assert (
        admin.post(
            f"{ORG}/projects/{project['id']}/spend_limit",
            json={"threshold_amount": 1.5, "currency": "USD", "interval": "month"},
        ).status_code
        == 400
    )


async def test_concurrent_requests_never_spend_more_than_the_credit(
    admin: httpx.Client, full_stack: RunningStack, metering: Metering
) -> None:
    """Credit for about 20 requests' maximum cost, 200 at once: the rest are refused with 402
    before any vendor call, and what was spent stays within the credit plus one request."""
    project = new_project(admin)
    key = new_key(admin, project["id"])
    # gpt-4o, 60 tokens at most: each hold is just over $0.0006; the answers use them all.
    granted = Decimal("0.0125")
    grant(admin, project["id"], granted)
    prompt = f"{unique('credit')} [sim:tokens=200] [sim:ttft=300]"

    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{full_stack.layout.ingress_port}",
        timeout=60.0,
        trust_env=False,
        limits=httpx.Limits(max_connections=200),
    ) as http:
        answers = await asyncio.gather(
            *(
                http.post(
                    "/v1/chat/completions",
                    headers=bearer(key),
                    json={
                        "model": "gpt-4o",
                        "max_tokens": 60,
                        "messages": [{"role": "user", "content": prompt}],
                    },
                )
                for _ in range(200)
            )
        )
    statuses = [a.status_code for a in answers]
    served = [a for a in answers if a.status_code == 200]
    assert set(statuses) <= {200, 402}, statuses
    assert 10 <= len(served) <= 40, len(served)
    for refused in (a for a in answers if a.status_code == 402):
        assert refused.json()["error"]["code"] == "insufficient_quota"

    costs = [
        Decimal(row["cost_usd"])
        for answer in served
        for row in metering.wait_rows(answer.headers["x-request-id"])
    ]
    assert len(costs) == len(served)  # one attempt each; no 402 reached a vendor
    one_request = max(costs)
    assert sum(costs) <= granted + one_request
    # The ledger settles to the cent-exact sum of what metering priced (each call rounded up to
    # a billionth), and every hold is gone once the requests are.
    shown = _settled_credit(admin, project["id"], expected_held=Decimal(0))
    assert Decimal(shown["spent"]) == sum(ceil_nano(c) for c in costs)
    assert Decimal(shown["available"]) == granted - Decimal(shown["spent"])
    assert Decimal(shown["granted"]) == granted


def _settled_credit(
    admin: httpx.Client, project_id: str, *, expected_held: Decimal, timeout_s: float = 20.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        shown = credit(admin, project_id)
        if Decimal(shown["held"]) == expected_held or time.monotonic() > deadline:
            return shown
        time.sleep(0.2)


async def test_a_wiped_redis_loses_no_credit(
    admin: httpx.Client, full_stack: RunningStack, metering: Metering
) -> None:
    project = new_project(admin)
    account = new_account(admin, project["id"])
    key, key_id = account["api_key"]["value"], account["api_key"]["id"]
    granted = Decimal("5")
    grant(admin, project["id"], granted)
    request_ids: list[str] = []

    async def load(stop: asyncio.Event) -> None:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{full_stack.layout.ingress_port}",
            timeout=30.0,
            trust_env=False,
        ) as http:
            while not stop.is_set():
                answer = await http.post(
                    "/v1/chat/completions",
                    # A request in flight when Redis dies loses its reply path: it ends at its
                    # deadline, kept short here.
                    headers={**bearer(key), "x-switchyard-timeout": "8"},
                    json={
                        "model": "gpt-4o",
                        "messages": [{"role": "user", "content": unique("w")}],
                    },
                )
                if answer.status_code == 200:
                    request_ids.append(answer.headers["x-request-id"])
                else:
                    # Redis away: unavailable, or the deadline of one caught in flight; never 402.
                    assert answer.status_code in (503, 504), answer.text
                    await asyncio.sleep(0.2)

    with restored(full_stack):
        stop = asyncio.Event()
        workers = [asyncio.create_task(load(stop)) for _ in range(4)]
        await asyncio.sleep(2.0)
        await kill(full_stack, "redis")  # it keeps nothing on disk: a restart is a wipe
        await restart(full_stack, "redis")
        await asyncio.sleep(3.0)
        stop.set()
        await asyncio.gather(*workers)
    assert request_ids
    for request_id in request_ids:
        metering.wait_rows(request_id)
    # Every call that reached the vendor is charged, those whose answer Redis lost on the way
    # back included: the ledger, rebuilt from ClickHouse, must come to ClickHouse's own sum for
    # the key (gpt-4o's prices make each cost a whole number of nano-dollars, so no rounding).
    deadline = time.monotonic() + 60
    while True:
        stored = _key_cost(metering, key_id)
        shown = credit(admin, project["id"])
        if Decimal(shown["spent"]) == stored or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    assert Decimal(shown["granted"]) == granted
    assert Decimal(shown["spent"]) == stored > 0


def _key_cost(metering: Metering, key_id: str) -> Decimal:
    summary = httpx.get(
        f"{metering.base_url}/v1/usage/summary",
        params={"by": "key", "since": "1h"},
        headers=metering.headers,
        timeout=10.0,
        trust_env=False,
    ).json()
    return sum(
        (Decimal(row["cost_usd"]) for row in summary["rows"] if row["group"] == key_id),
        Decimal(0),
    )


class _Webhooks:
    """A receiver on 127.0.0.1 that keeps what it was sent."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                outer.received.append((dict(self.headers), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/spend"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def webhooks() -> Iterator[_Webhooks]:
    receiver = _Webhooks()
    try:
        yield receiver
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()


def test_a_spend_alert_calls_its_webhook_once_signed(
    admin: httpx.Client, metering: Metering, webhooks: _Webhooks
) -> None:
    project = new_project(admin)
    key = new_key(admin, project["id"])
    created = ok(
        admin.post(
            f"{ORG}/projects/{project['id']}/spend_alerts",
            json={
                "threshold_amount": 1,  # one cent
                "currency": "USD",
                "interval": "month",
                "notification_channel": {"type": "webhook", "url": webhooks.url},
            },
        )
    )
    secret = created.pop("signing_secret")
    assert_shape(
        "ProjectSpendAlert",
        {**created, "notification_channel": {"type": "email", "recipients": []}},
    )
    # A few hundred-token answers of gpt-4o pass a cent; the request after that fires it.
    for _ in range(40):
        answer = chat_with(
            admin, key, f"{unique('alert')} [sim:tokens=300]", model="gpt-4o", max_tokens=300
        )
        assert answer.status_code == 200
        metering.wait_rows(answer.headers["x-request-id"])
        if webhooks.received:
            break
        time.sleep(0.2)
    for _ in range(3):  # more requests: no second call this month
        assert chat_with(admin, key, unique("alert")).status_code == 200
    time.sleep(1.0)
    assert len(webhooks.received) == 1  # once a month, however many requests follow
    headers, body = webhooks.received[0]
    stamp, mac = (part.split("=", 1)[1] for part in headers["x-switchyard-signature"].split(","))
    expected = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(mac, expected)
    event = json.loads(body)
    assert event["type"] == "spend_alert.triggered"
    assert event["data"]["alert_id"] == created["id"]
    assert Decimal(event["data"]["month_spend"]) >= Decimal("0.01")
