// The dashboard: the period and split live in the URL's fragment (a link reopens the same
// view); every figure comes from /admin/usage and /admin/gpu. URLs are relative to the page,
// so a gateway behind a path prefix works. With auth on, the browser sends the master key it
// was asked for (HTTP Basic, see api/auth.py): this script never sees or stores it.

import * as charts from "./charts.js";
import { addDays, daysBetween, integer, money, ms, percent, today } from "./format.js";

const $ = (id) => document.getElementById(id);
const form = {
  preset: $("preset"), since: $("since"), until: $("until"), tz: $("tz"), split: $("split"),
};

function presetRange(preset, day) {
  if (preset === "month") return [day.slice(0, 8) + "01", day];
  if (preset === "prev-month") {
    const first = day.slice(0, 8) + "01";
    const last = addDays(first, -1);
    return [last.slice(0, 8) + "01", last];
  }
  const days = Number(preset) || 30;
  return [addDays(day, 1 - days), day];
}

function readState() {
  const h = new URLSearchParams(location.hash.slice(1));
  const tz = h.get("tz") ?? "UTC";
  const now = today(tz);
  const preset = h.get("preset") ?? (h.get("since") ? "custom" : "30");
  const [since, until] = preset === "custom"
    ? [h.get("since") ?? addDays(now, -29), h.get("until") ?? now]
    : presetRange(preset, now);
  return { preset, since, until, tz, split: h.get("split") ?? "provider" };
}

function showState(s) {
  const local = Intl.DateTimeFormat().resolvedOptions().timeZone;
  for (const zone of [local, s.tz]) {
    if (zone && ![...form.tz.options].some((o) => o.value === zone)) form.tz.add(new Option(zone, zone));
  }
  for (const k of Object.keys(form)) form[k].value = s[k];
  for (const el of document.querySelectorAll(".split-name")) el.textContent = s.split;
}

function writeState() {
  const s = Object.fromEntries(Object.entries(form).map(([k, el]) => [k, el.value]));
  const h = new URLSearchParams(s.preset === "custom" ? s : { preset: s.preset, tz: s.tz, split: s.split });
  location.hash = h.toString();
}

class ReportError extends Error {}

async function get(path, params, accept = "application/json") {
  const r = await fetch(`${path}?${new URLSearchParams(params)}`, { headers: { accept } });
  if (!r.ok) {
    let message = `${path}: HTTP ${r.status}`;
    try {
      message = (await r.json()).error.message;
    } catch {}
    if (r.status === 401) message = "The dashboard needs the gateway's master key: " + message;
    throw new ReportError(message);
  }
  return accept === "text/csv" ? r.blob() : r.json();
}

const usage = (s, groupBy) =>
  get("admin/usage", { since: s.since, until: s.until, tz: s.tz, group_by: groupBy });

function showTotals(totals, share) {
  for (const el of document.querySelectorAll(".kpi")) {
    const metric = el.dataset.metric;
    const raw = metric === "local_share" ? share : totals[metric];
    el.dataset.value = raw === null || raw === undefined ? "" : String(raw);
    el.querySelector(".value").textContent = metric.endsWith("_usd")
      ? money(raw) : metric === "local_share" ? percent(raw) : integer(raw);
  }
}

const COLUMNS = [
  ["requests", "Requests", integer], ["errors", "Errors", integer],
  ["prompt_tokens", "Input tokens", integer], ["cached_prompt_tokens", "Cached input", integer],
  ["completion_tokens", "Output tokens", integer], ["reasoning_tokens", "Reasoning", integer],
  ["cost_usd", "Cost", money], ["reference_cost_usd", "At reference", money],
  ["saving_usd", "Saving", money], ["latency_p50_ms", "Latency p50", ms],
  ["latency_p95_ms", "p95", ms], ["ttft_p50_ms", "TTFT p50", ms], ["ttft_p95_ms", "p95", ms],
];

function fillTable(table, head, rows, foot) {
  const line = (cells, tag) => {
    const tr = document.createElement("tr");
    for (const c of cells) {
      const td = document.createElement(tag);
      td.textContent = c;
      if (c === "—") td.className = "none";
      tr.append(td);
    }
    return tr;
  };
  table.replaceChildren();
  table.createTHead().append(line(head, "th"));
  const body = table.createTBody();
  for (const r of rows) body.append(line(r, "td"));
  if (foot) table.createTFoot().append(line(foot, "td"));
}

