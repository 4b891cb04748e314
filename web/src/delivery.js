// Delivery: outbox depth, per-target outcomes, dead letters with their reason and the destination's
// response, and redrive (back into the outbox; delivered within a second while the server runs).
import { useEffect, useState } from "preact/hooks";
import { get, post, query, role } from "./api.js";
import { html, fmtTime, parseHash, go } from "./util.js";

function Detail({ id, onClose }) {
  const [dl, setDl] = useState(null);
  const [err, setErr] = useState("");
  useEffect(() => {
    get("/api/dlq/" + id).then((d) => setDl(d.dead_letter), (e) => setErr(e.message));
  }, [id]);
  if (err) return html`<p class="error">${err}</p>`;
  if (!dl) return html`<p class="muted">loading…</p>`;
  return html`<div class="card dl-detail">
    <div class="json-head"><strong>dead letter ${dl.id}</strong><span class="grow"></span><button onClick=${onClose}>close</button></div>
    <dl>
      <dt>target</dt><dd>${dl.target}</dd><dt>rule</dt><dd>${dl.rule}</dd><dt>event</dt><dd class="mono">${dl.event_id}</dd>
      <dt>attempts</dt><dd>${dl.attempts}</dd><dt>failed</dt><dd>${fmtTime(dl.failed)}</dd>
      <dt>reason</dt><dd data-testid="dl-reason">${dl.reason}</dd>
    </dl>
    <h4>response body</h4><pre class="mono" data-testid="dl-response">${dl.response || "(empty)"}</pre>
    <h4>payload (${dl.payload_bytes} bytes)</h4><pre class="mono">${dl.payload}</pre>
  </div>`;
}

export function Delivery() {
  const params = parseHash().params;
  const target = params.target || "";
  const [d, setD] = useState(null);
  const [dls, setDls] = useState(null);
  const [err, setErr] = useState("");
  const [msg, setMsg] = useState("");
  const [open, setOpen] = useState(null);
  const [tick, setTick] = useState(0);
  const full = role() === "full";
  useEffect(() => {
    let stop = false;
    const load = () => {
      get("/api/delivery").then((x) => !stop && setD(x), (e) => !stop && setErr(e.message));
      get("/api/dlq" + query({ target, limit: 200 })).then((x) => !stop && setDls(x.dead_letters), (e) => !stop && setErr(e.message));
    };
    load();
    const t = setInterval(load, 3000);
    return () => {
      stop = true;
      clearInterval(t);
    };
  }, [target, tick]);
  const redrive = async (body, what) => {
    try {
      const r = await post("/api/dlq/redrive", body);
      setMsg(`${r.redriven} ${what} back in the outbox`);
      setOpen(null);
      setTick(tick + 1);
    } catch (e) {
      setMsg(e.message);
    }
  };
  if (err) return html`<p class="error">${err}</p>`;
  if (!d) return html`<p class="muted">loading…</p>`;
  return html`<section>
    <div class="cards">
      <div class="card stat"><div class="big" data-testid="outbox-depth">${d.outbox_depth}</div>alerts waiting in the outbox</div>
      <div class="card stat"><div class="big">${d.targets.reduce((n, t) => n + t.dead_letters, 0) + d.dead_other_targets}</div>dead letters</div>
    </div>
    <table class="grid">
      <thead><tr><th>target</th><th>kind</th><th>delivered</th><th>retried</th><th>dead-lettered</th><th>dead letters now</th></tr></thead>
      <tbody>${d.targets.map((t) => html`<tr key=${t.name} class="target-row" onClick=${() => go("/delivery", { target: t.name === target ? "" : t.name })}>
        <td><strong>${t.name}</strong></td><td>${t.kind}</td><td class="num">${t.delivered}</td><td class="num">${t.retried}</td>
        <td class="num">${t.dead}</td><td class="num">${t.dead_letters}</td></tr>`)}</tbody>
    </table>
    <p class="muted small">Delivery counts are since this server started.</p>
    <h3>Dead letters${target ? " of " + target : ""}</h3>
    <div class="toolbar">
      ${target && html`<a href="#/delivery">all targets</a>`}
      <button disabled=${!full || !dls || !dls.length} data-testid="redrive-all"
        onClick=${() => confirm(`Redrive every dead letter${target ? " of " + target : ""}?`) && redrive(target ? { all: true, target } : { all: true }, "dead letters")}>redrive all</button>
      ${!full && html`<span class="muted">read-only login: redrive needs an access key</span>`}
      <span data-testid="dlq-msg">${msg}</span>
    </div>
    ${dls && !dls.length && html`<p class="muted">No dead letters.</p>`}
    ${dls && dls.length > 0 && html`<table class="grid">
      <thead><tr><th>id</th><th>failed</th><th>target</th><th>rule</th><th>attempts</th><th>reason</th><th></th></tr></thead>
      <tbody>${dls.map((x) => html`<tr key=${x.id} class="dl-row" onClick=${() => setOpen(x.id)}>
        <td>${x.id}</td><td class="nowrap">${fmtTime(x.failed)}</td><td>${x.target}</td><td>${x.rule}</td><td class="num">${x.attempts}</td>
        <td class="reason">${x.reason}</td>
        <td><button disabled=${!full} data-testid="redrive" onClick=${(e) => (e.stopPropagation(), redrive({ id: x.id }, "dead letter"))}>redrive</button></td>
      </tr>`)}</tbody></table>`}
    ${open && html`<${Detail} id=${open} onClose=${() => setOpen(null)} />`}
  </section>`;
}
