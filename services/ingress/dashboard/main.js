// The page: asks for a key once (kept in this tab's sessionStorage), follows the view named in
// the URL's fragment, loads it, draws it, and refreshes it on a timer.
//
// `window.dashboard` is the page's state for people and tests alike: `status` ("signed-out",
// "loading", "ready", "error"), `state` (what the fragment names), `model` (what each panel
// draws, as overview.js shapes it), `charts` (the ECharts instances), `loads` (views loaded so
// far) and `timings`, in milliseconds since navigation began: `chartsMs` (the first panel
// drawn), `dataMs` (the last), `readyMs` (the page first ready).

import { ApiError, UsageApi } from "./api.js";
import { count, el, millis, money, percent, utcTime } from "./format.js";
import * as overview from "./overview.js";
import * as log from "./requests.js";
import { parseHash, requestsLink, toHash, windowOf } from "./state.js";

// The chart library is the largest file: it loads while the first queries run.
const chartsLoaded = import("./charts.js");

const KEY_STORAGE = "switchyard.dashboard.key";
const REFRESH_STORAGE = "switchyard.dashboard.refresh";
const DEFAULT_REFRESH_S = 60;
const LOG_PAGE = 50;

const $ = (id) => document.getElementById(id);

const dashboard = {
  status: "starting",
  state: null,
  model: {},
  charts: {},
  timings: {},
  error: null,
  loads: 0, // views loaded so far: a test waits for the next one (also html[data-loads])
};
window.dashboard = dashboard;

let api = null;
let generation = 0;
let inflight = null;
let refreshTimer = null;
let logCursor = null;
let logPages = 0;

function setStatus(status) {
  dashboard.status = status;
  document.documentElement.dataset.status = status;
}

function banner(text) {
  $("banner").textContent = text ?? "";
  $("banner").hidden = !text;
}

// ---- signing in ---------------------------------------------------------------------------

function signIn(message = "") {
  api = null;
  setStatus("signed-out");
  $("signin-error").textContent = message;
  $("signin-key").value = "";
  if (!$("signin").open) $("signin").showModal();
  $("signin-key").focus();
}

function signOut(message = "") {
  sessionStorage.removeItem(KEY_STORAGE);
  inflight?.abort();
  signIn(message);
}

$("signin-form").addEventListener("submit", () => {
  const key = $("signin-key").value.trim();
  if (!key) return;
  sessionStorage.setItem(KEY_STORAGE, key);
  api = new UsageApi(key);
  load();
});
$("signin").addEventListener("cancel", (event) => event.preventDefault()); // no key, no page
$("signout").addEventListener("click", () => signOut());

// ---- the controls -------------------------------------------------------------------------

function navigate(state) {
  const hash = toHash(state);
  if (hash === location.hash) load();
  else location.hash = hash;
}

function localInput(ms) {
  return ms ? new Date(ms).toISOString().slice(0, 16) : "";
}

function syncControls(state) {
  $("range").value = state.range;
  $("custom-range").hidden = state.range !== "custom";
  $("from").value = localInput(state.from);
  $("to").value = localInput(state.to);
  ensureOption($("project"), state.project);
  $("project").value = state.project;
  $("spend-by").value = state.spendBy;
  for (const tab of document.querySelectorAll(".tabs a")) {
    const view = tab.dataset.view;
    tab.classList.toggle("active", view === state.view);
    tab.href = toHash({ ...state, view, filters: view === "requests" ? state.filters : {} });
  }
  const form = $("log-filters");
  for (const input of form.elements) {
    if (input.name) input.value = state.filters[input.name] ?? "";
  }
}

function ensureOption(select, value, label = value) {
  if (value && ![...select.options].some((option) => option.value === value)) {
    select.append(el("option", { value }, label));
  }
}

