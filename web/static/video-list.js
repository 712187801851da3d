// The list of the user's videos, newest first, each a link to its watch
// page. The row of the watched video follows its live events; the rows of
// other running videos are brought up to date every few seconds while the
// page is in view.

import { listVideos } from "./api.js";
import { byId, el, isPlainClick } from "./dom.js";
import { formatDate } from "./format.js";

/** How often the rows of running videos are asked for again, in ms. */
const POLL_MS = 5000;
const RUNNING = new Set(["pending", "processing"]);

export class VideoList {
  #cursor = null;
  #current = null;
  #loads = 0; // only the newest load may fill the list
  #onOpen;

  /** onOpen(videoId) runs on a plain click on a row. */
  constructor({ onOpen }) {
    this.#onOpen = onOpen;
    this.list = byId("video-list");
    this.empty = byId("videos-empty");
    this.more = byId("more-videos");
    this.error = byId("videos-error");
    this.loading = byId("videos-loading");
    byId("refresh-videos").addEventListener("click", () => this.refresh());
    this.more.addEventListener("click", () => this.#load(this.#cursor));
    setInterval(() => this.#poll(), POLL_MS);
  }

  /** Loads the first page again. */
  refresh() {
    return this.#load(null);
  }

  /** Marks the row of the watched video. */
  setCurrent(videoId) {
    this.#current = videoId;
    for (const row of this.list.children) this.#mark(row);
  }

  /** Moves the row of a video to an event's status and progress. */
  applyEvent(videoId, ev) {
    const row = this.list.querySelector(`li[data-id="${videoId}"]`);
    if (row) this.#setStatus(row, ev.status, ev.progress);
  }

  /**
   * Updates the rows of running videos in place (a new list would take the
   * keyboard focus from a row), from the first page of the list.
   */
  async #poll() {
    if (document.hidden || !this.list.isConnected || this.list.closest("[hidden]")) return;
    const running = [...this.list.children].filter((row) => RUNNING.has(row.dataset.status) && Number(row.dataset.id) !== this.#current);
    if (!running.length) return;
    let page;
    try {
      page = await listVideos(null);
    } catch {
      return; // the next poll, or Refresh, tries again
    }
    for (const video of page.videos) {
      const row = this.list.querySelector(`li[data-id="${video.id}"]`);
      if (row && Number(video.id) !== this.#current) this.#setStatus(row, video.status, video.progress);
    }
  }

  async #load(cursor) {
    const load = ++this.#loads;
    this.error.textContent = "";
    this.loading.hidden = this.list.children.length > 0;
    let page;
    try {
      page = await listVideos(cursor);
    } catch (err) {
      if (load === this.#loads && err.status !== 401) this.error.textContent = `Your videos could not be loaded: ${err.message}`;
      if (load === this.#loads) this.loading.hidden = true;
      return;
    }
    if (load !== this.#loads) return;
    this.loading.hidden = true;
    const rows = page.videos.map((v) => this.#row(v));
    if (cursor) this.list.append(...rows);
    else this.list.replaceChildren(...rows);
    this.#cursor = page.next_cursor;
    this.more.hidden = !page.next_cursor;
    this.empty.hidden = this.list.children.length > 0;
  }

  #row(video) {
    const link = el("a", { href: `/videos/${video.id}`, className: "video-link" },
      el("span", { className: "video-id" }, `#${video.id}`),
      el("span", { className: "video-prompt" }, video.prompt),
      el("span", { className: "badge" }),
      el("span", { className: "video-progress" }),
      el("time", { className: "video-date", dateTime: video.created_at }, formatDate(video.created_at)),
    );
    link.addEventListener("click", (e) => {
      if (!isPlainClick(e)) return;
      e.preventDefault();
      this.#onOpen(video.id);
    });
    const row = el("li", { dataset: { id: video.id } }, link);
    this.#setStatus(row, video.status, video.progress);
    this.#mark(row);
    return row;
  }

  #setStatus(row, status, progress) {
    row.dataset.status = status;
    const badge = row.querySelector(".badge");
    badge.textContent = status;
    badge.className = `badge ${status}`;
    row.querySelector(".video-progress").textContent = `${progress}%`;
  }

  #mark(row) {
    const link = row.querySelector("a");
    if (Number(row.dataset.id) === this.#current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}
