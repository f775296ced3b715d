from __future__ import annotations

import re
import stat
from pathlib import Path

from services.stack._admin_key import load_or_create_admin_key

KEY_SHAPE = re.compile(r"^sy-admin-[A-Za-z0-9_-]{32}$")


def test_generated_once_kept_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "home" / "admin_key"
    first = load_or_create_admin_key(path, {})
    assert KEY_SHAPE.match(first)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_admin_key(path, {}) == first


def test_the_environment_wins_and_is_not_written(tmp_path: Path) -> None:
    path = tmp_path / "admin_key"
    given = "sy-admin-from-the-environment"
    assert load_or_create_admin_key(path, {"SWITCHYARD_ADMIN_KEY": given}) == given
    assert not path.exists()


def test_keys_differ_between_homes(tmp_path: Path) -> None:
    one = load_or_create_admin_key(tmp_path / "a" / "admin_key", {})
    two = load_or_create_admin_key(tmp_path / "b" / "admin_key", {})
    assert one != two
