"""``switchyard admin``: each verb's request and output, through ``httpx.MockTransport`` standing
in for the Admin API."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal, Inexact
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
from typer.testing import CliRunner, Result

from services import cli
from services.admin_cli import (
    AdminError,
    ApiAccess,
    create_app,
    parse_duration,
    parse_usd,
    rate_limit_id,
    usd_to_cents,
)

Json = dict[str, Any]

BASE_URL = "http://switchyard.test/v1"
KEY = "sy-admin-test"


class FakeAdminApi:
    """The API's side of the transport: answers set per method and path (a list is paged as the
    real routes page, by ``limit`` and ``after``), every request kept."""

    def __init__(self) -> None:
        self.answers: dict[tuple[str, str], tuple[int, Json]] = {}
        self.lists: dict[str, list[Json]] = {}
        self.requests: list[httpx.Request] = []

    def answer(self, method: str, path: str, body: Json, status: int = 200) -> None:
        self.answers[(method, path)] = (status, body)

    def paged(self, path: str, items: list[Json]) -> None:
        self.lists[path] = items

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path.removeprefix("/v1")
        if request.method == "GET" and path in self.lists:
            return httpx.Response(200, json=self._page(self.lists[path], request.url.params))
        found = self.answers.get((request.method, path))
        if found is None:
            error = {"message": f"no route {request.method} {path}", "type": "invalid_request"}
            return httpx.Response(404, json={"error": error})
        status, body = found
        return httpx.Response(status, json=body)

    @staticmethod
    def _page(items: list[Json], params: httpx.QueryParams) -> Json:
        limit = int(params.get("limit", "20"))
        ids = [item["id"] for item in items]
        start = ids.index(params["after"]) + 1 if "after" in params else 0
        page = items[start : start + limit]
        return {
            "object": "list",
            "data": page,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
            "has_more": start + limit < len(items),
        }

    def sent(self) -> list[tuple[str, str, Json | None]]:
        """Method, path (after /v1) and JSON body of every request, in order."""
        return [
            (
                r.method,
                r.url.path.removeprefix("/v1"),
                json.loads(r.content) if r.content else None,
            )
            for r in self.requests
        ]


@pytest.fixture
def api() -> FakeAdminApi:
    return FakeAdminApi()


def run(
    api: FakeAdminApi | Callable[[httpx.Request], httpx.Response],
    *args: str,
    env: dict[str, str | None] | None = None,
    access: Sequence[str] = ("--base-url", BASE_URL, "--api-key", KEY),
) -> Result:
    app = create_app(transport=httpx.MockTransport(api))
    return CliRunner().invoke(app, [*access, *args], env=env)


def ok(result: Result) -> str:
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result.stdout


def one_line(text: str) -> str:
    """Usage errors come through rich, wrapped in a box: the words without the drawing."""
    return " ".join(word for word in text.split() if word.strip("│╭╮╰╯─"))


PROJECT = {
    "id": "proj_1",
    "object": "organization.project",
    "name": "search",
    "created_at": 1_735_689_600,
    "archived_at": None,
    "status": "active",
}
RATE_LIMIT = {
    "object": "project.rate_limit",
    "id": "rl-openai__gpt-4o-mini",
    "model": "openai/gpt-4o-mini",
    "max_requests_per_1_minute": 60,
    "max_tokens_per_1_minute": 150_000,
    "max_requests_per_1_day": 1000,
}
SPEND_LIMIT = {
    "object": "project.spend_limit",
    "threshold_amount": 10_000,
    "currency": "USD",
    "interval": "month",
    "enforcement": {"status": "enforcing"},
}
CREDIT = {
    "object": "project.credit",
    "project_id": "proj_1",
    "currency": "USD",
    "granted": "25.00",
    "spent": "3.141593",
    "held": "0.50",
    "available": "21.358407",
    "grants": [
        {
            "object": "project.credit_grant",
            "id": "grant_1",
            "amount": "25.00",
            "note": "pilot",
            "created_at": 1_735_689_600,
        }
    ],
}
USER = {
    "object": "organization.user",
    "id": "user_1",
    "email": "ada@example.com",
    "name": "Ada",
    "role": "reader",
    "added_at": 1_735_689_600,
}
PERMISSIONS = {
    "object": "project.model_permissions",
    "mode": "allow_list",
    "model_ids": ["openai/gpt-4o-mini", "anthropic/claude-3-5-haiku"],
}
P = "/organization/projects/proj_1"


@dataclass(frozen=True)
class Verb:
    args: tuple[str, ...]
    method: str
    path: str
    body: Json | None
    answer: Json
    shows: str  # in the table output


VERBS = [
    Verb(("projects", "create", "search"), "POST", "/organization/projects",
         {"name": "search"}, PROJECT, "proj_1"),
    Verb(("projects", "show", "proj_1"), "GET", P, None, PROJECT, "search"),
    Verb(("projects", "rename", "proj_1", "find"), "POST", P, {"name": "find"},
         {**PROJECT, "name": "find"}, "find"),
    Verb(("projects", "archive", "proj_1"), "POST", f"{P}/archive", None,
         {**PROJECT, "status": "archived", "archived_at": 1_735_776_000}, "2025-01-02 00:00 UTC"),
    Verb(("service-accounts", "remove", "proj_1", "svc_1"), "DELETE",
         f"{P}/service_accounts/svc_1",
         None, {"object": "organization.project.service_account.deleted", "id": "svc_1",
                "deleted": True}, "Removed service account svc_1"),
    Verb(("keys", "show", "proj_1", "key_1"), "GET", f"{P}/api_keys/key_1", None,
         {"object": "organization.project.api_key", "id": "key_1", "name": "ci key",
          "redacted_value": "sk-sy-proj-...abcd", "created_at": 1_735_689_600,
          "owner": {"type": "service_account",
                    "service_account": {"id": "svc_1", "name": "ci", "role": "member"}}},
         "ci (svc_1)"),
    Verb(("keys", "revoke", "proj_1", "key_1"), "DELETE", f"{P}/api_keys/key_1", None,
         {"object": "organization.project.api_key.deleted", "id": "key_1", "deleted": True},
         "Revoked key key_1."),
    Verb(("models", "allow", "proj_1", "gpt-4o-mini", "claude-3-5-haiku"), "POST",
         f"{P}/model_permissions",
         {"mode": "allow_list", "model_ids": ["gpt-4o-mini", "claude-3-5-haiku"]},
         PERMISSIONS, "allow list: only these models\n  openai/gpt-4o-mini"),
    Verb(("models", "deny", "proj_1", "o1"), "POST", f"{P}/model_permissions",
         {"mode": "deny_list", "model_ids": ["o1"]},
         {**PERMISSIONS, "mode": "deny_list", "model_ids": ["openai/o1"]},
         "deny list: every model but these\n  openai/o1"),
    Verb(("models", "show", "proj_1"), "GET", f"{P}/model_permissions", None,
         {**PERMISSIONS, "mode": "deny_list", "model_ids": []}, "every model (no list)"),
    Verb(("models", "clear", "proj_1"), "DELETE", f"{P}/model_permissions", None,
         {"object": "project.model_permissions.deleted", "deleted": True},
         "proj_1 may use every model."),
    Verb(("limits", "set", "proj_1", "--model", "openai/gpt-4o-mini", "--rpm", "60",
          "--rpd", "1000"), "POST", f"{P}/rate_limits/rl-openai__gpt-4o-mini",
         {"max_requests_per_1_minute": 60, "max_requests_per_1_day": 1000}, RATE_LIMIT,
         "openai/gpt-4o-mini   60  150000  1000  rl-openai__gpt-4o-mini"),
    Verb(("limits", "clear", "proj_1", "--model", "openai/gpt-4o-mini"), "DELETE",
         f"{P}/rate_limits/rl-openai__gpt-4o-mini", None,
         {"object": "project.rate_limit.deleted", "id": "rl-openai__gpt-4o-mini", "deleted": True},
         "proj_1 has no rate limits for openai/gpt-4o-mini now."),
    Verb(("spend-limit", "show", "proj_1"), "GET", f"{P}/spend_limit", None, SPEND_LIMIT,
         "$100.00 USD per month (enforcing)"),
    Verb(("spend-limit", "set", "proj_1", "--usd", "1234.56"), "POST", f"{P}/spend_limit",
         {"threshold_amount": 123_456, "currency": "USD", "interval": "month"},
         {**SPEND_LIMIT, "threshold_amount": 123_456}, "$1,234.56 USD per month"),
    Verb(("spend-limit", "clear", "proj_1"), "DELETE", f"{P}/spend_limit", None,
         {"object": "project.spend_limit.deleted", "deleted": True},
         "proj_1 has no spend limit now."),
    Verb(("credit", "show", "proj_1"), "GET", f"{P}/credit", None, CREDIT,
         "  available    21.358407"),
    Verb(("credit", "topup", "proj_1", "10", "--note", "more tests"), "POST",
         f"{P}/credit/grants", {"amount": "10.00", "note": "more tests"},
         {"object": "project.credit_grant", "id": "grant_2", "amount": "10.00",
          "note": "more tests", "created_at": 1_735_689_600},
         "Granted 10.00 USD to proj_1 (grant grant_2)."),
    Verb(("users", "create", "ada@example.com", "--role", "reader", "--name", "Ada"), "POST",
         "/organization/users", {"email": "ada@example.com", "name": "Ada", "role": "reader"},
         USER, "user_1  ada@example.com  Ada   reader"),
    Verb(("users", "remove", "user_1"), "DELETE", "/organization/users/user_1", None,
         {"object": "organization.user.deleted", "id": "user_1", "deleted": True},
         "Removed user user_1."),
    Verb(("users", "add-to-project", "proj_1", "user_1", "--role", "analyst"), "POST",
         f"{P}/users", {"user_id": "user_1", "role": "analyst"},
         {**USER, "object": "organization.project.user", "role": "analyst"}, "analyst"),
    Verb(("admin-keys", "revoke", "key_9"), "DELETE", "/organization/admin_api_keys/key_9",
         None, {"object": "organization.admin_api_key.deleted", "id": "key_9", "deleted": True},
         "Revoked admin key key_9."),
]  # fmt: skip


@pytest.mark.parametrize("verb", VERBS, ids=lambda v: " ".join(v.args[:2]))
def test_each_verb_sends_its_request_and_prints_a_table(api: FakeAdminApi, verb: Verb) -> None:
    api.answer(verb.method, verb.path, verb.answer)
    out = ok(run(api, *verb.args))
    assert api.sent() == [(verb.method, verb.path, verb.body)]
    assert verb.shows in out
    assert api.requests[0].headers["authorization"] == f"Bearer {KEY}"


@pytest.mark.parametrize("verb", VERBS, ids=lambda v: " ".join(v.args[:2]))
def test_each_verb_prints_the_api_json(api: FakeAdminApi, verb: Verb) -> None:
    api.answer(verb.method, verb.path, verb.answer)
    assert json.loads(ok(run(api, *verb.args, "--json"))) == verb.answer


# -- lists and pagination -----------------------------------------------------------------------


@dataclass(frozen=True)
class Listing:
    args: tuple[str, ...]
    path: str
    item: Json  # the items are copies of this one with ids <prefix>_0, <prefix>_1, ...
    shows: str


LISTINGS = [
    Listing(("projects", "list"), "/organization/projects", PROJECT, "search"),
    Listing(("service-accounts", "list", "proj_1"), f"{P}/service_accounts",
            {"object": "organization.project.service_account", "name": "ci", "role": "member",
             "created_at": 1_735_689_600}, "member"),
    Listing(("keys", "list", "proj_1"), f"{P}/api_keys",
            {"object": "organization.project.api_key", "name": "ci key",
             "redacted_value": "sk-sy-proj-...abcd", "created_at": 1_735_689_600,
             "last_used_at": None, "owner": {"type": "service_account"}},
            "sk-sy-proj-...abcd"),
    Listing(("limits", "show", "proj_1"), f"{P}/rate_limits", RATE_LIMIT, "150000"),
    Listing(("users", "list"), "/organization/users", USER, "ada@example.com"),
    Listing(("users", "list", "--project", "proj_1"), f"{P}/users",
            {**USER, "role": "member"}, "member"),
    Listing(("admin-keys", "list"), "/organization/admin_api_keys",
            {"object": "organization.admin_api_key", "name": "ops", "redacted_value": "sk-a...z",
             "created_at": 1_735_689_600, "expires_at": None,
             "owner": {"type": "user", "id": "user_1", "name": "Ada"}},
            "Ada (user_1)"),
    Listing(("audit", "--all"), "/organization/audit_logs",
            {"type": "project.created", "effective_at": 1_735_689_600,
             "project": {"id": "proj_1"}, "project.created": {"id": "proj_1"},
             "actor": {"type": "api_key", "api_key": {"id": "key_1", "type": "user",
                                                      "user": {"id": "user_1",
                                                               "email": "ada@example.com"}}}},
            "project.created  ada@example.com  proj_1"),
]  # fmt: skip


def items(like: Json, count: int) -> list[Json]:
    return [{**like, "id": f"item_{i:03}"} for i in range(count)]


@pytest.mark.parametrize("listing", LISTINGS, ids=lambda x: " ".join(x.args[:2]))
def test_lists_follow_every_page(api: FakeAdminApi, listing: Listing) -> None:
    api.paged(listing.path, items(listing.item, 230))
    out = ok(run(api, *listing.args))
    afters = [r.url.params.get("after") for r in api.requests]
    assert afters == [None, "item_099", "item_199"]
    assert all(r.url.params["limit"] == "100" for r in api.requests)
    assert {r.url.path for r in api.requests} == {"/v1" + listing.path}
    assert out.count(listing.shows) == 230


@pytest.mark.parametrize("listing", LISTINGS, ids=lambda x: " ".join(x.args[:2]))
def test_lists_print_every_page_as_one_api_list(api: FakeAdminApi, listing: Listing) -> None:
    api.paged(listing.path, items(listing.item, 120))
    body = json.loads(ok(run(api, *listing.args, "--json")))
    assert body == {
        "object": "list",
        "data": items(listing.item, 120),
        "first_id": "item_000",
        "last_id": "item_119",
        "has_more": False,
    }


def test_limit_stops_the_list_early_and_says_more_are_left(api: FakeAdminApi) -> None:
    api.paged("/organization/projects", items(PROJECT, 230))
    body = json.loads(ok(run(api, "projects", "list", "--limit", "150", "--json")))
    assert [r.url.params["limit"] for r in api.requests] == ["100", "50"]
    assert len(body["data"]) == 150
    assert body["has_more"] is True


def test_archived_projects_are_asked_for(api: FakeAdminApi) -> None:
    api.paged("/organization/projects", [PROJECT])
    ok(run(api, "projects", "list", "--include-archived"))
    assert api.requests[0].url.params["include_archived"] == "true"


def test_an_empty_list_says_so(api: FakeAdminApi) -> None:
    api.paged("/organization/projects", [])
    assert ok(run(api, "projects", "list")).strip() == "no projects"


def test_audit_filters_and_stops_at_100_by_default(api: FakeAdminApi) -> None:
    api.paged("/organization/audit_logs", items(LISTINGS[-1].item, 150))
    args = ("audit", "--project", "proj_1", "--project", "proj_2", "--type", "project.created")
    out = ok(run(api, *args))
    (request,) = api.requests
    assert request.url.params.get_list("project_ids[]") == ["proj_1", "proj_2"]
    assert request.url.params.get_list("event_types[]") == ["project.created"]
    assert request.url.params["limit"] == "100"
    assert "(more events: raise --limit, or --all)" in out


def test_audit_names_each_actor(api: FakeAdminApi) -> None:
    base = {"type": "rate_limit.updated", "effective_at": 1_735_689_600, "outcome": "success"}
    events = [
        {**base, "id": "a1", "actor": None},
        {**base, "id": "a2", "actor": {"type": "api_key", "api_key": {
            "id": "key_1", "type": "service_account", "service_account": {"id": "svc_1"}}}},
        {**base, "id": "a3", "actor": {"type": "api_key", "api_key": {"id": "key_0"}},
         "outcome": "denied"},
    ]  # fmt: skip
    api.paged("/organization/audit_logs", events)
    rows = [line.split() for line in ok(run(api, "audit")).splitlines()[1:]]
    assert [(row[4], row[-1]) for row in rows] == [
        ("system", "success"),
        ("svc_1", "success"),
        ("key_0", "denied"),
    ]


def test_a_server_that_pages_without_moving_is_an_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        page = {"object": "list", "data": [PROJECT], "last_id": "proj_1", "has_more": True}
        return httpx.Response(200, json=page)

    result = run(handler, "projects", "list")
    assert result.exit_code == 1
    assert "has_more but gave no next page" in result.stderr


# -- keys ---------------------------------------------------------------------------------------

ACCOUNT_KEY: Json = {
    "object": "organization.project.service_account.api_key",
    "value": "sk-sy-proj-secret",
    "name": "ci key",
    "created_at": 1_735_689_600,
    "id": "key_1",
    "expires_at": None,
}
ACCOUNT: Json = {
    "object": "organization.project.service_account",
    "id": "svc_1",
    "name": "ci",
    "role": "member",
    "created_at": 1_735_689_600,
    "api_key": ACCOUNT_KEY,
}
EXPIRING_ACCOUNT = {**ACCOUNT, "api_key": {**ACCOUNT_KEY, "expires_at": 1_738_281_600}}
EXPIRING_KEY = {
    "object": "organization.project.service_account.api_key",
    "value": "sk-sy-proj-rotated",
    "name": "rotated",
    "created_at": 1_735_689_600,
    "id": "key_2",
    "expires_at": 1_735_732_800,
}
ADMIN_KEY = {
    "object": "organization.admin_api_key",
    "id": "key_9",
    "name": "ops",
    "redacted_value": "sk-admin...xyz",
    "created_at": 1_735_689_600,
    "expires_at": None,
    "value": "sk-admin-1234",
}


def test_keys_create_makes_a_service_account_and_shows_its_key_once(api: FakeAdminApi) -> None:
    api.answer("POST", f"{P}/service_accounts", ACCOUNT)
    result = run(api, "keys", "create", "proj_1", "--name", "ci", "--role", "owner")
    out = ok(result)
    assert api.sent() == [("POST", f"{P}/service_accounts", {"name": "ci", "role": "owner"})]
    assert out.splitlines()[-1] == "sk-sy-proj-secret"
    assert "svc_1 'ci'" in out
    assert "does not expire" in out
    assert "shown only once" in result.stderr


def test_keys_create_with_expiry(api: FakeAdminApi) -> None:
    api.answer("POST", f"{P}/service_accounts", EXPIRING_ACCOUNT)
    out = ok(run(api, "keys", "create", "proj_1", "--name", "ci", "--expires-in", "30d"))
    body = {"name": "ci", "expires_in_seconds": 30 * 86_400}
    assert api.sent() == [("POST", f"{P}/service_accounts", body)]
    assert "expires 2025-01-31 00:00 UTC" in out
    assert out.splitlines()[-1] == "sk-sy-proj-secret"


def test_keys_create_takes_back_a_key_the_api_did_not_make_expire(api: FakeAdminApi) -> None:
    api.answer("POST", f"{P}/service_accounts", ACCOUNT)  # expires_at: None
    api.answer("DELETE", f"{P}/service_accounts/svc_1", {"id": "svc_1", "deleted": True})
    result = run(api, "keys", "create", "proj_1", "--name", "ci", "--expires-in", "1h")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "the API ignored --expires-in; the key it made was removed" in result.stderr
    assert api.sent()[-1] == ("DELETE", f"{P}/service_accounts/svc_1", None)


def test_keys_create_says_what_is_left_when_it_cannot_take_the_key_back(
    api: FakeAdminApi,
) -> None:
    api.answer("POST", f"{P}/service_accounts", ACCOUNT)
    result = run(api, "keys", "create", "proj_1", "--name", "ci", "--expires-in", "1h")
    assert result.exit_code == 1
    assert "could not be removed" in result.stderr
    assert f"DELETE {P}/service_accounts/svc_1" in result.stderr


def test_keys_create_adds_a_key_to_an_existing_service_account(api: FakeAdminApi) -> None:
    api.answer("POST", f"{P}/service_accounts/svc_1/api_keys", EXPIRING_KEY)
    args = ("keys", "create", "proj_1", "--service-account", "svc_1", "--name", "rotated")
    out = ok(run(api, *args, "--expires-in", "12h"))
    body = {"name": "rotated", "expires_in_seconds": 12 * 3600}
    assert api.sent() == [("POST", f"{P}/service_accounts/svc_1/api_keys", body)]
    assert out.splitlines()[-1] == "sk-sy-proj-rotated"
    assert "Service account" not in out


def test_keys_create_takes_back_an_added_key_that_does_not_expire(api: FakeAdminApi) -> None:
    api.answer("POST", f"{P}/service_accounts/svc_1/api_keys", {**EXPIRING_KEY, "expires_at": None})
    api.answer("DELETE", f"{P}/api_keys/key_2", {"id": "key_2", "deleted": True})
    args = ("keys", "create", "proj_1", "--service-account", "svc_1", "--name", "rotated")
    result = run(api, *args, "--expires-in", "12h")
    assert result.exit_code == 1
    assert api.sent()[-1] == ("DELETE", f"{P}/api_keys/key_2", None)


def test_keys_create_refuses_a_role_for_an_existing_account(api: FakeAdminApi) -> None:
    args = ("keys", "create", "proj_1", "--service-account", "svc_1", "--name", "x")
    result = run(api, *args, "--role", "owner")
    assert result.exit_code == 2
    assert api.requests == []


def test_keys_create_refuses_a_bad_duration_without_calling(api: FakeAdminApi) -> None:
    result = run(api, "keys", "create", "proj_1", "--name", "ci", "--expires-in", "3x")
    assert result.exit_code == 2
    assert "invalid duration '3x'" in one_line(result.stderr)
    assert api.requests == []


def test_keys_create_prints_the_api_json(api: FakeAdminApi) -> None:
    api.answer("POST", f"{P}/service_accounts", ACCOUNT)
    result = run(api, "keys", "create", "proj_1", "--name", "ci", "--json")
    assert json.loads(ok(result)) == ACCOUNT
    assert "shown only once" in result.stderr


def test_admin_keys_create_shows_the_key_once(api: FakeAdminApi) -> None:
    api.answer("POST", "/organization/admin_api_keys", ADMIN_KEY)
    result = run(api, "admin-keys", "create", "ops", "--user", "user_1")
    assert ok(result).splitlines()[-1] == "sk-admin-1234"
    assert api.sent() == [
        ("POST", "/organization/admin_api_keys", {"name": "ops", "user_id": "user_1"})
    ]
    assert "shown only once" in result.stderr


def test_admin_keys_create_with_expiry(api: FakeAdminApi) -> None:
    api.answer("POST", "/organization/admin_api_keys", {**ADMIN_KEY, "expires_at": 1_738_281_600})
    out = ok(run(api, "admin-keys", "create", "ops", "--expires-in", "30d"))
    body = {"name": "ops", "expires_in_seconds": 30 * 86_400}
    assert api.sent() == [("POST", "/organization/admin_api_keys", body)]
    assert "expires 2025-01-31 00:00 UTC" in out


@pytest.mark.parametrize(
    ("text", "seconds"), [("30d", 2_592_000), ("12h", 43_200), ("2w", 1_209_600), ("90m", 5400)]
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["3x", "0d", "-1d", "1.5d", "d", ""])
def test_bad_durations(text: str) -> None:
    with pytest.raises(typer.BadParameter):
        parse_duration(text)


# -- rate limits --------------------------------------------------------------------------------


def test_rate_limit_ids_are_the_canonical_model_id() -> None:
    assert rate_limit_id("openai/gpt-4o-mini") == "rl-openai__gpt-4o-mini"
    assert rate_limit_id("together/meta-llama/Llama-3-8b") == "rl-together__meta-llama__Llama-3-8b"


def test_limits_set_finds_a_bare_model_name_in_the_list(api: FakeAdminApi) -> None:
    other = {**RATE_LIMIT, "id": "rl-openai__gpt-4o", "model": "openai/gpt-4o"}
    api.paged(f"{P}/rate_limits", [other, RATE_LIMIT])
    api.answer("POST", f"{P}/rate_limits/rl-openai__gpt-4o-mini", RATE_LIMIT)
    ok(run(api, "limits", "set", "proj_1", "--model", "gpt-4o-mini", "--tpm", "150000"))
    assert api.sent()[-1] == (
        "POST",
        f"{P}/rate_limits/rl-openai__gpt-4o-mini",
        {"max_tokens_per_1_minute": 150_000},
    )


def test_limits_set_refuses_a_name_several_models_share(api: FakeAdminApi) -> None:
    azure = {**RATE_LIMIT, "id": "rl-azure__gpt-4o-mini", "model": "azure/gpt-4o-mini"}
    api.paged(f"{P}/rate_limits", [RATE_LIMIT, azure])
    result = run(api, "limits", "set", "proj_1", "--model", "gpt-4o-mini", "--rpm", "1")
    assert result.exit_code == 1
    assert "openai/gpt-4o-mini, azure/gpt-4o-mini" in result.stderr
    assert [r.method for r in api.requests] == ["GET"]


def test_limits_set_leaves_a_bare_name_without_a_limit_to_the_api(api: FakeAdminApi) -> None:
    # The API resolves the name in the id through its catalogue, as it would in a request.
    api.paged(f"{P}/rate_limits", [RATE_LIMIT])
    api.answer("POST", f"{P}/rate_limits/rl-o1", {**RATE_LIMIT, "id": "rl-openai__o1"})
    ok(run(api, "limits", "set", "proj_1", "--model", "o1", "--rpm", "1"))
    assert api.sent()[-1] == (
        "POST",
        f"{P}/rate_limits/rl-o1",
        {"max_requests_per_1_minute": 1},
    )


def test_limits_clear_finds_a_bare_model_name_too(api: FakeAdminApi) -> None:
    api.paged(f"{P}/rate_limits", [RATE_LIMIT])
    deleted = {"object": "project.rate_limit.deleted", "id": RATE_LIMIT["id"], "deleted": True}
    api.answer("DELETE", f"{P}/rate_limits/rl-openai__gpt-4o-mini", deleted)
    out = ok(run(api, "limits", "clear", "proj_1", "--model", "gpt-4o-mini"))
    assert api.sent()[-1] == ("DELETE", f"{P}/rate_limits/rl-openai__gpt-4o-mini", None)
    assert "no rate limits for gpt-4o-mini now" in out


def test_limits_not_set_show_as_a_dash(api: FakeAdminApi) -> None:
    unset = {**RATE_LIMIT, "max_tokens_per_1_minute": 0}
    del unset["max_requests_per_1_day"]
    api.paged(f"{P}/rate_limits", [unset])
    out = ok(run(api, "limits", "show", "proj_1"))
    assert "openai/gpt-4o-mini   60    -    -  rl-openai__gpt-4o-mini" in out


def test_a_spend_limit_not_set_says_so(api: FakeAdminApi) -> None:
    inactive = {**SPEND_LIMIT, "threshold_amount": 0, "enforcement": {"status": "inactive"}}
    api.answer("GET", f"{P}/spend_limit", inactive)
    assert ok(run(api, "spend-limit", "show", "proj_1")).strip() == "no spend limit"


def test_limits_set_needs_a_limit(api: FakeAdminApi) -> None:
    result = run(api, "limits", "set", "proj_1", "--model", "openai/o1")
    assert result.exit_code == 2
    assert "at least one of --rpm, --tpm, --rpd" in one_line(result.stderr)
    assert api.requests == []


# -- money --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "cents"),
    [
        ("100", 10_000),
        ("19.99", 1999),
        ("0.1", 10),
        ("0.29", 29),  # 0.29 * 100 is 28.999999999999996 in floats
        ("10.500", 1050),
        ("1e3", 100_000),
        ("0", 0),
        ("92233720368547758.07", 9_223_372_036_854_775_807),
    ],
)
def test_usd_becomes_cents_exactly(text: str, cents: int) -> None:
    assert usd_to_cents(parse_usd(text)) == cents


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("12.345", "fraction of a cent"),
        ("0.001", "fraction of a cent"),
        ("1e-3", "fraction of a cent"),
        ("-5", "not an amount"),
        ("ten", "not an amount"),
        ("NaN", "not an amount"),
        ("Infinity", "not an amount"),
        ("1234567890123456789012345678.90", "too many digits"),
    ],
)
def test_usd_refuses_what_is_not_whole_cents(text: str, says: str) -> None:
    with pytest.raises(typer.BadParameter, match=says):
        parse_usd(text)


def test_usd_to_cents_never_rounds() -> None:
    with pytest.raises(Inexact):
        usd_to_cents(Decimal("1234567890123456789012345678.9"))


def test_spend_limit_set_refuses_a_fraction_of_a_cent_without_calling(api: FakeAdminApi) -> None:
    result = run(api, "spend-limit", "set", "proj_1", "--usd", "12.345")
    assert result.exit_code == 2
    assert "fraction of a cent" in one_line(result.stderr)
    assert api.requests == []


@pytest.mark.parametrize(
    ("amount", "sent"),
    [("10", "10.00"), ("10.5", "10.50"), ("0.123456", "0.123456"), ("1e2", "100.00")],
)
def test_credit_topup_sends_the_amount_as_a_decimal_string(
    api: FakeAdminApi, amount: str, sent: str
) -> None:
    api.answer("POST", f"{P}/credit/grants", {"object": "project.credit_grant", "id": "g"})
    ok(run(api, "credit", "topup", "proj_1", amount))
    assert api.sent() == [("POST", f"{P}/credit/grants", {"amount": sent})]


@pytest.mark.parametrize("amount", ["0", "-3", "ten", "NaN"])
def test_credit_topup_refuses_what_is_not_a_positive_amount(api: FakeAdminApi, amount: str) -> None:
    result = run(api, "credit", "topup", "proj_1", "--", amount)
    assert result.exit_code == 2
    assert api.requests == []


def test_credit_of_a_project_not_prepaid_says_so(api: FakeAdminApi) -> None:
    api.answer("GET", f"{P}/credit", {**CREDIT, "prepaid": False, "grants": []})
    assert "not prepaid" in ok(run(api, "credit", "show", "proj_1"))


def test_json_keeps_numbers_as_the_api_wrote_them() -> None:
    # Were an amount to come as a JSON number, it must neither pass through a float nor lose its
    # trailing zero on the way back out.
    def handler(request: httpx.Request) -> httpx.Response:
        text = '{"object": "project.credit", "granted": 10.50, "tiny": 1e-7, "n": 3}'
        return httpx.Response(200, content=text, headers={"content-type": "application/json"})

    out = ok(run(handler, "credit", "show", "proj_1", "--json"))
    assert '"granted": 10.50' in out
    assert '"tiny": 1E-7' in out
    assert json.loads(out, parse_float=Decimal) == {
        "object": "project.credit",
        "granted": Decimal("10.50"),
        "tiny": Decimal("1e-7"),
        "n": 3,
    }


# -- failures -----------------------------------------------------------------------------------


def test_an_api_error_goes_to_stderr_with_exit_code_1(api: FakeAdminApi) -> None:
    refusal = {
        "error": {
            "message": "No project with id 'proj_x'.",
            "type": "invalid_request_error",
            "param": None,
            "code": "not_found",
        }
    }
    api.answer("GET", "/organization/projects/proj_x", refusal, status=404)
    result = run(api, "projects", "show", "proj_x")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.strip() == (
        "switchyard admin: No project with id 'proj_x'. (404 not_found)"
    )


def test_a_refused_key_names_where_it_came_from(api: FakeAdminApi) -> None:
    refusal = {
        "error": {
            "message": "Only the organization's owner may manage projects and keys.",
            "type": "permission_error",
            "code": "permission_denied",
        }
    }
    api.answer("GET", "/organization/projects/proj_1", refusal, status=403)
    result = run(api, "projects", "show", "proj_1")
    assert result.exit_code == 1
    assert "(the key came from --api-key) (403 permission_denied)" in result.stderr


def test_an_answer_that_is_not_openai_error_json_is_shown_with_its_status() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text="Bad Gateway")

    result = run(handler, "projects", "show", "proj_1")
    assert result.exit_code == 1
    assert "answered Bad Gateway (502)" in result.stderr
    assert f"GET {BASE_URL}/organization/projects/proj_1" in result.stderr


def test_connection_refused_names_the_url() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    result = run(handler, "projects", "list")
    assert result.exit_code == 1
    assert result.stderr.startswith(
        f"switchyard admin: cannot connect to the Switchyard API at {BASE_URL}"
        "/organization/projects ([Errno 111] Connection refused); is the stack running?"
    )


def test_a_timeout_says_how_long_it_waited() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    result = run(handler, "projects", "list")
    assert result.exit_code == 1
    assert f"no answer from {BASE_URL}/organization/projects within 30 s" in result.stderr


# -- where to connect, with which key -----------------------------------------------------------


def stack_home(
    tmp_path: Path, *, stack_env: str | None = None, key_file: str | None = None
) -> Path:
    if stack_env is not None:
        (tmp_path / "stack.env").write_text(stack_env)
    if key_file is not None:
        (tmp_path / "admin_key").write_text(key_file)
    return tmp_path


def resolve(
    environ: dict[str, str], base_url: str | None = None, api_key: str | None = None
) -> ApiAccess:
    return ApiAccess.resolve(base_url=base_url, api_key=api_key, environ=environ)


STACK_ENV = "SWITCHYARD_INGRESS_PORT=18080\nSWITCHYARD_ADMIN_KEY=sy-admin-from-env-file\nOTHER=x\n"


def test_options_win_over_everything(tmp_path: Path) -> None:
    home = stack_home(tmp_path, stack_env=STACK_ENV, key_file="sy-admin-file\n")
    environ = {
        "SWITCHYARD_HOME": str(home),
        "SWITCHYARD_BASE_URL": "http://elsewhere.test/v1",
        "SWITCHYARD_API_KEY": "sk-env",
    }
    access = resolve(environ, base_url="http://given.test/v1/", api_key="sk-given")
    assert (access.base_url, access.api_key) == ("http://given.test/v1", "sk-given")
    assert access.key_source == "--api-key"


def test_the_environment_comes_next(tmp_path: Path) -> None:
    home = stack_home(tmp_path, stack_env=STACK_ENV, key_file="sy-admin-file\n")
    environ = {
        "SWITCHYARD_HOME": str(home),
        "SWITCHYARD_BASE_URL": "http://elsewhere.test/v1",
        "SWITCHYARD_API_KEY": "sk-env",
        "SWITCHYARD_ADMIN_KEY": "sy-admin-env",
    }
    access = resolve(environ)
    assert (access.base_url, access.api_key) == ("http://elsewhere.test/v1", "sk-env")
    assert access.key_source == "SWITCHYARD_API_KEY"
    del environ["SWITCHYARD_API_KEY"]
    assert resolve(environ).api_key == "sy-admin-env"


def test_then_the_local_stack_as_switchyard_up_left_it(tmp_path: Path) -> None:
    home = stack_home(tmp_path, stack_env=STACK_ENV, key_file="sy-admin-file\n")
    access = resolve({"SWITCHYARD_HOME": str(home)})
    assert access.base_url == "http://127.0.0.1:18080/v1"
    assert access.api_key == "sy-admin-from-env-file"
    assert access.key_source == str(home / "stack.env")
    # An ingress port in the environment wins over the file's, as for `switchyard usage`.
    assert resolve({"SWITCHYARD_HOME": str(home), "SWITCHYARD_INGRESS_PORT": "9000"}).base_url == (
        "http://127.0.0.1:9000/v1"
    )


def test_then_the_admin_key_file_and_the_default_port(tmp_path: Path) -> None:
    home = stack_home(tmp_path, key_file="sy-admin-file\n")
    access = resolve({"SWITCHYARD_HOME": str(home)})
    assert (access.base_url, access.api_key) == ("http://127.0.0.1:8080/v1", "sy-admin-file")
    offset = resolve({"SWITCHYARD_HOME": str(home), "SWITCHYARD_PORT_OFFSET": "100"})
    assert offset.base_url == "http://127.0.0.1:8180/v1"


def test_no_key_anywhere_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(AdminError, match="no admin key"):
        resolve({"SWITCHYARD_HOME": str(tmp_path)})


def test_the_cli_finds_the_local_stack_by_itself(api: FakeAdminApi, tmp_path: Path) -> None:
    home = stack_home(tmp_path, stack_env=STACK_ENV)
    env: dict[str, str | None] = {
        "SWITCHYARD_HOME": str(home),
        "SWITCHYARD_BASE_URL": None,
        "SWITCHYARD_API_KEY": None,
        "SWITCHYARD_ADMIN_KEY": None,
        "SWITCHYARD_INGRESS_PORT": None,
        "SWITCHYARD_PORT_OFFSET": None,
    }
    api.paged("/organization/projects", [PROJECT])
    ok(run(api, "projects", "list", env=env, access=()))
    (request,) = api.requests
    assert str(request.url).startswith("http://127.0.0.1:18080/v1/organization/projects?")
    assert request.headers["authorization"] == "Bearer sy-admin-from-env-file"


def test_the_cli_without_a_key_fails_clearly(api: FakeAdminApi, tmp_path: Path) -> None:
    env: dict[str, str | None] = {
        "SWITCHYARD_HOME": str(tmp_path),
        "SWITCHYARD_API_KEY": None,
        "SWITCHYARD_ADMIN_KEY": None,
    }
    result = run(api, "projects", "list", env=env, access=("--base-url", BASE_URL))
    assert result.exit_code == 1
    assert "no admin key" in result.stderr
    assert api.requests == []


def test_help_needs_no_key(tmp_path: Path) -> None:
    env: dict[str, str | None] = {"SWITCHYARD_HOME": str(tmp_path), "SWITCHYARD_API_KEY": None}
    result = CliRunner().invoke(create_app(), ["keys", "create", "--help"], env=env)
    assert result.exit_code == 0
    assert "shown only once" in one_line(result.stdout)


def test_switchyard_has_the_admin_commands() -> None:
    result = CliRunner().invoke(cli.app, ["admin", "--help"])
    assert result.exit_code == 0, result.output
    for group in ("projects", "keys", "models", "limits", "spend-limit", "credit", "audit"):
        assert group in result.stdout
