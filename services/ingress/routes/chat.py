"""``POST /v1/chat/completions``: OpenAI's Chat Completions, sync and streaming."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import orjson
from fastapi import APIRouter, Request
from prometheus_client import Counter, Histogram
from starlette.responses import Response, StreamingResponse

from contracts.chat import ChatRequest, Usage
from contracts.envelope import ClientProtocol, Mode
from contracts.errors import ErrorCode, ErrorInfo
from contracts.features import RequestFeatures
from contracts.replies import OutcomeStatus, ReplyChunk, ReplyFinal
from services.common.prompt_features import FeaturesUnavailable, features_of, prompt_tokens
from services.common.replies import ReplySubscription
from services.common.routing_policy import policy_name
from services.ingress.admission import Admission, Ticket
from services.ingress.body import read_json_body
from services.ingress.deadline import requested_timeout_s
from services.ingress.deps import (
    AdmissionDep,
    GatewayDep,
    ModelNamesDep,
    PrincipalDep,
    SettingsDep,
)
from services.ingress.errors import ApiError, error_response
from services.ingress.gateway import PublishFailed, Submission
from services.ingress.prompt_size import estimate_prompt_tokens
from services.ingress.protocols.openai_chat import (
    ChunkRenderer,
    ProtocolError,
    parse_chat_request,
    render_completion,
    render_error,
)

router = APIRouter()

CHAT_REQUESTS = Counter(
    "sy_ingress_chat_requests_total", "Chat completion requests", ["mode", "status"]
)
CHAT_SECONDS = Histogram(
    "sy_ingress_chat_seconds",
    "Chat completion time to outcome (sync) or to first byte (stream)",
    ["mode"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)

_SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}
# Ours: lets a refusal on content policy grounds move to the next model of the plan.
CONTENT_POLICY_FALLBACK_HEADER = "x-switchyard-fallback-on-content-policy"
# The attempt id of the final reply ingress makes up when it stops waiting at the deadline.
_TIMED_OUT = "ingress-timeout"


@router.post("/v1/chat/completions", response_model=None)
async def create_chat_completion(
    request: Request,
    settings: SettingsDep,
    gateway: GatewayDep,
    model_names: ModelNamesDep,
    principal: PrincipalDep,
    admission: AdmissionDep,
) -> Response:
    started = time.monotonic()
    payload = await read_json_body(request, limit=settings.max_body_bytes)
    try:
        parsed = parse_chat_request(payload)
    except ProtocolError as exc:
        raise ApiError(exc.info) from exc
    requested = parsed.models or [parsed.model]
    # Fail fast on a name nothing answers to; the router resolves for real.
    for index, name in enumerate(requested):
        refusal = model_names.refusal(
            name,
            param=f"models[{index}]" if parsed.models else "model",
            access=principal.model_access,
        )
        if refusal is not None and refusal.code is ErrorCode.PERMISSION_DENIED:
            admission.deny(principal, refusal)  # a forbidden model: audited
        if refusal is not None:
            raise ApiError(refusal)
    features = _auto_features(parsed.model, parsed.models, parsed.chat)

    timeout_s = requested_timeout_s(request.headers, payload, settings)
    mode = Mode.STREAM if parsed.stream else Mode.SYNC
    request_id = gateway.new_request_id()
    ticket = await admission.admit(
        principal,
        request_id=request_id,
        chat=parsed.chat,
        requested=requested,
        timeout_s=timeout_s,
        prompt_tokens=lambda: features.prompt_tokens if features else prompt_tokens(parsed.chat),
    )
    submission = Submission(
        request_id=request_id,
        protocol=ClientProtocol.OPENAI_CHAT,
        mode=mode,
        model=parsed.model,
        models=parsed.models,
        chat=parsed.chat,
        features=features,
        model_access=principal.model_access,
        prompt_tokens_estimate=(
            features.prompt_tokens if features else estimate_prompt_tokens(parsed.chat)
        ),
        fallback_on_content_policy=_flag(request.headers.get(CONTENT_POLICY_FALLBACK_HEADER)),
        tenant=principal.tenant,
        key_id=principal.key_id,
        timeout_s=timeout_s,
        tags=parsed.tags,
        traceparent=request.headers.get("traceparent"),
        retention_days=ticket.retention_days,
        rate_limits=ticket.rate_limits,
        rate_counted=ticket.rate_counted,
    )
    try:
        request_id, subscription = await gateway.submit(submission)
    except PublishFailed as exc:
        await admission.close(ticket, 0)
        CHAT_REQUESTS.labels(mode.value, "unavailable").inc()
        return error_response(exc.info, ticket.headers)
    deadline = time.monotonic() + timeout_s
    try:
        first = await _next(subscription, deadline, final_only=mode is Mode.SYNC)
    except BaseException:
        gateway.inbox.unregister(request_id)
        raise
    completion_id = f"chatcmpl-{request_id}"
    created = int(time.time())
    if isinstance(first, ReplyFinal) and (mode is Mode.SYNC or first.status is OutcomeStatus.ERROR):
        # Answered in one piece: a sync reply, or a stream that failed before its first token
        # (a proper HTTP error then, not an SSE stream with an error in it).
        gateway.inbox.unregister(request_id)
        await _close(admission, ticket, first)
        CHAT_SECONDS.labels(mode.value).observe(time.monotonic() - started)
        CHAT_REQUESTS.labels(mode.value, first.status.value).inc()
        headers = {**ticket.headers, **_reply_headers(request_id, first, features)}
        if first.status is OutcomeStatus.ERROR or first.response is None:
            return error_response(first.error or _no_answer(), headers)
        body = render_completion(
            first.response,
            completion_id=completion_id,
            model=first.model or parsed.model,
            created=created,
            simulated=first.simulated,
        )
        return Response(orjson.dumps(body), media_type="application/json", headers=headers)
    CHAT_SECONDS.labels(mode.value).observe(time.monotonic() - started)
    renderer = ChunkRenderer(
        completion_id=completion_id,
        model=first.model or parsed.model,
        created=created,
        include_usage=parsed.include_usage,
        simulated=first.simulated,
    )
    ending: list[ReplyFinal] = []
    used: list[Usage] = []
    events = _relay(first, subscription, renderer, deadline, ending, used)

    async def stream() -> AsyncIterator[bytes]:
        finished = False
        try:
            async for event in events:
                yield event
            finished = True
        finally:
            gateway.inbox.unregister(request_id)
            if finished and ending:  # (no await in a stream being cancelled)
                await _close(admission, ticket, ending[-1], used[-1] if used else None)
            if not finished or not ending:
                # The caller closed the connection mid-answer, or the answer broke off (a
                # restarted attempt): the worker stops the vendor call. The hold lapses alone.
                gateway.abandon(request_id)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={**_SSE_HEADERS, **ticket.headers, **_reply_headers(request_id, first, features)},
    )


async def _next(
    subscription: ReplySubscription, deadline: float, *, final_only: bool
) -> ReplyChunk | ReplyFinal:
    """The next reply, skipping chunks when only the final one matters."""
    while True:
        try:
            reply = await subscription.next(deadline - time.monotonic())
        except TimeoutError:
            return ReplyFinal(
                request_id=subscription.request_id,
                attempt_id=_TIMED_OUT,
                status=OutcomeStatus.ERROR,
                error=ErrorInfo(
                    code=ErrorCode.DEADLINE_EXCEEDED,
                    message="The request timed out before the model answered.",
                ),
            )
        if isinstance(reply, ReplyFinal) or not final_only:
            return reply


async def _close(
    admission: Admission, ticket: Ticket, final: ReplyFinal, usage: Usage | None = None
) -> None:
    """Release the request's credit hold (once metering settles its attempts), unless ingress
    only stopped waiting: the request may still be running, and its hold then lapses alone.
    ``usage``: what the answer used, for a stream (a sync answer carries it)."""
    if final.attempt_id == _TIMED_OUT:
        return
    if usage is None and final.response is not None:
        usage = final.response.usage
    await admission.close(ticket, final.attempts or 0, model=final.model, usage=usage)


async def _relay(
    first: ReplyChunk | ReplyFinal,
    subscription: ReplySubscription,
    renderer: ChunkRenderer,
    deadline: float,
    ending: list[ReplyFinal],
    used: list[Usage],
) -> AsyncIterator[bytes]:
    """The SSE events of the answer; the final reply, when one comes, is put in ``ending``, and
    the usage the answer reported in ``used``."""
    yield _sse(renderer.first())
    reply = first
    attempt_id = first.attempt_id
    expected_seq = 0  # a request's chunks are numbered from 0 across its attempts
    while True:
        if isinstance(reply, ReplyFinal):
            ending.append(reply)
            CHAT_REQUESTS.labels(Mode.STREAM.value, reply.status.value).inc()
            if reply.status is OutcomeStatus.ERROR:
                # Mid-stream failure: OpenAI's SDK raises on an event carrying "error".
                yield _sse(render_error(reply.error or _no_answer()))
                return
            yield b"data: [DONE]\n\n"
            return
        if reply.attempt_id != attempt_id or reply.seq != expected_seq:
            # Another attempt after part of an answer was relayed (the worker restarted the
            # vendor call), or chunks lost on the way (Redis restarted): splicing would corrupt
            # the answer, so the stream ends with an error instead.
            CHAT_REQUESTS.labels(Mode.STREAM.value, "interrupted").inc()
            yield _sse(
                render_error(
                    ErrorInfo(
                        code=ErrorCode.VENDOR_ERROR,
                        message="The answer was interrupted after it had started; try again.",
                    )
                )
            )
            return
        expected_seq += 1
        if reply.delta.usage is not None:
            used.append(reply.delta.usage)
        for chunk in renderer.render(reply.delta):
            yield _sse(chunk)
        reply = await _next(subscription, deadline, final_only=False)


def _sse(event: dict[str, object]) -> bytes:
    return b"data: " + orjson.dumps(event) + b"\n\n"


def _auto_features(model: str, models: list[str], chat: ChatRequest) -> RequestFeatures | None:
    """The prompt's features when a routing policy chooses the model, else None (and no cost)."""
    if len(models) > 1 and any(policy_name(name) is not None for name in models):
        raise ApiError(
            ErrorInfo(
                code=ErrorCode.INVALID_REQUEST,
                message=(
                    "A routing policy (auto...) chooses its own fallbacks; "
                    "send it as `model`, not inside `models`."
                ),
                param="models",
            )
        )
    if policy_name(model) is None:
        return None
    try:
        return features_of(chat)
    except FeaturesUnavailable as exc:
        raise ApiError(
            ErrorInfo(
                code=ErrorCode.UNAVAILABLE,
                message="Automatic model choice is unavailable right now; name a model.",
                retryable=True,
            )
        ) from exc


def _reply_headers(
    request_id: str, reply: ReplyChunk | ReplyFinal, features: RequestFeatures | None = None
) -> dict[str, str]:
    headers = {"x-request-id": request_id}
    if features is not None:
        headers["x-switchyard-task"] = str(features.task)
    if reply.provider:
        headers["x-switchyard-provider"] = reply.provider
    if reply.model:
        headers["x-switchyard-model"] = reply.model
    if reply.attempts is not None:
        headers["x-switchyard-attempts"] = str(reply.attempts)
    if reply.route:
        headers["x-switchyard-route"] = reply.route
    if reply.simulated:
        headers["x-switchyard-simulated"] = "true"
    return headers


def _flag(value: str | None) -> bool:
    return value is not None and value.strip().lower() in ("1", "true", "yes")


def _no_answer() -> ErrorInfo:
    return ErrorInfo(code=ErrorCode.INTERNAL, message="The request ended without an answer.")
