"""The simulator's behaviour knobs: latency, output length, error and fault rates.

Knobs are read once from ``SWITCHYARD_VENDORSIM_*`` environment variables when the app is built,
and may be replaced at run time through ``POST /_sim/config``. A ``SimKnobs`` is immutable: a
change builds a new instance, so a request in flight keeps the knobs it started with.
"""

from __future__ import annotations

from typing import Any, Self

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Rate = float  # a probability per request, 0.0 to 1.0


class SimKnobs(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SWITCHYARD_VENDORSIM_", extra="ignore", frozen=True
    )

    ttft_ms: float = Field(default=0.0, ge=0, description="Delay before the first byte of a reply.")
    itl_ms: float = Field(default=0.0, ge=0, description="Delay between streamed tokens.")
    output_tokens: int = Field(default=16, ge=1, le=100_000, description="Default reply length.")
    error_rate_429: Rate = Field(default=0.0, ge=0, le=1)
    error_rate_500: Rate = Field(default=0.0, ge=0, le=1)
    # Anthropic answers 529 overloaded_error; OpenAI's nearest equivalent is a 503.
    error_rate_529: Rate = Field(default=0.0, ge=0, le=1)
    error_rate_timeout: Rate = Field(default=0.0, ge=0, le=1)
    retry_after_s: float = Field(default=1.0, ge=0, description="Retry-After sent with 429s.")
    # Longer than any sane client timeout: a simulated timeout must be the client's to detect.
    timeout_hang_s: float = Field(default=600.0, ge=0)
    fault_disconnect_rate: Rate = Field(default=0.0, ge=0, le=1)
    fault_malformed_rate: Rate = Field(default=0.0, ge=0, le=1)
    # Seeds the dice behind the rates, so a benchmark run can be repeated exactly.
    seed: int | None = None

    @model_validator(mode="after")
    def _error_rates_fit(self) -> Self:
        total = (
            self.error_rate_429
            + self.error_rate_500
            + self.error_rate_529
            + self.error_rate_timeout
        )
        if total > 1.0:
            raise ValueError(f"error rates add up to {total}, more than 1")
        return self

    def updated(self, changes: dict[str, Any]) -> SimKnobs:
        """These knobs with ``changes`` applied; raises ``KnobsError`` naming what is wrong."""
        unknown = sorted(set(changes) - set(type(self).model_fields))
        if unknown:
            raise KnobsError(f"unknown knobs: {', '.join(unknown)}")
        try:
            # Every field is passed, and init arguments beat the environment, so a run-time change
            # never picks up an environment variable that was set after start.
            return type(self)(**{**self.model_dump(), **changes})
        except ValidationError as exc:
            raise KnobsError(_describe(exc)) from None


class KnobsError(ValueError):
    """A run-time knob change was refused."""


def _describe(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'knobs'}: {err['msg']}" for err in exc.errors()
    )
