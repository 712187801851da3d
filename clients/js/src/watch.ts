// watchVideo: one video's step events, over SSE or WebSocket, resumed
// after every drop, each event delivered once and in order.

import { backoffDelay, type BackoffOptions } from "./backoff.js";
import { StephubError, errorFromResponse, networkError } from "./errors.js";
import { SSEParser } from "./sse.js";
import { videoPath, type StreamEvent, type StreamQuery, type Ticket, type VideoRoute, type VideoStatus } from "./types.js";

/**
 * Which stream to use; "auto" is WebSocket, and SSE where that fails. Without
 * a watch ticket, "ws" and "auto" stream SSE over fetch where they can (see
 * WatchOptions.tickets).
 */
export type Transport = "sse" | "ws" | "auto";

/**
 * A watch's state:
 *
 *   connecting    dialling for the first time
 *   open          the stream is flowing
 *   reconnecting  it dropped or was refused; dialling again after a pause,
 *                 resuming after the last event
 *   closed        the job is over and every event was delivered
 *   error         given up: the error says why; retry() starts again
 */
export type WatchState = "connecting" | "open" | "reconnecting" | "closed" | "error";

/** What onStatus is told. */
export interface WatchStatus {
  state: WatchState;
  /** The transport in use, or being dialled. */
  transport: "sse" | "ws";
  /** For "error", why it gave up; for "reconnecting", what failed, when known. */
  error?: StephubError;
  /** For "reconnecting", the pause before the next dial, in ms. */
  retryInMs?: number;
  /**
   * Why the transport is not the one asked for, on the first status after
   * the switch: a WebSocket replaced by SSE over fetch, which can send the
   * token in a header, when the server gives no watch tickets.
   */
  note?: string;
}

/** The options of watchVideo. */
export interface WatchOptions {
  /**
   * The server, such as "https://stephub.example.com". In a browser it
   * defaults to the page's origin; elsewhere it is required.
   */
  baseUrl?: string;
  videoId: number | string;
  /** The user's access token. */
  token?: string;
  /**
   * Returns the user's access token. It is called before the first dial
   * and again after the server refuses the token (401) or ends a stream
   * because its credential expired, so it may hand out a renewed one.
   */
  getToken?: () => string | null | undefined | Promise<string | null | undefined>;
  /**
   * Sign ticket requests in with the browser's session cookie (the
   * dashboard's stephub_session) instead of a token; only for pages of the
   * server's own origin.
   */
  session?: boolean;
  /**
   * Stream with watch tickets (default true): the token goes in the
   * Authorization header of POST /api/v1/videos/{id}/ticket only, never in
   * a URL. Without them (tickets: false, or a server without the ticket
   * route), the watch streams SSE over fetch with the token in the
   * Authorization header, even when the transport asked for is "ws" or
   * "auto" (a status note says so): a WebSocket and EventSource can send
   * the token only in ?token=, where proxies and logs keep it, and are
   * used so only where fetch cannot stream.
   */
  tickets?: boolean;
  /** "sse", "ws" or "auto" (the default); see tickets. */
  transport?: Transport;
  /** Resume after this event id: events up to it are not sent again. */
  lastEventId?: number;
  /** Called once for each event, in order of id. */
  onEvent: (event: StreamEvent) => void;
  /**
   * Called when onEvent throws, with what it threw and the event; the
   * watch carries on with the next event. By default the error is logged
   * with console.error. (It is not rethrown: in Node.js that would end
   * the process.)
   */
  onEventError?: (error: unknown, event: StreamEvent) => void;
  /** Called when the state changes, and at each pause before a retry. */
  onStatus?: (status: WatchStatus) => void;
  /** The pause between attempts; see backoffDelay. */
  backoff?: BackoffOptions;
  /**
   * How many refusals in a row (429 too_many_streams, or a WebSocket the
   * server would not open) to retry before giving up; default 3.
   */
  maxRefusals?: number;
  /** Stand-ins for the runtime's fetch, WebSocket and EventSource; null for none. */
  fetch?: typeof fetch | null;
  WebSocket?: typeof WebSocket | null;
  EventSource?: typeof EventSource | null;
}

