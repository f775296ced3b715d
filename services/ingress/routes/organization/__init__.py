"""OpenAI's Admin API, ``/v1/organization/...``, in OpenAI's shapes and pagination
(``../shared/specs/openai-openapi.yaml``), with Switchyard's additions in the same style.

Every route checks a permission of the caller's key (``services.common.access``); writes are
records on the governance topic, and each leaves an audit entry (``_shared.commit``).
"""

from __future__ import annotations

from fastapi import APIRouter

from services.ingress.routes.organization import audit, controls, keys, money, people, projects

router = APIRouter(prefix="/v1/organization")
for part in (projects, keys, people, controls, money, audit):
    router.include_router(part.router)
