"""One simulated model call, whatever the protocol: parse, decide what goes wrong, wait, answer.

The order mirrors a real vendor: a malformed body is refused at once; an outage of the model
beats everything else; a rate limit or server error comes back before any generation (no time to
first token); a timeout hangs; otherwise the reply waits ``ttft`` and then arrives whole or
streamed, one token every ``itl``, and breaks halfway if a mid-reply fault was drawn.
"""

from __future__ import annotations

import asyncio
import math

from services.vendorsim.directives import parse_directives
from services.vendorsim.exchange import JSON_HEADERS, SSE_HEADERS, Exchange, Headers
from services.vendorsim.faults import NO_MISHAP, Mishap
from services.vendorsim.knobs import SimKnobs
from services.vendorsim.protocols.wire import BadRequest, ChatWire, StreamFrames
from services.vendorsim.reply import plan_reply
from services.vendorsim.state import SimState

_STATUS_MESSAGES = {
    429: "Rate limit reached (simulated by switchyard-vendorsim).",
    500: "The server had an error while processing your request (simulated).",
    503: "The server is overloaded (simulated).",
    504: "The request timed out (simulated).",
    529: "Overloaded (simulated).",
}


async def simulate_call(wire: ChatWire, state: SimState, exchange: Exchange) -> None:
    try:
        conversation = wire.parse(await exchange.body())
    except BadRequest as exc:
        await _fail(wire, exchange, 400, str(exc))
        return
    # Logged before anything can fail or hang: a test counts the calls it caused, answered or not.
    state.calls.record(conversation.model)
    knobs = state.knobs
    directives = parse_directives(conversation.directive_text)
    digest = conversation.digest()
    outage = state.outages.current(conversation.model)
    if outage is not None:
        # Not a roll of the dice: a ``fail=...xN`` count does not tick while the model is down.
        mishap = outage.mishap(knobs.retry_after_s)
    else:
        mishap = state.dice.roll(knobs, directives, conversation.model, digest)

    if mishap.hang:
        # Hang until the client gives up (then there is no one to answer) or, failing that,
        # answer a gateway timeout.
        try:
            async with asyncio.timeout(knobs.timeout_hang_s):
                await exchange.disconnected()
        except TimeoutError:
            await _fail(wire, exchange, 504, _STATUS_MESSAGES[504])
        return
    if mishap.status is not None:
        message = _STATUS_MESSAGES.get(mishap.status, f"Simulated error {mishap.status}.")
        await _fail(wire, exchange, mishap.status, message, _retry_after_s(mishap, knobs))
        return

    reply = plan_reply(conversation, directives, output_tokens=knobs.output_tokens, digest=digest)
    ttft_ms = directives.ttft_ms if directives.ttft_ms is not None else knobs.ttft_ms
    if ttft_ms > 0:
        await asyncio.sleep(ttft_ms / 1000)
    serial = state.serial()
    headers = [(wire.request_id_header, f"req_{serial}".encode())]
    if conversation.stream:
        itl_ms = directives.itl_ms if directives.itl_ms is not None else knobs.itl_ms
        frames = wire.stream(conversation, reply, serial)
        await _stream(wire, exchange, frames, itl_ms / 1000, mishap, headers)
        return
    body = wire.render(conversation, reply, serial)
    if mishap is NO_MISHAP:
        await exchange.respond(200, body, [*JSON_HEADERS, *headers])
        return
    # A broken reply: the full length is promised, half the body arrives. With ``malformed``
    # the connection stays up but the half is all there is, so the JSON does not parse.
    half = body[: len(body) // 2]
    if mishap.disconnect:
        length = (b"content-length", b"%d" % len(body))
        await exchange.begin(200, [*JSON_HEADERS, *headers, length])
        await exchange.write(half)
        return  # without ending the response: the server drops the connection
    await exchange.respond(200, half, [*JSON_HEADERS, *headers])


async def _stream(
    wire: ChatWire,
    exchange: Exchange,
    frames: StreamFrames,
    itl_s: float,
    mishap: Mishap,
    headers: Headers,
) -> None:
    await exchange.begin(200, [*SSE_HEADERS, *headers])
    tokens = frames.tokens or (b"",)
    # The fault strikes after half the tokens, so at least one token has reached the client:
    # the case a gateway cannot hide by switching to another vendor.
    broken_after = max(1, len(tokens) // 2) if mishap is not NO_MISHAP else -1
    # Without a delay between tokens, frames are written together: one write per stream, not
    # one per token.
    pending = [frames.head]
    for index, token in enumerate(tokens):
        if index and itl_s > 0:
            await exchange.write(b"".join(pending))
            pending.clear()
            await asyncio.sleep(itl_s)
        pending.append(token)
        if index + 1 == broken_after:
            if mishap.malformed:
                pending.append(wire.malformed_frame)
            if mishap.disconnect:
                await exchange.write(b"".join(pending))
                return  # without ending the response: the server drops the connection
    pending.append(frames.tail)
    await exchange.end(b"".join(pending))


def _retry_after_s(mishap: Mishap, knobs: SimKnobs) -> float | None:
    """How long the client is told to wait: an outage says so itself (on 429, 503 and 529);
    otherwise only a 429 says, from the knobs."""
    if mishap.retry_after_s is not None:
        return mishap.retry_after_s
    return knobs.retry_after_s if mishap.status == 429 else None


async def _fail(
    wire: ChatWire,
    exchange: Exchange,
    status: int,
    message: str,
    retry_after: float | None = None,
) -> None:
    answer = wire.error(status, message)
    headers = JSON_HEADERS
    if retry_after is not None:
        # ``retry-after`` only takes whole seconds; OpenAI's SDK also reads ``retry-after-ms``.
        headers = [
            *headers,
            (b"retry-after", b"%d" % math.ceil(retry_after)),
            (b"retry-after-ms", b"%d" % round(retry_after * 1000)),
        ]
    await exchange.respond(answer.status, answer.body, headers)
