"""The simulator's own endpoints, under ``/_sim``: read and change the knobs, reset, and count.

- ``GET /_sim/config``: the current knobs.
- ``POST /_sim/config``: a JSON object of knob changes; answers the new knobs, or a 400 naming
  what was refused (nothing changes then).
- ``POST /_sim/reset``: back to the knobs the simulator started with; forgets ``fail=...xN``
  counts and request counts.
- ``GET /_sim/stats``: requests answered, by endpoint and by status.
"""

from __future__ import annotations

import orjson

from services.vendorsim.exchange import Exchange
from services.vendorsim.knobs import KnobsError
from services.vendorsim.state import SimState


async def read_config(state: SimState, exchange: Exchange) -> None:
    await exchange.respond(200, state.knobs.model_dump_json().encode())


async def change_config(state: SimState, exchange: Exchange) -> None:
    try:
        changes = orjson.loads(await exchange.body())
    except orjson.JSONDecodeError:
        changes = None
    if not isinstance(changes, dict):
        await exchange.respond(400, _problem("the body must be a JSON object of knob changes"))
        return
    try:
        knobs = state.configure(changes)
    except KnobsError as exc:
        await exchange.respond(400, _problem(str(exc)))
        return
    await exchange.respond(200, knobs.model_dump_json().encode())


async def reset(state: SimState, exchange: Exchange) -> None:
    state.reset()
    await exchange.respond(200, state.knobs.model_dump_json().encode())


async def stats(state: SimState, exchange: Exchange) -> None:
    body = {
        "requests": sum(state.by_status.values()),
        "by_endpoint": dict(state.by_endpoint),
        "by_status": {str(status): n for status, n in state.by_status.items()},
    }
    await exchange.respond(200, orjson.dumps(body))


def _problem(message: str) -> bytes:
    return orjson.dumps({"error": {"message": message, "type": "invalid_request_error"}})
