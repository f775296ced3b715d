// The request log view: one row per request, newest first, filtered by the fields the API
// filters on, paged by its cursor ("Load more"). A row opens to show every field.

import { el, count, millis, money, utcTime } from "./format.js";
import { requestsLink } from "./state.js";

const COLUMNS = [
  "Started (UTC)", "Project", "Key", "Model", "Task", "Route", "Status", "Attempts", "Tokens in",
  "Tokens out", "Cache read", "Cost", "Saved", "First token", "Total",
];

function filterLink(state, filters, text, title) {
  if (!text) return "–";
  return el("a", { href: requestsLink(state, { project: state.project, ...state.filters, ...filters }), title }, text);
}

function details(request) {
  const list = el("dl", { class: "details" });
  for (const [name, value] of Object.entries(request.raw)) {
    if (name === "object") continue;
    list.append(el("dt", {}, name), el("dd", {}, value === null ? "–" : String(value)));
  }
  return list;
}

function row(state, request) {
  const model = request.model ?? request.requestedModel;
  const modelCell = el("td", { class: "model" }, filterLink(state, { model }, model, "Requests of this model"));
  if (request.requestedModel && request.requestedModel !== model) {
    modelCell.append(el("span", { class: "asked" }, ` (asked ${request.requestedModel})`));
  }
  const tr = el("tr", { class: request.status === "ok" ? "" : "failed", dataset: { id: request.id } },
    el("td", { title: request.id }, utcTime(request.startedAt)),
    el("td", {}, filterLink(state, { project: request.project }, request.project)),
    el("td", { class: "key" }, filterLink(state, { key_id: request.keyId }, request.keyId)),
    modelCell,
    el("td", {}, request.taskType ? filterLink(state, { task_type: request.taskType }, request.taskType) : "–"),
    el("td", {}, request.routeReason ?? "–"),
    el("td", { class: "status" }, request.status, request.errorClass ? ` (${request.errorClass})` : ""),
    el("td", { class: "num" }, count(request.attempts)),
    el("td", { class: "num" }, count(request.inputTokens)),
    el("td", { class: "num" }, count(request.outputTokens)),
    el("td", { class: "num" }, request.cacheHit ? count(request.cacheReadTokens) : "–"),
    el("td", { class: "num" }, money(request.cost)),
    el("td", { class: "num" }, Number(request.savings) > 0 ? money(request.savings) : "–"),
    el("td", { class: "num" }, millis(request.ttftMs)),
    el("td", { class: "num" }, millis(request.totalMs)),
  );
  tr.addEventListener("click", (event) => {
    if (event.target.closest("a")) return;
    const open = tr.nextElementSibling?.classList.contains("detail-row");
    if (open) tr.nextElementSibling.remove();
    else tr.after(el("tr", { class: "detail-row" }, el("td", { colspan: COLUMNS.length }, details(request))));
  });
  return tr;
}

export function renderHeader(table) {
  table.replaceChildren(
    el("thead", {}, el("tr", {}, COLUMNS.map((name) => el("th", {}, name)))),
    el("tbody"),
  );
}

export function appendRows(table, state, requests) {
  table.tBodies[0].append(...requests.map((request) => row(state, request)));
}

export function emptyRow(table, text) {
  table.tBodies[0].append(el("tr", { class: "empty" }, el("td", { colspan: COLUMNS.length }, text)));
}
