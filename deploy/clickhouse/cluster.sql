-- Switchyard's ClickHouse schema for a cluster: ReplicatedMergeTree tables on every shard, a
-- Distributed table over each under the name the services use, materialised views per shard.
--
-- GENERATED from services/metering/migrations by `make clickhouse-ddl`
-- (services/metering/cluster_ddl.py). Do not edit: write a migration and regenerate.
--
-- Every node needs the macros {cluster}, {shard} and {replica}; apply with
--   clickhouse-client --multiquery --database <db> < deploy/clickhouse/cluster.sql
-- before starting (or upgrading) the services. Every statement is idempotent: re-apply the whole
-- file after each upgrade. See deploy/clickhouse/README.md.

-- The services' migration ledger (services.metering.schema).
CREATE TABLE IF NOT EXISTS schema_migrations_local ON CLUSTER '{cluster}'
(
    version UInt32,
    name String,
    checksum String,
    applied_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/schema_migrations_local', '{replica}', applied_at)
ORDER BY version;
CREATE TABLE IF NOT EXISTS schema_migrations ON CLUSTER '{cluster}' AS schema_migrations_local
ENGINE = Distributed('{cluster}', currentDatabase(), schema_migrations_local, version);

-- 0001_usage_events.sql
CREATE TABLE IF NOT EXISTS usage_events_local ON CLUSTER '{cluster}'
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
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/usage_events_local', '{replica}', ingested_at)
PARTITION BY toYYYYMM(ts)
ORDER BY (tenant, toDate(ts), model, event_id);
CREATE TABLE IF NOT EXISTS usage_events ON CLUSTER '{cluster}' AS usage_events_local
ENGINE = Distributed('{cluster}', currentDatabase(), usage_events_local, cityHash64(request_id));

-- 0002_usage_minute.sql
CREATE TABLE IF NOT EXISTS usage_minute_local ON CLUSTER '{cluster}'
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
ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/usage_minute_local', '{replica}')
PARTITION BY toYYYYMM(minute)
ORDER BY (tenant, minute, provider, model);
CREATE TABLE IF NOT EXISTS usage_minute ON CLUSTER '{cluster}' AS usage_minute_local
ENGINE = Distributed('{cluster}', currentDatabase(), usage_minute_local, rand());
CREATE MATERIALIZED VIEW IF NOT EXISTS usage_minute_mv ON CLUSTER '{cluster}' TO usage_minute_local AS
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
    quantilesState(0.5, 0.9, 0.99)(ttft_ms) AS ttft_ms_quantiles
FROM usage_events_local
GROUP BY minute, tenant, provider, model;

-- 0003_usage_estimated.sql
ALTER TABLE usage_events_local ON CLUSTER '{cluster}' ADD COLUMN IF NOT EXISTS usage_estimated Bool DEFAULT false AFTER reasoning_tokens;
ALTER TABLE usage_events ON CLUSTER '{cluster}' ADD COLUMN IF NOT EXISTS usage_estimated Bool DEFAULT false AFTER reasoning_tokens;

-- 0004_usage_auto_routing.sql
ALTER TABLE usage_events_local ON CLUSTER '{cluster}' ADD COLUMN IF NOT EXISTS difficulty Nullable(Float32) AFTER task_type;
ALTER TABLE usage_events ON CLUSTER '{cluster}' ADD COLUMN IF NOT EXISTS difficulty Nullable(Float32) AFTER task_type;
ALTER TABLE usage_events_local ON CLUSTER '{cluster}' ADD COLUMN IF NOT EXISTS policy LowCardinality(String) DEFAULT '' AFTER difficulty;
ALTER TABLE usage_events ON CLUSTER '{cluster}' ADD COLUMN IF NOT EXISTS policy LowCardinality(String) DEFAULT '' AFTER difficulty;

-- 0005_audit_log.sql
CREATE TABLE IF NOT EXISTS audit_log_local ON CLUSTER '{cluster}'
(
    id String,
    schema_version UInt8,
    type LowCardinality(String),
    effective_at DateTime('UTC'),
    ts DateTime64(3, 'UTC'),
    project_id LowCardinality(String),
    project_name String,
    actor_type LowCardinality(String),
    actor_api_key_id String,
    actor_api_key_type LowCardinality(String),
    actor_user_id String,
    actor_user_email String,
    actor_service_account_id String,
    actor_ip_address String,
    actor_user_agent String,
    target_id String,
    outcome LowCardinality(String),
    error_code LowCardinality(String),
    details String,
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3),
    INDEX idx_id id TYPE bloom_filter GRANULARITY 4,
    INDEX idx_target_id target_id TYPE bloom_filter GRANULARITY 4,
    INDEX idx_actor_api_key_id actor_api_key_id TYPE bloom_filter GRANULARITY 4
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/audit_log_local', '{replica}', ingested_at)
PARTITION BY toYYYYMM(ts)
ORDER BY (project_id, ts, id);
CREATE TABLE IF NOT EXISTS audit_log ON CLUSTER '{cluster}' AS audit_log_local
ENGINE = Distributed('{cluster}', currentDatabase(), audit_log_local, cityHash64(id));

-- 0006_request_log.sql
CREATE TABLE IF NOT EXISTS request_log_local ON CLUSTER '{cluster}'
(
    request_id String,
    tenant LowCardinality(String),
    key_id String,
    ts DateTime64(3, 'UTC'),
    expires_at DateTime64(3, 'UTC'),
    requested_model String,
    model LowCardinality(String),
    provider LowCardinality(String),
    status LowCardinality(String),
    error_code LowCardinality(String),
    attempts UInt16,
    stream Bool,
    request_json String CODEC(ZSTD(3)),
    response_json String CODEC(ZSTD(3)),
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/request_log_local', '{replica}', ingested_at)
PARTITION BY toYYYYMM(ts)
ORDER BY (tenant, ts, request_id)
TTL toDateTime(expires_at) DELETE;
CREATE TABLE IF NOT EXISTS request_log ON CLUSTER '{cluster}' AS request_log_local
ENGINE = Distributed('{cluster}', currentDatabase(), request_log_local, cityHash64(request_id));

-- 0007_usage_analytics.sql
ALTER TABLE usage_events_local ON CLUSTER '{cluster}' ADD COLUMN IF NOT EXISTS user_tag String DEFAULT '' AFTER key_id;
ALTER TABLE usage_events ON CLUSTER '{cluster}' ADD COLUMN IF NOT EXISTS user_tag String DEFAULT '' AFTER key_id;
ALTER TABLE usage_events_local ON CLUSTER '{cluster}' ADD COLUMN IF NOT EXISTS cost_uncached_usd Decimal(38, 12) DEFAULT cost_usd AFTER cost_usd;
ALTER TABLE usage_events ON CLUSTER '{cluster}' ADD COLUMN IF NOT EXISTS cost_uncached_usd Decimal(38, 12) DEFAULT cost_usd AFTER cost_usd;
CREATE TABLE IF NOT EXISTS usage_hour_local ON CLUSTER '{cluster}'
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
ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/usage_hour_local', '{replica}')
PARTITION BY toYYYYMM(hour)
ORDER BY (tenant, hour, provider, model, key_id, task_type, lane);
CREATE TABLE IF NOT EXISTS usage_hour ON CLUSTER '{cluster}' AS usage_hour_local
ENGINE = Distributed('{cluster}', currentDatabase(), usage_hour_local, rand());
CREATE MATERIALIZED VIEW IF NOT EXISTS usage_hour_mv ON CLUSTER '{cluster}' TO usage_hour_local AS
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
FROM usage_events_local
GROUP BY hour, tenant, provider, model, key_id, task_type, lane;
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

-- 0008_spend_month.sql
CREATE TABLE IF NOT EXISTS spend_month_local ON CLUSTER '{cluster}'
(
    tenant LowCardinality(String),
    month UInt32,
    spent_nanos SimpleAggregateFunction(sum, Int64)
)
ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/spend_month_local', '{replica}')
ORDER BY (tenant, month);
CREATE TABLE IF NOT EXISTS spend_month ON CLUSTER '{cluster}' AS spend_month_local
ENGINE = Distributed('{cluster}', currentDatabase(), spend_month_local, cityHash64(tenant));
CREATE MATERIALIZED VIEW IF NOT EXISTS spend_month_mv ON CLUSTER '{cluster}' TO spend_month_local AS
SELECT
    tenant,
    toYYYYMM(ts) AS month,
    sum(toInt64(ceil(cost_usd * 1000000000))) AS spent_nanos
FROM usage_events_local
GROUP BY tenant, month;
INSERT INTO spend_month
SELECT tenant, toYYYYMM(ts) AS month, sum(toInt64(ceil(cost_usd * 1000000000))) AS spent_nanos
FROM usage_events FINAL
WHERE (SELECT count() FROM spend_month) = 0
GROUP BY tenant, month;

-- 0009_usage_day.sql
CREATE TABLE IF NOT EXISTS usage_day_local ON CLUSTER '{cluster}'
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
ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/usage_day_local', '{replica}')
PARTITION BY toYYYYMM(day)
ORDER BY (tenant, day, provider, model, lane, batch_id);
CREATE TABLE IF NOT EXISTS usage_day ON CLUSTER '{cluster}' AS usage_day_local
ENGINE = Distributed('{cluster}', currentDatabase(), usage_day_local, rand());
CREATE MATERIALIZED VIEW IF NOT EXISTS usage_day_mv ON CLUSTER '{cluster}' TO usage_day_local AS
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
FROM usage_events_local
GROUP BY day, tenant, provider, model, lane, batch_id;
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

-- Recorded as applied, so that metering finds nothing left to run at start (a
-- version already recorded with the same checksum is not recorded again).
INSERT INTO schema_migrations (version, name, checksum)
SELECT version, name, checksum
FROM values(
    'version UInt32, name String, checksum String',
    (1, 'usage_events', '67b30d69043f51fd050372da68cf1c5e25745e81991c122d74d530fe9ba1329d'),
    (2, 'usage_minute', '250cda6f16fef9c71509d1b81214e012e8dd347ac0856a4413b21791f49a9f60'),
    (3, 'usage_estimated', '6049107a987d998e838203618c4033f68e7e888f3946bd48612ecc6b80af2250'),
    (4, 'usage_auto_routing', '1ceb5272ebe8a63bf3cbdef30e3e3be572f39cce7ae171d6f4432c2f1018854d'),
    (5, 'audit_log', 'b6238a940102d13f1cfaa9bfde86f04fe41cb7ab6331c8852baeb2fc63c8b9a0'),
    (6, 'request_log', '74614d9309c5893e7c691ac3873790b724bca612bdab3b1d16a42f22d2ff0ef0'),
    (7, 'usage_analytics', '073950c9b3880cce1412bb052a98b19177b6a30ad5bdd80a38692dc771284aee'),
    (8, 'spend_month', '607fdfc9d118de44d8c5158601d9199097d689268076c3c00fb2851f4d611afc'),
    (9, 'usage_day', '07b6c38f5d4b43749a1ae3d3e11e93799791b06ab9ad6d29245f0cfaaaa3a8f7')
)
WHERE (version, checksum) NOT IN (
    SELECT version, argMax(checksum, applied_at) FROM schema_migrations GROUP BY version
);
