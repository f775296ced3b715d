from __future__ import annotations

from pydantic import Field

from services.common.settings import ServiceSettings
from services.workers.timeouts import VendorTimeouts


class WorkerSettings(ServiceSettings):
    worker_host: str = "127.0.0.1"  # /healthz and /metrics; loopback unless told otherwise
    worker_port: int = 8093
    # Vendor calls in flight per provider in this process. Calls are I/O-bound (seconds each),
    # so this is what lets one process fill a vendor's capacity.
    worker_max_in_flight: int = 512
    # Tries per target for retryable errors (429, 5xx, timeouts), the first one included.
    worker_max_attempts: int = 3
    # Tries per target for a vendor rate limit: paced by the shared capacity controller, so a
    # 429 burst is waited out rather than failed (a plan with another target moves on earlier).
    worker_max_rate_limited_attempts: int = 8
    worker_retry_base_s: float = 0.25
    worker_retry_max_s: float = 20.0
    # Per attempt, within the request's deadline (services.workers.timeouts). Both are JSON in
    # the environment: SWITCHYARD_VENDOR_TIMEOUTS='{"response_s": 60}',
    # SWITCHYARD_VENDOR_TIMEOUTS_BY_PROVIDER='{"anthropic": {"stream_idle_s": 60}}'.
    vendor_timeouts: VendorTimeouts = VendorTimeouts()
    vendor_timeouts_by_provider: dict[str, VendorTimeouts] = Field(default_factory=dict)
    # Where providers without an API key are sent (never presented as a real vendor).
    vendorsim_url: str = "http://127.0.0.1:8090"

    def timeouts_for(self, provider: str) -> VendorTimeouts:
        return self.vendor_timeouts_by_provider.get(provider, self.vendor_timeouts)
