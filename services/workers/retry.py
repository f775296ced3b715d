"""When to try again, and how long to wait first. The worker is the only layer that retries
(httpx and SDK retries are off), so this is the whole retry policy."""

from __future__ import annotations

import random
from dataclasses import dataclass

from contracts.errors import ErrorCode, ErrorInfo

# Errors that say the request itself is wrong: no other target will do better.
_CALLER_FAULTS = frozenset(
    {
        ErrorCode.INVALID_REQUEST,
        ErrorCode.CONTEXT_LENGTH_EXCEEDED,
        ErrorCode.PAYLOAD_TOO_LARGE,
        ErrorCode.PERMISSION_DENIED,
    }
)


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    max_attempts: int
    base_s: float
    max_s: float

    def delay_s(self, info: ErrorInfo, tries_so_far: int) -> float | None:
        """Seconds to wait before trying the same target again, or None to stop trying it."""
        if not info.retryable or tries_so_far >= self.max_attempts:
            return None
        if info.retry_after_s is not None:
            return min(info.retry_after_s, self.max_s)
        backoff: float = self.base_s * 2.0 ** (tries_so_far - 1)
        # Jitter: replicas that failed together do not retry together.
        return min(self.max_s, random.uniform(0, backoff) + backoff / 2)

    @staticmethod
    def worth_another_target(info: ErrorInfo) -> bool:
        return info.code not in _CALLER_FAULTS
