"""``GET /v1/models`` and ``GET /v1/models/{id}``, from the catalogue, in OpenAI's shape."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from contracts.catalogue import ModelCard, UnknownModel
from services.ingress.deps import CatalogueDep, PrincipalDep
from services.ingress.errors import ApiError

router = APIRouter()

# OpenAI's Model object requires ``created``; the catalogue does not know release dates, so
# every model carries the same fixed timestamp rather than a made-up one per model.
_CREATED = 1_700_000_000


def _model_object(card: ModelCard) -> dict[str, Any]:
    return {
        "id": card.canonical_id,
        "object": "model",
        "created": _CREATED,
        "owned_by": card.provider,
    }


@router.get("/v1/models")
async def list_models(catalogue: CatalogueDep, _: PrincipalDep) -> dict[str, Any]:
    return {"object": "list", "data": [_model_object(card) for card in catalogue.cards()]}


@router.get("/v1/models/{model_id:path}")
async def retrieve_model(model_id: str, catalogue: CatalogueDep, _: PrincipalDep) -> dict[str, Any]:
    try:
        card = catalogue.resolve(model_id).card
    except UnknownModel as exc:
        raise ApiError(exc.error_info()) from exc
    return _model_object(card)
