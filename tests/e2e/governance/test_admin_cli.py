"""``switchyard admin`` against the real stack: the verbs an operator scripts, with ``--json``."""

from __future__ import annotations

import json
import os
import subprocess
from decimal import Decimal
from typing import Any

import httpx
import pytest

from services.stack import RunningStack
from services.stack._layout import REPO_ROOT
from tests.e2e.governance.governance_support import chat_with

pytestmark = pytest.mark.e2e

SWITCHYARD = REPO_ROOT / ".local" / "venv" / "bin" / "switchyard"


def admin_cli(full_stack: RunningStack, *args: str) -> Any:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SWITCHYARD_")},
        "SWITCHYARD_BASE_URL": full_stack.base_url,
        "SWITCHYARD_API_KEY": full_stack.admin_key,
    }
    done = subprocess.run(
        [str(SWITCHYARD), "admin", *args, "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_an_operator_sets_up_a_project_from_the_command_line(
    full_stack: RunningStack, admin: httpx.Client
) -> None:
    project = admin_cli(full_stack, "projects", "create", "from the cli")
    created = admin_cli(full_stack, "keys", "create", project["id"], "--name", "ci")
    key = created["api_key"]["value"] if "api_key" in created else created["value"]
    admin_cli(full_stack, "credit", "topup", project["id"], "1.50")
    admin_cli(full_stack, "limits", "set", project["id"], "--model", "gpt-4o-mini", "--rpm", "2")
    assert chat_with(admin, key).status_code == 200
    shown = admin_cli(full_stack, "credit", "show", project["id"])
    assert Decimal(shown["granted"]) == Decimal("1.50")
    limits = admin_cli(full_stack, "limits", "show", project["id"])
    rows = limits["data"] if isinstance(limits, dict) else limits
    assert [r["max_requests_per_1_minute"] for r in rows] == [2]
