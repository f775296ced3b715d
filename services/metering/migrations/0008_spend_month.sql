-- Each project's spend per calendar month (UTC), as the credit ledger counts it: every event's
-- cost rounded up to a nano-dollar (services.common.credit). The ledger is rebuilt from here,
-- not from usage_events: this table keeps no TTL (SWITCHYARD_USAGE_RETENTION_DAYS never applies
-- to it), so expiring old usage rows can never hand a project its credit back.
--
-- Filled by a materialised view on insert into usage_events; exact because metering inserts an
-- event once (0001). Read it with sum(spent_nanos) grouped by the key.
CREATE TABLE IF NOT EXISTS spend_month
(
    tenant LowCardinality(String),
    month UInt32,
    spent_nanos SimpleAggregateFunction(sum, Int64)
)
ENGINE = AggregatingMergeTree
ORDER BY (tenant, month);

CREATE MATERIALIZED VIEW IF NOT EXISTS spend_month_mv TO spend_month AS
SELECT
    tenant,
    toYYYYMM(ts) AS month,
    sum(toInt64(ceil(cost_usd * 1000000000))) AS spent_nanos
FROM usage_events
GROUP BY tenant, month;

-- What was stored before the view existed; runs only while the table is empty.
INSERT INTO spend_month
SELECT tenant, toYYYYMM(ts) AS month, sum(toInt64(ceil(cost_usd * 1000000000))) AS spent_nanos
FROM usage_events FINAL
WHERE (SELECT count() FROM spend_month) = 0
GROUP BY tenant, month;
