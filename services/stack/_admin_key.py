"""The local stack's admin key: given by ``SWITCHYARD_ADMIN_KEY``, or made once and kept in
``$SWITCHYARD_HOME/admin_key`` so it survives restarts (a developer pastes it once)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path

ADMIN_KEY_PREFIX = "sy-admin-"
_RANDOM_CHARS = 32


def new_admin_key() -> str:
    # token_urlsafe(n) yields ~1.3 n characters; cut to exactly 32 so the key's shape is fixed.
    return ADMIN_KEY_PREFIX + secrets.token_urlsafe(_RANDOM_CHARS)[:_RANDOM_CHARS]


def load_or_create_admin_key(path: Path, environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    given = env.get("SWITCHYARD_ADMIN_KEY")
    if given:
        return given
    try:
        kept = path.read_text().strip()
    except FileNotFoundError:
        kept = ""
    if kept:
        return kept
    key = new_admin_key()
    write_secret_file(path, key + "\n")
    return key


def write_secret_file(path: Path, text: str) -> None:
    """Write ``text`` readable by the owner only, from the first byte on (no chmod window)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    tmp.replace(path)
