// Talking to trailwatch's /api/: the session (role, CSRF token), JSON calls, errors as exceptions.
const state = { csrf: "", role: "", mode: "", archive: false };

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

async function call(method, path, body) {
  const opt = { method, headers: {}, credentials: "same-origin" };
  if (body !== undefined) {
    opt.headers["Content-Type"] = "application/json";
    opt.body = typeof body === "string" ? body : JSON.stringify(body);
  }
  if (method !== "GET" && state.csrf) opt.headers["X-CSRF-Token"] = state.csrf;
  const r = await fetch(path, opt);
  let data = null;
  try {
    data = await r.json();
  } catch (_) {
    data = null;
  }
  if (!r.ok) throw new ApiError(r.status, (data && data.error) || r.statusText || "request failed", data);
  return data;
}

export const get = (path) => call("GET", path);
export const post = (path, body) => call("POST", path, body === undefined ? {} : body);

export async function session() {
  const s = await get("/api/session");
  state.archive = !!s.archive;
  state.csrf = s.csrf;
  state.role = s.role;
  state.mode = s.mode;
  return s;
}

export async function login(body) {
  const s = await post("/api/login", body);
  state.csrf = s.csrf;
  state.role = s.role;
  state.mode = s.mode;
  return s;
}

export async function logout() {
  await post("/api/logout");
  state.csrf = "";
  state.role = "";
}

export const role = () => state.role;
export const hasArchive = () => state.archive;

// "?a=1&b=2" from an object, leaving out empty values.
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  const s = q.toString();
  return s ? "?" + s : "";
}
