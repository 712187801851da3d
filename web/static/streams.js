// The tab's side of the event streams: it watches a video through the
// shared worker (stream-worker.js), so that all tabs of the browser share
// one connection per video, or through a VideoFeed of its own where the
// browser has no SharedWorker.

import { VideoFeed } from "./feed.js";

/**
 * Returns {watch(videoId, {transport}, listener)}. watch returns a handle
 * with retry(), setTransport(transport) and close(); the listener gets the
 * VideoFeed updates described in feed.js. Without shared (or without
 * SharedWorker), the tab streams on its own.
 */
export function openStreams({ shared, onWorkerError }) {
  if (!shared || typeof SharedWorker !== "function") return localStreams();
  return sharedStreams(onWorkerError);
}

function localStreams() {
  return {
    watch(videoId, options, listener) {
      const feed = new VideoFeed(videoId);
      const unsubscribe = feed.subscribe(listener);
      feed.start(options);
      return {
        retry: () => feed.retry(),
        setTransport: (transport) => feed.start({ transport }),
        close() {
          unsubscribe();
          feed.stop();
        },
      };
    },
  };
}

function sharedStreams(onWorkerError) {
  const worker = new SharedWorker(new URL("./stream-worker.js", import.meta.url), {
    type: "module",
    name: "stephub-streams",
  });
  const port = worker.port;
  /** @type {Map<number, {options: object, listener: Function}>} */
  const watching = new Map();

  port.onmessage = ({ data }) => {
    if (data.type === "worker-error") {
      onWorkerError(data.message);
      return;
    }
    const { type, videoId, ...update } = data;
    watching.get(videoId)?.listener(update);
  };
  worker.onerror = () => onWorkerError("the stream worker failed to start");

  // Tell the worker when the tab goes, so that it can shut a stream nobody
  // watches; a tab restored from the back/forward cache attaches again.
  window.addEventListener("pagehide", () => port.postMessage({ type: "bye" }));
  window.addEventListener("pageshow", (e) => {
    if (!e.persisted) return;
    for (const [videoId, w] of watching) port.postMessage({ type: "watch", videoId, ...w.options });
  });

  return {
    watch(videoId, options, listener) {
      const w = { options: { ...options }, listener };
      watching.set(videoId, w);
      port.postMessage({ type: "watch", videoId, ...w.options });
      return {
        retry() {
          port.postMessage({ type: "retry", videoId });
        },
        setTransport(transport) {
          w.options.transport = transport;
          port.postMessage({ type: "watch", videoId, ...w.options });
        },
        close() {
          if (watching.get(videoId) !== w) return;
          watching.delete(videoId);
          port.postMessage({ type: "unwatch", videoId });
        },
      };
    },
  };
}
