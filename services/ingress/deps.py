"""Dependencies of the routes, declared once. They are coroutines on purpose: FastAPI runs a
plain `def` dependency in a thread pool, which costs more than the work they do."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from contracts.catalogue import Catalogue
from contracts.errors import ErrorCode, ErrorInfo
from services.common.access import KeyRing, Principal
from services.common.admin_key import presented_key
from services.common.audit import KeyUseSummary
from services.ingress.admission import Admission
from services.ingress.errors import ApiError
from services.ingress.gateway import Gateway
from services.ingress.model_names import ModelNames
from services.ingress.settings import IngressSettings


async def _settings(request: Request) -> IngressSettings:
    settings: IngressSettings = request.app.state.settings
    return settings


async def _gateway(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


async def _catalogue(request: Request) -> Catalogue:
    catalogue: Catalogue = request.app.state.catalogue
    return catalogue


async def _model_names(request: Request) -> ModelNames:
    names: ModelNames = request.app.state.model_names
    return names


async def _admission(request: Request) -> Admission:
    admission: Admission = request.app.state.admission
    return admission


async def _principal(request: Request) -> Principal:
    keys: KeyRing = request.app.state.keys
    key = presented_key(request)
    principal = keys.authenticate(key)
    if principal is None:
        message = (
            "Missing API key: send it as 'Authorization: Bearer <key>' or 'x-api-key'."
            if key is None
            else "Incorrect API key provided."
        )
        info = ErrorInfo(code=ErrorCode.AUTHENTICATION, message=message)
        if key is not None:  # a wrong key is worth an audit entry; a missing one is noise
            admission: Admission = request.app.state.admission
            admission.deny(None, info, request=request)  # raises
        raise ApiError(info)
    uses: KeyUseSummary = request.app.state.key_uses
    uses.count(principal.key_id, principal.project_id)
    return principal


SettingsDep = Annotated[IngressSettings, Depends(_settings)]
GatewayDep = Annotated[Gateway, Depends(_gateway)]
CatalogueDep = Annotated[Catalogue, Depends(_catalogue)]
ModelNamesDep = Annotated[ModelNames, Depends(_model_names)]
PrincipalDep = Annotated[Principal, Depends(_principal)]
AdmissionDep = Annotated[Admission, Depends(_admission)]