/** A running watch. Its callbacks run on the event loop, one at a time. */
export interface WatchHandle {
  /** Stops watching: the connection closes, no callback follows. */
  close(): void;
  /** After the watch gave up (state "error"), starts it again. */
  retry(): void;
  readonly state: WatchState;
  readonly transport: "sse" | "ws";
  /** The id of the last event delivered, 0 before any. */
  readonly lastEventId: number;
}

/** The statuses after which a video sends no more events. */
export const TERMINAL_STATUSES: ReadonlySet<VideoStatus> = new Set<VideoStatus>(["completed", "failed", "cancelled"]);

/** Reports whether status is one after which no event follows. */
export function isTerminal(status: string | null | undefined): boolean {
  return TERMINAL_STATUSES.has(status as VideoStatus);
}

// WebSocket close codes of the server (docs/streaming.md, "Over WebSocket").
const WS_FINISHED = 1000; // after the terminal event, or at once with nothing left
const WS_CREDENTIAL_EXPIRED = 4001;

// Why a watch asked for a WebSocket streams SSE over fetch instead.
const NO_TICKETS_NOTE =
  "No watch ticket: streaming SSE over fetch, with the token in the Authorization header, rather than a WebSocket with the token in its address.";

// A stream that ran this long, or delivered an event, was healthy: the
// pause after it ends starts again from the shortest.
const HEALTHY_MS = 5000;
// How close to a ticket's expiry, by this machine's clock, a stream that
// ends is taken to have ended because the ticket expired.
const EXPIRY_SLACK_MS = 1000;

/** What a stream is opened with: a watch ticket, or the user's token. */
interface Credential {
  ticket?: string;
  /** The ticket's expiry, ms since the epoch. */
  expiresAt?: number;
  token?: string;
}

/**
 * watchVideo streams a video's step events to onEvent until the job is
 * over (the terminal event: status completed, failed or cancelled; or 204,
 * nothing left to send), the watch gives up, or close() is called.
 *
 * Each stream is opened with a watch ticket, asked for with the token in
 * the Authorization header (or the session cookie), so the token never
 * appears in a URL. After any drop it dials again, after a pause that grows
 * with each failure and is jittered, and resumes after the last event
 * delivered; an event is never delivered twice. It asks getToken again
 * after a 401 and after a stream ends because its credential expired (the
 * WebSocket close code 4001, or an SSE stream ending as its ticket
 * expires), and dials again at once, staying "open" through that
 * handover. It gives up, with state "error", on 400, 401 (when a fresh
 * token does not help), 402, 403 and 404, and after maxRefusals 429s or
 * refused WebSockets in a row.
 */
export function watchVideo(options: WatchOptions): WatchHandle {
  return new Watch(options);
}

class Watch implements WatchHandle {
  state: WatchState = "connecting";
  transport: "sse" | "ws";
  lastEventId: number;

  readonly #o: WatchOptions;
  readonly #base: string;
  readonly #fetch: typeof fetch | undefined;
  readonly #WebSocket: typeof WebSocket | undefined;
  readonly #EventSource: typeof EventSource | undefined;
  readonly #maxRefusals: number;
  readonly #mode: Transport;

  #gen = 0; // bumped whenever the connection is replaced or shut
  #closed = false; // by close()
  #timer: ReturnType<typeof setTimeout> | undefined;
  #abort: AbortController | undefined;
  #closeConn: (() => void) | undefined;

  #token: string | undefined;
  #haveToken = false; // #token holds getToken's latest answer
  #tickets: boolean;
  #fetchStreams: boolean;

  #attempt = 0; // failures since the last healthy stream
  #refusals = 0; // refusals in a row
  #authRetried = false; // a 401 was answered with a fresh dial
  #suspect = false; // the last WebSocket or EventSource failed to open
  #openedAt = 0;
  #gotEvent = false; // the current stream delivered an event
  #emitted: WatchStatus | undefined;
  #note: string | undefined; // for the next status: why the transport changed