$("range").addEventListener("change", () => {
  const state = { ...dashboard.state, range: $("range").value };
  if (state.range === "custom" && !(state.from && state.to)) {
    state.to = Date.now();
    state.from = state.to - 24 * 3600_000;
  }
  navigate(state);
});
for (const id of ["from", "to"]) {
  $(id).addEventListener("change", () => {
    const from = Date.parse(`${$("from").value}:00Z`);
    const to = Date.parse(`${$("to").value}:00Z`);
    if (Number.isFinite(from) && Number.isFinite(to) && to > from) {
      navigate({ ...dashboard.state, range: "custom", from, to });
    }
  });
}
$("project").addEventListener("change", () => navigate({ ...dashboard.state, project: $("project").value }));
$("spend-by").addEventListener("change", () => navigate({ ...dashboard.state, spendBy: $("spend-by").value }));
$("reload").addEventListener("click", () => load());
$("controls").addEventListener("submit", (event) => event.preventDefault());

$("refresh").value = localStorage.getItem(REFRESH_STORAGE) ?? String(DEFAULT_REFRESH_S);
$("refresh").addEventListener("change", () => {
  localStorage.setItem(REFRESH_STORAGE, $("refresh").value);
  schedule();
});

function schedule() {
  clearInterval(refreshTimer);
  const seconds = Number($("refresh").value);
  if (!seconds) return;
  refreshTimer = setInterval(() => {
    // Not while hidden, signed out or busy, nor over pages of the log someone is reading.
    if (document.hidden || !api || dashboard.status === "loading") return;
    if (dashboard.state?.view === "requests" && logPages > 1) return;
    load({ quiet: true });
  }, seconds * 1000);
}

$("log-filters").addEventListener("submit", (event) => {
  event.preventDefault();
  const filters = {};
  for (const input of event.target.elements) {
    if (input.name && input.value.trim()) filters[input.name] = input.value.trim();
  }
  navigate({ ...dashboard.state, view: "requests", filters });
});
$("log-clear").addEventListener("click", () => navigate({ ...dashboard.state, filters: {} }));
$("log-more").addEventListener("click", () => {
  loadLogPage(generation, inflight.signal, true).catch((error) => {
    if (error.name !== "AbortError") banner(`Could not load more requests: ${error.message}`);
  });
});

// ---- loading ------------------------------------------------------------------------------

async function load({ quiet = false } = {}) {
  if (!api) return;
  const state = parseHash(location.hash);
  dashboard.state = state;
  syncControls(state);
  for (const view of document.querySelectorAll(".view")) view.hidden = view.id !== `view-${state.view}`;
  inflight?.abort();
  inflight = new AbortController();
  const mine = ++generation;
  if (!quiet) setStatus("loading");
  try {
    if (state.view === "requests") await loadLogPage(mine, inflight.signal, false);
    else await loadOverview(mine, inflight.signal);
    if (mine !== generation) return;
    banner(null);
    dashboard.error = null;
    $("updated").textContent = `Updated ${new Date().toISOString().slice(11, 19)} UTC`;
    dashboard.loads += 1;
    document.documentElement.dataset.loads = String(dashboard.loads);
    setStatus("ready");
    dashboard.timings.readyMs ??= Math.round(performance.now());
  } catch (error) {
    if (mine !== generation || error.name === "AbortError") return;
    dashboard.error = String(error.message ?? error);
    if (error instanceof ApiError && error.status === 401) {
      signOut(`That key was refused: ${error.message}`);
      return;
    }
    banner(
      error instanceof ApiError && error.status === 403
        ? `This key may not read usage: ${error.message}`
        : `Could not load usage: ${error.message ?? error}`,
    );
    setStatus("error");
  }
}

async function loadOverview(mine, signal) {
  const state = dashboard.state;
  const window = windowOf(state);
  const queries = overview.overviewQueries(window, state);
  const model = {
    window: { since: window.since.getTime(), until: window.until?.getTime() ?? null, bucket: window.bucket },
    sources: {},
  };
  dashboard.model = model;
  // The charts are made while the queries run: making one measures its element, which is work
  // better done while the page waits than once the answers are in.
  chartsLoaded.then((charts) => CHART_IDS.forEach((id) => charts.chartIn(id, CHART_CLICKS[id])));
  // Each panel is drawn as soon as its own answer is in: the first charts show while the
  // later queries still run.
  await Promise.all(Object.entries(queries).map(async ([name, query]) => {
    const result = await api.query(query, signal);
    const charts = await chartsLoaded;
    if (mine !== generation) return;
    dashboard.timings.chartsMs ??= Math.round(performance.now());
    model.sources[name] = result.source;
    PANELS[name](charts, model, result, window, state);
    dashboard.charts = charts.allCharts();
  }));
  dashboard.timings.dataMs ??= Math.round(performance.now());
}

