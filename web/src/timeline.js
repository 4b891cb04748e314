// Timeline: events and alerts per minute or hour over a range, by rule, source, account or region,
// drawn with uPlot from the archive's per-minute counts (GET /api/timeline).
import { useEffect, useRef, useState } from "preact/hooks";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { get, query, hasArchive } from "./api.js";
import { html, go, parseHash, fmtTime } from "./util.js";

const RANGES = { "1h": 3600e3, "6h": 6 * 3600e3, "24h": 86400e3, "7d": 7 * 86400e3, "30d": 30 * 86400e3 };
const COLORS = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"];

function Chart({ data }) {
  const el = useRef(null);
  useEffect(() => {
    if (!data || !el.current) return;
    const xs = data.buckets.map((t) => t / 1000);
    const series = [{}].concat(data.series.map((s, i) => ({ label: s.key, stroke: COLORS[i % COLORS.length], width: 1.5, points: { show: false } })));
    const plot = new uPlot(
      { width: el.current.clientWidth || 900, height: 320, series, axes: [{}, { label: data.kind }], scales: { x: { time: true } } },
      [xs].concat(data.series.map((s) => s.counts)),
      el.current,
    );
    return () => plot.destroy();
  }, [data]);
  return html`<div class="chart" ref=${el} data-testid="timeline-chart"></div>`;
}

export function Timeline() {
  const p = parseHash().params;
  const range = p.range || "24h", by = p.by || "total", kind = p.kind || (hasArchive() ? "events" : "alerts");
  const [data, setData] = useState(null);
  const [err, setErr] = useState("");
  const [ms, setMs] = useState(0);
  const key = [range, by, kind, p.from, p.to, p.step].join("|");
  useEffect(() => {
    const to = p.to ? Date.parse(p.to) : Date.now();
    const from = p.from ? Date.parse(p.from) : to - (RANGES[range] || RANGES["24h"]);
    const step = p.step || (to - from > 6 * 3600e3 ? "hour" : "minute");
    setErr("");
    if (kind === "events" && !hasArchive()) return setErr("This server keeps no archive of events: only alerts can be shown.");
    const t0 = performance.now();
    get("/api/timeline" + query({ from, to, step, by, kind })).then(
      (d) => (setMs(Math.round(performance.now() - t0)), setData(d)),
      (e) => setErr(e.status === 404 ? "the archive is not available on this server" : e.message),
    );
  }, [key]);
  const set = (k, v) => go("/timeline", { ...p, [k]: v });
  const totals = data ? data.series.map((s) => [s.key, s.counts.reduce((a, b) => a + b, 0)]) : [];
  return html`<section>
    <div class="toolbar">
      ${Object.keys(RANGES).map((r) => html`<button class=${r === range && !p.from ? "on" : ""} onClick=${() => go("/timeline", { ...p, range: r, from: "", to: "" })}>${r}</button>`)}
      <select data-testid="tl-kind" value=${kind} onChange=${(e) => set("kind", e.target.value)}><option value="events" disabled=${!hasArchive()}>events</option><option value="alerts">alerts</option></select>
      <label>by <select data-testid="tl-by" value=${by} onChange=${(e) => set("by", e.target.value)}>${["total", "rule", "source", "account", "region"].map((b) => html`<option value=${b}>${b}</option>`)}</select></label>
      <select value=${p.step || ""} onChange=${(e) => set("step", e.target.value)}><option value="">auto</option><option value="minute">per minute</option><option value="hour">per hour</option></select>
      ${data && html`<span class="muted">${fmtTime(data.from)} – ${fmtTime(data.to)}, answered in ${ms} ms</span>`}
    </div>
    ${err && html`<p class="error">${err}</p>`}
    ${data && html`<${Chart} data=${data} />`}
    ${data && html`<table class="grid small"><thead><tr><th>${by}</th><th>${kind}</th></tr></thead><tbody>
      ${totals.map(([k, n]) => html`<tr key=${k}><td>${k}</td><td class="num">${n}</td></tr>`)}</tbody></table>`}
  </section>`;
}
