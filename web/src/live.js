// Live: alerts as they happen, over Server-Sent Events. The stream resumes from the last id it saw
// (the browser's Last-Event-ID on a dropped connection; ?last= when it has to start a new stream),
// and a burst of alerts is drawn at most every 250 ms, whatever the rate, so the tab stays responsive.
import { Component } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { html, fmtTime, summarize } from "./util.js";
import { JsonView, ResourceLink, isResource } from "./json.js";

const KEEP = 1000;       // alerts kept in memory
const SHOW = 200;        // rows drawn
const FLUSH_MS = 250;

// The live counters, readable by the browser tests and the benchmark.
const stats = (window.twLive = { received: 0, drawn: 0, gaps: 0, missed: 0, connects: 0, state: "connecting", lastId: "" });

// A row is drawn once: later flushes only add rows above it (its props never change but "selected").
class Row extends Component {
  shouldComponentUpdate(next) {
    return next.a !== this.props.a || next.sel !== this.props.sel;
  }
  render({ a, sel, onOpen }) {
    return html`<tr class=${"alert-row" + (sel ? " sel" : "")} onClick=${() => onOpen(a)}>
      <td class="nowrap">${fmtTime(a.received)}</td>
      <td>${a.rules.map((r) => html`<span class=${"sev " + r.severity}>${r.name}</span> `)}</td>
      <td class="ev-name">${a.sum.name}${a.sum.error ? html` <span class="err">${a.sum.error}</span>` : ""}</td>
      <td class="who">${a.sum.who}</td>
      <td>${a.sum.ip}</td>
      <td>${a.sum.account}</td>
      <td>${a.sum.region}</td>
      <td>${a.sum.resources.slice(0, 2).map((r) => (isResource(r) ? html`<${ResourceLink} id=${r} /> ` : r + " "))}</td>
    </tr>`;
  }
}

export function Live() {
  const [rows, setRows] = useState([]);
  const [status, setStatus] = useState("connecting");
  const [rate, setRate] = useState(0);
  const [paused, setPaused] = useState(false);
  const [filter, setFilter] = useState("");
  const [open, setOpen] = useState(null);
  const pending = useRef([]);
  const pausedRef = useRef(false);
  pausedRef.current = paused;

  useEffect(() => {
    let es = null, timer = null, retry = null, stopped = false, lastId = "", seq = 0;
    let windowStart = performance.now(), windowCount = 0;
    const flush = () => {
      timer = null;
      const now = performance.now();
      if (now - windowStart >= 1000) {
        setRate(Math.round((windowCount * 1000) / (now - windowStart)));
        windowStart = now;
        windowCount = 0;
      }
      if (pausedRef.current || !pending.current.length) return;
      const fresh = pending.current.reverse();
      pending.current = [];
      setRows((old) => {
        const next = fresh.length >= KEEP ? fresh.slice(0, KEEP) : fresh.concat(old.slice(0, KEEP - fresh.length));
        stats.drawn += fresh.length;
        return next;
      });
    };
    const schedule = () => {
      if (!timer) timer = setTimeout(flush, FLUSH_MS);
    };
    const onAlert = (m) => {
      let a;
      try {
        a = JSON.parse(m.data);
      } catch (_) {
        return;
      }
      lastId = m.lastEventId || lastId;
      stats.lastId = lastId;
      stats.received++;
      windowCount++;
      a.key = ++seq;
      a.sum = summarize(a.event);
      pending.current.push(a);
      if (pending.current.length > KEEP) pending.current.splice(0, pending.current.length - KEEP);
      schedule();
    };
    const connect = () => {
      if (stopped) return;
      stats.connects++;
      es = new EventSource("/api/stream" + (lastId ? "?last=" + encodeURIComponent(lastId) : "?backlog=" + SHOW));
      es.addEventListener("hello", () => {
        stats.state = "live";
        setStatus("live");
      });
      es.addEventListener("alert", onAlert);
      es.addEventListener("gap", (m) => {
        stats.gaps++;
        try {
          stats.missed += JSON.parse(m.data).missed;
        } catch (_) {}
      });
      es.onerror = () => {
        stats.state = "reconnecting";
        setStatus("reconnecting");
        if (es.readyState === EventSource.CLOSED) {
          // The server answered with an error (restarting, too many streams): start a new stream later.
          es.close();
          retry = setTimeout(connect, 3000);
        }
      };
    };
    connect();
    const tick = setInterval(schedule, 1000);
    return () => {
      stopped = true;
      clearInterval(tick);
      clearTimeout(timer);
      clearTimeout(retry);
      if (es) es.close();
    };
  }, []);

  const f = filter.trim().toLowerCase();
  const shown = (f ? rows.filter((a) => JSON.stringify(a.event).toLowerCase().includes(f) || a.rules.some((r) => r.name.toLowerCase().includes(f))) : rows).slice(0, SHOW);
  return html`<section class="live">
    <div class="toolbar">
      <span class=${"status " + status} data-testid="live-status">${status}</span>
      <span class="muted">${rate} alerts/s · ${rows.length} kept</span>
      <input placeholder="filter (rule, text)" value=${filter} onInput=${(e) => setFilter(e.target.value)} />
      <button onClick=${() => setPaused(!paused)}>${paused ? "resume" : "pause"}</button>
      <button onClick=${() => setRows([])}>clear</button>
    </div>
    <div class="split">
      <table class="grid live-grid">
        <colgroup><col class="c-time" /><col class="c-rules" /><col class="c-ev" /><col class="c-who" /><col class="c-ip" /><col class="c-acct" /><col class="c-region" /><col class="c-res" /></colgroup>
        <thead><tr><th>received</th><th>rules</th><th>event</th><th>who</th><th>source IP</th><th>account</th><th>region</th><th>resources</th></tr></thead>
        <tbody>
          ${shown.map((a) => html`<${Row} key=${a.key} a=${a} sel=${open === a} onOpen=${setOpen} />`)}
        </tbody>
      </table>
      ${open && html`<${JsonView} value=${open.event} title=${open.rules.map((r) => r.name).join(", ")} onClose=${() => setOpen(null)} />`}
    </div>
    ${!rows.length && html`<p class="muted empty">No alerts yet. They appear here as rules match.</p>`}
  </section>`;
}
