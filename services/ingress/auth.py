"""API keys: where a request's key is read from, and whether it is valid.

Keys are compared by their SHA-256 digest in constant time, so the plain key is never kept past
start-up. Only the bootstrap admin key exists yet; teams and per-key policies come with
governance.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from starlette.requests import Request


@dataclass(frozen=True)
class Principal:
    key_id: str
    tenant: str


def key_digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def presented_key(request: Request) -> str | None:
    """OpenAI's SDK sends ``Authorization: Bearer``; Anthropic's sends ``x-api-key``."""
    authorization = request.headers.get("authorization")
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    api_key = request.headers.get("x-api-key")
    return api_key.strip() if api_key and api_key.strip() else None


class KeyRing:
    def __init__(self, admin_key: str | None) -> None:
        self._admin = key_digest(admin_key) if admin_key else None

    def authenticate(self, key: str | None) -> Principal | None:
        if key is None or self._admin is None:
            return None
        if hmac.compare_digest(key_digest(key), self._admin):
            return Principal(key_id="admin", tenant="admin")
        return None
