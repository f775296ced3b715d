"""API keys: where a request's key is read from, and whether it is valid.

Two kinds of key exist. The bootstrap admin key (``SWITCHYARD_ADMIN_KEY``) is compared by its
SHA-256 digest in constant time (services.common.admin_key), so its plain value is not kept past
start-up; it acts as the organisation's owner. Project keys, held by a project's service
accounts, are looked up by the digest of their value in the governance state every replica
follows (services.common.governance): a revoked key or an archived project stops working as
soon as the replica reads the record.
"""

from __future__ import annotations

from dataclasses import dataclass

from contracts.governance import ModelAccess
from services.common.admin_key import digest_matches, key_digest
from services.common.governance import GovernanceView

ADMIN = "admin"


@dataclass(frozen=True)
class Principal:
    key_id: str
    tenant: str  # the project the key belongs to; "admin" for the bootstrap key
    # The project's model permissions, as they stood when the key was checked; None: any model.
    model_access: ModelAccess | None = None

    @property
    def is_admin(self) -> bool:
        return self.key_id == ADMIN


class KeyRing:
    def __init__(self, admin_key: str | None, governance: GovernanceView | None = None) -> None:
        self._admin = key_digest(admin_key) if admin_key else None
        self.governance = governance or GovernanceView()

    def authenticate(self, key: str | None) -> Principal | None:
        if key is None:
            return None
        if digest_matches(key, self._admin):
            return Principal(key_id=ADMIN, tenant=ADMIN)
        found = self.governance.key_for(key)
        if found is None:
            return None
        return Principal(
            key_id=found.id,
            tenant=found.project_id,
            model_access=self.governance.model_access.get(found.project_id),
        )
