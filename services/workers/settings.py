from __future__ import annotations

from services.common.settings import ServiceSettings


class WorkerSettings(ServiceSettings):
    worker_port: int = 8093
    # Vendor calls in flight per provider in this process. Calls are I/O-bound (seconds each),
    # so this is what lets one process fill a vendor's capacity.
    worker_max_in_flight: int = 512
    # Tries per target for retryable errors (429, 5xx, timeouts), the first one included.
    worker_max_attempts: int = 3
    worker_retry_base_s: float = 0.25
    worker_retry_max_s: float = 20.0
    vendor_connect_timeout_s: float = 5.0
    vendor_read_timeout_s: float = 300.0
    # Where providers without an API key are sent (never presented as a real vendor).
    vendorsim_url: str = "http://127.0.0.1:8090"
