from __future__ import annotations

from services.common.settings import ServiceSettings


class RouterSettings(ServiceSettings):
    router_host: str = "127.0.0.1"  # /healthz and /metrics; loopback unless told otherwise
    router_port: int = 8092
    # Planning is cheap (a dict lookup and a produce), so many messages may be in flight.
    router_max_in_flight: int = 2_000
