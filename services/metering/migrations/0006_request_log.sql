-- Request logs of projects that opted into retention (contracts.request_log): the prompt and the
-- answer, kept until expires_at and not a moment longer. No other project has a row here.
--
-- TTL expires_at: ClickHouse deletes expired rows when it merges; reads also filter on
-- expires_at > now(), so a row past its time is never shown while it waits for that merge.
--
-- ReplacingMergeTree(ingested_at): a redelivered entry has the same key and collapses on merge;
-- reads use FINAL. ORDER BY (tenant, ts, request_id): a project's owners page through its log,
-- newest first. The two JSON columns are compressed hard: they are the bulk of every row.
CREATE TABLE IF NOT EXISTS request_log
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
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(ts)
ORDER BY (tenant, ts, request_id)
TTL toDateTime(expires_at) DELETE;
