// One connection to a video's event stream, over SSE or WebSocket. Both
// deliver the same event JSON with the same ids; a connection reports what
// happens through four callbacks and never reconnects on its own after it
// has reported closed (EventSource may retry before that: see connectSSE).
//
//   open()              the stream is flowing
//   event(ev)           one event, in order
//   retrying()          it dropped and is retrying by itself
//   closed()            it ended before a terminal event and will not retry

/** Opens the SSE stream of a video, resuming after afterId. */
export function connectSSE(videoId, token, afterId, on) {
  const q = new URLSearchParams({ token });
  // A fresh EventSource cannot set Last-Event-ID; the query stands in. When
  // EventSource itself reconnects it sends the header, which wins.
  if (afterId > 0) q.set("last_event_id", String(afterId));
  const source = new EventSource(`/api/v1/videos/${videoId}/stream?${q}`);
  source.onopen = () => on.open();
  source.onmessage = (m) => on.event(JSON.parse(m.data));
  source.onerror = () => {
    // CONNECTING: the stream dropped (say the server restarted) and
    // EventSource retries after the server's retry: hint, resuming with
    // Last-Event-ID. CLOSED: it gave up, on an HTTP error or on the 204 the
    // server sends when nothing is left.
    if (source.readyState === EventSource.CONNECTING) {
      on.retrying();
      return;
    }
    on.closed();
  };
  return { close: () => source.close() };
}

/** Opens the WebSocket stream of a video, resuming after afterId. */
export function connectWebSocket(videoId, token, afterId, on) {
  const url = new URL(`/api/v1/videos/${videoId}/ws`, self.location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  url.searchParams.set("token", token);
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
