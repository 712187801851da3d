// createClient: the calls of stephub's JSON API that a front end makes
// around watching, with one place for the server's address and the user's
// credential.

import { StephubError, errorFromResponse, networkError } from "./errors.js";
import type { paths } from "./openapi.js";
import { videoPath, type GenerateRequest, type User, type Video } from "./types.js";
import { watchVideo, type WatchHandle, type WatchOptions } from "./watch.js";

/** How the client reaches the server and signs in. */
export interface ClientOptions {
  /** The server; in a browser the page's origin by default. */
  baseUrl?: string;
  /** The user's access token. */
  token?: string;
  /** Returns the user's access token; called again after a 401. */
  getToken?: () => string | null | undefined | Promise<string | null | undefined>;
  /** Sign in with the browser's session cookie (the server's own pages). */
  session?: boolean;
  fetch?: typeof fetch;
}

/** A client of one server for one user. Safe to share; it keeps no state but the token. */
export interface Client {
  /** POST /api/v1/videos/generate: the new video. 402 insufficient_credits and 403 subscription_inactive throw. */
  generate(body: GenerateRequest): Promise<Video>;
  /** GET /api/v1/videos/{id}. */
  getVideo(id: number | string): Promise<Video>;
  /** POST /api/v1/videos/{id}/cancel: the cancelled video; 409 video_finished throws. */
  cancel(id: number | string): Promise<Video>;
  /** GET /api/v1/users/me: the user and their credits. */
  me(): Promise<User>;
  /** watchVideo with this client's server and credential. */
  watch(videoId: number | string, options: Omit<WatchOptions, "videoId" | "baseUrl" | "token" | "getToken" | "session" | "fetch">): WatchHandle;
}

/**
 * createClient returns a Client. Every failed call throws a StephubError
 * with the answer's status and code (status 0, code network, when nothing
 * answered); a 401 is retried once with a fresh token from getToken.
 */
export function createClient(options: ClientOptions = {}): Client {
  const f = options.fetch ?? (globalThis as Partial<typeof globalThis>).fetch;
  if (!f) throw new TypeError("createClient: this runtime has no fetch; pass options.fetch");
  const here = (globalThis as { location?: { href: string } }).location?.href;
  if (options.baseUrl === undefined && here === undefined) throw new TypeError("createClient: baseUrl is required outside browsers");
  const base = new URL(options.baseUrl ?? "/", here).href.replace(/\/+$/, "");
  let token: string | undefined;
  let haveToken = false;

  async function currentToken(): Promise<string | undefined> {
    if (!options.getToken) return options.token || undefined;
    if (!haveToken) {
      token = (await options.getToken()) || undefined;
      haveToken = true;
    }
    return token;
  }

  async function call<T>(method: string, path: string, body?: unknown, retried = false): Promise<T> {
    const t = await currentToken();
    const headers: Record<string, string> = { Accept: "application/json" };
    if (t) headers.Authorization = `Bearer ${t}`;
    else if (options.session) headers["X-Requested-With"] = "stephub";
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let resp: Response;
    try {
      resp = await f!(base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (err) {
      throw networkError(err);
    }
    if (resp.ok) return (await resp.json()) as T;
    if (resp.status === 401 && options.getToken && !retried) {
      haveToken = false;
      return call<T>(method, path, body, true);
    }
    throw await errorFromResponse(resp);
  }

  const route = (r: keyof paths) => r;
  return {
    generate: (body) => call<Video>("POST", route("/api/v1/videos/generate"), body),
    getVideo: (id) => call<Video>("GET", videoPath("/api/v1/videos/{id}", id)),
    cancel: (id) => call<Video>("POST", videoPath("/api/v1/videos/{id}/cancel", id)),
    me: () => call<User>("GET", route("/api/v1/users/me")),
    watch: (videoId, o) =>
      watchVideo({ ...o, videoId, baseUrl: base, token: options.token, getToken: options.getToken, session: options.session, ...(options.fetch ? { fetch: options.fetch } : {}) }),
  };
}

export { StephubError };
