-- The audit trail: one row per contracts.audit.AuditEvent (admin actions, refused requests,
-- each key's use per window), served as OpenAI's GET /v1/organization/audit_logs.
--
-- ReplacingMergeTree(ingested_at), as usage_events: metering inserts an event only if its id is
-- not stored yet; a duplicate that races in anyway collapses on merge, and reads use FINAL.
--
-- ORDER BY (project_id, ts, id): the API reads one project's (or a few projects') events over a
-- time range, newest first, and pages by (ts, id); id last makes the key unique per event, which
-- ReplacingMergeTree needs. Organisation-level events have project_id ''. A duplicate has the
-- same ts, so it lands in the same monthly partition as the original.
--
-- Optional fields are '' when absent, not NULL: simpler to filter, and none of them has a
-- meaningful empty value (contracts.audit refuses empty ids). details is the event's details
-- as a JSON object: a bounded handful of scalars (at most 32, strings cut to 512 characters),
-- never prompt text.
--
-- No TTL: an audit trail is kept for as long as the organisation's policy says, often years,
-- and quietly deleting it is worse than keeping small rows. An operator who needs a bound adds
-- one in a numbered migration: ALTER TABLE audit_log MODIFY TTL toDateTime(ts) + INTERVAL n DAY.
CREATE TABLE IF NOT EXISTS audit_log
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
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(ts)
ORDER BY (project_id, ts, id);
