"""The metering service's settings: the shared service settings plus its HTTP port and batching.

Fields carry the service's name (``SWITCHYARD_METERING_PORT``, like ``SWITCHYARD_ROUTER_PORT``):
the stack sets every service's variables in one environment, and a bare ``SWITCHYARD_PORT``
would be read by all of them.
"""

from __future__ import annotations

from services.common.settings import ServiceSettings


class MeteringSettings(ServiceSettings):
    metering_host: str = "127.0.0.1"
    metering_port: int = 8091
    metering_consumer_group: str = "sy-metering"
    # One ClickHouse insert per batch: large enough to keep inserts few (ClickHouse likes big
    # inserts), short enough that a dashboard lags the traffic by a fraction of a second.
    metering_batch_max_events: int = 500
    metering_batch_max_wait_ms: int = 200

    @property
    def metering_url(self) -> str:
        return f"http://{self.metering_host}:{self.metering_port}"
