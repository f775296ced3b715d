// The overview: which queries it asks (all at once), and how their rows become the data model
// each panel draws from. Pure functions of the API's rows, kept apart from drawing so that the
// model can be read (window.dashboard.model) and checked.

import { bucketStarts, BUCKET_MS } from "./state.js";

const SERIES_METRICS = [
  "requests", "attempts", "errors", "input_tokens", "output_tokens", "cache_read_tokens",
  "cache_write_tokens", "reasoning_tokens", "cost", "cost_uncached", "savings",
  "p50_total_ms", "p95_total_ms", "p99_total_ms", "p50_ttft_ms", "p95_ttft_ms",
];
const TOTAL_METRICS = [
  "requests", "attempts", "errors", "input_tokens", "output_tokens", "cache_read_tokens", "cost",
  "savings", "p95_total_ms", "p95_ttft_ms",
];
const MAX_SPEND_GROUPS = 8; // the rest are summed as "other"
const TOP_KEYS = 10;
const NAMED = "named"; // a request that named its model: no task type was read

/** The queries of the overview, by name: each an argument of UsageApi.query. */
export function overviewQueries(window, state) {
  const base = { since: window.since, until: window.until };
  const filters = state.project ? { project: state.project } : {};
  const bucketed = { ...base, bucket: window.bucket, filters };
  // In the order they are sent (the metering service answers one at a time): what is on top of
  // the page first.
  return {
    totals: { ...base, filters, metrics: TOTAL_METRICS },
    spend: { ...bucketed, groupBy: [state.spendBy], metrics: ["cost", "requests"] },
    series: { ...bucketed, metrics: SERIES_METRICS },
    models: {
      ...base, filters, groupBy: ["model"],
      metrics: ["requests", "attempts", "errors", "cost", "savings", "p95_total_ms"],
    },
    keys: { ...base, filters, groupBy: ["key_id"], metrics: ["cost", "requests"], limit: TOP_KEYS },
    routing: { ...base, filters, groupBy: ["task_type", "model"], metrics: ["requests"] },
    batches: {
      ...base, filters, groupBy: ["batch_id"],
      metrics: ["requests", "attempts", "ok", "errors", "input_tokens", "output_tokens", "cost"],
    },
    // The project picker lists every project the key may read, whatever is picked now.
    projects: { ...base, groupBy: ["project"], metrics: ["requests"] },
  };
}

function byBucket(rows) {
  return new Map(rows.map((row) => [row.bucket, row]));
}

function timeline(result, window) {
  const buckets = bucketStarts(result.since, result.until ?? window.end, result.bucket);
  return { buckets, end: result.until ?? window.end, bucket: result.bucket };
}

export function spendModel(result, window) {
  const axis = timeline(result, window);
  const [dimension] = result.groupBy;
  const totals = new Map();
  for (const row of result.rows) {
    totals.set(row[dimension], (totals.get(row[dimension]) ?? 0) + row.cost);
  }
  const ranked = [...totals.entries()].sort((a, b) => b[1] - a[1]).map(([name]) => name);
  const shown = new Set(ranked.slice(0, MAX_SPEND_GROUPS));
  const index = new Map(axis.buckets.map((t, i) => [t, i]));
  const series = new Map();
  for (const row of result.rows) {
    const name = shown.has(row[dimension]) ? row[dimension] : "other";
    if (!series.has(name)) series.set(name, new Array(axis.buckets.length).fill(0));
    const i = index.get(row.bucket);
    if (i !== undefined) series.get(name)[i] += row.cost;
  }
  const order = [...ranked.filter((name) => shown.has(name)), "other"];
  const groups = order
    .filter((name) => series.has(name))
    .map((name) => ({ name: name === "" ? `(no ${dimension})` : name, value: name, values: series.get(name) }));
  return {
    ...axis,
    by: dimension,
    groups,
    rows: result.rows.length,
    points: groups.reduce((n, g) => n + g.values.filter((v) => v > 0).length, 0),
    total: [...totals.values()].reduce((a, b) => a + b, 0),
    empty: result.rows.length === 0,
    search: result.search,
  };
}

