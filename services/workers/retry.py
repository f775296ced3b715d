"""When to try again, and how long to wait first. The worker is the only layer that retries
(httpx and SDK retries are off), so this is the whole retry policy."""

from __future__ import annotations

import random
from dataclasses import dataclass

from contracts.errors import ErrorCode, ErrorInfo

# Failures that say a model is unwell, and count towards opening its circuit. A rate limit is
# not one (the capacity controller paces those) unless it will not pass by waiting (an
# exhausted quota); a caller's mistake never is.
_UNHEALTHY = frozenset(
    {
        ErrorCode.VENDOR_OVERLOADED,
        ErrorCode.VENDOR_ERROR,
        ErrorCode.VENDOR_TIMEOUT,
        ErrorCode.VENDOR_UNREACHABLE,
        ErrorCode.VENDOR_BAD_RESPONSE,
        ErrorCode.VENDOR_AUTH,
    }
)

# Failures another model may not share: the next target of the plan gets the request. A request
# that is itself wrong (invalid, too large, not allowed) fails everywhere and is not moved;
# neither is one Switchyard ended (deadline, caller gone, its own parts down).
_ANOTHER_TARGET_MAY_ANSWER = _UNHEALTHY | {
    ErrorCode.VENDOR_RATE_LIMITED,
    ErrorCode.CONTEXT_LENGTH_EXCEEDED,  # a model with a larger window may fit it
    ErrorCode.NO_ROUTE,
}


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    max_attempts: int
    base_s: float
    max_s: float
    # A rate limit passes by waiting, and the shared capacity controller paces every replica's
    # retries (services.common.capacity), so it may be retried longer than other failures.
    max_rate_limited_attempts: int = 8

    def delay_s(
        self, info: ErrorInfo, tries_so_far: int, *, has_next: bool = False
    ) -> float | None:
        """Seconds to wait before trying the same target again, or None to stop trying it.

        ``has_next``: the plan has another target. Then only a rate limit is retried here (it
        passes by waiting, and the next target may cost more); a server error, a timeout or a
        refused connection moves on at once, since the caller's time is better spent on a
        model that is up than on backing off from one that is not."""
        rate_limited = info.code is ErrorCode.VENDOR_RATE_LIMITED
        limit = self.max_rate_limited_attempts if rate_limited else self.max_attempts
        if not info.retryable or tries_so_far >= limit:
            return None
        if has_next and (not rate_limited or tries_so_far >= self.max_attempts):
            return None
        if info.retry_after_s is not None:
            return min(info.retry_after_s, self.max_s)
        backoff: float = self.base_s * 2.0 ** (tries_so_far - 1)
        # Jitter: replicas that failed together do not retry together.
        return min(self.max_s, random.uniform(0, backoff) + backoff / 2)

    @staticmethod
    def worth_another_target(info: ErrorInfo, *, content_policy: bool = False) -> bool:
        """``content_policy``: the caller allowed a policy refusal to move on."""
        if info.code is ErrorCode.CONTENT_POLICY:
            return content_policy
        return info.code in _ANOTHER_TARGET_MAY_ANSWER


def unhealthy(info: ErrorInfo) -> bool:
    """Whether this failure counts against the model's health (its circuit breaker)."""
    if info.code is ErrorCode.VENDOR_RATE_LIMITED:
        return not info.retryable
    return info.code in _UNHEALTHY
