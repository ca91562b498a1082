// The dashboard's charts, one function each: report rows in, a Chart.js chart out.
// Chart.js is the vendored UMD build (chart.umd.min.js), loaded before this module.

import { hourLabel, money } from "./format.js";

const Chart = globalThis.Chart;
const PALETTE = [
  "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2",
  "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
];
const LOCAL = "#59a14f";
const API = "#4e79a7";
const colours = new Map();

// One colour per name for the whole page, so a provider keeps its colour from chart to chart.
export function colour(name) {
  if (!colours.has(name)) colours.set(name, PALETTE[colours.size % PALETTE.length]);
  return colours.get(name);
}

const charts = new Map();

function draw(id, config) {
  charts.get(id)?.destroy();
  const base = { animation: false, responsive: true, maintainAspectRatio: false };
  const chart = new Chart(document.getElementById(id), {
    ...config,
    options: { ...base, ...config.options },
  });
  charts.set(id, chart);
  return chart;
}

const dollars = { callback: (v) => "$" + v };
const moneyTooltip = {
  callbacks: { label: (c) => `${c.dataset.label}: ${money(String(c.raw ?? 0))}` },
};

export function keyOf(row, field) {
  const v = row[field];
  return v === null || v === undefined || v === "" ? "unattributed" : String(v);
}

// `days`: every day of the period asked for, so a day without requests still has its place.
export function spendChart(report, split, days) {
  const index = new Map(days.map((d, i) => [d, i]));
  const series = new Map();
  for (const row of report.rows) {
    const key = keyOf(row, split);
    if (!series.has(key)) series.set(key, new Array(days.length).fill(0));
    const i = index.get(row.day);
    if (i !== undefined) series.get(key)[i] += Number(row.cost_usd);
  }
  const names = [...series.keys()].sort();
  return draw("chart-spend", {
    type: "bar",
    data: {
      labels: days,
      datasets: names.map((n) => ({ label: n, data: series.get(n), backgroundColor: colour(n) })),
    },
    options: {
      scales: { x: { stacked: true }, y: { stacked: true, ticks: dollars } },
      plugins: { tooltip: moneyTooltip },
    },
  });
}

// Rows grouped by provider carry `local`; the shares are of requests, tokens and spend.
export function shareOf(rows) {
  const sum = { local: [0, 0, 0], api: [0, 0, 0] };
  for (const r of rows) {
    const side = r.local ? sum.local : sum.api;
    side[0] += r.requests;
    side[1] += r.prompt_tokens + r.completion_tokens;
    side[2] += Number(r.cost_usd);
  }
  const pct = (a, b) => (a + b > 0 ? (100 * a) / (a + b) : 0);
  return {
    local: sum.local.map((v, i) => pct(v, sum.api[i])),
    api: sum.api.map((v, i) => pct(v, sum.local[i])),
    requests: sum.local[0] + sum.api[0] > 0 ? sum.local[0] / (sum.local[0] + sum.api[0]) : null,
  };
}

export function shareChart(byProvider) {
  const share = shareOf(byProvider.rows);
  return draw("chart-share", {
    type: "bar",
    data: {
      labels: ["Requests", "Tokens", "Spend"],
      datasets: [
        { label: "Local (self-hosted)", data: share.local, backgroundColor: LOCAL },
        { label: "API", data: share.api, backgroundColor: API },
      ],
    },
    options: {
      indexAxis: "y",
      scales: {
        x: { stacked: true, min: 0, max: 100, ticks: { callback: (v) => v + "%" } },
        y: { stacked: true },
      },
      plugins: {
        tooltip: { callbacks: { label: (c) => `${c.dataset.label}: ${c.raw.toFixed(1)}%` } },
      },
    },
  });
}

export function savingsChart(byDay, days) {
  const saving = new Map(byDay.rows.map((r) => [r.day, Number(r.saving_usd)]));
  const daily = days.map((d) => saving.get(d) ?? 0);
  let running = 0;
  const cumulative = daily.map((v) => (running += v));
  return draw("chart-savings", {
    data: {
      labels: days,
      datasets: [
        { type: "bar", label: "Saving that day", data: daily, backgroundColor: LOCAL },
        {
          type: "line", label: "Saving so far", data: cumulative, borderColor: "#1d2330",
          pointRadius: 0, yAxisID: "total",
        },
      ],
    },
    options: {
      scales: {
        y: { ticks: dollars, title: { display: true, text: "per day" } },
        total: {
          position: "right", ticks: dollars, grid: { drawOnChartArea: false },
          title: { display: true, text: "so far" },
        },
      },
      plugins: { tooltip: moneyTooltip },
    },
  });
}

export function gpuChart(gpu) {
  const labels = [];
  const seen = new Map();
  for (const p of gpu.providers) {
    for (const h of p.by_hour) {
      const label = hourLabel(h.hour);
      if (!seen.has(label)) seen.set(label, labels.push(label) - 1);
    }
  }
  const datasets = gpu.providers.map((p) => {
    const data = new Array(labels.length).fill(null);
    for (const h of p.by_hour) {
      data[seen.get(hourLabel(h.hour))] = h.utilisation === null ? null : 100 * h.utilisation;
    }
    return { label: p.provider, data, backgroundColor: colour(p.provider) };
  });
  return draw("chart-gpu", {
    type: "bar",
    data: { labels, datasets },
    options: {
      scales: { y: { min: 0, suggestedMax: 100, ticks: { callback: (v) => v + "%" } } },
      plugins: {
        tooltip: {
          callbacks: { label: (c) => `${c.dataset.label}: ${(c.raw ?? 0).toFixed(1)}%` },
        },
      },
    },
  });
}

export function latencyChart(byDay, days) {
  const rows = new Map(byDay.rows.map((r) => [r.day, r]));
  const line = (label, field, colourName, dash) => ({
    label,
    data: days.map((d) => rows.get(d)?.[field] ?? null),
    borderColor: colourName,
    backgroundColor: colourName,
    borderDash: dash,
    spanGaps: false,
    pointRadius: 2,
  });
  return draw("chart-latency", {
    type: "line",
    data: {
      labels: days,
      datasets: [
        line("latency p50", "latency_p50_ms", "#4e79a7", []),
        line("latency p95", "latency_p95_ms", "#4e79a7", [6, 4]),
        line("TTFT p50", "ttft_p50_ms", "#f28e2b", []),
        line("TTFT p95", "ttft_p95_ms", "#f28e2b", [6, 4]),
      ],
    },
    options: { scales: { y: { min: 0, ticks: { callback: (v) => v + " ms" } } } },
  });
}
