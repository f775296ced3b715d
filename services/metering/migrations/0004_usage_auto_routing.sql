-- Automatic model choice (contracts.features): the difficulty ingress read from the prompt and
-- the routing policy that chose the model, next to task_type, so an analyst can ask what each
-- task type costs, how hard it was, and which policy sent it where.
--
-- difficulty is NULL for a request that named its model. IF NOT EXISTS keeps the statements
-- idempotent, as schema.py requires.
ALTER TABLE usage_events ADD COLUMN IF NOT EXISTS difficulty Nullable(Float32) AFTER task_type;
ALTER TABLE usage_events ADD COLUMN IF NOT EXISTS policy LowCardinality(String) DEFAULT '' AFTER difficulty;
