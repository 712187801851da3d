// watchVideo against scripted servers: a fake fetch, WebSocket and
// EventSource, so that each state transition, retry and refusal can be
// made to happen exactly.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { watchVideo } from "../dist/index.js";

const BASE = "http://stephub.test";
const FAST = { initialMs: 10, maxMs: 40 };
const TOKEN = "user-token";

/** The JSON of event id, processing unless extra says otherwise. */
const event = (id, extra = {}) =>
  JSON.stringify({ id, step: id, total_steps: 8, message: `step ${id}`, progress: 11 * id, status: "processing", at: "2026-12-03T10:00:00Z", ...extra });
const frame = (id, extra) => `id: ${id}\ndata: ${event(id, extra)}\n\n`;

/**
 * A scripted server behind a fake fetch. answer(req) returns a Response for
 * each request {url, method, headers, signal}; every request is kept.
 */
function fakeFetch(answer) {
  const requests = [];
  const f = async (input, init = {}) => {
    const req = { url: new URL(String(input)), method: init.method ?? "GET", headers: { ...init.headers }, signal: init.signal };
    requests.push(req);
    return answer(req, requests);
  };
  return { fetch: f, requests };
}

const json = (status, body) => new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
const apiError = (status, code, message = code) => json(status, { error: { code, message } });
const ticket = (n = 1, ttlMs = 60_000) => json(200, { ticket: `ticket-${n}`, expires_at: new Date(Date.now() + ttlMs).toISOString() });

/**
 * An SSE answer of chunks; it ends after them unless open is set, and
 * errors as a fetch body does when the request is aborted.
 */
function sse(req, chunks, { open = false } = {}) {
  const enc = new TextEncoder();
  const body = new ReadableStream({
    start(c) {
      for (const ch of chunks) c.enqueue(enc.encode(ch));
      if (!open) c.close();
      req.signal?.addEventListener("abort", () => {
        try {
          c.error(new DOMException("aborted", "AbortError"));
        } catch {
          // already closed
        }
      });
    },
  });
  return new Response(body, { status: 200, headers: { "Content-Type": "text/event-stream" } });
}

const isTicket = (req) => req.method === "POST" && req.url.pathname.endsWith("/ticket");
const isStream = (req) => req.url.pathname.endsWith("/stream");

/** Runs a watch until it closes or gives up (or ms pass); returns what it saw. */
function run(options, ms = 5000) {
  const events = [];
  const statuses = [];
  return new Promise((resolve, reject) => {
    let handle;
    const timer = setTimeout(() => {
      handle.close();
      reject(new Error(`no end in ${ms} ms: ${statuses.map((s) => s.state).join(" ")}`));
    }, ms);
    handle = watchVideo({
      baseUrl: BASE,
      videoId: 42,
      backoff: FAST,
      ...options,
      onEvent: (e) => {
        events.push(e);
        options.onEvent?.(e, handle);
      },
      onStatus: (s) => {
        statuses.push(s);
        options.onStatus?.(s, handle);
        if (s.state === "closed" || s.state === "error") {
          clearTimeout(timer);
          // Let anything that would wrongly follow the end happen first.
          setTimeout(() => resolve({ events, statuses, states: statuses.map((x) => x.state), last: s, handle }), 30);
        }
      },
    });
  });
}

const ids = (events) => events.map((e) => e.id);

