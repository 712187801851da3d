// VideoFeed is one video's event stream with its history: the single owner
// of a connection that any number of tabs watch. It runs in the shared
// worker (one per browser) or, where SharedWorker is missing, in the tab.
// The stream itself is stephub's JavaScript client (clients/js, served at
// /static/client/): tickets, resuming, retries and refusals live there.

import { watchVideo } from "./client/index.js";

/** Statuses after which a video sends no more events. */
export const TERMINAL = new Set(["completed", "failed", "cancelled"]);

/** States in which the feed stopped trying; retry starts it again. */
export const GAVE_UP = new Set(["error", "unauthorized", "notfound"]);

const FAILURES = {
  unauthorized: "Your access token is not valid any more: sign in again.",
  notfound: "This video does not exist, or it belongs to someone else.",
  refused: "The server refused the stream. Too many open tabs? Reconnect to try again.",
};

/**
 * Each connection opens with a watch ticket of its own, which the client
 * asks the API for (the session cookie signs that request in), so no URL
 * it opens holds the user's token. A stream that ends as its ticket expires
 * is dialled again at once with a fresh one, resuming after the last event.
 *
 * Listeners get {events, state, detail, transport, replay: true} once when
 * they subscribe, then {events} for each new event and {state, detail,
 * transport} for each change of state:
 *
 *   idle          nobody watches; the connection is shut
 *   connecting    dialling for the first time (or on another transport)
 *   open          the stream is flowing
 *   reconnecting  it dropped; dialling again, resuming after the last event
 *   closed        the job is over and every event is here
 *   error, unauthorized, notfound   given up; detail says why
 */
export class VideoFeed {
  /** @type {object[]} every event received, ids 1..n in order */
  events = [];
  state = "idle";
  detail = "";
  transport = "sse";

  #listeners = new Set();
  /** The client's watch while one runs, or null. */
  #watch = null;

  constructor(videoId) {
    this.videoId = videoId;
  }

  /** The id of the last event received, 0 before the first. */
  get lastId() {
    return this.events.at(-1)?.id ?? 0;
  }

  /** Whether the terminal event has arrived. */
  get finished() {
    return TERMINAL.has(this.events.at(-1)?.status);
  }

  /** Calls fn with the whole history, then with every change; returns the unsubscribe. */
  subscribe(fn) {
    fn({ events: this.events.slice(), state: this.state, detail: this.detail, transport: this.transport, replay: true });
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /** Makes sure the stream is open on the given transport, unless the job is over. */
  start({ transport }) {
    const switching = transport !== undefined && transport !== this.transport;
    if (transport !== undefined) this.transport = transport;
    if (this.finished) {
      this.#setState("closed");
      if (switching) this.#emitState();
      return;
    }
    if (switching || this.#watch === null) this.#open();
  }

  /** Dials again if the feed gave up; a stream that is up or retrying is left alone. */
  retry() {
    if (this.finished || !GAVE_UP.has(this.state)) return;
    this.#open();
  }

  /** Shuts the connection while nobody watches; the history stays. */
  stop() {
    this.#watch?.close();
    this.#watch = null;
    if (!this.finished) this.#setState("idle");
  }

  #open() {
    this.#watch?.close();
    // A new watch resumes after the last event this feed holds.
    this.#watch = watchVideo({
      videoId: this.videoId,
      session: true,
      transport: this.transport,
      lastEventId: this.lastId,
      onEvent: (ev) => {
        this.events.push(ev);
        this.#emit({ events: [ev] });
      },
      onStatus: ({ state, error }) => {
        if (state === "closed" || state === "error") this.#watch = null;
        if (state !== "error") this.#setState(state);
        else if (error.code === "unauthorized") this.#setState("unauthorized", FAILURES.unauthorized);
        else if (error.status === 404) this.#setState("notfound", FAILURES.notfound);
        else if (error.status === 429 || error.code === "refused") this.#setState("error", FAILURES.refused);
        else this.#setState("error", error.message);
      },
    });
  }

  #setState(state, detail = "") {
    if (state === this.state && detail === this.detail) return;
    this.state = state;
    this.detail = detail;
    this.#emitState();
  }

  #emitState() {
    this.#emit({ state: this.state, detail: this.detail, transport: this.transport });
  }

  #emit(update) {
    for (const fn of this.#listeners) fn(update);
  }
}
