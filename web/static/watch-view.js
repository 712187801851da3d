// WatchPanel draws the watched video: the connection state, the current
// step on top, the progress bar, the time remaining, the step history, the
// outcome with its player, and the Cancel and Reconnect buttons. The
// tab's title follows the job, so that a tab in the background shows it.

import { byId, el } from "./dom.js";
import { VIDEO_COST } from "./api.js";
import { GAVE_UP, TERMINAL } from "./feed.js";
import { formatDuration } from "./format.js";

/** What the connection indicator says in each VideoFeed state. */
const CONNECTION_LABELS = {
  idle: "Not connected",
  connecting: "Connecting…",
  open: "Connected",
  reconnecting: "Reconnecting…",
  closed: "Stream closed",
  error: "Connection failed",
  unauthorized: "Signed out",
  notfound: "Not found",
};

const TRANSPORT_NAMES = { sse: "Server-Sent Events", ws: "WebSocket" };

/** The page's title when no video is watched. */
const TITLE = "stephub";

/**
 * What the history line of an event starts with: its step number, or a
 * mark for the events that are not a step of their own (the end, and a
 * job queued again), which would otherwise repeat or overshoot the
 * numbers ("[9]" after "Step 8 of 8").
 */
const MARKS = { completed: "✓", failed: "✕", cancelled: "✕", pending: "↻" };

/**
 * The words users see for an event queued again after its worker stopped:
 * the server's message is written for operators (leases, attempts).
 */
const REQUEUED = "The job was interrupted and is queued again; it goes on shortly.";

/** What an event says to the user. */
const messageOf = (ev) => (ev.status === "pending" ? REQUEUED : ev.message);

const OUTCOMES = {
  completed: { kind: "success", text: () => "🎉 Your video is ready." },
  failed: { kind: "error", text: (ev) => `The job failed${ev.error ? `: ${ev.error}` : ""}. Your ${VIDEO_COST} credits were given back.` },
  cancelled: { kind: "warning", text: () => `Cancelled. Your ${VIDEO_COST} credits were given back.` },
};

// The history sticks to its newest line unless the reader scrolled up.
const STICKY_PX = 8;

export class WatchPanel {
  #videoId = null;
  #lastEvent = null;
  #etaDeadline = 0;
  #etaTimer = 0;
  #onFinished;
  #shared;
  /** The panel's elements, by id. */
  #n;

