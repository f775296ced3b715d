-- The daily rollup (issue 9): what the dashboard's week and month views and its batch progress
-- read (services.metering.analytics). usage_hour keeps key, task type and lane per hour, and on
-- busy traffic that is nearly a row per event (10M events gave 7.8M rows), so a 30-day view
-- merged millions of quantile states. Per day over (tenant, provider, model, lane, batch_id) the
-- same 10M events fold into about 150,000 rows: batch_id is '' on the interactive lane, so it
-- splits only the batch lines, by their few batches a day. The columns and their meaning are
-- usage_hour's (0007); `day` is the start of the UTC day, a DateTime so that the rollups share
-- their bucket expressions.
CREATE TABLE IF NOT EXISTS usage_day
(
    day DateTime('UTC'),
    tenant LowCardinality(String),
    provider LowCardinality(String),
    model LowCardinality(String),
    lane LowCardinality(String),
    batch_id String,
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
PARTITION BY toYYYYMM(day)
ORDER BY (tenant, day, provider, model, lane, batch_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS usage_day_mv TO usage_day AS
SELECT
    toStartOfDay(ts) AS day,
    tenant,
    provider,
    model,
    lane,
    batch_id,
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
GROUP BY day, tenant, provider, model, lane, batch_id;

-- Backfill from what was stored before the view existed; idempotent as 0007's is.
INSERT INTO usage_day
SELECT
    toStartOfDay(ts) AS day, tenant, provider, model, lane, batch_id,
    count(), countIf(status = 'ok'), countIf(status != 'ok'), countIf(attempt > 0),
    sum(input_tokens), sum(output_tokens), sum(cache_read_tokens), sum(cache_write_tokens),
    sum(reasoning_tokens), sum(cost_usd), sum(cost_uncached_usd),
    quantilesState(0.5, 0.9, 0.95, 0.99)(total_ms), quantilesState(0.5, 0.9, 0.95, 0.99)(ttft_ms)
FROM usage_events FINAL
WHERE (SELECT count() FROM usage_day) = 0
GROUP BY day, tenant, provider, model, lane, batch_id;
