"""The base every Kafka message model shares."""

from __future__ import annotations

import time

from pydantic import BaseModel, ConfigDict


class WireModel(BaseModel):
    """A message on a topic or a Redis stream.

    Unknown fields are ignored rather than refused: a newer producer may add optional fields, and
    an older consumer must keep working (the message rules in DESIGN.md).
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    def to_bytes(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()


def now_ms() -> int:
    return time.time_ns() // 1_000_000
