"""Realistic usage, made up: a deterministic stream of ``UsageEvent``s for benchmarks and demos.

``generate_usage`` draws requests from a fixed mix (``UsageMix``): projects of very different
sizes, each with its keys and end-user tags; models of the shipped catalogue, by popularity;
named models and automatic choices (with a task type, difficulty and policy); interactive and
batch lanes; failed attempts that were retried or fell back (``attempt`` 0, 1, ... of one
``request_id``, the last one the outcome); cache reads and writes where the model caches,
reasoning tokens where it reasons; latencies with a long tail; spread evenly over ``days``
before ``end_ms``. The same seed and end give the same events, byte for byte.

Two sinks:

- ``publish``: to a Kafka topic, as workers publish (key: the request id), so that metering's
  real consumer ingests them.
- ``insert``: straight into ClickHouse through ``UsageStore.insert_events``, priced from the
  catalogue as the recorder prices them: the fast way to fill a store for timing queries.

    python scripts/seed_usage.py --count 1000000 --sink clickhouse --dsn chdb:///tmp/usage
    python scripts/seed_usage.py --count 200000 --sink kafka --topic sy.usage.v1
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice

from contracts.catalogue import Catalogue, ModelCard, default_catalogue
from contracts.chat import Usage
from contracts.envelope import ClientProtocol, Mode
from contracts.errors import ErrorCode
from contracts.replies import OutcomeStatus
from contracts.topics import USAGE, Lane, TopicSpec
from contracts.usage import Timings, UsageEvent
from services.common.kafka import ensure_topics, make_producer
from services.common.pricing import price
from services.metering.store import PricedEvent, UsageStore

DAY_MS = 86_400_000
TASK_TYPES = (
    "chat",
    "code",
    "summarise",
    "extract",
    "classify",
    "translate",
    "reasoning",
    "creative",
)
POLICIES = ("cheapest-capable", "balanced", "quality-first")
# Vendor-side errors (retryable: a second attempt follows) and caller-side ones (final).
RETRYABLE_ERRORS = (
    ErrorCode.VENDOR_RATE_LIMITED,
    ErrorCode.VENDOR_OVERLOADED,
    ErrorCode.VENDOR_ERROR,
    ErrorCode.VENDOR_TIMEOUT,
    ErrorCode.VENDOR_UNREACHABLE,
)
FINAL_ERRORS = (
    ErrorCode.CONTEXT_LENGTH_EXCEEDED,
    ErrorCode.CONTENT_POLICY,
    ErrorCode.INVALID_REQUEST,
)


@dataclass(frozen=True, kw_only=True)
class UsageMix:
    """The shape of the made-up traffic. Rates are per request unless they say otherwise."""

    projects: int = 40
    keys_per_project: int = 5
    users_per_project: int = 200
    models: int = 40  # the most "popular" priced models of the catalogue take all the traffic
    auto_rate: float = 0.6  # routed automatically: a task type and a policy
    batch_rate: float = 0.08  # on the batch lane, in one of a few batches per project and day
    stream_rate: float = 0.5  # of interactive requests
    error_rate: float = 0.05  # of attempts
    retry_rate: float = 0.7  # of retryable errors: another attempt follows
    fallback_rate: float = 0.5  # of retries: to another model (the fallback), not the same one
    user_tag_rate: float = 0.7
    cache_read_rate: float = 0.35  # of attempts on a model that caches
    cache_write_rate: float = 0.1


@dataclass(frozen=True, slots=True)
class _Model:
    card: ModelCard
    caches: bool
    reasons: bool


def _models(catalogue: Catalogue, count: int) -> list[_Model]:
    # Sorted first: the catalogue's order must not change which models a seed picks.
    cards = sorted((c for c in catalogue.cards() if c.priced), key=lambda c: c.canonical_id)
    chosen = random.Random(0).sample(cards, min(count, len(cards)))
    return [
        _Model(
            card,
            caches=card.prices.cache_read is not None or card.capabilities.prompt_caching,
            reasons=card.capabilities.reasoning,
        )
        for card in chosen
    ]


def _zipf_weights(n: int, s: float = 1.1) -> list[float]:
    return [1 / (rank + 1) ** s for rank in range(n)]


def generate_usage(
    count: int,
    *,
    seed: int = 0,
    days: float = 30.0,
    end_ms: int,
    mix: UsageMix = UsageMix(),
    catalogue: Catalogue | None = None,
) -> Iterator[UsageEvent]:
    """``count`` events (attempts, not requests), their requests' first attempts uniform over
    ``[end_ms - days, end_ms)``. A request's attempts are yielded together, in order; the
    stream stops at ``count`` even inside a request (the last one may then lack its retry)."""
    rng = random.Random(seed)
    models = _models(catalogue or default_catalogue(), mix.models)
    model_weights = _zipf_weights(len(models))
    projects = [f"proj_{i:03d}" for i in range(mix.projects)]
    project_weights = _zipf_weights(len(projects), 1.0)
    start_ms = end_ms - int(days * DAY_MS)
    span_ms = max(end_ms - start_ms, 1)
    emitted = 0
    n = 0
    while emitted < count:
        request_id = f"req_{seed:x}_{n:010d}"
        n += 1
        for event in _request(
            rng,
            request_id,
            models,
            model_weights,
            projects,
            project_weights,
            start_ms,
            span_ms,
            mix,
        ):
            yield event
            emitted += 1
            if emitted >= count:
                return


def _request(
    rng: random.Random,
    request_id: str,
    models: Sequence[_Model],
    model_weights: Sequence[float],
    projects: Sequence[str],
    project_weights: Sequence[float],
    start_ms: int,
    span_ms: int,
    mix: UsageMix,
) -> Iterator[UsageEvent]:
    project = rng.choices(projects, project_weights)[0]
    key_id = f"key_{project[5:]}_{rng.randrange(mix.keys_per_project)}"
    user_tag = (
        f"user-{project[5:]}-{rng.randrange(mix.users_per_project):04d}"
        if rng.random() < mix.user_tag_rate
        else ""
    )
    ts_ms = start_ms + rng.randrange(span_ms)
    batch = rng.random() < mix.batch_rate
    lane = Lane.BATCH if batch else Lane.INTERACTIVE
    mode = Mode.BATCH if batch else (Mode.STREAM if rng.random() < mix.stream_rate else Mode.SYNC)
    # A project's batches: a few a day, so batch ids repeat over many requests.
    batch_id = f"batch_{project[5:]}_{ts_ms // DAY_MS}_{rng.randrange(3)}" if batch else None
    protocol = (
        ClientProtocol.ANTHROPIC_MESSAGES if rng.random() < 0.15 else ClientProtocol.OPENAI_CHAT
    )
    model = rng.choices(models, model_weights)[0]
    auto = rng.random() < mix.auto_rate
    task_type = rng.choice(TASK_TYPES) if auto else ""
    difficulty = round(rng.random(), 3) if auto else None
    policy = rng.choice(POLICIES) if auto else ""
    requested = "auto" if auto else model.card.canonical_id
    input_tokens = max(1, int(rng.lognormvariate(6.5, 1.1)))  # median ~670, long tail
    output_tokens = max(1, int(rng.lognormvariate(5.3, 0.9)))  # median ~200
    attempt = 0
    while True:
        failed = rng.random() < mix.error_rate
        retryable = rng.random() < 0.8
        error = rng.choice(RETRYABLE_ERRORS if retryable else FINAL_ERRORS) if failed else None
        retried = failed and retryable and attempt < 2 and rng.random() < mix.retry_rate
        stream = mode is Mode.STREAM
        vendor_ms = int(rng.lognormvariate(6.6 if not failed else 5.5, 0.7))  # median ~735 ms
        queue_ms = int(rng.expovariate(1 / 8))
        overhead_ms = 2 + int(rng.expovariate(1 / 3))
        ttft_ms = min(vendor_ms, int(rng.lognormvariate(5.4, 0.6))) if stream else None
        cache_read = cache_write = reasoning = 0
        if model.caches and rng.random() < mix.cache_read_rate:
            cache_read = int(input_tokens * rng.uniform(0.3, 0.95))
        elif model.caches and rng.random() < mix.cache_write_rate:
            cache_write = int(input_tokens * rng.uniform(0.3, 0.9))
        out = output_tokens
        if model.reasons:
            reasoning = int(rng.lognormvariate(6.0, 1.0))
            out += reasoning  # reasoning tokens are billed as output, and counted in it
        if failed:
            # Most failures come back before any output: no tokens. A timeout mid-answer was
            # charged for what it had read.
            usage = (
                Usage(input_tokens=input_tokens, output_tokens=out // 4)
                if error is ErrorCode.VENDOR_TIMEOUT
                else Usage()
            )
        else:
            usage = Usage(
                input_tokens=input_tokens,
                output_tokens=out,
                cache_read_tokens=cache_read,
                cache_write_tokens=cache_write,
                reasoning_tokens=reasoning,
            )
        if attempt == 0:
            reason = "auto:" + task_type if auto else "named"
        else:
            reason = "fallback" if model.card.canonical_id != requested else "retry"
        yield UsageEvent(
            event_id=UsageEvent.make_id(request_id, attempt),
            request_id=request_id,
            attempt=attempt,
            ts_ms=ts_ms,
            tenant=project,
            key_id=key_id,
            user_tag=user_tag,
            protocol=protocol,
            mode=mode,
            lane=lane,
            provider=model.card.provider,
            model=model.card.canonical_id,
            requested_model=requested,
            task_type=task_type,
            difficulty=difficulty,
            policy=policy,
            route_reason=reason,
            status=OutcomeStatus.ERROR if failed else OutcomeStatus.OK,
            error_class=error,
            usage=usage,
            timings=Timings(
                queue_ms=queue_ms,
                ttft_ms=ttft_ms,
                vendor_ms=vendor_ms,
                total_ms=queue_ms + vendor_ms + overhead_ms,
                overhead_ms=overhead_ms,
            ),
            simulated=True,
            batch_id=batch_id,
            tags={"env": "prod"} if rng.random() < 0.5 else {},
        )
        if not retried:
            return
        ts_ms += queue_ms + vendor_ms + overhead_ms + 50
        attempt += 1
        if rng.random() < mix.fallback_rate:
            model = rng.choices(models, model_weights)[0]


def batched(events: Iterable[UsageEvent], size: int) -> Iterator[list[UsageEvent]]:
    iterator = iter(events)
    while chunk := list(islice(iterator, size)):
        yield chunk


# ---- sinks ----------------------------------------------------------------------------------

Progress = Callable[[int], None]


async def publish(
    events: Iterable[UsageEvent],
    *,
    bootstrap: str,
    topic: TopicSpec = USAGE,
    progress: Progress | None = None,
) -> int:
    """Send every event to ``topic`` (created if missing), keyed by request id as workers key
    them; return how many, once the broker has acknowledged all of them."""
    await ensure_topics(bootstrap, [topic])
    # Lingering: nobody waits on these, and fuller produce requests are what makes this fast.
    producer = make_producer(bootstrap, client_id="sy-seed-usage", linger_ms=20)
    await producer.start()
    sent = 0
    try:
        for chunk in batched(events, 5_000):
            futures = [
                await producer.send(topic.name, e.to_bytes(), key=e.request_id.encode())
                for e in chunk
            ]
            await asyncio.gather(*futures)
            sent += len(chunk)
            if progress is not None:
                progress(sent)
    finally:
        await producer.stop()
    return sent


def priced(events: Iterable[UsageEvent], catalogue: Catalogue) -> list[PricedEvent]:
    """As ``UsageRecorder`` prices them."""
    return [
        PricedEvent(
            event=event,
            pricing=price(event, catalogue.get(event.model)),
            price_version=catalogue.version,
        )
        for event in events
    ]


async def insert(
    events: Iterable[UsageEvent],
    store: UsageStore,
    *,
    batch_size: int = 100_000,
    catalogue: Catalogue | None = None,
    progress: Progress | None = None,
) -> int:
    """Price and insert every event, ``batch_size`` at a time (memory stays flat whatever the
    count); no dedupe: the events are new by construction."""
    catalogue = catalogue or default_catalogue()
    inserted = 0
    for chunk in batched(events, batch_size):
        await store.insert_events(priced(chunk, catalogue))
        inserted += len(chunk)
        if progress is not None:
            progress(inserted)
    return inserted


def now_on_the_hour() -> int:
    """The end of a seeded range when none is given: the current hour's start, so that a run
    within the hour draws the same events."""
    return int(time.time()) // 3600 * 3600 * 1000


def _report(total: int, started: float) -> Progress:
    """A line at every twentieth of ``total``."""
    step = max(total // 20, 1)
    shown = 0

    def report(done: int) -> None:
        nonlocal shown
        if done // step > shown // step or done == total:
            shown = done
            rate = done / max(time.perf_counter() - started, 1e-9)
            print(f"  {done:>12,} / {total:,}  ({rate:,.0f} events/s)", flush=True)

    return report


async def _main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000, help="events (attempts)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--days", type=float, default=30.0)
    parser.add_argument("--end-ms", type=int, default=None, help="default: this hour's start")
    parser.add_argument("--sink", choices=("kafka", "clickhouse"), required=True)
    parser.add_argument("--bootstrap", default=None, help="default: the stack's Kafka")
    parser.add_argument("--topic", default=USAGE.name)
    parser.add_argument("--dsn", default=None, help="chdb:///path or http://...")
    args = parser.parse_args()

    end_ms = args.end_ms if args.end_ms is not None else now_on_the_hour()
    events = generate_usage(args.count, seed=args.seed, days=args.days, end_ms=end_ms)
    started = time.perf_counter()
    progress = _report(args.count, started)
    if args.sink == "kafka":
        from services.stack import StackLayout

        bootstrap = args.bootstrap or StackLayout.from_env().kafka_bootstrap
        spec = TopicSpec(
            name=args.topic, partitions=USAGE.partitions, retention_ms=USAGE.retention_ms
        )
        done = await publish(events, bootstrap=bootstrap, topic=spec, progress=progress)
    else:
        if args.dsn is None:
            parser.error("--sink clickhouse needs --dsn")
        store = await asyncio.to_thread(UsageStore.connect, args.dsn)
        try:
            await store.migrate()
            done = await insert(events, store, progress=progress)
        finally:
            store.close()
    seconds = time.perf_counter() - started
    print(f"{done:,} events in {seconds:.1f} s ({done / seconds:,.0f} events/s)")


if __name__ == "__main__":
    asyncio.run(_main())