describe("resuming and dedupe", () => {
  test("a dropped stream resumes after the last event; repeats are not delivered", async () => {
    let streams = 0;
    const server = fakeFetch((req) => {
      if (isTicket(req)) return ticket();
      streams++;
      if (streams === 1) return sse(req, ["retry: 3000\n\n", frame(1), frame(2), frame(3)]);
      // The second stream repeats 2 and 3, which a correct server never does.
      return sse(req, [frame(2), frame(3), frame(4), frame(5, { status: "completed", video_url: "/v.mp4" })]);
    });
    const w = await run({ token: TOKEN, transport: "sse", fetch: server.fetch });
    assert.deepEqual(ids(w.events), [1, 2, 3, 4, 5]);
    assert.deepEqual(w.states, ["connecting", "open", "reconnecting", "open", "closed"]);
    const opened = server.requests.filter(isStream);
    assert.equal(opened[0].url.searchParams.get("last_event_id"), null);
    assert.equal(opened[1].url.searchParams.get("last_event_id"), "3");
    assert.equal(opened[1].url.searchParams.get("ticket"), "ticket-1");
    assert.equal(w.handle.lastEventId, 5);
    // The drop came after events: the pause is the shortest, jittered.
    const pause = w.statuses.find((s) => s.state === "reconnecting").retryInMs;
    assert.ok(pause >= 5 && pause <= 10, `${pause} ms`);
  });

  test("the terminal event ends the watch, and closes the stream at once", async () => {
    let signal;
    const server = fakeFetch((req) => {
      if (isTicket(req)) return ticket();
      signal = req.signal;
      return sse(req, [frame(1), frame(2, { status: "cancelled" }), frame(3)], { open: true });
    });
    const w = await run({ token: TOKEN, transport: "sse", fetch: server.fetch });
    assert.deepEqual(ids(w.events), [1, 2]);
    assert.deepEqual(w.states, ["connecting", "open", "closed"]);
    assert.ok(signal.aborted, "the stream's request was not aborted");
  });

  test("lastEventId: the first stream resumes too", async () => {
    const server = fakeFetch((req) => (isTicket(req) ? ticket() : sse(req, [frame(8), frame(9, { status: "completed" })])));
    const w = await run({ token: TOKEN, transport: "sse", fetch: server.fetch, lastEventId: 7 });
    assert.deepEqual(ids(w.events), [8, 9]);
    assert.equal(server.requests.find(isStream).url.searchParams.get("last_event_id"), "7");
  });

  test("204: nothing left to send", async () => {
    const server = fakeFetch((req) => (isTicket(req) ? ticket() : new Response(null, { status: 204 })));
    const w = await run({ token: TOKEN, transport: "sse", fetch: server.fetch, lastEventId: 9 });
    assert.deepEqual(w.events, []);
    assert.deepEqual(w.states, ["connecting", "closed"]);
  });

  test("an SSE stream that ends as its ticket expires: a fresh ticket and getToken at once", async () => {
    let tickets = 0;
    let asked = 0;
    const server = fakeFetch((req) => {
      if (isTicket(req)) return ticket(++tickets, tickets === 1 ? 0 : 60_000); // the first one expired already
      return tickets === 1 ? sse(req, [frame(1)]) : sse(req, [frame(2, { status: "completed" })]);
    });
    const w = await run({ getToken: () => (asked++, TOKEN), transport: "sse", fetch: server.fetch });
    assert.deepEqual(ids(w.events), [1, 2]);
    assert.equal(asked, 2);
    // A handover, not a drop: no "reconnecting" in between.
    assert.deepEqual(w.states, ["connecting", "open", "closed"]);
    assert.equal(server.requests.filter(isStream)[1].url.searchParams.get("ticket"), "ticket-2");
  });

  test("a caller's onEvent that closes the watch gets nothing more", async () => {
    const server = fakeFetch((req) => (isTicket(req) ? ticket() : sse(req, [frame(1), frame(2), frame(3)], { open: true })));
    const events = [];
    const statuses = [];
    const h = watchVideo({
      baseUrl: BASE, videoId: 42, token: TOKEN, transport: "sse", fetch: server.fetch,
      onEvent: (e) => {
        events.push(e);
        if (e.id === 2) h.close();
      },
      onStatus: (s) => statuses.push(s.state),
    });
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(ids(events), [1, 2]);
    assert.deepEqual(statuses, ["connecting", "open"]);
    assert.ok(server.requests.find(isStream).signal.aborted);
  });
});

