"""``make bench``, analytics: metering's ingest rate and the dashboard's query times.

1. Ingest: ``--events`` made-up usage events (scripts/seed_usage.py) published to a fresh topic
   of the stack's Kafka, then read by a real ``UsageConsumer`` and ``UsageRecorder`` in this
   process into a fresh chDB directory (never the stack's own). The rate is events over the time
   from the consumer's start to the commit of the last event.
2. Queries: ``--rows`` events inserted straight into another fresh chDB directory, then each
   query the dashboard sends on opening (services/ingress/dashboard/overview.js, the request
   log's first page, and the OpenAI usage and costs endpoints) timed through the functions that
   answer them (services.metering.analytics, services.metering.openai_usage): p50 of
   ``--runs`` runs each, after one warm-up run.

The stack is the one ``SWITCHYARD_HOME`` / ``SWITCHYARD_PORT_OFFSET`` name (as scripts/bench.py
finds it); only its Kafka is used.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import platform
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client import CollectorRegistry

from contracts.catalogue import default_catalogue
from contracts.topics import USAGE, TopicSpec
from scripts.seed_usage import generate_usage, insert, now_on_the_hour, publish
from services.common.gc_tuning import tune_gc
from services.metering import analytics, openai_usage
from services.metering.analytics import Bucket, Dimension, Metric, RequestLogQuery, UsageQuery
from services.metering.consumer import UsageConsumer
from services.metering.metrics import MeteringMetrics
from services.metering.recorder import UsageRecorder
from services.metering.settings import MeteringSettings
from services.metering.store import UsageStore
from services.stack import StackLayout

TARGET_EVENTS_PER_S = 100_000
TARGET_QUERY_MS = 300.0


def machine() -> str:
    model = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs ({model}), Python {platform.python_version()}"


# ---- 1. ingest ------------------------------------------------------------------------------


async def _committed(bootstrap: str, topic: str, group: str, partitions: int) -> int:
    """How many messages the group has committed over the topic's partitions."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        total = 0
        for partition in range(partitions):
            offset = await consumer.committed(TopicPartition(topic, partition))
            total += offset or 0
        return total
    finally:
        await consumer.stop()


async def ingest(bootstrap: str, events: int, *, seed: int, batch_max_events: int) -> None:
    topic = TopicSpec(
        name=f"sy.bench.usage.{uuid.uuid4().hex[:8]}",
        partitions=USAGE.partitions,
        retention_ms=3_600_000,
    )
    print(f"\n== ingest: {events:,} events through UsageConsumer -> UsageRecorder -> chDB")
    print(f"topic {topic.name} ({topic.partitions} partitions), batches of {batch_max_events}")
    started = time.perf_counter()
    await publish(
        generate_usage(events, seed=seed, end_ms=now_on_the_hour()),
        bootstrap=bootstrap,
        topic=topic,
    )
    print(f"published in {time.perf_counter() - started:.1f} s (not part of the rate)")

    directory = tempfile.mkdtemp(prefix="sy-bench-ingest-")
    store = await asyncio.to_thread(UsageStore.connect, f"chdb://{directory}")
    group = f"sy-bench-{uuid.uuid4().hex[:8]}"
    try:
        await store.migrate()
        metrics = MeteringMetrics(CollectorRegistry())
        consumer = UsageConsumer(
            bootstrap=bootstrap,
            recorder=UsageRecorder(store, default_catalogue(), metrics),
            metrics=metrics,
            group_id=group,
            topic=topic.name,
            batch_max_events=batch_max_events,
        )
        tune_gc()  # as the metering service does at start
        started = time.perf_counter()
        await consumer.start()
        done = 0
        deadline = started + 3600
        while done < events and time.perf_counter() < deadline:
            await asyncio.sleep(0.5)
            done = await _committed(bootstrap, topic.name, group, topic.partitions)
        seconds = time.perf_counter() - started
        await consumer.stop()
        stored = await store.on_client(
            lambda client: int(client.query("SELECT count() FROM usage_events").result_rows[0][0])
        )
        rate = done / seconds
        verdict = "meets" if rate >= TARGET_EVENTS_PER_S else "BELOW"
        print(f"committed {done:,} events in {seconds:.1f} s; rows stored: {stored:,}")
        print(
            f"ingest rate: {rate:,.0f} events/s  ({verdict} the target of"
            f" {TARGET_EVENTS_PER_S:,}/s)"
        )
    finally:
        store.close()
        shutil.rmtree(directory, ignore_errors=True)


