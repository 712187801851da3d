// VideoFeed is one video's event stream with its history: the single owner
// of a connection that any number of tabs watch. It runs in the shared
// worker (one per browser) or, where SharedWorker is missing, in the tab.

import { getVideo, issueTicket } from "./api.js";
import { connectSSE, connectWebSocket } from "./connections.js";

/** Statuses after which a video sends no more events. */
export const TERMINAL = new Set(["completed", "failed", "cancelled"]);

// Pauses before dialling again after a drop, growing to the server's SSE
// retry hint (3 s).
const RETRY_MS = [1000, 2000, 3000];
// A server that is up but refuses this many streams in a row (too many
// streams, a bad origin) is not going to change its mind.
const MAX_REFUSALS = 3;

/** States in which the feed stopped trying; retry starts it again. */
export const GAVE_UP = new Set(["error", "unauthorized", "notfound"]);

const FAILURES = {
  unauthorized: "Your access token is not valid any more: sign in again.",
  notfound: "This video does not exist, or it belongs to someone else.",
  up: "The server refused the stream. Too many open tabs? Reconnect to try again.",
};

/**
 * Each connection opens with a watch ticket of its own, which the feed asks
 * the API for (the session cookie signs that request in), so no URL it
 * opens holds the user's token. A stream that ends as its ticket expires
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
  #conn = null;
  #dialing = false; // a ticket is on its way
  #timer = 0;
  #generation = 0; // bumped whenever the connection is replaced or shut
  #attempt = 0;
  #refusals = 0;

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
    if (switching || !this.#active()) this.#open("connecting");
  }

  /** Dials again if the feed gave up; a stream that is up or retrying is left alone. */
  retry() {
    if (this.finished || !GAVE_UP.has(this.state)) return;
    this.#attempt = 0;
    this.#refusals = 0;
    this.#open("connecting");
  }

  /** Shuts the connection while nobody watches; the history stays. */
  stop() {
    this.#shut();
    if (!this.finished) this.#setState("idle");
  }

  #active() {
    return this.#conn !== null || this.#dialing || this.#timer !== 0 || this.state === "reconnecting";
  }

  #open(state) {
    this.#shut();
    this.#setState(state);
    this.#dial();
  }

  async #dial() {
    const generation = ++this.#generation;
    this.#dialing = true;
    let ticket;
    try {
      ticket = await issueTicket(this.videoId);
    } catch (err) {
      if (generation !== this.#generation) return; // replaced meanwhile
      this.#dialing = false;
      this.#lost(generation, err.status);
      return;
    }
    if (generation !== this.#generation) return;
    this.#dialing = false;
    const expires = Date.parse(ticket.expires_at);
    let opened = false;
    const connect = this.transport === "ws" ? connectWebSocket : connectSSE;
    const mine = (fn) => (...args) => {
      if (generation === this.#generation) fn(...args);
    };
    this.#conn = connect(this.videoId, ticket.ticket, this.lastId, {
      open: mine(() => {
        // A stream that opened was not refused.
        opened = true;
        this.#attempt = 0;
        this.#refusals = 0;
        this.#setState("open");
      }),
      event: mine((ev) => this.#receive(ev)),
      closed: mine(() => {
        this.#conn = null;
        // The server ends a stream as its ticket expires: a fresh one
        // resumes it at once. (By this browser's clock, which may be off;
        // then the stream is dialled again after a pause, as after a drop.)
        if (opened && Date.now() >= expires) this.#dial();
        else this.#lost(generation);
      }),
    });
  }

  #shut() {
    this.#generation++;
    this.#dialing = false;
    this.#conn?.close();
    this.#conn = null;
    clearTimeout(this.#timer);
    this.#timer = 0;
  }

  #receive(ev) {
    // A resumed stream never repeats an event; this keeps the history
    // right even if one did.
    if (ev.id <= this.lastId) return;
    this.events.push(ev);
    this.#emit({ events: [ev] });
    if (TERMINAL.has(ev.status)) {
      this.#shut();
      this.#setState("closed");
    }
  }

  // #lost handles a connection that ended without the terminal event, or a
  // ticket the API did not give (status is then its answer's, 0 for none):
  // dial again after a pause while the server is down or flaky, and give
  // up when it says no.
  async #lost(generation, status) {
    this.#setState("reconnecting");
    const verdict = status === undefined ? await this.#diagnose() : verdictOf(status);
    if (generation !== this.#generation) return; // replaced meanwhile
    if (verdict === "unauthorized" || verdict === "notfound") {
      this.#setState(verdict, FAILURES[verdict]);
      return;
    }
    if (verdict === "up" && ++this.#refusals >= MAX_REFUSALS) {
      this.#setState("error", FAILURES.up);
      return;
    }
    const delay = RETRY_MS[Math.min(this.#attempt++, RETRY_MS.length - 1)];
    this.#timer = setTimeout(() => {
      this.#timer = 0;
      if (generation === this.#generation) this.#dial();
    }, delay);
  }

  // #diagnose asks the plain API why the stream failed, since neither
  // EventSource nor WebSocket tells the HTTP status.
  async #diagnose() {
    try {
      await getVideo(this.videoId);
      return "up";
    } catch (err) {
      return verdictOf(err.status);
    }
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

/** What an API answer's status says about the server: see VideoFeed#lost. */
function verdictOf(status) {
  if (status === 401) return "unauthorized";
  if (status === 404) return "notfound";
  return status === 0 || status >= 500 ? "down" : "up";
}
