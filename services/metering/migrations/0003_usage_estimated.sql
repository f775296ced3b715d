-- usage_estimated: the vendor never reported this attempt's usage (a stream it cut), so the
-- worker counted the delivered tokens with its own tokenizer (contracts.usage.UsageEvent). The
-- row is charged all the same; the flag says its tokens, and so its cost, are an estimate.
--
-- DEFAULT false: rows written before this column existed had the vendor's usage, or none.
-- IF NOT EXISTS keeps the statement idempotent, as schema.py requires.
ALTER TABLE usage_events ADD COLUMN IF NOT EXISTS usage_estimated Bool DEFAULT false AFTER reasoning_tokens;
