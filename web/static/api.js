// Calls to stephub's JSON API with the signed-in user's token.

import { getToken } from "./session.js";

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
 * Sends a request and returns the decoded JSON body. A failed request
 * throws an APIError; a network failure throws an APIError with status 0.
 */
async function request(method, path, body) {
  const headers = { Accept: "application/json" };
  const token = getToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let resp;
  try {
    resp = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new APIError(0, "network", "The server cannot be reached. Check that stephub is running.");
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
