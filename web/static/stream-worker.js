// The shared worker behind every dashboard tab of a browser. Browsers open
// at most six HTTP/1.1 connections per origin across all tabs, so tabs do
// not each open a stream: this worker holds ONE VideoFeed, and so one
// connection, per video, keeps the events it has received, replays them to
// each tab that attaches and forwards live ones to all of them.
//
// Messages from a tab:
//   {type: "watch", videoId, transport}          attach (or switch transport)
//   {type: "retry", videoId}                     dial again after giving up
//   {type: "unwatch", videoId}                   detach
//   {type: "bye"}                                the tab is going away
// Messages to a tab:
//   {type: "update", videoId, ...}               a VideoFeed update
//   {type: "worker-error", message}              something broke in here

import { VideoFeed } from "./feed.js";

/** @type {Map<number, {feed: VideoFeed, ports: Map<MessagePort, () => void>}>} */
const videos = new Map();
/** Every attached tab, to tell them about errors in here. */
const ports = new Set();

self.addEventListener("connect", (e) => {
  const port = e.ports[0];
  ports.add(port);
  port.onmessage = (m) => handle(port, m.data);
});

function handle(port, msg) {
  switch (msg.type) {
    case "watch":
      watch(port, msg);
      break;
    case "retry":
      videos.get(msg.videoId)?.feed.retry();
      break;
    case "unwatch":
      unwatch(port, msg.videoId);
      break;
    case "bye":
      for (const videoId of videos.keys()) unwatch(port, videoId);
      ports.delete(port);
      break;
  }
}

function watch(port, { videoId, transport }) {
  let video = videos.get(videoId);
  if (!video) {
    video = { feed: new VideoFeed(videoId), ports: new Map() };
    videos.set(videoId, video);
  }
  if (!video.ports.has(port)) {
    const unsubscribe = video.feed.subscribe((update) => port.postMessage({ type: "update", videoId, ...update }));
    video.ports.set(port, unsubscribe);
  }
  video.feed.start({ transport });
}

function unwatch(port, videoId) {
  const video = videos.get(videoId);
  const unsubscribe = video?.ports.get(port);
  if (!unsubscribe) return;
  unsubscribe();
  video.ports.delete(port);
  // Nobody watches: free the connection. The history stays, so a tab that
  // comes back resumes after the last event instead of from the start.
  if (video.ports.size === 0) video.feed.stop();
}

// A shared worker's console is out of sight (and out of the tests' reach):
// tell the tabs, which log it.
function report(message) {
  for (const port of ports) port.postMessage({ type: "worker-error", message });
}
self.addEventListener("error", (e) => report(e.message));
self.addEventListener("unhandledrejection", (e) => report(String(e.reason)));
