// Calls to stephub's JSON API. The browser signs them in with the session
// cookie; the page never sees the token. The streams, and the tickets they
// open with, are the JavaScript client's (feed.js).

/** What one video costs in credits: the server's stephub.GenerateCost. */
export const VIDEO_COST = 100;

/** An error answer of the API: {"error": {"code", "message", "fields"?}}. */
export class APIError extends Error {
  constructor(status, code, message, fields = {}) {
    super(message);
    this.name = "APIError";
    this.status = status;
    this.code = code;
    this.fields = fields;
  }
}

let onUnauthorized = () => {};

/**
 * Sets what happens when any call answers 401: the token is missing,
 * invalid or expired, and only a new one helps.
 */
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

/**
 * Sends a request and returns the decoded JSON body, or null for none. A
 * failed request throws an APIError; a network failure throws an APIError
 * with status 0. extraHeaders add to the usual ones.
 */
async function request(method, path, body, extraHeaders = {}) {
  // The server takes the cookie on a request that changes something only
  // with this header, which no other site's page can send.
  const headers = { Accept: "application/json", "X-Requested-With": "stephub", ...extraHeaders };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let resp;
  try {
    resp = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new APIError(0, "network", "The server cannot be reached. Check your connection, then try again.");
  }
  const data = await resp.json().catch(() => null);
  if (resp.ok) return data;
  const e = data?.error ?? {};
  const err = new APIError(resp.status, e.code ?? "http_" + resp.status,
    e.message ?? `The server answered ${resp.status}.`, e.fields ?? {});
  if (resp.status === 401) onUnauthorized(err);
  throw err;
}

/** GET /api/v1/users/me: {id, email, credits, subscription_status}. */
export const fetchMe = () => request("GET", "/api/v1/users/me");

/** GET /api/v1/videos: {videos, next_cursor}, newest first. */
export function listVideos(cursor) {
  const q = new URLSearchParams({ limit: "20" });
  if (cursor) q.set("cursor", cursor);
  return request("GET", `/api/v1/videos?${q}`);
}

/** GET /api/v1/videos/{id}. */
export const getVideo = (id) => request("GET", `/api/v1/videos/${id}`);

/** POST /api/v1/videos/generate: 201 with the new video. */
export const generateVideo = (body) => request("POST", "/api/v1/videos/generate", body);

/** POST /api/v1/videos/{id}/cancel. */
export const cancelVideo = (id) => request("POST", `/api/v1/videos/${id}/cancel`);

/**
 * POST /api/v1/session: the server makes a pasted token the session
 * cookie. The token goes in a header, once; never in a URL.
 */
export const createSession = (token) =>
  request("POST", "/api/v1/session", undefined, { Authorization: `Bearer ${token}` });

/** DELETE /api/v1/session: the server clears the cookie. */
export const deleteSession = () => request("DELETE", "/api/v1/session");