# ---- 2. queries -----------------------------------------------------------------------------


Probe = Callable[[], Awaitable[object]]


def dashboard_queries(store: UsageStore, now: datetime) -> dict[str, Probe]:
    """What the dashboard sends on opening, for its default range (24h, hourly buckets) and for
    30 days (daily buckets), plus the request log and OpenAI's endpoints."""
    probes: dict[str, Probe] = {}
    series = (
        Metric.REQUESTS, Metric.ATTEMPTS, Metric.ERRORS, Metric.INPUT_TOKENS,
        Metric.OUTPUT_TOKENS, Metric.CACHE_READ_TOKENS, Metric.CACHE_WRITE_TOKENS,
        Metric.REASONING_TOKENS, Metric.COST, Metric.COST_UNCACHED, Metric.SAVINGS,
        Metric.P50_TOTAL_MS, Metric.P95_TOTAL_MS, Metric.P99_TOTAL_MS, Metric.P50_TTFT_MS,
        Metric.P95_TTFT_MS,
    )  # fmt: skip
    totals = (
        Metric.REQUESTS, Metric.ATTEMPTS, Metric.ERRORS, Metric.INPUT_TOKENS,
        Metric.OUTPUT_TOKENS, Metric.CACHE_READ_TOKENS, Metric.COST, Metric.SAVINGS,
        Metric.P95_TOTAL_MS, Metric.P95_TTFT_MS,
    )  # fmt: skip
    for label, span, bucket in (
        ("24h", timedelta(days=1), Bucket.HOUR),
        ("30d", timedelta(days=30), Bucket.DAY),
    ):
        since = bucket.start(now - span)
        overview: dict[str, UsageQuery] = {
            "totals": UsageQuery(since=since, metrics=totals),
            "spend by model": UsageQuery(
                since=since,
                bucket=bucket,
                group_by=(Dimension.MODEL,),
                metrics=(Metric.COST, Metric.REQUESTS),
            ),
            "series": UsageQuery(since=since, bucket=bucket, metrics=series),
            "models": UsageQuery(
                since=since,
                group_by=(Dimension.MODEL,),
                metrics=(
                    Metric.REQUESTS,
                    Metric.ATTEMPTS,
                    Metric.ERRORS,
                    Metric.COST,
                    Metric.SAVINGS,
                    Metric.P95_TOTAL_MS,
                ),
            ),
            "top keys": UsageQuery(
                since=since,
                group_by=(Dimension.KEY_ID,),
                metrics=(Metric.COST, Metric.REQUESTS),
                limit=10,
            ),
            "routing": UsageQuery(
                since=since,
                group_by=(Dimension.TASK_TYPE, Dimension.MODEL),
                metrics=(Metric.REQUESTS,),
            ),
            "batches": UsageQuery(
                since=since,
                group_by=(Dimension.BATCH_ID,),
                metrics=(
                    Metric.REQUESTS,
                    Metric.ATTEMPTS,
                    Metric.OK,
                    Metric.ERRORS,
                    Metric.INPUT_TOKENS,
                    Metric.OUTPUT_TOKENS,
                    Metric.COST,
                ),
            ),
            "projects": UsageQuery(
                since=since, group_by=(Dimension.PROJECT,), metrics=(Metric.REQUESTS,)
            ),
        }
        for name, query in overview.items():
            probes[f"{label} {name} [{query.source.value}]"] = functools.partial(
                analytics.run_query, store, query, scope=None
            )
        log = RequestLogQuery(since=since, limit=50)
        probes[f"{label} request log, first page"] = functools.partial(
            analytics.request_log, store, log, scope=None
        )
        filtered = RequestLogQuery(
            since=since,
            limit=50,
            filters={
                Dimension.MODEL: frozenset({"openai/gpt-4o-mini"}),
                Dimension.STATUS: frozenset({"error"}),
            },
        )
        probes[f"{label} request log, model+status filter"] = functools.partial(
            analytics.request_log, store, filtered, scope=None
        )

    now_s = int(now.timestamp())
    hour_s, day_s = now_s // 3600 * 3600, now_s // 86_400 * 86_400
    completions, costs = openai_usage.UsageKind.COMPLETIONS, openai_usage.UsageKind.COSTS
    openai: list[tuple[str, openai_usage.UsageKind, dict[str, list[str]]]] = [
        # A start time as a tool sends it (now - 7 days, not on a day's boundary): raw events.
        (
            "openai completions 1d x7 by model",
            completions,
            {
                "start_time": [str(now_s - 7 * 86_400)],
                "bucket_width": ["1d"],
                "group_by": ["model"],
            },
        ),
        (
            "openai completions 1h x24 by project",
            completions,
            {
                "start_time": [str(hour_s - 86_400)],
                "bucket_width": ["1h"],
                "group_by": ["project_id"],
            },
        ),
        (
            "openai costs 1d x30 by line_item",
            costs,
            {
                "start_time": [str(day_s - 30 * 86_400)],
                "bucket_width": ["1d"],
                "limit": ["30"],
                "group_by": ["line_item"],
            },
        ),
    ]
    for name, kind, params in openai:
        usage_query = openai_usage.parse_usage_query(kind, params, now_s=now_s)
        lo, hi = usage_query.buckets()[0][0], usage_query.buckets()[-1][1]
        source = openai_usage.cheapest_source(usage_query, lo, hi)
        probes[f"{name} [{source.value}]"] = functools.partial(
            openai_usage.read_usage, store, usage_query, visible_projects=None
        )
    return probes


