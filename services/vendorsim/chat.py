"""One simulated model call, whatever the protocol: parse, decide what goes wrong, wait, answer.

The order mirrors a real vendor: a malformed body is refused at once; a rate limit or server
error comes back before any generation (no time to first token); a timeout hangs; otherwise the
reply waits ``ttft`` and then arrives whole or streamed, one token every ``itl``, and breaks
halfway if a mid-reply fault was drawn.
"""

from __future__ import annotations

import asyncio
import math

from services.vendorsim.directives import parse_directives
from services.vendorsim.exchange import JSON_HEADERS, SSE_HEADERS, Exchange, Headers
from services.vendorsim.faults import NO_MISHAP, Mishap
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
        await _fail(wire, state, exchange, 400, str(exc))
        return
    knobs = state.knobs
    directives = parse_directives(conversation.directive_text)
    digest = conversation.digest()
    mishap = state.dice.roll(knobs, directives, digest)

    if mishap.hang:
        # Hang until the client gives up (then there is no one to answer) or, failing that,
        # answer a gateway timeout.
        try:
            async with asyncio.timeout(knobs.timeout_hang_s):
                await exchange.disconnected()
        except TimeoutError:
            await _fail(wire, state, exchange, 504, _STATUS_MESSAGES[504])
        return
    if mishap.status is not None:
        message = _STATUS_MESSAGES.get(mishap.status, f"Simulated error {mishap.status}.")
        await _fail(wire, state, exchange, mishap.status, message)
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


async def _fail(
    wire: ChatWire, state: SimState, exchange: Exchange, status: int, message: str
) -> None:
    answer = wire.error(status, message)
    headers = JSON_HEADERS
    if answer.status == 429:
        retry_after = state.knobs.retry_after_s
        # ``retry-after`` only takes whole seconds; OpenAI's SDK also reads ``retry-after-ms``.
        headers = [
            *headers,
            (b"retry-after", b"%d" % math.ceil(retry_after)),
            (b"retry-after-ms", b"%d" % round(retry_after * 1000)),
        ]
    await exchange.respond(answer.status, answer.body, headers)