describe("refusals and errors", () => {
  for (const [status, code] of [[400, "bad_last_event_id"], [402, "insufficient_credits"], [403, "subscription_inactive"], [404, "not_found"]]) {
    test(`${status} ${code}: given up at once`, async () => {
      const server = fakeFetch((req) => (isTicket(req) ? ticket() : apiError(status, code, `the ${code} message`)));
      const w = await run({ token: TOKEN, transport: "sse", fetch: server.fetch });
      assert.deepEqual(w.states, ["connecting", "error"]);
      assert.equal(w.last.error.status, status);
      assert.equal(w.last.error.code, code);
      assert.equal(w.last.error.message, `the ${code} message`);
      assert.equal(server.requests.length, 2);
    });
  }

  test("a proxy's answer without the API's body still says what it means", async () => {
    const server = fakeFetch((req) => (isTicket(req) ? ticket() : new Response("<html>busy</html>", { status: 429 })));
    const w = await run({ token: TOKEN, transport: "sse", fetch: server.fetch, maxRefusals: 1 });
    assert.equal(w.last.error.code, "too_many_streams");
    assert.match(w.last.error.message, /Too many open streams/);
  });

  test("429: retried with growing pauses, then given up", async () => {
    const server = fakeFetch((req) => (isTicket(req) ? ticket() : apiError(429, "too_many_streams")));
    const w = await run({ token: TOKEN, transport: "sse", fetch: server.fetch, maxRefusals: 3 });
    assert.deepEqual(w.states, ["connecting", "reconnecting", "reconnecting", "error"]);
    const pauses = w.statuses.filter((s) => s.state === "reconnecting").map((s) => s.retryInMs);
    assert.ok(pauses[0] >= 5 && pauses[0] <= 10 && pauses[1] >= 10 && pauses[1] <= 20, `${pauses}`);
    assert.ok(w.statuses.slice(1).every((s) => s.error.code === "too_many_streams"));
    assert.equal(server.requests.filter(isStream).length, 3);
  });

  test("401 from the ticket: getToken asked again, once", async () => {
    let asked = 0;
    const server = fakeFetch((req) => {
      if (isTicket(req)) return req.headers.Authorization === "Bearer fresh" ? ticket() : apiError(401, "unauthorized");
      return sse(req, [frame(1, { status: "completed" })]);
    });
    const w = await run({ getToken: async () => (asked++ === 0 ? "stale" : "fresh"), transport: "sse", fetch: server.fetch });
    assert.deepEqual(ids(w.events), [1]);
    assert.equal(asked, 2);
    assert.deepEqual(w.states, ["connecting", "reconnecting", "open", "closed"]);
    // A token that stays bad: given up after the second try.
    asked = 0;
    const bad = await run({ getToken: () => (asked++, "stale"), transport: "sse", fetch: server.fetch });
    assert.equal(asked, 2);
    assert.equal(bad.last.state, "error");
    assert.equal(bad.last.error.code, "unauthorized");
    // A fixed token cannot get better: given up at once.
    const fixed = await run({ token: "stale", transport: "sse", fetch: server.fetch });
    assert.deepEqual(fixed.states, ["connecting", "error"]);
  });

  test("401 from a stream opened with a ticket (it expired on the way): a fresh ticket", async () => {
    let tickets = 0;
    const server = fakeFetch((req) => {
      if (isTicket(req)) return ticket(++tickets);
      return req.url.searchParams.get("ticket") === "ticket-1" ? apiError(401, "unauthorized") : sse(req, [frame(1, { status: "completed" })]);
    });
    const w = await run({ token: TOKEN, transport: "sse", fetch: server.fetch });
    assert.deepEqual(ids(w.events), [1]);
    assert.equal(tickets, 2);
  });

  test("nothing answers: retried with jittered, growing pauses, until it does", async () => {
    let calls = 0;
    const server = fakeFetch((req) => {
      if (++calls <= 4) throw new TypeError("fetch failed");
      return isTicket(req) ? ticket() : sse(req, [frame(1, { status: "completed" })]);
    });
    const w = await run({ token: TOKEN, transport: "sse", fetch: server.fetch });
    assert.deepEqual(ids(w.events), [1]);
    const waits = w.statuses.filter((s) => s.state === "reconnecting");
    assert.equal(waits.length, 4);
    assert.ok(waits.every((s) => s.error.code === "network" && s.error.status === 0));
    const ceilings = [10, 20, 40, 40];
    waits.forEach((s, i) => assert.ok(s.retryInMs >= ceilings[i] / 2 && s.retryInMs <= ceilings[i], `pause ${i}: ${s.retryInMs}`));
  });

  test("retry() after giving up starts again", async () => {
    let refuse = true;
    const server = fakeFetch((req) => {
      if (isTicket(req)) return ticket();
      return refuse ? apiError(429, "too_many_streams") : sse(req, [frame(1, { status: "completed" })]);
    });
    const states = [];
    await new Promise((resolve) => {
      const h = watchVideo({
        baseUrl: BASE, videoId: 42, token: TOKEN, transport: "sse", fetch: server.fetch, backoff: FAST, maxRefusals: 1,
        onEvent: () => {},
        onStatus: (s) => {
          states.push(s.state);
          if (s.state === "error") {
            refuse = false;
            setTimeout(() => h.retry());
          }
          if (s.state === "closed") resolve();
        },
      });
    });
    assert.deepEqual(states, ["connecting", "error", "connecting", "open", "closed"]);
  });
});

