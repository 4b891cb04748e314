// An event's JSON as a tree of text nodes (never HTML: event text is attacker-controlled), where every
// string that names an AWS resource (an ARN, an instance/volume/security-group/... id) is a link to
// "who touched this resource".
import { html, hrefFor } from "./util.js";

const ID = /^(arn:aws[a-zA-Z-]*:[a-z0-9-]+:[a-z0-9-]*:\d{0,12}:.+|(i|sg|vol|vpc|subnet|ami|snap|eni|igw|nat|rtb|acl|eipalloc|lt|key|vpce|tgw|pcx)-[0-9a-f]{8,17}|AKIA[0-9A-Z]{16}|ASIA[0-9A-Z]{16})$/;

export const isResource = (s) => typeof s === "string" && s.length < 2048 && ID.test(s);

// The resource ids an event names (its resources' ARNs first, then any ARN or id in its answer and its request), each
// once, leaving out `skip` (the principal); bounded, as events may be large.
export function resourcesIn(ev, skip) {
  const out = [], seen = new Set([skip]);
  let budget = 5000;
  const add = (s) => {
    if (isResource(s) && !seen.has(s)) (seen.add(s), out.push(s));
  };
  const walk = (v, depth) => {
    if (typeof v === "string") return add(v);
    if (--budget < 0 || depth > 12 || v === null || typeof v !== "object") return;
    if (Array.isArray(v)) v.forEach((x) => walk(x, depth + 1));
    else for (const k in v) if (k !== "userIdentity") walk(v[k], depth + 1);
  };
  const d = ev && typeof ev === "object" ? (ev.detail && typeof ev.detail === "object" ? ev.detail : ev) : null;
  for (const r of (d && Array.isArray(d.resources) ? d.resources : []).concat(ev && Array.isArray(ev.resources) ? ev.resources : []))
    add(typeof r === "string" ? r : r && r.ARN);
  if (d) (walk(d.responseElements, 0), walk(d.requestParameters, 0));   // what was made or changed first
  return out;
}

export function ResourceLink({ id }) {
  return html`<a class="res" href=${hrefFor("/search", { resource: id })} title="who touched this resource">${id}</a>`;
}

function Value({ v, depth }) {
  if (v === null) return html`<span class="j-null">null</span>`;
  if (Array.isArray(v)) {
    if (!v.length) return html`<span>[]</span>`;
    return html`<span>[</span><div class="j-in">${v.map((x, i) => html`<div key=${i}><${Value} v=${x} depth=${depth + 1} />${i < v.length - 1 ? "," : ""}</div>`)}</div><span>]</span>`;
  }
  if (typeof v === "object") {
    const keys = Object.keys(v);
    if (!keys.length) return html`<span>{}</span>`;
    return html`<span>{</span><div class="j-in">${keys.map((k, i) => html`<div key=${k}><span class="j-key">${JSON.stringify(k)}</span>: <${Value} v=${v[k]} depth=${depth + 1} />${i < keys.length - 1 ? "," : ""}</div>`)}</div><span>}</span>`;
  }
  if (typeof v === "string") {
    if (isResource(v)) return html`<span class="j-str">"<${ResourceLink} id=${v} />"</span>`;
    return html`<span class="j-str">${JSON.stringify(v)}</span>`;
  }
  return html`<span class="j-num">${String(v)}</span>`;
}

export function JsonView({ value, onClose, title }) {
  return html`<div class="json-panel">
    <div class="json-head"><strong>${title || "event"}</strong>
      <span class="grow"></span>
      <button onClick=${() => navigator.clipboard && navigator.clipboard.writeText(JSON.stringify(value, null, 2))}>copy</button>
      ${onClose && html`<button class="close" onClick=${onClose}>close</button>`}
    </div>
    <div class="json"><${Value} v=${value} depth=${0} /></div>
  </div>`;
}
