-- A per-minute rollup for dashboards: requests, outcomes, tokens, cost and latency quantiles per
-- (tenant, provider, model). Filled by a materialized view on insert into usage_events.
--
-- Exact because metering never inserts an event twice (see 0001); the rollup cannot see FINAL,
-- so an event that raced in twice would count twice here while usage_events stays exact.
-- Read it with sum(...) and quantilesMerge(0.5, 0.9, 0.99)(...) grouped by the key.
CREATE TABLE IF NOT EXISTS usage_minute
(
    minute DateTime('UTC'),
    tenant LowCardinality(String),
    provider LowCardinality(String),
    model LowCardinality(String),
    requests SimpleAggregateFunction(sum, UInt64),
    ok SimpleAggregateFunction(sum, UInt64),
    errors SimpleAggregateFunction(sum, UInt64),
    input_tokens SimpleAggregateFunction(sum, UInt64),
    output_tokens SimpleAggregateFunction(sum, UInt64),
    cache_read_tokens SimpleAggregateFunction(sum, UInt64),
    cost_usd SimpleAggregateFunction(sum, Decimal(38, 12)),
    total_ms_quantiles AggregateFunction(quantiles(0.5, 0.9, 0.99), UInt32),
    ttft_ms_quantiles AggregateFunction(quantiles(0.5, 0.9, 0.99), Nullable(UInt32))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (tenant, minute, provider, model);

CREATE MATERIALIZED VIEW IF NOT EXISTS usage_minute_mv TO usage_minute AS
SELECT
    toStartOfMinute(ts) AS minute,
    tenant,
    provider,
    model,
    count() AS requests,
    countIf(status = 'ok') AS ok,
    countIf(status != 'ok') AS errors,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    sum(cache_read_tokens) AS cache_read_tokens,
    sum(cost_usd) AS cost_usd,
    quantilesState(0.5, 0.9, 0.99)(total_ms) AS total_ms_quantiles,
    -- ttft exists only for streamed calls; quantilesState skips the NULLs of the others.
    quantilesState(0.5, 0.9, 0.99)(ttft_ms) AS ttft_ms_quantiles
FROM usage_events
GROUP BY minute, tenant, provider, model;
