// The list of the user's videos, newest first, each a link to its watch
// page. The row of the watched video follows its live events.

import { listVideos } from "./api.js";
import { byId, el, isPlainClick } from "./dom.js";
import { formatDate } from "./format.js";

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
    byId("refresh-videos").addEventListener("click", () => this.refresh());
    this.more.addEventListener("click", () => this.#load(this.#cursor));
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

  async #load(cursor) {
    const load = ++this.#loads;
    this.error.textContent = "";
    let page;
    try {
      page = await listVideos(cursor);
    } catch (err) {
      if (load === this.#loads && err.status !== 401) this.error.textContent = `Your videos could not be loaded: ${err.message}`;
      return;
    }
    if (load !== this.#loads) return;
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
