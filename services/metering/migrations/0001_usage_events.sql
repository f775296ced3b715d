-- One row per vendor attempt, every field of contracts.usage.UsageEvent flattened.
--
-- ReplacingMergeTree(ingested_at): metering inserts an event only if its event_id is not stored
-- yet, so duplicates should never land; if one slips through (two consumers racing across a
-- rebalance), merges collapse it, and every read uses FINAL so numbers are exact before the
-- merge. The version column lets a later re-pricing insert a corrected row that wins.
--
-- ORDER BY (tenant, toDate(ts), model, event_id): analytics filter by tenant and time range and
-- group by model; event_id last makes the key unique per event, which ReplacingMergeTree needs.
-- A duplicate has the same ts, so it always lands in the same monthly partition as the original.
--
-- cost_usd is Decimal(38, 12): USD to a picodollar. Catalogue prices are per million tokens with
-- at most six decimals, so any token count times any price is exact at this scale.
CREATE TABLE IF NOT EXISTS usage_events
(
    event_id String,
    request_id String,
    attempt UInt16,
    ts DateTime64(3, 'UTC'),
    tenant LowCardinality(String),
    key_id String,
    protocol LowCardinality(String),
    mode LowCardinality(String),
    lane LowCardinality(String),
    provider LowCardinality(String),
    model LowCardinality(String),
    requested_model String,
    task_type LowCardinality(String),
    route_reason String,
    status LowCardinality(String),
    error_class LowCardinality(String),
    input_tokens UInt64,
    output_tokens UInt64,
    cache_read_tokens UInt64,
    cache_write_tokens UInt64,
    reasoning_tokens UInt64,
    cost_usd Decimal(38, 12),
    priced Bool,
    price_version String,
    queue_ms UInt32,
    ttft_ms Nullable(UInt32),
    vendor_ms UInt32,
    total_ms UInt32,
    overhead_ms Int32,
    simulated Bool,
    batch_id String,
    tags Map(String, String),
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3),
    INDEX idx_event_id event_id TYPE bloom_filter GRANULARITY 4,
    INDEX idx_request_id request_id TYPE bloom_filter GRANULARITY 4
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(ts)
ORDER BY (tenant, toDate(ts), model, event_id);