function breakdownTable(report, split) {
  const rows = [...report.rows].sort((a, b) => Number(b.cost_usd) - Number(a.cost_usd));
  fillTable(
    $("breakdown"),
    [split, ...COLUMNS.map((c) => c[1])],
    rows.map((r) => [charts.keyOf(r, split), ...COLUMNS.map(([k, , f]) => f(r[k]))]),
    ["Total", ...COLUMNS.map(([k, , f]) => f(report.totals[k]))],
  );
}

function gpuTables(gpu) {
  const per1m = (v) => (v === null || v === undefined ? "—" : money(v) + " / 1M");
  fillTable(
    $("gpu-table"),
    ["GPU provider", "GPUs", "$ / hour", "GPU-hours", "GPU cost", "Tokens served",
      "Effective (GPU cost ÷ tokens)", "Amortised (ledger)", "Utilisation"],
    gpu.providers.map((p) => [
      p.provider, integer(p.gpus), money(p.hourly_usd), String(p.gpu_hours), money(p.cost_usd),
      integer(p.tokens), per1m(p.effective_usd_per_1m), per1m(p.amortised_usd_per_1m),
      percent(p.utilisation),
    ]),
  );
  fillTable(
    $("api-table"),
    ["API model", "Input", "Output", "Cached input"],
    gpu.apis.map((a) => [
      a.model, per1m(a.input_usd_per_1m), per1m(a.output_usd_per_1m),
      per1m(a.cached_input_usd_per_1m),
    ]),
  );
}

let generation = 0;

async function load() {
  const s = readState();
  showState(s);
  const mine = ++generation;
  document.body.dataset.state = "loading";
  $("status").textContent = `Loading ${s.since} to ${s.until} (${s.tz})…`;
  try {
    const [bySplitDay, bySplit, byProvider, byDay, gpu] = await Promise.all([
      usage(s, `day,${s.split}`), usage(s, s.split), usage(s, "provider"), usage(s, "day"),
      get("admin/gpu", { since: s.since, until: s.until }),
    ]);
    if (mine !== generation) return; // a newer period was asked for meanwhile
    const share = charts.shareOf(byProvider.rows);
    showTotals(byDay.totals, share.requests);
    document.querySelector("[data-metric=reference_cost_usd] .name").textContent =
      byDay.reference_model ? `At ${byDay.reference_model}` : "At a reference API (none set)";
    const days = daysBetween(s.since, s.until); // `until` is a whole day, included
    charts.spendChart(bySplitDay, s.split, days);
    charts.shareChart(byProvider);
    charts.savingsChart(byDay, days);
    charts.gpuChart(gpu);
    charts.latencyChart(byDay, days);
    breakdownTable(bySplit, s.split);
    gpuTables(gpu);
    const none = byDay.totals.requests === 0 ? " — no requests in this period" : "";
    $("status").textContent = `${s.since} to ${s.until}, whole days (${byDay.tz})${none}`;
    document.body.dataset.split = s.split;
    document.body.dataset.state = "ready";
  } catch (e) {
    if (mine !== generation) return;
    $("status").textContent = e instanceof ReportError ? e.message : `Failed: ${e}`;
    document.body.dataset.state = "error";
  }
}

async function downloadCsv() {
  const s = readState();
  try {
    const blob = await get(
      "admin/usage",
      { since: s.since, until: s.until, tz: s.tz, group_by: `day,${s.split}` },
      "text/csv",
    );
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = `usage_${s.since}_${s.until}_day-${s.split}.csv`;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  } catch (e) {
    $("status").textContent = e instanceof ReportError ? e.message : `Failed: ${e}`;
  }
}

for (const el of [form.since, form.until]) {
  el.addEventListener("change", () => {
    form.preset.value = "custom";
    if (form.since.value && form.until.value) writeState();
  });
}
for (const el of [form.preset, form.tz, form.split]) el.addEventListener("change", writeState);
$("period").addEventListener("submit", (e) => e.preventDefault());
$("csv").addEventListener("click", downloadCsv);
window.addEventListener("hashchange", load);
load();
