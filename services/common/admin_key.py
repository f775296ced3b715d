"""The bootstrap admin key, as every HTTP service checks it: where a request carries it, how it
is compared, and which values are refused as placeholders.

Keys are compared by their SHA-256 digest in constant time, so a service keeps only the digest.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated

from pydantic import AfterValidator, SecretStr
from starlette.requests import Request

_PLACEHOLDERS = frozenset({"changeme", "change-me", "admin", "secret"})
_MIN_LENGTH = 16


def _refuse_placeholder(key: SecretStr | None) -> SecretStr | None:
    if key is not None:
        value = key.get_secret_value()
        if len(value) < _MIN_LENGTH or value.lower() in _PLACEHOLDERS:
            raise ValueError("SWITCHYARD_ADMIN_KEY must be a real secret of 16+ characters")
    return key


# A settings field: ``admin_key: AdminKeySetting = None``.
AdminKeySetting = Annotated[SecretStr | None, AfterValidator(_refuse_placeholder)]


def key_digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def digest_matches(key: str, expected: bytes | None) -> bool:
    """Constant time; with no expected digest nothing matches."""
    return expected is not None and hmac.compare_digest(key_digest(key), expected)


def presented_key(request: Request) -> str | None:
    """OpenAI's SDK sends ``Authorization: Bearer``; Anthropic's sends ``x-api-key``."""
    authorization = request.headers.get("authorization")
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    api_key = request.headers.get("x-api-key")
    return api_key.strip() if api_key and api_key.strip() else None