  constructor(o: WatchOptions) {
    if (typeof o.onEvent !== "function") throw new TypeError("watchVideo: onEvent is required");
    this.#o = o;
    this.#base = baseURL(o.baseUrl);
    const g = globalThis as Partial<typeof globalThis>;
    const f = o.fetch === null ? undefined : (o.fetch ?? g.fetch);
    // Called as a plain function: a browser's fetch refuses another `this`.
    this.#fetch = f && ((input, init) => f(input, init));
    this.#WebSocket = o.WebSocket === null ? undefined : (o.WebSocket ?? g.WebSocket);
    this.#EventSource = o.EventSource === null ? undefined : (o.EventSource ?? g.EventSource);
    this.#maxRefusals = o.maxRefusals ?? 3;
    this.#tickets = o.tickets !== false && this.#fetch !== undefined;
    this.#fetchStreams = this.#fetch !== undefined && typeof ReadableStream === "function" && typeof TextDecoder === "function";
    this.#mode = o.transport ?? "auto";
    this.transport = this.#mode === "ws" || (this.#mode === "auto" && this.#WebSocket !== undefined) ? "ws" : "sse";
    if (this.transport === "ws" && !this.#tickets && this.#fetchStreams) {
      this.transport = "sse";
      this.#note = NO_TICKETS_NOTE;
    }
    this.lastEventId = o.lastEventId ?? 0;
    this.#setState("connecting");
    void this.#dial();
  }

  close(): void {
    this.#closed = true;
    this.#shut();
  }

