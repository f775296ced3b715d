"""The base every Kafka message model shares."""

from __future__ import annotations

import time

from pydantic import BaseModel, ConfigDict


class WireModel(BaseModel):
    """A message on a topic or a Redis stream.

    Unknown fields are ignored rather than refused: a newer producer may add optional fields, and
    an older consumer must keep working (the message rules in DESIGN.md).
    """

    # hide_input_in_errors: a validation error must never quote a message's content into a log
    # line or a dead-letter header (zero data retention).
    model_config = ConfigDict(frozen=True, extra="ignore", hide_input_in_errors=True)

    def to_bytes(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()


def now_ms() -> int:
    return time.time_ns() // 1_000_000
