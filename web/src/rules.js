// Rules: each rule's pattern, matches over the last hour and two days, last match, storm-control
// state; and a pattern tested against a pasted event (the TestEventPattern logic).
import { useEffect, useState } from "preact/hooks";
import { get, post } from "./api.js";
import { html, fmtAgo, fmtTime, parseHash } from "./util.js";

function Bars({ values, label }) {
  const max = Math.max(1, ...values);
  return html`<div class="bars" title=${label}>${values.map((v, i) => html`<i key=${i} style=${{ height: Math.round((v / max) * 100) + "%" }} title=${String(v)}></i>`)}</div>`;
}

function pretty(text) {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch (_) {
    return text;
  }
}

export function Tester({ initialPattern }) {
  const [pattern, setPattern] = useState(initialPattern || '{"source": ["aws.ec2"]}');
  const [event, setEvent] = useState("");
  const [result, setResult] = useState(null);
  useEffect(() => {
    if (initialPattern) setPattern(initialPattern);
  }, [initialPattern]);
  const run = async () => {
    setResult({ pending: true });
    try {
      setResult(await post("/api/test-pattern", { pattern, event }));
    } catch (e) {
      setResult({ error: e.message });
    }
  };
  return html`<div class="card tester">
    <h3>Test a pattern</h3>
    <div class="two">
      <label>pattern<textarea data-testid="tp-pattern" rows="8" value=${pattern} onInput=${(e) => setPattern(e.target.value)}></textarea></label>
      <label>event (an EventBridge event or a raw CloudTrail record)<textarea data-testid="tp-event" rows="8" value=${event} onInput=${(e) => setEvent(e.target.value)}></textarea></label>
    </div>
    <button data-testid="tp-run" onClick=${run}>test</button>
    ${result && html`<span data-testid="tp-result" class=${"result " + (result.error ? "bad" : result.result ? "yes" : result.pending ? "" : "no")}>
      ${result.pending ? "…" : result.error ? result.error : result.result ? "matches" : "does not match"}</span>`}
    ${result && result.read_as && html`<span class="muted"> (read as ${result.read_as})</span>`}
  </div>`;
}

function Storm({ storm, now }) {
  if (!storm) return html`<span class="muted">off</span>`;
  return html`<div>
    <div>window ${Math.round(storm.window_ms / 1000)} s, keys ${storm.keys.join(", ") || "(none)"}</div>
    ${storm.open.length
      ? html`<table class="grid small"><thead><tr><th>target</th><th>key</th><th>suppressed</th><th>window ends</th></tr></thead><tbody>
          ${storm.open.map((o) => html`<tr><td>${o.target}</td><td class="mono">${o.key}</td><td>${o.suppressed}</td><td>${fmtAgo(now - (o.window_end - now), now).replace(" ago", "")} from now</td></tr>`)}
        </tbody></table>`
      : html`<div class="muted">no open window</div>`}
  </div>`;
}

export function Rules() {
  const [data, setData] = useState(null);
  const [err, setErr] = useState("");
  const [open, setOpen] = useState(parseHash().params.rule || "");
  const [testing, setTesting] = useState("");
  useEffect(() => {
    let stop = false;
    const load = () =>
      get("/api/rules").then(
        (d) => !stop && (setData(d), setErr("")),
        (e) => !stop && setErr(e.message),
      );
    load();
    const t = setInterval(load, 5000);
    return () => {
      stop = true;
      clearInterval(t);
    };
  }, []);
  if (err) return html`<p class="error">${err}</p>`;
  if (!data) return html`<p class="muted">loading…</p>`;
  const now = data.now;
  return html`<section>
    <table class="grid rules">
      <thead><tr><th>rule</th><th>severity</th><th>targets</th><th>matches</th><th>last match</th><th>last hour (per minute)</th><th>storm</th></tr></thead>
      <tbody>
        ${data.rules.map((r) => html`
          <tr key=${r.name} class=${"rule-row" + (r.enabled ? "" : " disabled")} onClick=${() => setOpen(open === r.name ? "" : r.name)}>
            <td><strong>${r.name}</strong>${r.enabled ? "" : html` <span class="muted">(disabled)</span>`}<div class="muted small">${r.description}</div></td>
            <td><span class=${"sev " + r.severity}>${r.severity}</span></td>
            <td>${r.targets.join(", ")}</td>
            <td class="num" data-testid="rule-matches">${r.matches}</td>
            <td title=${r.last_match ? fmtTime(r.last_match) : ""}>${fmtAgo(r.last_match, now)}</td>
            <td><${Bars} values=${r.per_minute} label="matches per minute, last 60 minutes" /></td>
            <td>${r.storm ? (r.storm.open.length ? r.storm.open.length + " open" : "on") : ""}</td>
          </tr>
          ${open === r.name && html`<tr class="detail"><td colspan="7">
            <div class="two">
              <div><h4>pattern</h4><pre class="mono">${pretty(r.pattern)}</pre>
                <button onClick=${(e) => (e.stopPropagation(), setTesting(pretty(r.pattern)))}>test this pattern</button>
                <div class="muted small">${r.where}</div></div>
              <div><h4>last 48 hours (per hour)</h4><${Bars} values=${r.per_hour} label="matches per hour" />
                <h4>storm control</h4><${Storm} storm=${r.storm} now=${now} /></div>
            </div></td></tr>`}
        `)}
      </tbody>
    </table>
    <p class="muted small">Counts are since this server started.</p>
    <${Tester} initialPattern=${testing} />
  </section>`;
}
