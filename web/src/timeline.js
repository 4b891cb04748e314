// Timeline: events (the archive's counts, GET /api/events/timeline) and alerts (the server's own
// rollups, GET /api/timeline?kind=alerts) per minute or hour over a range, by source, account, region
// (and rule for alerts, event name for events), drawn with uPlot. The choice lives in the URL.
// Loaded on first use (main.js): uPlot is half of the script, and the first view needs none of it.
import { useEffect, useRef, useState } from "preact/hooks";
import uPlot from "uplot";
import { get, query, hasArchive } from "./api.js";
import { html, go, parseHash, fmtTime } from "./util.js";

const RANGES = { "1h": 3600e3, "6h": 6 * 3600e3, "24h": 86400e3, "7d": 7 * 86400e3, "30d": 30 * 86400e3 };
const COLORS = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"];
const BYS = ["total", "source", "account", "region", "rule", "event_name"];
const BUCKETS_MAX = 20000;       // what one chart draws (the server caps its answers too)

function Chart({ data, testid }) {
  const el = useRef(null);
  useEffect(() => {
    if (!data || !el.current || !data.series.length) return;
    const xs = data.buckets.map((t) => t / 1000);
    const series = [{}].concat(data.series.map((s, i) => ({ label: s.key, stroke: COLORS[i % COLORS.length], width: 1.5, points: { show: false } })));
    const plot = new uPlot(
      { width: el.current.clientWidth || 900, height: 260, series, axes: [{}, { label: data.kind }], scales: { x: { time: true } } },
      [xs].concat(data.series.map((s) => s.counts)),
      el.current,
    );
    return () => plot.destroy();
  }, [data]);
  return html`<div class="chart" ref=${el} data-testid=${testid}></div>`;
}

// The archive's answer ({step_ms, series: [{group, points: [[ms, n], ...]}]}, sparse) as the chart's
// dense columns over [from, to].
export function densify(d, from, to, label) {
  const step = d.step_ms || 60000;
  const start = Math.floor(from / step) * step;
  const n = Math.min(BUCKETS_MAX, Math.max(1, Math.floor((to - start) / step) + 1));
  const buckets = Array.from({ length: n }, (_, i) => start + i * step);
  const series = (d.series || []).map((s) => {
    const counts = new Array(n).fill(0);
    for (const [t, c] of s.points || []) {
      const i = Math.floor((t - start) / step);
      if (i >= 0 && i < n) counts[i] += c;
    }
    return { key: s.group === null || s.group === undefined || s.group === "" ? label : String(s.group), counts };
  });
  return { kind: label, from: start, to, step_ms: step, buckets, series };
}

function Panel({ what, testid, load, keyv, by }) {
  const [data, setData] = useState(null);
  const [err, setErr] = useState("");
  const [ms, setMs] = useState(0);
  useEffect(() => {
    setErr("");
    const t0 = performance.now();
    load().then(
      (d) => (setMs(Math.round(performance.now() - t0)), setData(d)),
      (e) => (setData(null), setErr(e.status === 404 ? "not available on this server" : e.message)),
    );
  }, [keyv]);
  const totals = data ? data.series.map((s) => [s.key, s.counts.reduce((a, b) => a + b, 0)]) : [];
  return html`<div class="tl-panel" data-testid=${testid + "-panel"}>
    <h3>${what} <span class="muted small">${by === "total" ? "" : "by " + by.replace("_", " ")}${data ? html` · ${fmtTime(data.from)} – ${fmtTime(data.to)} · answered in <span data-testid=${testid + "-ms"}>${ms}</span> ms` : ""}</span></h3>
    ${err && html`<p class="error">${err}</p>`}
    ${data && !data.series.length && html`<p class="muted" data-testid=${testid + "-empty"}>No ${what} in this range.</p>`}
    ${data && data.series.length > 0 && html`<${Chart} data=${data} testid=${testid + "-chart"} />`}
    ${data && data.series.length > 0 && html`<table class="grid small" data-testid=${testid + "-totals"}><thead><tr><th>${by}</th><th>${what}</th></tr></thead><tbody>
      ${totals.map(([k, n]) => html`<tr key=${k}><td>${k}</td><td class="num">${n}</td></tr>`)}</tbody></table>`}
  </div>`;
}

export function Timeline() {
  const p = parseHash().params;
  const range = p.range || "24h", by = BYS.includes(p.by) ? p.by : "total";
  const to = p.to ? Number(p.to) || Date.parse(p.to) : Date.now();
  const from = p.from ? Number(p.from) || Date.parse(p.from) : to - (RANGES[range] || RANGES["24h"]);
  const step = p.step || (to - from > 6 * 3600e3 ? "hour" : "minute");
  // Asked once per choice: "now" is when the choice was made, not each redraw.
  const keyv = [range, by, p.from, p.to, step, p.t].join("|");
  const events = () => get("/api/events/timeline" + query({ from, to, step, by: by === "total" || by === "rule" ? "" : by }))
    .then((d) => densify(d, from, to, "events"));
  const alerts = () => get("/api/timeline" + query({ kind: "alerts", from, to, step, by: by === "event_name" ? "total" : by }));
  const set = (k, v) => go("/timeline", { ...p, [k]: v });
  return html`<section>
    <div class="toolbar">
      ${Object.keys(RANGES).map((r) => html`<button class=${r === range && !p.from ? "on" : ""} onClick=${() => go("/timeline", { ...p, range: r, from: "", to: "", t: Date.now() })}>${r}</button>`)}
      <label>by <select data-testid="tl-by" value=${by} onChange=${(e) => set("by", e.target.value)}>${BYS.map((b) => html`<option value=${b}>${b.replace("_", " ")}</option>`)}</select></label>
      <select data-testid="tl-step" value=${p.step || ""} onChange=${(e) => set("step", e.target.value)}><option value="">auto</option><option value="minute">per minute</option><option value="hour">per hour</option></select>
      <button onClick=${() => set("t", Date.now())}>refresh</button>
    </div>
    ${hasArchive()
      ? html`<${Panel} what="events" testid="tl-events" load=${events} keyv=${keyv} by=${by === "rule" ? "total" : by} />`
      : html`<p class="muted" data-testid="tl-no-archive">This server keeps no archive of events: only alerts are counted.</p>`}
    <${Panel} what="alerts" testid="tl-alerts" load=${alerts} keyv=${keyv} by=${by === "event_name" ? "total" : by} />
  </section>`;
}
