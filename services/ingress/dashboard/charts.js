// The charts: Apache ECharts (vendored, see vendor/echarts-*/), one instance per panel, each
// option built from the panel's part of the page's data model (panels.js). Times are UTC, as the
// API's buckets are.

import * as echarts from "./vendor/echarts-6.1.0/echarts.esm.min.js";
import { count, millis, money, percent, rate } from "./format.js";

export const version = echarts.version;

const PALETTE = [
  "#3b6fd8", "#e8833a", "#2aa876", "#d94f70", "#8a63d2", "#c7a72b", "#1f9bb5", "#7a8591",
  "#b5562f", "#5a9e3a",
];

// Labels by the level of the tick: a day's tick names the day, not just its number.
const TIME_LABELS = {
  year: "{yyyy}",
  month: "{MMM} {yyyy}",
  day: "{MMM} {d}",
  hour: "{HH}:{mm}",
  minute: "{HH}:{mm}",
  second: "{HH}:{mm}:{ss}",
};

const instances = new Map();

/** The chart in element `id`, made on first use and resized with its element. */
export function chartIn(id, onClick) {
  let chart = instances.get(id);
  if (chart) return chart;
  const element = document.getElementById(id);
  chart = echarts.init(element, null, { renderer: "canvas" });
  if (onClick) chart.on("click", onClick);
  new ResizeObserver(() => chart.resize()).observe(element);
  instances.set(id, chart);
  return chart;
}

export function allCharts() {
  return Object.fromEntries(instances);
}

function empty(text = "No usage in this range") {
  return {
    text,
    left: "center",
    top: "middle",
    textStyle: { color: "#8a93a0", fontSize: 13, fontWeight: "normal" },
  };
}

function timeChart(model, series, { yFormat = count, stacked = false } = {}) {
  return {
    color: PALETTE,
    useUTC: true,
    // A dashboard redrawn on a timer gains nothing from animation, and it costs frames.
    animation: false,
    title: model.empty ? empty() : undefined,
    grid: { left: 8, right: 16, top: 40, bottom: 8, containLabel: true },
    legend: { type: "scroll", top: 0, left: 0, right: 0, itemWidth: 14, itemHeight: 8 },
    tooltip: {
      trigger: "axis",
      axisPointer: { type: stacked ? "shadow" : "line" },
      valueFormatter: (value) => (value === null || value === undefined ? "–" : yFormat(value)),
    },
    xAxis: {
      type: "time",
      min: model.buckets[0],
      max: model.end,
      axisLabel: {
        formatter: TIME_LABELS,
        hideOverlap: true,
        alignMinLabel: "left",
        alignMaxLabel: "right",
      },
    },
    yAxis: {
      type: "value",
      minInterval: yFormat === count ? 1 : 0, // no "0.2 tokens"
      axisLabel: { formatter: (value) => yFormat(value) },
    },
    series,
  };
}

function points(buckets, values) {
  return buckets.map((t, i) => [t, values[i]]);
}

function line(name, buckets, values) {
  return { type: "line", name, showSymbol: false, data: points(buckets, values) };
}

function bars(name, buckets, values, stack) {
  return { type: "bar", name, stack, data: points(buckets, values), barMaxWidth: 28 };
}

export function spendOption(model) {
  const series = model.groups.map((group) =>
    bars(group.name, model.buckets, group.values, "spend"),
  );
  return timeChart(model, series, { yFormat: money, stacked: true });
}

export function tokensOption(model) {
  const series = model.kinds.map((kind) => line(kind.label, model.buckets, kind.values));
  return timeChart(model, series);
}

export function rateOption(model) {
  return timeChart(model, [
    line("requests / min", model.buckets, model.requestsPerMinute),
    line("errors / min", model.buckets, model.errorsPerMinute),
  ], { yFormat: rate });
}

export function errorsOption(model) {
  return timeChart(model, [
    line("error rate", model.buckets, model.errorRate),
    line("fallback rate", model.buckets, model.fallbackRate),
  ], { yFormat: percent });
}

export function latencyOption(model) {
  const series = model.lines.map((one) => line(one.label, model.buckets, one.values));
  return timeChart(model, series, { yFormat: millis });
}

export function savingsOption(model) {
  return timeChart(model, [
    bars("paid", model.buckets, model.paid, "cost"),
    bars("saved by cache", model.buckets, model.saved, "cost"),
  ], { yFormat: money, stacked: true });
}

export function keysOption(model) {
  const keys = [...model.keys].reverse(); // the largest at the top
  return {
    color: PALETTE,
    animation: false,
    title: model.keys.length ? undefined : empty(),
    grid: { left: 8, right: 24, top: 8, bottom: 8, containLabel: true },
    tooltip: { trigger: "axis", axisPointer: { type: "shadow" }, valueFormatter: money },
    xAxis: { type: "value", axisLabel: { formatter: money } },
    yAxis: {
      type: "category",
      data: keys.map((key) => key.keyId),
      axisLabel: { width: 140, overflow: "truncate" },
    },
    series: [{ type: "bar", name: "spend", data: keys.map((key) => key.cost), barMaxWidth: 22 }],
  };
}

export function routingOption(model) {
  const max = Math.max(1, ...model.cells.map((cell) => cell[2]));
  return {
    animation: false,
    title: model.cells.length ? undefined : empty(),
    grid: { left: 8, right: 16, top: 8, bottom: 56, containLabel: true },
    tooltip: {
      position: "top",
      formatter: (p) => {
        // Text only: the names are the caller's, so they are escaped by the browser, not trusted.
        const div = document.createElement("div");
        div.textContent = `${model.taskTypes[p.value[1]]} → ${model.models[p.value[0]]}: ${count(p.value[2])} requests`;
        return div.innerHTML;
      },
    },
    xAxis: {
      type: "category",
      data: model.models,
      axisLabel: { rotate: 30, width: 120, overflow: "truncate" },
      splitArea: { show: true },
    },
    yAxis: { type: "category", data: model.taskTypes, splitArea: { show: true } },
    visualMap: {
      min: 0,
      max,
      calculable: false,
      orient: "horizontal",
      left: "center",
      bottom: 0,
      itemHeight: 100,
      inRange: { color: ["#e8eefb", "#3b6fd8"] },
    },
    series: [{ type: "heatmap", name: "requests", data: model.cells, label: { show: true } }],
  };
}