describe("retry and a stale token", () => {
  test("retry() asks getToken again: the token that failed is not sent first", async () => {
    let current = "stale";
    let asked = 0;
    const server = fakeFetch((req) => {
      if (isTicket(req)) return req.headers.Authorization === "Bearer fresh" ? ticket() : apiError(401, "unauthorized");
      return sse(req, [frame(1, { status: "completed" })]);
    });
    const states = [];
    await new Promise((resolve) => {
      const h = watchVideo({
        baseUrl: BASE, videoId: 42, transport: "sse", fetch: server.fetch, backoff: FAST,
        getToken: () => (asked++, current),
        onEvent: () => {},
        onStatus: (s) => {
          states.push(s.state);
          if (s.state === "error") {
            current = "fresh"; // signed in again
            setTimeout(() => h.retry());
          }
          if (s.state === "closed") resolve();
        },
      });
    });
    const tickets = server.requests.filter(isTicket).map((r) => r.headers.Authorization);
    assert.deepEqual(tickets, ["Bearer stale", "Bearer stale", "Bearer fresh"]);
    assert.equal(asked, 3);
    assert.deepEqual(states, ["connecting", "reconnecting", "error", "connecting", "open", "closed"]);
  });
});

describe("an onEvent that throws", () => {
  test("is reported to onEventError, and the watch carries on", async () => {
    const server = fakeFetch((req) => (isTicket(req) ? ticket() : sse(req, [frame(1), frame(2), frame(3, { status: "completed" })])));
    const reported = [];
    const w = await run({
      token: TOKEN, transport: "sse", fetch: server.fetch,
      onEvent: (e) => {
        if (e.id === 1) throw new Error("the page's bug");
      },
      onEventError: (err, ev) => reported.push([err.message, ev.id]),
    });
    assert.deepEqual(ids(w.events), [1, 2, 3]);
    assert.deepEqual(reported, [["the page's bug", 1]]);
    assert.equal(w.last.state, "closed");
  });

  test("without onEventError: console.error, not an uncaught exception", async (t) => {
    const logged = [];
    t.mock.method(console, "error", (...args) => logged.push(args));
    const uncaught = [];
    const onUncaught = (err) => uncaught.push(err);
    process.prependListener("uncaughtException", onUncaught);
    t.after(() => process.removeListener("uncaughtException", onUncaught));
    const server = fakeFetch((req) => (isTicket(req) ? ticket() : sse(req, [frame(1), frame(2, { status: "completed" })])));
    const w = await run({
      token: TOKEN, transport: "sse", fetch: server.fetch,
      onEvent: (e) => {
        if (e.id === 1) throw new Error("the page's bug");
      },
    });
    assert.deepEqual(ids(w.events), [1, 2]);
    assert.deepEqual(uncaught, []);
    assert.equal(logged.length, 1);
    assert.ok(logged[0].some((a) => a instanceof Error && a.message === "the page's bug"), String(logged[0]));
  });
});

describe("credentials", () => {
  test("the token goes in the ticket request's header, never in an address", async () => {
    const server = fakeFetch((req) => (isTicket(req) ? ticket() : sse(req, [frame(1, { status: "completed" })])));
    await run({ token: TOKEN, transport: "sse", fetch: server.fetch });
    const [t, s] = server.requests;
    assert.equal(t.headers.Authorization, `Bearer ${TOKEN}`);
    assert.equal(t.headers["X-Requested-With"], undefined);
    assert.equal(s.headers.Authorization, undefined);
    for (const r of server.requests) assert.ok(!r.url.href.includes(TOKEN), r.url.href);
  });

  test("session: the cookie signs the ticket request in, with X-Requested-With", async () => {
    const server = fakeFetch((req) => (isTicket(req) ? ticket() : sse(req, [frame(1, { status: "completed" })])));
    await run({ session: true, transport: "sse", fetch: server.fetch });
    const [t] = server.requests;
    assert.equal(t.headers.Authorization, undefined);
    assert.equal(t.headers["X-Requested-With"], "stephub");
  });

  test("no ticket route: the token goes in the stream's Authorization header", async () => {
    const server = fakeFetch((req) => {
      if (isTicket(req)) return apiError(404, "not_found");
      if (req.url.pathname === "/api/v1/videos/42") return json(200, { id: 42 });
      return sse(req, [frame(1, { status: "completed" })]);
    });
    const w = await run({ token: TOKEN, transport: "sse", fetch: server.fetch });
    assert.deepEqual(ids(w.events), [1]);
    const s = server.requests.find(isStream);
    assert.equal(s.headers.Authorization, `Bearer ${TOKEN}`);
    assert.equal(s.url.search, "");
  });

  test("no credential at all: a clear error", async () => {
    const w = await run({ transport: "sse", fetch: fakeFetch(() => assert.fail("no request expected")).fetch });
    assert.equal(w.last.error.code, "no_credential");
  });

  test("EventSource, the last resort, where fetch cannot be used", async () => {
    const opened = [];
    class FakeEventSource {
      constructor(url) {
        this.url = new URL(url);
        opened.push(this);
        setTimeout(() => {
          this.onopen?.();
          this.onmessage?.({ data: event(1) });
          this.onmessage?.({ data: event(2, { status: "completed" }) });
        });
      }
      close() {
        this.closed = true;
      }
    }
    const w = await run({ token: TOKEN, transport: "sse", fetch: null, EventSource: FakeEventSource });
    assert.deepEqual(ids(w.events), [1, 2]);
    assert.equal(opened.length, 1);
    assert.equal(opened[0].url.searchParams.get("token"), TOKEN);
    assert.ok(opened[0].closed);
  });
});