  /**
   * onCancel(videoId) and onRetry(videoId) run on the buttons;
   * onFinished(event) runs once per video when its terminal event shows;
   * shared says whether the streams run in the shared worker.
   */
  constructor({ onCancel, onRetry, onFinished, shared }) {
    this.#onFinished = onFinished;
    this.#shared = shared;
    this.#n = Object.fromEntries(
      ["watch", "watch-title", "watch-empty", "watch-body", "watch-meta", "prompt-toggle", "conn", "conn-label",
        "current-step", "progress", "progress-bar", "percent", "eta", "eta-line", "history", "notice", "player",
        "cancel-button", "retry-button", "open-tab", "watch-alert", "announcer", "debug-info"].map((id) => [id, byId(id)]),
    );
    this.#n["cancel-button"].addEventListener("click", () => {
      // aria-disabled rather than disabled while a cancel is on its way,
      // so that the button keeps the keyboard focus.
      if (this.#n["cancel-button"].getAttribute("aria-disabled") !== "true") onCancel(this.#videoId);
    });
    this.#n["retry-button"].addEventListener("click", () => onRetry(this.#videoId));
    this.#n["prompt-toggle"].addEventListener("click", () => {
      const toggle = this.#n["prompt-toggle"];
      const open = toggle.getAttribute("aria-expanded") !== "true";
      toggle.setAttribute("aria-expanded", String(open));
      toggle.textContent = open ? "Show less of the prompt" : "Show the whole prompt";
      this.#n["watch-meta"].classList.toggle("clamped", !open);
    });
    window.addEventListener("resize", () => this.#fitPrompt());
  }

  /** Starts showing a video, before anything about it has arrived. */
  show(videoId) {
    this.#reset(videoId);
    const n = this.#n;
    n["watch-title"].textContent = `Video #${videoId}`;
    n["open-tab"].href = `/videos/${videoId}`;
    n["conn"].hidden = false;
    n["watch-empty"].hidden = true;
    n["watch-body"].hidden = false;
  }

  /** Goes back to the empty state. */
  hide() {
    this.#reset(null);
    this.#n["watch-title"].textContent = "Watching";
    this.#n["conn"].hidden = true;
    this.#n["watch-empty"].hidden = false;
    this.#n["watch-body"].hidden = true;
  }

  /**
   * Shows what the API says about the video: prompt, model, reference
   * image. A long prompt is cut to a few lines, with a button to show all
   * of it, so that it never pushes the job's state out of view.
   */
  setVideo(video) {
    if (video.id !== this.#videoId) return;
    const image = video.reference_image_url ? " · with a reference image" : "";
    const meta = this.#n["watch-meta"];
    meta.textContent = `${video.model}${image} · “${video.prompt}”`;
    meta.classList.add("clamped");
    this.#fitPrompt();
    if (this.#lastEvent) return;
    this.#n["cancel-button"].hidden = TERMINAL.has(video.status);
    if (video.status === "pending") this.#setCurrent("Queued", "Waiting for a worker to start the job…");
    else if (!TERMINAL.has(video.status)) this.#setCurrent("", "Waiting for the first step…");
  }

  /** Says that the video is not there, instead of its (absent) steps. */
  showNotFound(text) {
    const n = this.#n;
    this.#stopEta();
    this.#setCurrent("", "Not found");
    n["current-step"].dataset.status = "failed";
    for (const id of ["progress", "percent", "eta-line", "history", "cancel-button"]) n[id].hidden = true;
    this.showAlert(text);
    document.title = `Not found · ${TITLE}`;
  }

  /** Applies a VideoFeed update (see feed.js). */
  update({ events, state, detail, transport, replay }) {
    if (events?.length) this.#addEvents(events, replay);
    if (state !== undefined) this.#setConnection(state, detail, transport);
  }

  /** Shows that a cancel is on its way, or why it failed. */
  setCancelState({ busy, error = "" }) {
    const button = this.#n["cancel-button"];
    button.setAttribute("aria-disabled", String(busy));
    button.textContent = busy ? "Cancelling…" : "Cancel";
    this.#n["watch-alert"].textContent = error;
  }

  /** Shows an error about the watched video. */
  showAlert(text) {
    this.#n["watch-alert"].textContent = text;
  }

  #reset(videoId) {
    this.#videoId = videoId;
    this.#lastEvent = null;
    this.#stopEta();
    const n = this.#n;
    n["watch-meta"].textContent = "";
    n["watch-meta"].classList.add("clamped");
    n["prompt-toggle"].hidden = true;
    n["prompt-toggle"].setAttribute("aria-expanded", "false");
    n["prompt-toggle"].textContent = "Show the whole prompt";
    this.#setCurrent("", "Loading…");
    delete n["current-step"].dataset.status;
    for (const id of ["progress", "percent", "eta-line", "history"]) n[id].hidden = false;
    this.#setProgress(0);
    n["history"].replaceChildren();
    n["notice"].hidden = true;
    n["notice"].textContent = "";
    n["player"].hidden = true;
    n["player"].removeAttribute("src");
    n["player"].load();
    n["cancel-button"].hidden = true;
    this.setCancelState({ busy: false });
    n["retry-button"].hidden = true;
    n["announcer"].textContent = "";
    n["watch-alert"].textContent = "";
    this.#setConnection("idle", "", undefined);
    document.title = videoId === null ? TITLE : `Video #${videoId} · ${TITLE}`;
  }

  /** Offers the whole prompt only when the cut one does not show all of it. */
  #fitPrompt() {
    const meta = this.#n["watch-meta"];
    if (!meta.classList.contains("clamped")) return;
    this.#n["prompt-toggle"].hidden = meta.scrollHeight <= meta.clientHeight + 1;
  }

  #setCurrent(label, message) {
    const parts = label ? [el("span", { className: "step-of" }, label)] : [];
    this.#n["current-step"].replaceChildren(...parts, el("span", { className: "current-message" }, message));
  }

  #addEvents(events, replay) {
    const history = this.#n["history"];
    const atBottom = history.scrollHeight - history.scrollTop - history.clientHeight <= STICKY_PX;
    let added = null;
    for (const ev of events) {
      // A replay after a reconnect of the worker may overlap what is shown.
      if (this.#lastEvent && ev.id <= this.#lastEvent.id) continue;
      const message = messageOf(ev);
      history.append(el("li", { className: `status-${ev.status}`, title: message, dataset: { id: ev.id, step: ev.step } },
        el("span", { className: "step-number" }, `[${MARKS[ev.status] ?? ev.step}]`), " ", message));
      this.#lastEvent = added = ev;
    }
    if (!added) return;
    if (atBottom || replay) history.scrollTop = history.scrollHeight;
    this.#showLatest(added);
  }

  #showLatest(ev) {
    const n = this.#n;
    const done = TERMINAL.has(ev.status);
    const label = done ? (ev.status === "completed" ? "Done" : `Stopped at step ${ev.step} of ${ev.total_steps}`)
      : ev.status === "pending" ? "Queued again" : `Step ${ev.step} of ${ev.total_steps}`;
    const message = messageOf(ev);
    this.#setCurrent(label, message);
    n["current-step"].dataset.status = ev.status;
    this.#setProgress(ev.progress);
    // Hiding a focused button would drop the keyboard focus to the top of
    // the page: it moves to the outcome instead.
    const hadFocus = document.activeElement === n["cancel-button"];
    n["cancel-button"].hidden = done;
    if (done) {
      this.#stopEta();
      this.#finish(ev);
      if (hadFocus) n["notice"].focus();
    } else {
      this.#startEta(ev.eta_seconds);
    }
    n["announcer"].textContent = done ? `${message} ${n["notice"].textContent}` : `${label}: ${message}`;
    document.title = `${done ? label : `${Math.round(ev.progress)}% · ${label}`} · Video #${this.#videoId} · ${TITLE}`;
  }

  #finish(ev) {
    const n = this.#n;
    const outcome = OUTCOMES[ev.status];
    n["notice"].className = `notice ${outcome.kind}`;
    n["notice"].textContent = outcome.text(ev);
    n["notice"].hidden = false;
    if (ev.status === "completed" && ev.video_url) {
      n["player"].src = ev.video_url;
      n["player"].hidden = false;
    }
    this.#onFinished(ev);
  }

  #setProgress(percent) {
    const p = Math.max(0, Math.min(100, Math.round(percent)));
    this.#n["progress"].setAttribute("aria-valuenow", String(p));
    this.#n["progress-bar"].style.width = `${p}%`;
    this.#n["percent"].textContent = `${p}%`;
  }

  // The time remaining counts down between events from the last estimate.
  #startEta(seconds) {
    this.#stopEta();
    if (typeof seconds !== "number") return;
    this.#etaDeadline = performance.now() + seconds * 1000;
    const tick = () => {
      this.#n["eta"].textContent = formatDuration(Math.max(0, (this.#etaDeadline - performance.now()) / 1000));
    };
    tick();
    this.#etaTimer = setInterval(tick, 1000);
  }

  #stopEta() {
    clearInterval(this.#etaTimer);
    this.#etaTimer = 0;
    this.#n["eta"].textContent = "—";
  }

  #setConnection(state, detail, transport) {
    const n = this.#n;
    n["conn"].dataset.state = state;
    n["conn-label"].textContent = CONNECTION_LABELS[state] ?? state;
    n["conn"].title = transport ? `Streaming over ${TRANSPORT_NAMES[transport]}` : "";
    const retryHadFocus = document.activeElement === n["retry-button"];
    n["retry-button"].hidden = state !== "error";
    if (retryHadFocus && n["retry-button"].hidden) n["watch"].focus();
    if (state === "notfound") this.showNotFound(detail);
    else if (GAVE_UP.has(state)) n["watch-alert"].textContent = detail;
    else if (state === "open") n["watch-alert"].textContent = "";
    if (state === "reconnecting") n["announcer"].textContent = "Connection lost. Reconnecting…";
    // The estimate holds only while events flow: a countdown through an
    // outage would jump back when the next event came.
    if (state !== "open") this.#stopEta();
    if (transport) {
      const where = this.#shared
        ? "from this browser's shared worker, which holds one stream per video for all its tabs: DevTools shows it under chrome://inspect/#workers, not in this tab's Network panel. Add ?shared=0 to the address to stream from this tab instead"
        : "from this tab";
      n["debug-info"].textContent = `${CONNECTION_LABELS[state] ?? state} over ${TRANSPORT_NAMES[transport]}, ${where}.`;
    }
  }
}
