// Search: the archive's queries (GET /api/events: pattern, principal, resource, event name, time) as a
// table, an event's JSON on click, and "who touched this resource" (GET /api/who/RESOURCE) for any ARN
// or resource id shown. The search lives in the URL (#/search?resource=...): a link shares it and a
// reload runs it again. Every field comes from events, which anyone able to write to CloudTrail controls:
// they only ever become text nodes (htm/Preact), never markup.
import { useEffect, useState } from "preact/hooks";
import { get, query, hasArchive } from "./api.js";
import { html, fmtTime, go, hrefFor, parseHash } from "./util.js";
import { JsonView, ResourceLink, isResource, resourcesIn } from "./json.js";

// The URL's names for the form's fields (the API's, but "name" for event_name and times as typed).
const FIELDS = ["pattern", "who", "resource", "name", "since", "from", "to", "limit"];

// A time as typed (an ISO date, "2024-05-01 10:00", or epoch milliseconds) as epoch milliseconds.
function toMs(s, what) {
  s = (s || "").trim();
  if (!s) return undefined;
  if (/^\d{10,}$/.test(s)) return Number(s);
  const t = Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(s) ? s : s.replace(" ", "T") + "Z");
  if (isNaN(t)) throw new Error(what + ": \"" + s + "\" is not a time (2024-05-01T10:00:00Z or epoch milliseconds)");
  return t;
}

// The API's query for the URL's parameters (throws on a bad time).
export function apiQuery(p, cursor) {
  return query({ pattern: p.pattern, who: p.who, resource: p.resource, event_name: p.name, since: p.since,
                 from: toMs(p.from, "from"), to: toMs(p.to, "to"), limit: p.limit, cursor });
}

const Res = ({ id }) => (isResource(id) ? html`<${ResourceLink} id=${id} />` : id);

function Who({ resource }) {
  const [d, setD] = useState(null);
  const [err, setErr] = useState("");
  useEffect(() => {
    setD(null);
    setErr("");
    get("/api/who/" + encodeURIComponent(resource)).then(setD, (e) => setErr(e.message));
  }, [resource]);
  const rows = (d && d.entries) || [];
  return html`<div class="card who-card" data-testid="who">
    <h3>Who touched <span class="mono">${resource}</span></h3>
    ${err ? html`<p class="error">${err}</p>` : !d ? html`<p class="muted">loading…</p>`
      : !rows.length ? html`<p class="muted" data-testid="who-none">Nobody changed it, as far as the archive knows.</p>`
      : html`<table class="grid small" data-testid="who-table">
      <thead><tr><th>time</th><th>who</th><th>action</th><th>source IP</th><th>region</th><th>event id</th></tr></thead>
      <tbody>${rows.map((r, i) => html`<tr key=${i} class="who-row">
        <td class="nowrap">${fmtTime(r.time)}</td>
        <td class="who"><a href=${hrefFor("/search", { who: r.principal })} title="everything this principal did">${r.principal}</a>${r.principalType ? html` <span class="muted small">${r.principalType}</span>` : ""}</td>
        <td>${r.action}</td><td>${r.sourceIPAddress}</td><td>${r.region}</td><td class="mono small">${r.id}</td></tr>`)}</tbody></table>`}
  </div>`;
}

function Results({ events, open, setOpen }) {
  return html`<table class="grid" data-testid="results">
    <thead><tr><th>time</th><th>event</th><th>who</th><th>source IP</th><th>account</th><th>region</th><th>resources</th></tr></thead>
    <tbody>${events.map((r, i) => html`<tr key=${r.id || i} class=${"result-row" + (open === r ? " sel" : "")} data-id=${r.id} onClick=${() => setOpen(r)}>
      <td class="nowrap">${fmtTime(r.time)}</td>
      <td class="ev-name">${r.eventName}${r.errorCode ? html` <span class="err">${r.errorCode}</span>` : ""}<div class="muted small">${r.eventSource}</div></td>
      <td class="who"><${Res} id=${r.principal} />${r.principalType ? html` <span class="muted small">${r.principalType}</span>` : ""}</td>
      <td>${r.sourceIPAddress}</td><td>${r.account}</td><td>${r.region}</td>
      <td class="res-cell">${r.resources.map((x) => html`<${ResourceLink} id=${x} /> `)}</td></tr>`)}</tbody></table>`;
}

