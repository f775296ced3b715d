"""Nothing readable is left on disk once requests end (issue item 4).

Request bodies cross Kafka sealed, with a per-request key kept in Redis until the request ends;
Redis keeps nothing on disk. So after the requests below have finished:
- no file under the stack's home (Kafka's log segments, Redis's directory, chDB, every service
  log) holds a marker that was in every prompt, or any reply's text;
- no file holds a sealing key, and Redis no longer holds theirs;
- the sealed bodies are there, in Kafka's retained segments, and none of them opens with any key
  that can be found.
The vendor simulator's log is left out: it is the vendor's side of the wire.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from pathlib import Path

import orjson
import pytest
import redis.asyncio as aioredis

from contracts.envelope import RequestEnvelope
from contracts.sealing import SealBroken, unseal
from contracts.topics import REQUESTS
from services.stack import RunningStack
from tests.e2e.e2e_support import Metering
from tests.e2e.faults.fault_support import chat_body, ingress_client, post_chat
from tests.integration.common.topic_reading import records_with_keys

pytestmark = pytest.mark.e2e

PER_MODE = 10
_KEY_BYTES = 32
_SEAL_PREFIX = b"sy:seal:"


def _files(home: Path) -> list[Path]:
    vendor_log = home / "log" / "vendorsim.log"
    return [p for p in sorted(home.rglob("*")) if p.is_file() and p != vendor_log]


def _read(path: Path) -> bytes:
    """The file's bytes, or none when it went away between listing and reading: chDB merges
    parts while the test reads. A merged-away part's rows live on in the merged part, written
    by the same engine from the same rows, so skipping the vanished file hides nothing new."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return b""


def _keys_found_on_disk(files: list[Path]) -> list[bytes]:
    """Every 32 bytes that follow a sealing key's name anywhere on disk, in whatever framing
    (RESP, RDB, AOF) put them there: a generous search, so finding none means something."""
    candidates: list[bytes] = []
    for path in files:
        data = _read(path)
        for match in re.finditer(re.escape(_SEAL_PREFIX), data):
            window = data[match.end() : match.end() + 200]
            candidates.extend(window[i : i + _KEY_BYTES] for i in range(len(window)))
    return candidates


async def test_no_prompt_reply_or_key_is_readable_on_disk_after_requests_end(
    full_stack: RunningStack, metering: Metering
) -> None:
    marker = f"zdr-marker-{uuid.uuid4().hex}"
    async with ingress_client(full_stack) as http:
        outcomes = await asyncio.gather(
            *(
                post_chat(http, chat_body(f"{marker} sync {i} [sim:tokens=30]"))
                for i in range(PER_MODE)
            ),
            *(
                post_chat(http, chat_body(f"{marker} stream {i} [sim:tokens=30]", stream=True))
                for i in range(PER_MODE)
            ),
        )
    assert all(o.answered for o in outcomes), [o.status for o in outcomes]
    request_ids = [o.request_id for o in outcomes if o.request_id]
    assert len(request_ids) == 2 * PER_MODE
    replies = [
        o.body["choices"][0]["message"]["content"] for o in outcomes if isinstance(o.body, dict)
    ]
    # Usage rows are in ClickHouse: chDB has written its parts, and every request has ended.
    for request_id in request_ids:
        assert metering.wait_rows(request_id), request_id

    layout = full_stack.layout
    files = _files(layout.home)
    assert any(layout.kafka_data_dir in p.parents for p in files)
    needles = [marker.encode(), *(text.encode() for text in replies if len(text) >= 40)]
    assert len(needles) > PER_MODE
    holding = {
        str(p.relative_to(layout.home)): [n[:24] for n in needles if n in _read(p)] for p in files
    }
    assert {path: found for path, found in holding.items() if found} == {}

    keys_on_disk = _keys_found_on_disk(files)
    assert keys_on_disk == [], "a sealing key's name was found on disk"
    redis = aioredis.Redis.from_url(layout.redis_url)
    try:
        live = [await redis.get(_SEAL_PREFIX + rid.encode()) for rid in request_ids]
    finally:
        await redis.aclose()
    assert live == [None] * len(request_ids)

    records = await records_with_keys(
        layout.kafka_bootstrap, REQUESTS.name, {rid.encode() for rid in request_ids}
    )
    envelopes = [RequestEnvelope.model_validate_json(r.value) for r in records]
    assert {e.request_id for e in envelopes} == set(request_ids)
    opened = 0
    for envelope in envelopes:
        assert marker.encode() not in orjson.dumps(envelope.sealed_body.model_dump())
        for key in keys_on_disk:
            try:
                unseal(envelope.sealed_body, key, associated=envelope.request_id.encode())
                opened += 1
            except SealBroken:
                pass
    assert opened == 0
