-- What analysts slice by (issue 9): the caller's end-user tag and what each attempt would have
-- cost without its cache hits, and an hourly rollup over the dimensions their reports group by.
--
-- user_tag: OpenAI's `user` field, as the caller sent it (an id of their own end user, never
-- prompt text). cost_uncached_usd: the same tokens priced as if none had come from the cache
-- (cache reads and writes at the input price); savings = cost_uncached_usd - cost_usd. Rows
-- written before this column existed take their own cost: no savings known.
ALTER TABLE usage_events ADD COLUMN IF NOT EXISTS user_tag String DEFAULT '' AFTER key_id;
ALTER TABLE usage_events ADD COLUMN IF NOT EXISTS cost_uncached_usd Decimal(38, 12) DEFAULT cost_usd AFTER cost_usd;

-- The hourly rollup, over (tenant, hour, provider, model, key_id, task_type, lane): the grain of
-- every dashboard chart and every OpenAI usage/costs bucket of an hour or a day. As with
-- usage_minute (0002), exact because metering inserts an event once. later_attempts counts
-- attempts after a request's first (retries and fallbacks), for the fallback rate.
CREATE TABLE IF NOT EXISTS usage_hour
(
    hour DateTime('UTC'),
    tenant LowCardinality(String),
    provider LowCardinality(String),
    model LowCardinality(String),
    key_id String,
    task_type LowCardinality(String),
    lane LowCardinality(String),
    requests SimpleAggregateFunction(sum, UInt64),
    ok SimpleAggregateFunction(sum, UInt64),
    errors SimpleAggregateFunction(sum, UInt64),
    later_attempts SimpleAggregateFunction(sum, UInt64),
    input_tokens SimpleAggregateFunction(sum, UInt64),
    output_tokens SimpleAggregateFunction(sum, UInt64),
    cache_read_tokens SimpleAggregateFunction(sum, UInt64),
    cache_write_tokens SimpleAggregateFunction(sum, UInt64),
    reasoning_tokens SimpleAggregateFunction(sum, UInt64),
    cost_usd SimpleAggregateFunction(sum, Decimal(38, 12)),
    cost_uncached_usd SimpleAggregateFunction(sum, Decimal(38, 12)),
    total_ms_quantiles AggregateFunction(quantiles(0.5, 0.9, 0.95, 0.99), UInt32),
    ttft_ms_quantiles AggregateFunction(quantiles(0.5, 0.9, 0.95, 0.99), Nullable(UInt32))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (tenant, hour, provider, model, key_id, task_type, lane);

CREATE MATERIALIZED VIEW IF NOT EXISTS usage_hour_mv TO usage_hour AS
SELECT
    toStartOfHour(ts) AS hour,
    tenant,
    provider,
    model,
    key_id,
    task_type,
    lane,
    count() AS requests,
    countIf(status = 'ok') AS ok,
    countIf(status != 'ok') AS errors,
    countIf(attempt > 0) AS later_attempts,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    sum(cache_read_tokens) AS cache_read_tokens,
    sum(cache_write_tokens) AS cache_write_tokens,
    sum(reasoning_tokens) AS reasoning_tokens,
    sum(cost_usd) AS cost_usd,
    sum(cost_uncached_usd) AS cost_uncached_usd,
    quantilesState(0.5, 0.9, 0.95, 0.99)(total_ms) AS total_ms_quantiles,
    quantilesState(0.5, 0.9, 0.95, 0.99)(ttft_ms) AS ttft_ms_quantiles
FROM usage_events
GROUP BY hour, tenant, provider, model, key_id, task_type, lane;

-- Backfill the hour rollup from what was stored before it existed (the view sees new inserts
-- only). Idempotent: it runs when usage_hour is empty, so a second run adds nothing.
INSERT INTO usage_hour
SELECT
    toStartOfHour(ts) AS hour, tenant, provider, model, key_id, task_type, lane,
    count(), countIf(status = 'ok'), countIf(status != 'ok'), countIf(attempt > 0),
    sum(input_tokens), sum(output_tokens), sum(cache_read_tokens), sum(cache_write_tokens),
    sum(reasoning_tokens), sum(cost_usd), sum(cost_uncached_usd),
    quantilesState(0.5, 0.9, 0.95, 0.99)(total_ms), quantilesState(0.5, 0.9, 0.95, 0.99)(ttft_ms)
FROM usage_events FINAL
WHERE (SELECT count() FROM usage_hour) = 0
GROUP BY hour, tenant, provider, model, key_id, task_type, lane;
