// One connection to a video's event stream, over SSE or WebSocket, opened
// with a watch ticket. Both deliver the same event JSON with the same ids;
// a connection reports what happens through three callbacks and never
// reconnects on its own: the feed dials again, with a fresh ticket.
//
//   open()              the stream is flowing
//   event(ev)           one event, in order
//   closed()            it ended before a terminal event: the server ended
//                       it (a restart, the ticket's expiry) or refused it

/** Opens the SSE stream of a video with ticket, resuming after afterId. */
export function connectSSE(videoId, ticket, afterId, on) {
  const q = new URLSearchParams({ ticket });
  // A fresh EventSource cannot set Last-Event-ID; the query stands in.
  if (afterId > 0) q.set("last_event_id", String(afterId));
  const source = new EventSource(`/api/v1/videos/${videoId}/stream?${q}`);
  source.onopen = () => on.open();
  source.onmessage = (m) => on.event(JSON.parse(m.data));
  source.onerror = () => {
    // EventSource would retry by itself with the same address, and so the
    // same ticket, which may have expired: the feed dials instead.
    source.close();
    on.closed();
  };
  return { close: () => source.close() };
}

/** Opens the WebSocket stream of a video with ticket, resuming after afterId. */
export function connectWebSocket(videoId, ticket, afterId, on) {
  const url = new URL(`/api/v1/videos/${videoId}/ws`, self.location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  url.searchParams.set("ticket", ticket);
  if (afterId > 0) url.searchParams.set("last_event_id", String(afterId));
  const socket = new WebSocket(url);
  socket.onopen = () => on.open();
  socket.onmessage = (m) => on.event(JSON.parse(m.data));
  // WebSocket has no retry of its own: every close is final here, and the
  // feed decides whether to dial again.
  socket.onclose = () => on.closed();
  return {
    close: () => {
      socket.onclose = null;
      socket.close(1000);
    },
  };
}