// A row of GET /api/events with the resource ids its event names (the links of the table).
function prepare(r) {
  r.resources = resourcesIn(r.event, r.principal).slice(0, 3);
  return r;
}

export function Search() {
  const params = parseHash().params;
  const [form, setForm] = useState(() => Object.fromEntries(FIELDS.map((f) => [f, params[f] || ""])));
  const [res, setRes] = useState(null);        // {events, next}
  const [busy, setBusy] = useState(false);
  const [err, setErr] = useState("");
  const [open, setOpen] = useState(null);
  const [ms, setMs] = useState(0);
  const key = FIELDS.map((f) => params[f] || "").join("\u0000");
  const fetchPage = (cursor, before) => {
    let q;
    try {
      q = apiQuery(params, cursor);
    } catch (e) {
      setErr(e.message);
      return;
    }
    setBusy(true);
    const t0 = performance.now();
    get("/api/events" + q).then(
      (d) => {
        setMs(Math.round(performance.now() - t0));
        setRes({ events: before.concat((d.events || []).map(prepare)), next: d.next || null });
        setBusy(false);
      },
      (e) => (setErr(e.status === 404 ? "the archive is not available on this server" : e.message), setBusy(false)),
    );
  };
  useEffect(() => {
    setForm(Object.fromEntries(FIELDS.map((f) => [f, params[f] || ""])));
    setRes(null);
    setErr("");
    setOpen(null);
    if (FIELDS.some((f) => params[f]) && hasArchive()) fetchPage(undefined, []);
  }, [key]);
  const submit = (e) => {
    e.preventDefault();
    go("/search", form);
  };
  const set = (f) => (e) => setForm({ ...form, [f]: e.target.value });
  const events = res ? res.events : [];
  return html`<section>
    ${!hasArchive() && html`<p class="muted" data-testid="no-archive">This server keeps no archive of events, so there is nothing to search.</p>`}
    <form class="card search" onSubmit=${submit}>
      <label class="wide">event pattern (EventBridge)<textarea data-testid="q-pattern" rows="2" placeholder='{"detail": {"eventName": ["RunInstances"]}}' value=${form.pattern} onInput=${set("pattern")}></textarea></label>
      <label>principal (who)<input data-testid="q-who" value=${form.who} onInput=${set("who")} placeholder="arn, user or role name, access key" /></label>
      <label>resource<input data-testid="q-resource" value=${form.resource} onInput=${set("resource")} placeholder="arn, i-0abc…, sg-…, bucket" /></label>
      <label>event name<input data-testid="q-name" value=${form.name} onInput=${set("name")} placeholder="RunInstances" /></label>
      <label>since<input data-testid="q-since" value=${form.since} onInput=${set("since")} placeholder="7d, 12h (or from/to)" /></label>
      <label>from<input data-testid="q-from" value=${form.from} onInput=${set("from")} placeholder="2024-01-01T00:00:00Z" /></label>
      <label>to<input data-testid="q-to" value=${form.to} onInput=${set("to")} placeholder="2024-01-02T00:00:00Z" /></label>
      <label>limit<input data-testid="q-limit" value=${form.limit} onInput=${set("limit")} placeholder="100" /></label>
      <button data-testid="q-run" type="submit" disabled=${!hasArchive()}>search</button>
    </form>
    ${params.resource && hasArchive() && html`<${Who} resource=${params.resource} />`}
    ${err && html`<p class="error" data-testid="q-error">${err}</p>`}
    ${res && html`<p class="muted" data-testid="q-count">${events.length} event${events.length === 1 ? "" : "s"}${res.next ? ", more match" : ""} (${ms} ms)</p>`}
    <div class="split">
      ${events.length > 0 && html`<${Results} events=${events} open=${open} setOpen=${setOpen} />`}
      ${open && html`<${JsonView} value=${open.event} title=${open.id} onClose=${() => setOpen(null)} />`}
    </div>
    ${res && res.next && html`<button data-testid="q-more" disabled=${busy} onClick=${() => fetchPage(res.next, events)}>more</button>`}
    ${busy && html`<span class="muted"> searching…</span>`}
  </section>`;
}