  retry(): void {
    if (this.#closed || this.state !== "error") return;
    this.#attempt = 0;
    this.#refusals = 0;
    this.#authRetried = false;
    this.#suspect = false;
    // The token that failed last time is not sent again: ask for it anew.
    if (this.#o.getToken) {
      this.#haveToken = false;
      this.#token = undefined;
    }
    this.#setState("connecting");
    void this.#dial();
  }

  // --- dialling ----------------------------------------------------------

  async #dial(): Promise<void> {
    this.#shut();
    const gen = this.#gen;
    const abort = new AbortController();
    this.#abort = abort;
    const live = () => gen === this.#gen;
    let cred: Credential;
    try {
      cred = await this.#credential(abort.signal);
      if (!live()) return;
      if (this.#suspect && this.#fetch) {
        // The last WebSocket (or EventSource) did not open, and browsers
        // do not say why: ask the server with a HEAD of the stream, which
        // answers as the stream would up to the per-user cap. (Without
        // fetch there is no asking: it is retried as if nothing answered.)
        this.#suspect = false;
        const nothingLeft = await this.#probe(cred, abort.signal);
        if (!live()) return;
        if (nothingLeft) {
          this.#finish();
          return;
        }
        // The server is up and would stream: it refused the connection.
        if (this.#mode === "auto" && this.transport === "ws") {
          this.transport = "sse"; // a proxy that does not pass WebSockets, say
        } else if (++this.#refusals >= this.#maxRefusals) {
          this.#giveUp(new StephubError(0, "refused",
            `The server refused the ${this.transport === "ws" ? "WebSocket" : "stream"} ${this.#refusals} times: too many streams open, or this origin is not allowed.`));
          return;
        }
      }
    } catch (err) {
      if (live()) this.#failed(asStephubError(err), false);
      return;
    }
    if (this.transport === "ws" && !cred.ticket && this.#fetchStreams) {
      // No ticket: a WebSocket would carry the token in ?token=, where
      // proxies and logs keep it. SSE over fetch sends it in a header.
      this.transport = "sse";
      this.#note = NO_TICKETS_NOTE;
    }
    if (this.transport === "ws") this.#openWebSocket(gen, cred);
    else if (this.#fetchStreams) void this.#openFetch(gen, cred, abort.signal);
    else this.#openEventSource(gen, cred);
  }

  /** A ticket, or the token where tickets cannot be had. */
  async #credential(signal: AbortSignal): Promise<Credential> {
    const token = await this.#currentToken();
    if (this.#tickets) {
      if (!token && !this.#o.session) throw noCredential();
      const headers: Record<string, string> = { Accept: "application/json" };
      if (token) headers.Authorization = `Bearer ${token}`;
      // The server takes the cookie on a POST only with this header, which
      // other sites' pages cannot send.
      else headers["X-Requested-With"] = "stephub";
      const resp = await this.#request(this.#url("/api/v1/videos/{id}/ticket"), { method: "POST", headers, signal });
      if (resp.ok) {
        const t = (await resp.json()) as Ticket;
        return { ticket: t.ticket, expiresAt: Date.parse(t.expires_at) };
      }
      if ((resp.status === 404 || resp.status === 405) && token && (await this.#videoVisible(token, signal))) {
        // A server without tickets: the video is there, the route is not.
        this.#tickets = false;
        return { token };
      }
      throw await errorFromResponse(resp);
    }
    if (!token) throw noCredential();
    return { token };
  }

  async #currentToken(): Promise<string | undefined> {
    const get = this.#o.getToken;
    if (!get) return this.#o.token || undefined;
    if (!this.#haveToken) {
      let token;
      try {
        token = await get();
      } catch (err) {
        const e = new StephubError(0, "token_unavailable", `getToken failed: ${err instanceof Error ? err.message : String(err)}`);
        (e as { cause?: unknown }).cause = err;
        throw e;
      }
      this.#token = token || undefined;
      this.#haveToken = true;
    }
    return this.#token;
  }

  /** Whether GET /api/v1/videos/{id} finds the video. */
  async #videoVisible(token: string, signal: AbortSignal): Promise<boolean> {
    const resp = await this.#request(this.#url("/api/v1/videos/{id}"), { headers: { Authorization: `Bearer ${token}` }, signal });
    return resp.ok;
  }

  /**
   * Asks HEAD /stream what a stream would answer: true for 204 (nothing
   * left to send), false for 200; other answers throw.
   */
  async #probe(cred: Credential, signal: AbortSignal): Promise<boolean> {
    const headers: Record<string, string> = {};
    if (!cred.ticket && cred.token) headers.Authorization = `Bearer ${cred.token}`;
    const resp = await this.#request(this.#streamURL("stream", cred, false), { method: "HEAD", headers, signal });
    if (resp.status === 204) return true;
    if (resp.ok) return false;
    throw await errorFromResponse(resp);
  }

  async #request(url: string, init: RequestInit): Promise<Response> {
    try {
      return await this.#fetch!(url, { cache: "no-store", ...init });
    } catch (err) {
      throw networkError(err);
    }
  }

  // --- the three ways to stream -------------------------------------------

  /** SSE read with fetch: statuses are visible, and headers can be sent. */
  async #openFetch(gen: number, cred: Credential, signal: AbortSignal): Promise<void> {
    const live = () => gen === this.#gen;
    const headers: Record<string, string> = { Accept: "text/event-stream" };
    if (!cred.ticket && cred.token) headers.Authorization = `Bearer ${cred.token}`;
    let resp: Response;
    try {
      resp = await this.#request(this.#streamURL("stream", cred, false), { headers, signal });
    } catch (err) {
      if (live()) this.#failed(asStephubError(err), false);
      return;
    }
    if (!live()) {
      void resp.body?.cancel().catch(() => {});
      return;
    }
    if (resp.status === 204) {
      this.#finish();
      return;
    }
    if (!resp.ok) {
      const err = await errorFromResponse(resp);
      if (live()) this.#failed(err, cred.ticket !== undefined);
      return;
    }
    if (!resp.body) {
      // A fetch without streaming bodies: EventSource it is.
      this.#fetchStreams = false;
      this.#openEventSource(gen, cred);
      return;
    }
    this.#opened(gen);
    const reader = resp.body.getReader();
    const decoder = new TextDecoder();
    const parser = new SSEParser((m) => this.#receive(gen, m.data));
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (!live()) return;
        if (done) break;
        parser.push(decoder.decode(value, { stream: true }));
      }
    } catch {
      if (live()) this.#dropped(false);
      return;
    }
    // The server ended the stream without the terminal event: a restart,
    // or the credential expired.
    this.#dropped(expired(cred));
  }

  #openWebSocket(gen: number, cred: Credential): void {
    const live = () => gen === this.#gen;
    const WS = this.#WebSocket;
    if (!WS) {
      this.#giveUp(new StephubError(0, "unsupported", "This runtime has no WebSocket: use the transport \"sse\" or \"auto\"."));
      return;
    }
    const url = new URL(this.#streamURL("ws", cred, true));
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    let socket: WebSocket;
    try {
      socket = new WS(url.toString());
    } catch (err) {
      this.#failed(networkError(err), false);
      return;
    }
    let opened = false;
    this.#closeConn = () => {
      socket.onopen = socket.onmessage = socket.onclose = socket.onerror = null;
      socket.close(1000);
    };
    socket.onopen = () => {
      if (!live()) return;
      opened = true;
      this.#opened(gen);
    };
    socket.onmessage = (m) => {
      if (typeof m.data === "string") this.#receive(gen, m.data);
    };
    // Browsers follow an error with a close (1006); Node 20's WebSocket
    // does not when the upgrade is refused. Whichever comes first ends it.
    const ended = (code: number | undefined) => {
      if (!live()) return;
      this.#closeConn = undefined;
      socket.onopen = socket.onmessage = socket.onclose = socket.onerror = null;
      if (!opened) this.#notOpened();
      else if (code === WS_FINISHED) this.#finish();
      else this.#dropped(code === WS_CREDENTIAL_EXPIRED || expired(cred));
    };
    socket.onerror = () => ended(undefined);
    socket.onclose = (e) => ended(e.code);
  }

  /** The last resort, where fetch cannot stream: the token goes in ?token=. */
  #openEventSource(gen: number, cred: Credential): void {
    const live = () => gen === this.#gen;
    const ES = this.#EventSource;
    if (!ES) {
      this.#giveUp(new StephubError(0, "unsupported", "This runtime can stream neither with fetch nor with EventSource: use the transport \"ws\"."));
      return;
    }
    const source = new ES(this.#streamURL("stream", cred, true));
    let opened = false;
    this.#closeConn = () => source.close();
    source.onopen = () => {
      if (!live()) return;
      opened = true;
      this.#opened(gen);
    };
    source.onmessage = (m) => this.#receive(gen, m.data);
    source.onerror = () => {
      // EventSource would retry by itself, with the same ticket, which may
      // have expired, and without telling the status: dial instead.
      source.close();
      if (!live()) return;
      this.#closeConn = undefined;
      if (!opened) this.#notOpened();
      else this.#dropped(expired(cred));
    };
  }

  // --- what happens on the stream ----------------------------------------

  #opened(gen: number): void {
    if (gen !== this.#gen) return;
    this.#openedAt = Date.now();
    this.#gotEvent = false;
    this.#refusals = 0;
    this.#authRetried = false;
    this.#setState("open");
  }

  #receive(gen: number, data: string): void {
    if (gen !== this.#gen) return;
    let ev: StreamEvent;
    try {
      ev = JSON.parse(data) as StreamEvent;
    } catch {
      return; // not an event; the server sends none such
    }
    if (ev === null || typeof ev !== "object" || typeof ev.id !== "number") return;
    this.#gotEvent = true;
    // A resumed stream starts after the last event; this holds even if
    // one did not.
    if (ev.id <= this.lastEventId) return;
    this.lastEventId = ev.id;
    try {
      this.#o.onEvent(ev);
    } catch (err) {
      // The caller's bug is not the stream's: report it, carry on. (Not
      // rethrown: in Node.js an uncaught exception ends the process.)
      this.#eventError(err, ev);
    }
    if (gen === this.#gen && isTerminal(ev.status)) this.#finish();
  }

  #eventError(err: unknown, ev: StreamEvent): void {
    const report = this.#o.onEventError;
    if (report) {
      try {
        report(err, ev);
        return;
      } catch (again) {
        console.error("stephub watchVideo: onEventError threw:", again);
      }
    }
    console.error(`stephub watchVideo: onEvent threw on event ${ev.id}:`, err);
  }

  /** A stream that was open ended without the terminal event. */
  #dropped(credentialExpired: boolean): void {
    const healthy = this.#gotEvent || Date.now() - this.#openedAt >= HEALTHY_MS;
    if (healthy) this.#attempt = 0;
    if (credentialExpired) {
      // Ask for a fresh token too, as the user's may be what expired, and
      // dial at once, unless the stream ended as soon as it opened. This
      // is a planned handover, not a drop: the state stays "open" unless
      // the new dial fails.
      if (this.#o.getToken) this.#haveToken = false;
      if (healthy || Date.now() - this.#openedAt >= EXPIRY_SLACK_MS) {
        this.#schedule(0, undefined, true);
        return;
      }
    }
    this.#schedule(backoffDelay(this.#attempt++, this.#o.backoff));
  }

  /** A WebSocket or EventSource failed before it opened. */
  #notOpened(): void {
    this.#suspect = true;
    this.#schedule(backoffDelay(this.#attempt++, this.#o.backoff));
  }

  /**
   * A dial failed before a stream opened: the ticket or the stream was
   * refused, or nothing answered. fromTicketStream tells a 401 of a stream
   * opened with a ticket, which a fresh ticket may cure.
   */
  #failed(err: StephubError, fromTicketStream: boolean): void {
    if (err.code === "no_credential") {
      this.#giveUp(err);
      return;
    }
    switch (err.status) {
      case 401:
        if (!this.#authRetried && (this.#o.getToken || fromTicketStream)) {
          this.#authRetried = true;
          if (this.#o.getToken) this.#haveToken = false;
          this.#schedule(0, err);
        } else {
          this.#giveUp(err);
        }
        return;
      case 400:
      case 402:
      case 403:
      case 404:
        this.#giveUp(err);
        return;
      case 429:
        if (++this.#refusals >= this.#maxRefusals) {
          this.#giveUp(err);
          return;
        }
        break;
      case 0:
        // Nothing answered: a WebSocket that failed meanwhile was not
        // refused by the server.
        if (err.code === "network") this.#suspect = false;
        break;
    }
    this.#schedule(backoffDelay(this.#attempt++, this.#o.backoff), err);
  }

  // --- the watch's own state ---------------------------------------------

  #schedule(delay: number, err?: StephubError, quietly = false): void {
    this.#shut();
    if (!quietly) this.#setState("reconnecting", err, delay);
    const gen = this.#gen;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (gen === this.#gen) void this.#dial();
    }, delay);
  }

  #finish(): void {
    this.#shut();
    this.#setState("closed");
  }

  #giveUp(err: StephubError): void {
    this.#shut();
    this.#setState("error", err);
  }

  /** Ends the connection, a pending dial or a pending pause. */
  #shut(): void {
    this.#gen++;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#abort?.abort();
    this.#abort = undefined;
    const close = this.#closeConn;
    this.#closeConn = undefined;
    close?.();
  }

  #setState(state: WatchState, error?: StephubError, retryInMs?: number): void {
    if (this.#closed) return;
    this.state = state;
    const last = this.#emitted;
    const note = this.#note;
    if (last && last.state === state && last.error === error && last.transport === this.transport && retryInMs === undefined && note === undefined) return;
    const status: WatchStatus = { state, transport: this.transport };
    if (error) status.error = error;
    if (retryInMs !== undefined) status.retryInMs = retryInMs;
    if (note !== undefined) status.note = note;
    this.#note = undefined;
    this.#emitted = status;
    this.#o.onStatus?.(status);
  }

  // --- addresses -----------------------------------------------------------

  #url(route: VideoRoute): string {
    return this.#base + videoPath(route, this.#o.videoId);
  }

  /**
   * The address of a stream: with the ticket, or with the token where the
   * transport cannot send headers (tokenInQuery), and the resume point.
   */
  #streamURL(route: "stream" | "ws", cred: Credential, tokenInQuery: boolean): string {
    const url = new URL(this.#url(route === "ws" ? "/api/v1/videos/{id}/ws" : "/api/v1/videos/{id}/stream"));
    if (cred.ticket) url.searchParams.set("ticket", cred.ticket);
    else if (tokenInQuery && cred.token) url.searchParams.set("token", cred.token);
    // A fresh connection cannot send Last-Event-ID as EventSource does
    // when it reconnects; the query stands in, and needs no preflight.
    const query: StreamQuery = {};
    if (this.lastEventId > 0) query.last_event_id = this.lastEventId;
    for (const [k, v] of Object.entries(query)) url.searchParams.set(k, String(v));
    return url.toString();
  }
}

/** The server's address without a trailing slash. */
function baseURL(base: string | undefined): string {
  const here = (globalThis as { location?: { href: string } }).location?.href;
  if (base === undefined && here === undefined) throw new TypeError("watchVideo: baseUrl is required outside browsers");
  return new URL(base ?? "/", here).href.replace(/\/+$/, "");
}

/** Whether a stream opened with cred ended because its ticket expired. */
function expired(cred: Credential): boolean {
  return cred.expiresAt !== undefined && Date.now() >= cred.expiresAt - EXPIRY_SLACK_MS;
}

function noCredential(): StephubError {
  return new StephubError(0, "no_credential", "watchVideo needs token, getToken, or session: true on the server's own pages.");
}

function asStephubError(err: unknown): StephubError {
  if (err instanceof StephubError) return err;
  return networkError(err);
}
