// WatchPanel draws the watched video: the connection state, the current
// step on top, the progress bar, the time remaining, the step history, the
// outcome with its player, and the Cancel and Reconnect buttons.

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
  /** The panel's elements, by id. */
  #n;

  /**
   * onCancel(videoId) and onRetry(videoId) run on the buttons;
   * onFinished(event) runs once per video when its terminal event shows.
   */
  constructor({ onCancel, onRetry, onFinished }) {
    this.#onFinished = onFinished;
    this.#n = Object.fromEntries(
      ["watch-title", "watch-empty", "watch-body", "watch-meta", "conn", "conn-label", "current-step", "progress",
        "progress-bar", "percent", "eta", "history", "notice", "player", "cancel-button", "retry-button", "open-tab",
        "watch-alert", "announcer"].map((id) => [id, byId(id)]),
    );
    this.#n["cancel-button"].addEventListener("click", () => onCancel(this.#videoId));
    this.#n["retry-button"].addEventListener("click", () => onRetry(this.#videoId));
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

  /** Shows what the API says about the video: prompt, model, reference image. */
  setVideo(video) {
    if (video.id !== this.#videoId) return;
    const image = video.reference_image_url ? " · with a reference image" : "";
    this.#n["watch-meta"].textContent = `${video.model}${image} · “${video.prompt}”`;
    if (!this.#lastEvent) this.#n["cancel-button"].hidden = TERMINAL.has(video.status);
  }

  /** Applies a VideoFeed update (see feed.js). */
  update({ events, state, detail, transport, replay }) {
    if (events?.length) this.#addEvents(events, replay);
    if (state !== undefined) this.#setConnection(state, detail, transport);
  }

  /** Shows that a cancel is on its way, or why it failed. */
  setCancelState({ busy, error = "" }) {
    const button = this.#n["cancel-button"];
    button.disabled = busy;
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
    n["current-step"].replaceChildren(el("span", { className: "current-message" }, "Waiting for the first step…"));
    delete n["current-step"].dataset.status;
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
    this.#setConnection("idle", "", undefined);
  }

  #addEvents(events, replay) {
    const history = this.#n["history"];
    const atBottom = history.scrollHeight - history.scrollTop - history.clientHeight <= STICKY_PX;
    let added = null;
    for (const ev of events) {
      // A replay after a reconnect of the worker may overlap what is shown.
      if (this.#lastEvent && ev.id <= this.#lastEvent.id) continue;
      history.append(el("li", { className: `status-${ev.status}`, title: ev.message, dataset: { id: ev.id, step: ev.step } },
        el("span", { className: "step-number" }, `[${ev.step}]`), " ", ev.message));
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
      : `Step ${ev.step} of ${ev.total_steps}`;
    n["current-step"].replaceChildren(
      el("span", { className: "step-of" }, label),
      el("span", { className: "current-message" }, ev.message),
    );
    n["current-step"].dataset.status = ev.status;
    this.#setProgress(ev.progress);
    n["cancel-button"].hidden = done;
    if (done) {
      this.#stopEta();
      this.#finish(ev);
    } else {
      this.#startEta(ev.eta_seconds);
    }
    n["announcer"].textContent = done ? `${ev.message} ${n["notice"].textContent}` : `${label}: ${ev.message}`;
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
    n["retry-button"].hidden = state !== "error";
    if (GAVE_UP.has(state)) n["watch-alert"].textContent = detail;
    else if (state === "open") n["watch-alert"].textContent = "";
    if (state === "reconnecting") n["announcer"].textContent = "Connection lost. Reconnecting…";
  }
}