export function seriesModel(result, window) {
  const axis = timeline(result, window);
  const rows = byBucket(result.rows);
  const column = (metric, missing = 0) =>
    axis.buckets.map((t) => (rows.has(t) ? rows.get(t)[metric] ?? missing : missing));
  const minutes = BUCKET_MS[result.bucket] / 60_000;
  const requests = column("requests");
  const attempts = column("attempts");
  const errors = column("errors");
  const cost = column("cost");
  const uncached = column("cost_uncached");
  const common = { ...axis, empty: result.rows.length === 0, rows: result.rows.length };
  return {
    tokens: {
      ...common,
      kinds: [
        { label: "input", values: column("input_tokens") },
        { label: "output", values: column("output_tokens") },
        { label: "cache read", values: column("cache_read_tokens") },
        { label: "cache write", values: column("cache_write_tokens") },
        { label: "reasoning", values: column("reasoning_tokens") },
      ],
    },
    rate: {
      ...common,
      requestsPerMinute: requests.map((n) => n / minutes),
      errorsPerMinute: errors.map((n) => n / minutes),
    },
    errors: {
      ...common,
      errorRate: axis.buckets.map((_, i) => (attempts[i] ? errors[i] / attempts[i] : null)),
      fallbackRate: axis.buckets.map((_, i) =>
        requests[i] ? Math.max(0, attempts[i] - requests[i]) / requests[i] : null,
      ),
    },
    latency: {
      ...common,
      lines: [
        { label: "p50 total", values: column("p50_total_ms", null) },
        { label: "p95 total", values: column("p95_total_ms", null) },
        { label: "p99 total", values: column("p99_total_ms", null) },
        { label: "p50 first token", values: column("p50_ttft_ms", null) },
        { label: "p95 first token", values: column("p95_ttft_ms", null) },
      ],
    },
    savings: {
      ...common,
      paid: cost,
      saved: axis.buckets.map((_, i) => Math.max(0, uncached[i] - cost[i])),
    },
  };
}

export function totalsModel(result) {
  const row = result.rows[0] ?? {};
  const value = (name) => row[name] ?? 0;
  return {
    cost: value("cost"),
    costExact: row.cost_exact ?? "0",
    requests: value("requests"),
    attempts: value("attempts"),
    errors: value("errors"),
    inputTokens: value("input_tokens"),
    outputTokens: value("output_tokens"),
    cacheReadTokens: value("cache_read_tokens"),
    savings: value("savings"),
    p95TotalMs: row.p95_total_ms ?? null,
    p95TtftMs: row.p95_ttft_ms ?? null,
    errorRate: value("attempts") ? value("errors") / value("attempts") : null,
    fallbackRate: value("requests")
      ? Math.max(0, value("attempts") - value("requests")) / value("requests")
      : null,
  };
}

export function modelsModel(result) {
  return result.rows.map((row) => ({
    model: row.model,
    requests: row.requests,
    attempts: row.attempts,
    errors: row.errors,
    errorRate: row.attempts ? row.errors / row.attempts : null,
    cost: row.cost,
    savings: row.savings,
    p95TotalMs: row.p95_total_ms,
  }));
}

export function keysModel(result) {
  return {
    keys: result.rows.map((row) => ({ keyId: row.key_id, cost: row.cost, requests: row.requests })),
    hasMore: result.hasMore,
  };
}

export function routingModel(result) {
  const taskTypes = [...new Set(result.rows.map((row) => row.task_type || NAMED))].sort();
  const totals = new Map();
  for (const row of result.rows) totals.set(row.model, (totals.get(row.model) ?? 0) + row.requests);
  const models = [...totals.keys()].sort((a, b) => totals.get(b) - totals.get(a));
  const cells = result.rows.map((row) => [
    models.indexOf(row.model),
    taskTypes.indexOf(row.task_type || NAMED),
    row.requests,
  ]);
  return { taskTypes, models, cells, named: NAMED };
}

export function batchesModel(result) {
  return result.rows
    .filter((row) => row.batch_id)
    .map((row) => ({
      batchId: row.batch_id,
      requests: row.requests,
      attempts: row.attempts,
      ok: row.ok,
      errors: row.errors,
      inputTokens: row.input_tokens,
      outputTokens: row.output_tokens,
      cost: row.cost,
    }));
}

export function projectsModel(result) {
  return result.rows.map((row) => row.project).filter(Boolean).sort();
}
