"""API keys: where a request's key is read from, and whether it is valid.

Keys are compared by their SHA-256 digest in constant time (services.common.admin_key), so the
plain key is never kept past start-up. Only the bootstrap admin key exists yet; teams and per-key
policies come with governance.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.common.admin_key import digest_matches, key_digest


@dataclass(frozen=True)
class Principal:
    key_id: str
    tenant: str


class KeyRing:
    def __init__(self, admin_key: str | None) -> None:
        self._admin = key_digest(admin_key) if admin_key else None

    def authenticate(self, key: str | None) -> Principal | None:
        if key is None or self._admin is None:
            return None
        if digest_matches(key, self._admin):
            return Principal(key_id="admin", tenant="admin")
        return None
