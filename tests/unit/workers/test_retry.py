from contracts.errors import ErrorCode, ErrorInfo
from services.workers.retry import RetryPolicy, unhealthy

POLICY = RetryPolicy(max_attempts=3, base_s=0.5, max_s=10.0)


def test_retryable_errors_are_retried_until_the_attempt_limit() -> None:
    info = ErrorInfo(code=ErrorCode.VENDOR_ERROR, message="boom", retryable=True)
    assert POLICY.delay_s(info, 1) is not None
    assert POLICY.delay_s(info, 2) is not None
    assert POLICY.delay_s(info, 3) is None


def test_retry_after_is_honoured_but_capped() -> None:
    info = ErrorInfo(
        code=ErrorCode.VENDOR_RATE_LIMITED, message="slow down", retryable=True, retry_after_s=2.0
    )
    assert POLICY.delay_s(info, 1) == 2.0
    long = info.model_copy(update={"retry_after_s": 600.0})
    assert POLICY.delay_s(long, 1) == 10.0


def test_backoff_grows_and_stays_within_bounds() -> None:
    info = ErrorInfo(code=ErrorCode.VENDOR_TIMEOUT, message="slow", retryable=True)
    for tries in (1, 2):
        delay = POLICY.delay_s(info, tries)
        assert delay is not None
        backoff = 0.5 * 2 ** (tries - 1)
        assert backoff / 2 <= delay <= backoff * 1.5


def test_caller_faults_are_neither_retried_nor_sent_elsewhere() -> None:
    info = ErrorInfo(code=ErrorCode.INVALID_REQUEST, message="bad")
    assert POLICY.delay_s(info, 1) is None
    assert not RetryPolicy.worth_another_target(info)
    assert RetryPolicy.worth_another_target(
        ErrorInfo(code=ErrorCode.VENDOR_OVERLOADED, message="busy", retryable=True)
    )


def test_with_another_target_only_a_rate_limit_is_retried_here() -> None:
    overloaded = ErrorInfo(code=ErrorCode.VENDOR_OVERLOADED, message="busy", retryable=True)
    assert POLICY.delay_s(overloaded, 1, has_next=True) is None
    assert POLICY.delay_s(overloaded, 1, has_next=False) is not None
    limited = ErrorInfo(code=ErrorCode.VENDOR_RATE_LIMITED, message="slow", retryable=True)
    assert POLICY.delay_s(limited, 2, has_next=True) is not None
    assert POLICY.delay_s(limited, 3, has_next=True) is None  # then the next target


def test_a_rate_limit_without_another_target_is_retried_longer() -> None:
    limited = ErrorInfo(code=ErrorCode.VENDOR_RATE_LIMITED, message="slow", retryable=True)
    assert POLICY.delay_s(limited, 7) is not None
    assert POLICY.delay_s(limited, 8) is None


def test_what_moves_to_another_target_and_what_counts_against_health() -> None:
    def info(code: ErrorCode, retryable: bool = True) -> ErrorInfo:
        return ErrorInfo(code=code, message="x", retryable=retryable)

    assert RetryPolicy.worth_another_target(info(ErrorCode.CONTEXT_LENGTH_EXCEEDED, False))
    assert not RetryPolicy.worth_another_target(info(ErrorCode.CONTENT_POLICY, False))
    assert RetryPolicy.worth_another_target(
        info(ErrorCode.CONTENT_POLICY, False), content_policy=True
    )
    assert not RetryPolicy.worth_another_target(info(ErrorCode.DEADLINE_EXCEEDED, False))
    assert unhealthy(info(ErrorCode.VENDOR_UNREACHABLE))
    assert not unhealthy(info(ErrorCode.VENDOR_RATE_LIMITED))
    assert unhealthy(info(ErrorCode.VENDOR_RATE_LIMITED, False))  # an exhausted quota
    assert not unhealthy(info(ErrorCode.INVALID_REQUEST, False))
