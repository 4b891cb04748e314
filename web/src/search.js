// Search: the archive's queries (pattern, principal, resource, event name, time) with the results as a
// table and an event's JSON on click; "who touched this resource" for a resource. Every search is in
// the URL (#/search?resource=...), so it can be shared.
import { useEffect, useState } from "preact/hooks";
import { get, query, hasArchive } from "./api.js";
import { html, fmtTime, go, parseHash, summarize } from "./util.js";
import { JsonView, ResourceLink, isResource } from "./json.js";

const FIELDS = ["pattern", "who", "resource", "name", "since", "from", "to", "limit"];

function Who({ resource }) {
  const [rows, setRows] = useState(null);
  const [err, setErr] = useState("");
  useEffect(() => {
    setRows(null);
    get("/api/who/" + encodeURIComponent(resource)).then((d) => setRows(d.actions || d.results || d.who || []), (e) => setErr(e.message));
  }, [resource]);
  if (err) return html`<p class="error">${err}</p>`;
  if (!rows) return html`<p class="muted">loading…</p>`;
  return html`<div class="card"><h3>Who touched <span class="mono">${resource}</span></h3>
    ${!rows.length ? html`<p class="muted">nobody in the archive</p>` : html`<table class="grid small" data-testid="who-table">
      <thead><tr><th>time</th><th>principal</th><th>action</th><th>source IP</th><th>region</th></tr></thead>
      <tbody>${rows.map((r, i) => html`<tr key=${i}><td class="nowrap">${fmtTime(r.time)}</td><td>${r.principal || r.who}</td><td>${r.action || r.event_name || r.eventName}</td><td>${r.source_ip || r.sourceIPAddress || ""}</td><td>${r.region || ""}</td></tr>`)}</tbody></table>`}
  </div>`;
}

export function Search() {
  const params = parseHash().params;
  const [form, setForm] = useState(() => Object.fromEntries(FIELDS.map((f) => [f, params[f] || ""])));
  const [res, setRes] = useState(null);
  const [err, setErr] = useState("");
  const [open, setOpen] = useState(null);
  const key = FIELDS.map((f) => params[f] || "").join("\u0000");
  useEffect(() => {
    setForm(Object.fromEntries(FIELDS.map((f) => [f, params[f] || ""])));
    if (!FIELDS.some((f) => params[f]) || !hasArchive()) return;
    setRes(null);
    setErr("");
    setOpen(null);
    get("/api/events" + query(Object.fromEntries(FIELDS.map((f) => [f, params[f]])))).then(
      (d) => setRes(d),
      (e) => setErr(e.status === 404 ? "the archive is not available on this server" : e.message),
    );
  }, [key]);
  const submit = (e) => {
    e.preventDefault();
    go("/search", form);
  };
  const set = (f) => (e) => setForm({ ...form, [f]: e.target.value });
  const events = res ? res.events || res.results || [] : [];
  return html`<section>
    ${!hasArchive() && html`<p class="muted">This server keeps no archive of events, so there is nothing to search.</p>`}
    <form class="card search" onSubmit=${submit}>
      <label class="wide">event pattern<textarea data-testid="q-pattern" rows="2" placeholder='{"detail": {"eventName": ["RunInstances"]}}' value=${form.pattern} onInput=${set("pattern")}></textarea></label>
      <label>principal (who)<input data-testid="q-who" value=${form.who} onInput=${set("who")} placeholder="arn or user name" /></label>
      <label>resource<input data-testid="q-resource" value=${form.resource} onInput=${set("resource")} placeholder="arn, i-0abc…, sg-…" /></label>
      <label>event name<input data-testid="q-name" value=${form.name} onInput=${set("name")} placeholder="RunInstances" /></label>
      <label>since<input value=${form.since} onInput=${set("since")} placeholder="7d" /></label>
      <label>from<input value=${form.from} onInput=${set("from")} placeholder="2024-01-01T00:00:00Z" /></label>
      <label>to<input value=${form.to} onInput=${set("to")} /></label>
      <label>limit<input value=${form.limit} onInput=${set("limit")} placeholder="100" /></label>
      <button data-testid="q-run" type="submit">search</button>
    </form>
    ${params.resource && hasArchive() && html`<${Who} resource=${params.resource} />`}
    ${err && html`<p class="error">${err}</p>`}
    ${res && html`<p class="muted" data-testid="q-count">${events.length} event${events.length === 1 ? "" : "s"}${res.next ? " (more: narrow the search)" : ""}</p>`}
    <div class="split">
      ${events.length > 0 && html`<table class="grid" data-testid="results">
        <thead><tr><th>time</th><th>event</th><th>who</th><th>source IP</th><th>account</th><th>region</th><th>resources</th></tr></thead>
        <tbody>${events.map((ev, i) => {
          const s = summarize(ev);
          return html`<tr key=${s.id || i} class=${"result-row" + (open === ev ? " sel" : "")} onClick=${() => setOpen(ev)}>
            <td class="nowrap">${fmtTime(s.time)}</td><td class="ev-name">${s.name}${s.error ? html` <span class="err">${s.error}</span>` : ""}</td>
            <td class="who">${s.who}</td><td>${s.ip}</td><td>${s.account}</td><td>${s.region}</td>
            <td>${s.resources.slice(0, 2).map((r) => (isResource(r) ? html`<${ResourceLink} id=${r} /> ` : r + " "))}</td></tr>`;
        })}</tbody></table>`}
      ${open && html`<${JsonView} value=${open} onClose=${() => setOpen(null)} />`}
    </div>
  </section>`;
}
