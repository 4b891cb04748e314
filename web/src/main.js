// trailwatch's dashboard: the shell (navigation, session, login) around the five views.
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import "uplot/dist/uPlot.min.css";       // here, not in timeline.js: a lazy chunk's CSS would not load
import "./style.css";
import * as api from "./api.js";
import { html, parseHash } from "./util.js";
import { Live } from "./live.js";
import { Search } from "./search.js";
import { Rules } from "./rules.js";
import { Delivery } from "./delivery.js";

// A view whose module is fetched when it is first shown (esbuild splits it into its own chunk).
function lazy(load, name) {
  let View = null, pending = null;
  return function Lazy(props) {
    const [, loaded] = useState(0);
    const [err, setErr] = useState("");
    if (View) return html`<${View} ...${props} />`;
    if (!pending) pending = load().then((m) => (View = m[name]));
    pending.then(() => loaded(1), (e) => setErr(e.message));
    return err ? html`<p class="error">${err}</p>` : html`<p class="muted">loading…</p>`;
  };
}
const Timeline = lazy(() => import("./timeline.js"), "Timeline");

const VIEWS = [
  ["/live", "Live", Live],
  ["/timeline", "Timeline", Timeline],
  ["/search", "Search", Search],
  ["/rules", "Rules", Rules],
  ["/delivery", "Delivery", Delivery],
];

function Login({ logins, onDone }) {
  const [pw, setPw] = useState("");
  const [id, setId] = useState("");
  const [secret, setSecret] = useState("");
  const [err, setErr] = useState("");
  const submit = async (e) => {
    e.preventDefault();
    setErr("");
    try {
      onDone(await api.login(id ? { access_key_id: id, secret_access_key: secret } : { password: pw }));
    } catch (x) {
      setErr(x.message);
    }
  };
  return html`<form class="card login" onSubmit=${submit}>
    <h2>trailwatch</h2>
    ${logins.password && html`<label>password (read-only)<input type="password" data-testid="login-password" autocomplete="current-password" value=${pw} onInput=${(e) => setPw(e.target.value)} /></label>`}
    ${logins.keys && html`<details open=${!logins.password}><summary>or an access key (full access)</summary>
      <label>access key id<input data-testid="login-key" value=${id} onInput=${(e) => setId(e.target.value)} /></label>
      <label>secret access key<input type="password" data-testid="login-secret" value=${secret} onInput=${(e) => setSecret(e.target.value)} /></label></details>`}
    <button type="submit" data-testid="login-submit">log in</button>
    ${err && html`<p class="error">${err}</p>`}
  </form>`;
}

// The session is asked for as soon as the script runs, while the first frame is drawn. The marks
// (tw-script, tw-session) let bench/dashboard tell the page's own time from the network's and the load's.
performance.mark("tw-script");
const firstSession = api.session().then((s) => (performance.mark("tw-session"), { s }), (e) => ({ e }));

function App() {
  const [route, setRoute] = useState(parseHash());
  const [sess, setSess] = useState(null);
  const [need, setNeed] = useState(null);
  const [fatal, setFatal] = useState("");
  useEffect(() => {
    const on = () => setRoute(parseHash());
    addEventListener("hashchange", on);
    firstSession.then(({ s, e }) => (s ? setSess(s) : e.status === 401 && e.body ? setNeed(e.body.logins || {}) : setFatal(e.message)));
    return () => removeEventListener("hashchange", on);
  }, []);
  if (fatal) return html`<p class="error page">${fatal}</p>`;
  if (need && !sess) return html`<${Login} logins=${need} onDone=${(s) => (setSess(s), setNeed(null))} />`;
  if (!sess) return html`<p class="muted page">connecting…</p>`;
  if (!window.twInteractive) requestAnimationFrame(() => (window.twInteractive = window.twInteractive || performance.now()));
  const view = VIEWS.find(([p]) => p === route.path) || VIEWS[0];
  const View = view[2];
  return html`<div class="shell">
    <header>
      <span class="brand">trailwatch</span>
      <nav>${VIEWS.map(([p, label]) => html`<a href=${"#" + p} class=${p === view[0] ? "on" : ""} data-testid=${"nav-" + label.toLowerCase()}>${label}</a>`)}</nav>
      <span class="grow"></span>
      <span class="muted small">${sess.role === "full" ? "full access" : "read-only"} · ${sess.mode}</span>
      ${sess.mode === "session" && html`<button onClick=${() => api.logout().then(() => location.reload())}>log out</button>`}
    </header>
    <main><${View} key=${view[0]} /></main>
  </div>`;
}

render(html`<${App} />`, document.getElementById("app"));
