"""The simulator's own endpoints, under ``/_sim``: read and change the knobs, start and end
outages, reset, and count.

- ``GET /_sim/config``: the current knobs.
- ``POST /_sim/config``: a JSON object of knob changes; answers the new knobs, or a 400 naming
  what was refused (nothing changes then).
- ``POST /_sim/outage``: ``{"model": "gpt-4o" | "*", "status": 400-599 | "timeout",
  "seconds": > 0, "retry_after_s": >= 0 (optional)}`` starts an outage of that model (``*``:
  every model) from now, replacing the model's earlier one; answers the outage, or a 400.
- ``GET /_sim/outage``: ``{"outages": [outage, ...]}``, those still in force, where an outage is
  ``{"model", "status", "retry_after_s" (null: the knobs'), "remaining_s"}``.
- ``DELETE /_sim/outage``: ends every outage; answers ``{"outages": []}``.
- ``POST /_sim/reset``: back to the knobs the simulator started with; ends every outage; forgets
  ``fail=...xN`` counts, request counts and the call log.
- ``GET /_sim/stats``: requests answered, by endpoint and by status; chat calls received, by
  requested model (``by_model``, counted on arrival, so a call still hanging is in it).
- ``GET /_sim/calls?model=NAME``: ``{"model": NAME, "calls_ms": [...]}``, when each chat call to
  that model arrived, in epoch milliseconds, oldest first; without ``model``,
  ``{"by_model": {NAME: [...], ...}}``.
"""

from __future__ import annotations

import orjson

from services.vendorsim.exchange import Exchange
from services.vendorsim.knobs import KnobsError
from services.vendorsim.outages import Outage, OutageError, parse_order
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
        "by_model": dict(state.calls.by_model),
    }
    await exchange.respond(200, orjson.dumps(body))


async def calls(state: SimState, exchange: Exchange) -> None:
    model = exchange.query("model")
    if model is None:
        body: dict[str, object] = {"by_model": state.calls.all_times_ms()}
    else:
        body = {"model": model, "calls_ms": state.calls.times_ms(model)}
    await exchange.respond(200, orjson.dumps(body))


async def start_outage(state: SimState, exchange: Exchange) -> None:
    try:
        order = parse_order(orjson.loads(await exchange.body()))
    except orjson.JSONDecodeError:
        await exchange.respond(400, _problem("the body must be a JSON object"))
        return
    except OutageError as exc:
        await exchange.respond(400, _problem(str(exc)))
        return
    outage = state.outages.start(order)
    await exchange.respond(200, orjson.dumps(_outage(state, outage)))


async def list_outages(state: SimState, exchange: Exchange) -> None:
    outages = [_outage(state, outage) for outage in state.outages.active()]
    await exchange.respond(200, orjson.dumps({"outages": outages}))


async def end_outages(state: SimState, exchange: Exchange) -> None:
    state.outages.end_all()
    await exchange.respond(200, orjson.dumps({"outages": []}))


def _outage(state: SimState, outage: Outage) -> dict[str, object]:
    return {
        "model": outage.model,
        "status": outage.kind,
        "retry_after_s": outage.retry_after_s,
        "remaining_s": round(state.outages.remaining_s(outage), 3),
    }


def _problem(message: str) -> bytes:
    return orjson.dumps({"error": {"message": message, "type": "invalid_request_error"}})
