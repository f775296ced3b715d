// The one module that knows the usage API's wire shapes (services/metering/analytics.py):
// `GET /v1/usage/query` and `GET /v1/usage/requests`. Everything else in the page works on what
// this module returns, so a change of the API's JSON is a change here only.
//
// Rows come back with plain names and numbers: a money column `cost_usd` ("0.001250000000", a
// decimal string on the wire) becomes `cost` (a float: fine for a chart, and the exact string
// is kept as `cost_exact`), a bucket's ISO time becomes epoch milliseconds.

// The page is served at <base>/dashboard/; the API lives at <base>/v1/...
const API_ROOT = new URL("../", document.baseURI);

export const MONEY_METRICS = new Set(["cost", "cost_uncached", "savings"]);
// The dimensions the request log may be filtered by (analytics.LOG_FILTERS).
export const LOG_FILTERS = [
  "project", "key_id", "user_tag", "task_type", "batch_id", "model", "provider", "status",
];

export class ApiError extends Error {
  constructor(status, message, param = null) {
    super(message);
    this.status = status;
    this.param = param;
  }
}

function wireField(metric) {
  return MONEY_METRICS.has(metric) ? `${metric}_usd` : metric;
}

function isoSeconds(date) {
  return date.toISOString().replace(/\.\d{3}Z$/, "Z");
}

function searchOf(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value === null || value === undefined || value === "") continue;
    for (const one of Array.isArray(value) ? value : [value]) {
      search.append(name, one instanceof Date ? isoSeconds(one) : String(one));
    }
  }
  return search;
}

async function failure(response) {
  let message = `${response.status} ${response.statusText}`;
  let param = null;
  try {
    const body = await response.json();
    const error = body.error ?? body;
    if (typeof error.message === "string") message = error.message;
    else if (typeof body.detail === "string") message = body.detail;
    param = error.param ?? null;
  } catch {
    // not JSON: keep the status line
  }
  return new ApiError(response.status, message, param);
}

export class UsageApi {
  constructor(key) {
    this.key = key;
  }

  async get(path, params, signal) {
    const url = new URL(path, API_ROOT);
    url.search = searchOf(params).toString();
    const response = await fetch(url, {
      headers: { authorization: `Bearer ${this.key}`, accept: "application/json" },
      cache: "no-store",
      signal,
    });
    if (!response.ok) throw await failure(response);
    return response.json();
  }

  /** One analytics query. `spec`: since (Date), until (Date|null), bucket ("none", "1m", ...),
   * groupBy (dimension names), metrics (metric names), filters ({dimension: value or [values]}),
   * limit. Returns {since, until, bucket, groupBy, metrics, rows, hasMore, source, search}. */
  async query(spec, signal) {
    const params = {
      since: spec.since,
      until: spec.until ?? null,
      bucket: spec.bucket ?? "none",
      group_by: (spec.groupBy ?? []).join(",") || null,
      metrics: spec.metrics.join(","),
      limit: spec.limit ?? null,
      format: "json",
      ...(spec.filters ?? {}),
    };
    const body = await this.get("v1/usage/query", params, signal);
    const groupBy = body.group_by ?? [];
    const metrics = body.metrics ?? spec.metrics;
    const rows = (body.data ?? []).map((raw) => {
      const row = {};
      if (raw.bucket !== undefined) row.bucket = Date.parse(raw.bucket);
      for (const dimension of groupBy) row[dimension] = raw[dimension] ?? "";
      for (const metric of metrics) {
        const value = raw[wireField(metric)];
        if (MONEY_METRICS.has(metric)) {
          row[metric] = value == null ? 0 : Number(value);
          row[`${metric}_exact`] = value ?? "0";
        } else {
          row[metric] = value ?? null;
        }
      }
      return row;
    });
    return {
      since: body.since ? Date.parse(body.since) : spec.since.getTime(),
      until: body.until ? Date.parse(body.until) : null,
      bucket: body.bucket ?? params.bucket,
      groupBy,
      metrics,
      rows,
      hasMore: Boolean(body.has_more),
      source: body.source ?? null,
      search: searchOf(params).toString(),
    };
  }

  /** One page of the request log, newest first. Returns {requests, next, hasMore}. */
  async requests({ since, until, filters, limit, after }, signal) {
    const params = { since, until: until ?? null, limit: limit ?? null, after: after ?? null };
    for (const name of LOG_FILTERS) {
      if (filters?.[name]) params[name] = filters[name];
    }
    const body = await this.get("v1/usage/requests", params, signal);
    const requests = (body.data ?? []).map((raw) => ({
      id: raw.request_id,
      startedAt: Date.parse(raw.first_attempt_at),
      endedAt: Date.parse(raw.last_attempt_at),
      project: raw.project,
      keyId: raw.key_id,
      userTag: raw.user_tag,
      requestedModel: raw.requested_model,
      model: raw.model,
      provider: raw.provider,
      routeReason: raw.route_reason,
      taskType: raw.task_type,
      policy: raw.policy,
      lane: raw.lane,
      batchId: raw.batch_id,
      status: raw.status,
      errorClass: raw.error_class,
      attempts: raw.attempts,
      inputTokens: raw.input_tokens,
      outputTokens: raw.output_tokens,
      cacheReadTokens: raw.cache_read_tokens,
      cacheWriteTokens: raw.cache_write_tokens,
      reasoningTokens: raw.reasoning_tokens,
      cost: raw.cost_usd,
      costUncached: raw.cost_uncached_usd,
      savings: raw.savings_usd,
      cacheHit: Boolean(raw.cache_hit),
      ttftMs: raw.ttft_ms,
      totalMs: raw.total_ms,
      raw,
    }));
    return { requests, next: body.next ?? null, hasMore: Boolean(body.has_more) };
  }
}
