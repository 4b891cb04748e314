// Small shared pieces: html (htm bound to preact), time formatting, the hash router.
import { h } from "preact";
import htm from "htm";

export const html = htm.bind(h);

export function fmtTime(ms) {
  if (ms === null || ms === undefined || ms === "") return "";
  const d = new Date(typeof ms === "number" ? ms : Date.parse(ms));
  if (isNaN(d)) return String(ms);
  return d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

export function fmtAgo(ms, now) {
  if (!ms) return "never";
  const s = Math.max(0, Math.round(((now || Date.now()) - ms) / 1000));
  if (s < 60) return s + " s ago";
  if (s < 3600) return Math.round(s / 60) + " min ago";
  if (s < 86400) return Math.round(s / 3600) + " h ago";
  return Math.round(s / 86400) + " d ago";
}

// Routes live in the hash (#/search?resource=...), so links can be shared and the server serves one page.
export function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/live";
  const [path, qs] = raw.split("?");
  return { path: path || "/live", params: Object.fromEntries(new URLSearchParams(qs || "")) };
}

export function hrefFor(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  const s = q.toString();
  return "#" + path + (s ? "?" + s : "");
}

export function go(path, params) {
  location.hash = hrefFor(path, params);
}

// The fields of an EventBridge event (or a CloudTrail record inside one) a table row shows.
export function summarize(ev) {
  const d = (ev && ev.detail) || {};
  const ui = d.userIdentity || {};
  let who = ui.arn || ui.principalId || ui.userName || ui.type || "";
  if (ui.type === "AssumedRole" && ui.sessionContext && ui.sessionContext.sessionIssuer)
    who = ui.arn || ui.sessionContext.sessionIssuer.arn;
  if (ui.type === "AWSService") who = ui.invokedBy || "AWS service";
  return {
    id: ev && ev.id,
    time: (ev && ev.time) || d.eventTime,
    source: ev && ev.source,
    detailType: ev && ev["detail-type"],
    name: d.eventName || (ev && ev["detail-type"]) || "",
    who,
    ip: d.sourceIPAddress || "",
    account: (ev && ev.account) || d.recipientAccountId || "",
    region: (ev && ev.region) || d.awsRegion || "",
    error: d.errorCode || "",
    resources: (ev && Array.isArray(ev.resources) ? ev.resources : []).map((r) => (typeof r === "string" ? r : r && r.ARN)).filter(Boolean),
  };
}
