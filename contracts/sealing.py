"""Sealed bodies: prompt and completion text encrypted before it touches Kafka.

Each request gets its own random 256-bit key. The key lives in Redis with a TTL and is deleted
when the request ends, so a Kafka segment retained for days holds nothing readable once the key
is gone: zero data retention that does not depend on Kafka's retention settings.

This module is pure (no I/O): callers store and fetch the key.
"""

from __future__ import annotations

import base64
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import BaseModel, ConfigDict

_NONCE_BYTES = 12


class SealedBody(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    nonce: str
    ciphertext: str


class SealBroken(Exception):
    """The key is wrong or gone, or the ciphertext was altered."""


def new_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def seal(plaintext: bytes, key: bytes, *, associated: bytes) -> SealedBody:
    """Encrypt ``plaintext``. ``associated`` (the request id) is authenticated, so a sealed body
    copied into another request's envelope fails to open."""
    nonce = os.urandom(_NONCE_BYTES)
    ciphertext = AESGCM(key).encrypt(nonce, plaintext, associated)
    return SealedBody(
        nonce=base64.b64encode(nonce).decode(),
        ciphertext=base64.b64encode(ciphertext).decode(),
    )


def unseal(body: SealedBody, key: bytes, *, associated: bytes) -> bytes:
    try:
        return AESGCM(key).decrypt(
            base64.b64decode(body.nonce), base64.b64decode(body.ciphertext), associated
        )
    except Exception as exc:  # InvalidTag, binascii.Error, ValueError: all mean "cannot open"
        raise SealBroken(str(exc) or type(exc).__name__) from exc