const CHART_IDS = [
  "chart-spend", "chart-tokens", "chart-rate", "chart-errors", "chart-latency", "chart-savings",
  "chart-keys", "chart-routing",
];
// What a click on a chart leads to: the request log filtered to what was clicked.
const CHART_CLICKS = {
  "chart-spend": (event) => {
    const spend = dashboard.model.spend;
    const group = spend?.groups.find((g) => g.name === event.seriesName);
    if (group && group.value !== "other" && group.value !== "") go({ [spend.by]: group.value });
  },
  "chart-keys": (event) => go({ key_id: event.name }),
  "chart-routing": (event) => {
    const routing = dashboard.model.routing;
    if (!routing) return; // being redrawn
    const [x, y] = event.value;
    const taskType = routing.taskTypes[y];
    go({ model: routing.models[x], ...(taskType === routing.named ? {} : { task_type: taskType }) });
  },
};

function draw(charts, id, option) {
  charts.chartIn(id, CHART_CLICKS[id]).setOption(option, { notMerge: true });
}

function go(filters) {
  location.hash = requestsLink(dashboard.state, { project: dashboard.state.project, ...filters });
}

// By query name (overview.overviewQueries): what its answer becomes in the model, and its drawing.
const PANELS = {
  totals(charts, model, result) {
    model.totals = overview.totalsModel(result);
    renderKpis(model.totals);
  },
  spend(charts, model, result, window) {
    model.spend = overview.spendModel(result, window);
    draw(charts, "chart-spend", charts.spendOption(model.spend));
  },
  series(charts, model, result, window) {
    Object.assign(model, overview.seriesModel(result, window));
    draw(charts, "chart-tokens", charts.tokensOption(model.tokens));
    draw(charts, "chart-rate", charts.rateOption(model.rate));
    draw(charts, "chart-errors", charts.errorsOption(model.errors));
    draw(charts, "chart-latency", charts.latencyOption(model.latency));
    draw(charts, "chart-savings", charts.savingsOption(model.savings));
  },
  models(charts, model, result, window, state) {
    model.models = overview.modelsModel(result);
    renderModels(model.models, state);
    fillList("dl-model", model.models.map((m) => m.model));
  },
  keys(charts, model, result) {
    model.keys = overview.keysModel(result);
    draw(charts, "chart-keys", charts.keysOption(model.keys));
    fillList("dl-key_id", model.keys.keys.map((k) => k.keyId));
  },
  routing(charts, model, result) {
    model.routing = overview.routingModel(result);
    draw(charts, "chart-routing", charts.routingOption(model.routing));
    fillList("dl-task_type", model.routing.taskTypes.filter((t) => t !== model.routing.named));
  },
  batches(charts, model, result, window, state) {
    model.batches = overview.batchesModel(result);
    renderBatches(model.batches, state);
  },
  projects(charts, model, result, window, state) {
    model.projects = overview.projectsModel(result);
    const projects = $("project");
    for (const project of model.projects) ensureOption(projects, project);
    projects.value = state.project;
  },
};

function fillList(id, values) {
  $(id).replaceChildren(...[...new Set(values)].filter(Boolean).map((value) => el("option", { value })));
}

function kpi(label, value, detail = "") {
  return el("div", { class: "kpi" }, el("span", { class: "label" }, label),
    el("span", { class: "value" }, value), el("span", { class: "detail" }, detail));
}

function renderKpis(t) {
  $("kpis").replaceChildren(
    kpi("Spend", money(t.cost), `${count(t.requests)} requests`),
    kpi("Tokens", count(t.inputTokens + t.outputTokens), `${count(t.inputTokens)} in · ${count(t.outputTokens)} out`),
    kpi("Cache savings", money(t.savings), `${count(t.cacheReadTokens)} cached tokens`),
    kpi("Error rate", percent(t.errorRate), `${count(t.errors)} failed attempts`),
    kpi("Fallback rate", percent(t.fallbackRate), `${count(Math.max(0, t.attempts - t.requests))} extra attempts`),
    kpi("Latency p95", millis(t.p95TotalMs), `first token p95 ${millis(t.p95TtftMs)}`),
  );
}