/** A fake WebSocket whose behaviour each test scripts with FakeWebSocket.script(ws). */
class FakeWebSocket {
  static opened = [];
  static script = () => {};
  constructor(url) {
    this.url = new URL(url);
    FakeWebSocket.opened.push(this);
    setTimeout(() => FakeWebSocket.script(this, FakeWebSocket.opened.length));
  }
  open() {
    this.onopen?.({});
  }
  send(data) {
    this.onmessage?.({ data });
  }
  end(code) {
    this.onclose?.({ code });
  }
  close(code) {
    this.closedWith = code;
  }
}

describe("WebSocket", () => {
  test("4001: getToken again, a fresh ticket at once, resumed after the last event", async () => {
    FakeWebSocket.opened = [];
    FakeWebSocket.script = (ws, n) => {
      ws.open();
      if (n === 1) {
        ws.send(event(1));
        ws.send(event(2));
        ws.end(4001);
      } else {
        ws.send(event(3, { status: "completed" }));
        ws.end(1000);
      }
    };
    let tickets = 0;
    let asked = 0;
    const server = fakeFetch((req) => (isTicket(req) ? ticket(++tickets) : assert.fail(`unexpected ${req.method} ${req.url}`)));
    const w = await run({ getToken: () => (asked++, TOKEN), transport: "ws", fetch: server.fetch, WebSocket: FakeWebSocket });
    assert.deepEqual(ids(w.events), [1, 2, 3]);
    assert.equal(asked, 2);
    assert.equal(tickets, 2);
    const [a, b] = FakeWebSocket.opened;
    assert.equal(a.url.protocol, "ws:");
    assert.equal(a.url.pathname, "/api/v1/videos/42/ws");
    assert.equal(b.url.searchParams.get("ticket"), "ticket-2");
    assert.equal(b.url.searchParams.get("last_event_id"), "2");
    assert.deepEqual(w.states, ["connecting", "open", "closed"]);
    assert.ok(w.statuses.every((s) => s.transport === "ws"));
  });

  test("1001 (the server shuts down): a pause, then resumed", async () => {
    FakeWebSocket.opened = [];
    FakeWebSocket.script = (ws, n) => {
      ws.open();
      if (n === 1) {
        ws.send(event(1));
        ws.end(1001);
      } else {
        ws.send(event(1)); // a repeat, which is not delivered
        ws.send(event(2, { status: "failed", error: "boom" }));
      }
    };
    const server = fakeFetch(() => ticket());
    const w = await run({ token: TOKEN, transport: "ws", fetch: server.fetch, WebSocket: FakeWebSocket });
    assert.deepEqual(ids(w.events), [1, 2]);
    assert.ok(w.statuses.find((s) => s.state === "reconnecting").retryInMs > 0);
    assert.equal(FakeWebSocket.opened[1].closedWith, 1000, "the client closes after the terminal event");
  });

  test("refused before opening: the server is asked why; auto falls back to SSE", async () => {
    FakeWebSocket.opened = [];
    FakeWebSocket.script = (ws) => ws.end(1006);
    const server = fakeFetch((req) => {
      if (isTicket(req)) return ticket();
      if (req.method === "HEAD") return new Response(null, { status: 200 }); // up: the socket was refused
      return sse(req, [frame(1, { status: "completed" })]);
    });
    const w = await run({ token: TOKEN, transport: "auto", fetch: server.fetch, WebSocket: FakeWebSocket });
    assert.deepEqual(ids(w.events), [1]);
    assert.equal(FakeWebSocket.opened.length, 1);
    assert.deepEqual(w.statuses.map((s) => `${s.state}/${s.transport}`), ["connecting/ws", "reconnecting/ws", "open/sse", "closed/sse"]);
    assert.ok(server.requests.some((r) => r.method === "HEAD" && r.url.searchParams.get("ticket") === "ticket-1"));
  });

  for (const transport of ["auto", "ws"]) {
    test(`${transport}, and no ticket route: SSE over fetch with the token in a header, never ws?token=`, async () => {
      FakeWebSocket.opened = [];
      FakeWebSocket.script = (ws) => {
        ws.open();
        ws.send(event(1, { status: "completed" }));
        ws.end(1000);
      };
      const server = fakeFetch((req) => {
        if (isTicket(req)) return apiError(404, "not_found");
        if (req.url.pathname === "/api/v1/videos/42") return json(200, { id: 42 });
        return sse(req, [frame(1, { status: "completed" })]);
      });
      const w = await run({ token: TOKEN, transport, fetch: server.fetch, WebSocket: FakeWebSocket });
      assert.deepEqual(ids(w.events), [1]);
      assert.deepEqual(FakeWebSocket.opened.map((ws) => ws.url.href), [], "a WebSocket was opened");
      const s = server.requests.find(isStream);
      assert.equal(s.headers.Authorization, `Bearer ${TOKEN}`);
      assert.equal(s.url.search, "");
      assert.equal(w.last.transport, "sse");
      assert.ok(w.statuses.some((x) => /Authorization header/.test(x.note ?? "")), "no status note");
    });
  }

  test("tickets: false asks for no ticket, and streams SSE over fetch rather than ws?token=", async () => {
    FakeWebSocket.opened = [];
    FakeWebSocket.script = (ws) => ws.end(1006);
    const server = fakeFetch((req) => (isTicket(req) ? assert.fail("a ticket was asked for") : sse(req, [frame(1, { status: "completed" })])));
    const w = await run({ token: TOKEN, tickets: false, transport: "ws", fetch: server.fetch, WebSocket: FakeWebSocket });
    assert.deepEqual(ids(w.events), [1]);
    assert.equal(FakeWebSocket.opened.length, 0);
    assert.deepEqual(w.statuses.map((s) => `${s.state}/${s.transport}`), ["connecting/sse", "open/sse", "closed/sse"]);
    assert.match(w.statuses[0].note, /Authorization header/);
  });

  test("no ticket and no fetch streaming: the WebSocket is the only way, with ?token=", async () => {
    FakeWebSocket.opened = [];
    FakeWebSocket.script = (ws) => {
      ws.open();
      ws.send(event(1, { status: "completed" }));
      ws.end(1000);
    };
    const w = await run({ token: TOKEN, transport: "ws", fetch: null, WebSocket: FakeWebSocket });
    assert.deepEqual(ids(w.events), [1]);
    assert.equal(FakeWebSocket.opened.length, 1);
    assert.equal(FakeWebSocket.opened[0].url.searchParams.get("token"), TOKEN);
  });

  test("refused before opening: ws counts the refusals and gives up", async () => {
    FakeWebSocket.opened = [];
    FakeWebSocket.script = (ws) => ws.onerror?.({}); // Node 20: an error and no close
    const server = fakeFetch((req) => (isTicket(req) ? ticket() : new Response(null, { status: 200 })));
    const w = await run({ token: TOKEN, transport: "ws", fetch: server.fetch, WebSocket: FakeWebSocket, maxRefusals: 2 });
    assert.equal(w.last.state, "error");
    assert.equal(w.last.error.code, "refused");
    assert.equal(FakeWebSocket.opened.length, 2);
  });

  test("refused before opening, and the server says why: 404, 204", async () => {
    FakeWebSocket.script = (ws) => ws.end(1006);
    for (const [answer, want] of [[404, "error"], [204, "closed"]]) {
      FakeWebSocket.opened = [];
      const server = fakeFetch((req) => (isTicket(req) ? ticket() : new Response(null, { status: answer })));
      const w = await run({ token: TOKEN, transport: "ws", fetch: server.fetch, WebSocket: FakeWebSocket });
      assert.equal(w.last.state, want, `HEAD ${answer}`);
      if (answer === 404) assert.equal(w.last.error.code, "not_found");
    }
  });
});
