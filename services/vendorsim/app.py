"""The simulator's ASGI app: routes each request to a protocol endpoint or a control endpoint.

``create_app()`` reads the knobs from the environment; tests pass their own ``SimKnobs``.
Every response carries ``x-switchyard-simulated: true``: the simulator never passes for a real
vendor.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial

from services.vendorsim import control
from services.vendorsim.chat import simulate_call
from services.vendorsim.exchange import ClientGone, Exchange, Receive, Scope, Send
from services.vendorsim.knobs import SimKnobs
from services.vendorsim.protocols import anthropic, openai
from services.vendorsim.protocols.wire import BadRequest
from services.vendorsim.state import SimState

# What ``GET /v1/models`` lists. Any model name is accepted and echoed back; these are only
# there for clients that insist on listing first.
MODELS = ["sim-small", "sim-large", "sim-vision"]

Endpoint = Callable[[Exchange], Awaitable[None]]
_NOT_FOUND = b'{"error":{"message":"Unknown path (switchyard-vendorsim)","type":"not_found_error"}}'
_HEALTHY = b'{"status":"ok","simulated":true}'


class VendorSim:
    """The ASGI application. ``state`` is public so an in-process test can inspect it."""

    def __init__(self, knobs: SimKnobs) -> None:
        self.state = SimState(knobs)
        openai_chat = openai.OpenAIChat()
        anthropic_messages = anthropic.AnthropicMessages()
        state = self.state
        # Routes that count as vendor traffic in ``/_sim/stats``.
        self._vendor_routes: dict[tuple[str, str], Endpoint] = {
            ("POST", "/v1/chat/completions"): partial(simulate_call, openai_chat, state),
            ("POST", "/v1/messages"): partial(simulate_call, anthropic_messages, state),
            ("POST", "/v1/messages/count_tokens"): _count_tokens,
            ("GET", "/v1/models"): _models,
        }
        self._other_routes: dict[tuple[str, str], Endpoint] = {
            ("GET", "/healthz"): _healthz,
            ("GET", "/_sim/config"): partial(control.read_config, state),
            ("POST", "/_sim/config"): partial(control.change_config, state),
            ("POST", "/_sim/reset"): partial(control.reset, state),
            ("GET", "/_sim/stats"): partial(control.stats, state),
            ("GET", "/_sim/calls"): partial(control.calls, state),
            ("GET", "/_sim/outage"): partial(control.list_outages, state),
            ("POST", "/_sim/outage"): partial(control.start_outage, state),
            ("DELETE", "/_sim/outage"): partial(control.end_outages, state),
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(Exchange(scope, receive, send))
        elif scope["type"] == "lifespan":
            await _lifespan(receive, send)

    async def _http(self, exchange: Exchange) -> None:
        # Clients differ on a trailing slash; the vendors do not care either.
        key = (exchange.method, exchange.path.rstrip("/") or "/")
        endpoint = self._vendor_routes.get(key)
        try:
            if endpoint is not None:
                await endpoint(exchange)
                self.state.record(key[1], exchange.status)
                return
            other = self._other_routes.get(key)
            if other is not None:
                await other(exchange)
            else:
                await exchange.respond(404, _NOT_FOUND)
        except ClientGone:
            pass  # nobody to answer


def create_app(knobs: SimKnobs | None = None) -> VendorSim:
    return VendorSim(knobs if knobs is not None else SimKnobs())


async def _count_tokens(exchange: Exchange) -> None:
    wire = anthropic.AnthropicMessages()
    try:
        body = anthropic.count_tokens_answer(await exchange.body())
    except BadRequest as exc:
        answer = wire.error(400, str(exc))
        await exchange.respond(answer.status, answer.body)
        return
    await exchange.respond(200, body)


async def _models(exchange: Exchange) -> None:
    # One path, two shapes: Anthropic's SDK always sends ``anthropic-version``, OpenAI's never.
    if exchange.header(b"anthropic-version") is not None:
        await exchange.respond(200, anthropic.models_page(MODELS))
    else:
        await exchange.respond(200, openai.models_page(MODELS))


async def _healthz(exchange: Exchange) -> None:
    await exchange.respond(200, _HEALTHY)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