function table(id, headings, rows, emptyText) {
  const body = rows.length
    ? rows
    : [el("tr", { class: "empty" }, el("td", { colspan: headings.length }, emptyText))];
  $(id).replaceChildren(
    el("thead", {}, el("tr", {}, headings.map((h) => el("th", {}, h)))),
    el("tbody", {}, body),
  );
}

function renderModels(models, state) {
  table("models-table", ["Model", "Requests", "Error rate", "Spend", "Saved", "p95"], models.map((m) =>
    el("tr", {},
      el("td", { class: "model" }, el("a", { href: requestsLink(state, { project: state.project, model: m.model }), title: "Its requests" }, m.model)),
      el("td", { class: "num" }, count(m.requests)),
      el("td", { class: "num" }, percent(m.errorRate)),
      el("td", { class: "num" }, money(m.cost)),
      el("td", { class: "num" }, m.savings > 0 ? money(m.savings) : "–"),
      el("td", { class: "num" }, millis(m.p95TotalMs)),
    )), "No usage in this range");
}

function progress(ok, errors, total) {
  const bar = el("span", { class: "progress", title: `${ok} ok, ${errors} failed` },
    el("span", { class: "ok" }), el("span", { class: "failed" }));
  bar.children[0].style.width = `${total ? (100 * ok) / total : 0}%`;
  bar.children[1].style.width = `${total ? (100 * errors) / total : 0}%`;
  return bar;
}

function renderBatches(batches, state) {
  table("batches-table", ["Batch", "Requests", "Succeeded", "Failed attempts", "Outcome", "Tokens", "Spend"],
    batches.map((b) =>
      el("tr", {},
        el("td", {}, el("a", { href: requestsLink(state, { project: state.project, batch_id: b.batchId }) }, b.batchId)),
        el("td", { class: "num" }, count(b.requests)),
        el("td", { class: "num" }, count(b.ok)),
        el("td", { class: "num" }, count(b.errors)),
        el("td", {}, progress(b.ok, b.errors, b.attempts)),
        el("td", { class: "num" }, count(b.inputTokens + b.outputTokens)),
        el("td", { class: "num" }, money(b.cost)),
      )),
    "No batch traffic in this range: requests sent through the Batches API appear here, one row per batch, as their results are metered.");
}

async function loadLogPage(mine, signal, more) {
  const state = dashboard.state;
  const window = windowOf(state);
  const page = await api.requests({
    since: window.since,
    until: window.until,
    filters: { ...state.filters, project: state.project },
    limit: LOG_PAGE,
    after: more ? logCursor : null,
  }, signal);
  if (mine !== generation) return;
  const table = $("log-table");
  if (!more) {
    log.renderHeader(table);
    logPages = 0;
    dashboard.model.requests = { filters: { ...state.filters, project: state.project }, rows: [] };
  }
  logPages += 1;
  logCursor = page.next;
  log.appendRows(table, state, page.requests);
  const shown = dashboard.model.requests.rows;
  shown.push(...page.requests.map((request) => request.raw));
  if (!shown.length) log.emptyRow(table, "No requests match these filters in this range.");
  $("log-more").hidden = !page.hasMore;
  const active = Object.entries({ project: state.project, ...state.filters }).filter(([, v]) => v);
  $("log-summary").textContent = `${count(shown.length)}${page.hasMore ? "+" : ""} requests` +
    (active.length ? ` where ${active.map(([k, v]) => `${k} = ${v}`).join(", ")}` : "") +
    ` since ${utcTime(window.since.getTime())} UTC`;
  fillList("dl-provider", shown.map((r) => r.provider));
}

// ---- start --------------------------------------------------------------------------------

window.addEventListener("hashchange", () => load());
document.addEventListener("visibilitychange", () => {
  if (!document.hidden && api && dashboard.status === "ready") load({ quiet: true });
});

if (!location.hash) history.replaceState(null, "", toHash(parseHash("")));
dashboard.state = parseHash(location.hash);
syncControls(dashboard.state);
schedule();
const stored = sessionStorage.getItem(KEY_STORAGE);
if (stored) {
  api = new UsageApi(stored);
  load();
} else {
  signIn();
}