async def seed(store: UsageStore, rows: int, *, seed: int, batch_size: int) -> None:
    started = time.perf_counter()
    last = [started]

    def progress(done: int) -> None:
        if time.perf_counter() - last[0] > 30 or done == rows:
            last[0] = time.perf_counter()
            print(f"  seeded {done:,} ({done / (last[0] - started):,.0f} rows/s)", flush=True)

    await insert(
        generate_usage(rows, seed=seed, end_ms=now_on_the_hour()),
        store,
        batch_size=batch_size,
        progress=progress,
    )
    print(f"seeded in {time.perf_counter() - started:.1f} s (generation and pricing in Python)")
    await store.on_client(lambda client: client.command("OPTIMIZE TABLE usage_events FINAL"))


async def time_queries(store: UsageStore, runs: int) -> None:
    now = datetime.now(UTC)
    print(f"{'query [table read]':64}{'p50 ms':>9}{'max ms':>9}")
    slow = 0
    for name, probe in dashboard_queries(store, now).items():
        await probe()  # warm-up: the first read of a table pays for its marks and caches
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            await probe()
            times.append((time.perf_counter() - t0) * 1000)
        p50 = statistics.median(times)
        slow += p50 > TARGET_QUERY_MS
        flag = "" if p50 <= TARGET_QUERY_MS else "  > target"
        print(f"{name:64}{p50:9.1f}{max(times):9.1f}{flag}")
    print(f"{slow} queries above the target of {TARGET_QUERY_MS:.0f} ms (p50)")


async def queries(
    rows: int, *, seed_value: int, runs: int, batch_size: int, dsn: str | None
) -> None:
    """Over ``rows`` fresh rows, or over the store ``dsn`` names as it is (seeded earlier with
    scripts/seed_usage.py: 10M rows take a quarter of an hour here)."""
    directory = None if dsn is not None else tempfile.mkdtemp(prefix="sy-bench-queries-")
    store = await asyncio.to_thread(UsageStore.connect, dsn or f"chdb://{directory}")
    try:
        await store.migrate()
        if dsn is None:
            await seed(store, rows, seed=seed_value, batch_size=batch_size)
        else:
            rows = await store.on_client(
                lambda client: int(
                    client.query("SELECT count() FROM usage_events").result_rows[0][0]
                )
            )
        print(f"\n== dashboard queries over {rows:,} usage rows (30 days, p50 of {runs} runs)")
        await time_queries(store, runs)
    finally:
        store.close()
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000, help="events for the ingest phase")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows for the query phase")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--batch-max-events",
        type=int,
        default=MeteringSettings.model_fields["metering_batch_max_events"].default,
        help="the consumer's (default: the service's)",
    )
    parser.add_argument("--insert-batch", type=int, default=100_000)
    parser.add_argument("--skip-ingest", action="store_true")
    parser.add_argument("--skip-queries", action="store_true")
    parser.add_argument(
        "--store", default=None, help="time the queries over this seeded store (chdb:///path)"
    )
    args = parser.parse_args()

    print(f"machine: {machine()}")
    if not args.skip_ingest:
        bootstrap = StackLayout.from_env().kafka_bootstrap
        await ingest(bootstrap, args.events, seed=args.seed, batch_max_events=args.batch_max_events)
    if not args.skip_queries:
        await queries(
            args.rows,
            seed_value=args.seed + 1,
            runs=args.runs,
            batch_size=args.insert_batch,
            dsn=args.store,
        )


if __name__ == "__main__":
    asyncio.run(main())
