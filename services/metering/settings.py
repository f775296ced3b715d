"""The metering service's settings: the shared service settings plus its HTTP address, the admin
key its API requires, and batching.

Fields carry the service's name (``SWITCHYARD_METERING_PORT``, like ``SWITCHYARD_ROUTER_PORT``):
the stack sets every service's variables in one environment, and a bare ``SWITCHYARD_PORT``
would be read by all of them. The admin key is the exception: it is the same key the ingress
takes (``SWITCHYARD_ADMIN_KEY``), as usage is admin data until governance brings scoped keys.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from services.common.admin_key import AdminKeySetting
from services.common.settings import ServiceSettings, local_url


# Addresses that mean "every interface" when bound to, and nothing when connected to.
class MeteringSettings(ServiceSettings):
    # Loopback unless told otherwise: the API answers usage queries (tenants, keys, costs).
    metering_host: str = "127.0.0.1"
    metering_port: int = 8091
    # Required by every usage route; ``switchyard up`` passes the stack's key.
    admin_key: AdminKeySetting = None
    metering_consumer_group: str = "sy-metering"
    # The audit trail's own group: its offsets and lag apart from usage's.
    metering_audit_consumer_group: str = "sy-metering-audit"
    # One ClickHouse insert per batch: large enough to keep inserts few (ClickHouse likes big
    # inserts), short enough that a dashboard lags the traffic by a fraction of a second. The
    # wait bounds a batch under light traffic; the count only fills when a backlog is read. Each
    # insert also runs the rollups' views, whose cost is mostly per block: measured in chDB,
    # inserts of 2,000 rows went at 21,600 rows/s, of 5,000 at 30,500, of 20,000 at 60,000.
    metering_batch_max_events: int = 5_000
    metering_batch_max_wait_ms: int = 200
    # Days usage_events and its rollups keep a row (SWITCHYARD_USAGE_RETENTION_DAYS), applied as
    # their TTL at every start (services.metering.retention); None keeps rows forever. Costs are
    # read from these rows: keep them as long as the organisation needs its costs.
    usage_retention_days: int | None = Field(default=None, ge=1)

    @field_validator("usage_retention_days", mode="before")
    @classmethod
    def _blank_retention_is_unset(cls, value: object) -> object:
        # SWITCHYARD_USAGE_RETENTION_DAYS= (set, empty) keeps rows forever, as unset does.
        return None if isinstance(value, str) and not value.strip() else value

    @property
    def metering_url(self) -> str:
        """Where a client on this machine reaches the API (a wildcard bind is reached on
        loopback)."""
        return local_url(self.metering_host, self.metering_port)
