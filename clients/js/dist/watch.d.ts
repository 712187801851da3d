import { type BackoffOptions } from "./backoff.js";
import { StephubError } from "./errors.js";
import { type StreamEvent, type VideoStatus } from "./types.js";
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
export declare const TERMINAL_STATUSES: ReadonlySet<VideoStatus>;
/** Reports whether status is one after which no event follows. */
export declare function isTerminal(status: string | null | undefined): boolean;
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
export declare function watchVideo(options: WatchOptions): WatchHandle;
