// The client against a real stephub (bin/stephub serve, SQLite, the mock
// pipeline at 100 ms a step unless a test says otherwise).

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { createClient, StephubError, watchVideo } from "../dist/index.js";
import { activeStreams, ADMIN_TOKEN, api, generate, postStep, startServer, userToken, waitFor } from "./stephub.js";

const hasWebSocket = typeof WebSocket === "function";
const wsSkip = hasWebSocket ? false : `node ${process.version} has no global WebSocket (Node 22+, or 20 with --experimental-websocket); the browser tests cover it`;

// Pauses short enough for tests, with jitter still at work.
const FAST = { initialMs: 100, maxMs: 400 };

/** Records the addresses the client opens, and the headers of its requests. */
function recorder() {
  const requests = [];
  const recordingFetch = (input, init = {}) => {
    requests.push({ url: String(input), method: init.method ?? "GET", headers: { ...init.headers } });
    return fetch(input, init);
  };
  const RecordingWebSocket = hasWebSocket
    ? class extends WebSocket {
        constructor(url, protocols) {
          requests.push({ url: String(url), method: "WEBSOCKET", headers: {} });
          super(url, protocols);
        }
      }
    : undefined;
  return { requests, fetch: recordingFetch, WebSocket: RecordingWebSocket };
}

/**
 * Watches until the watch closes or gives up; returns what it saw. The
 * watch is closed when the test ends, whatever happens.
 */
async function watchAll(t, options, ms = 20_000) {
  const events = [];
  const statuses = [];
  let handle;
  const ended = new Promise((resolve) => {
    handle = watchVideo({
      ...options,
      onEvent: (e) => {
        events.push(e);
        options.onEvent?.(e);
      },
      onStatus: (s) => {
        statuses.push(s);
        if (s.state === "closed" || s.state === "error") resolve();
      },
    });
  });
  t.after(() => handle.close());
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`watch did not end in ${ms} ms; states: ${statuses.map((s) => s.state).join(" ")}; events: ${events.map((e) => e.id)}`)), ms);
  });
  await Promise.race([ended, timeout]).finally(() => clearTimeout(timer));
  return { handle, events, statuses, states: statuses.map((s) => s.state), last: statuses.at(-1) };
}

/** Fails unless events are the whole mock job, ids 1..9, each once. */
function assertWholeJob(events) {
  assert.deepEqual(events.map((e) => e.id), [1, 2, 3, 4, 5, 6, 7, 8, 9], "every event once, in order");
  assert.deepEqual(events.map((e) => e.step), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
  const end = events.at(-1);
  assert.equal(end.status, "completed");
  assert.equal(end.progress, 100);
  assert.equal(end.video_url, "/uploads/videos/mock-video.mp4");
}

/** Fails if a request's address holds the token, or any ?token=. */
function assertNoTokenInURLs(requests, token) {
  for (const r of requests) {
    assert.ok(!r.url.includes(token) && !/[?&]token=/.test(r.url), `${r.method} ${r.url.slice(0, 80)}… holds the token`);
  }
}

describe("watching a job to completion", () => {
  for (const transport of ["sse", "ws", "auto"]) {
    test(transport, { skip: transport === "ws" && wsSkip }, async (t) => {
      const s = await startServer(t);
      const token = userToken(`whole-${transport}`);
      const v = await generate(s, token);
      const rec = recorder();
      const w = await watchAll(t, { baseUrl: s.url, videoId: v.id, token, transport, fetch: rec.fetch, WebSocket: rec.WebSocket });
      assertWholeJob(w.events);
      assert.deepEqual(w.states, ["connecting", "open", "closed"]);
      const want = transport === "sse" || !hasWebSocket ? "sse" : "ws";
      assert.ok(w.statuses.every((st) => st.transport === want), `transport ${w.statuses.map((st) => st.transport)}; want ${want}`);
      assert.equal(w.handle.lastEventId, 9);
      // One ticket, asked for with the token in the header; one stream,
      // opened with the ticket.
      const tickets = rec.requests.filter((r) => r.url.endsWith(`/videos/${v.id}/ticket`));
      assert.equal(tickets.length, 1);
      assert.equal(tickets[0].method, "POST");
      assert.equal(tickets[0].headers.Authorization, `Bearer ${token}`);
      const streams = rec.requests.filter((r) => /\/(stream|ws)\?/.test(r.url));
      assert.equal(streams.length, 1);
      assert.match(streams[0].url, /[?&]ticket=/);
      assertNoTokenInURLs(rec.requests, token);
    });
  }

  test("a finished video: nothing left to send, 204 (SSE) or 1000 (WebSocket)", async (t) => {
    const s = await startServer(t);
    const token = userToken("finished");
    const v = await generate(s, token);
    const first = await watchAll(t, { baseUrl: s.url, videoId: v.id, token, transport: "sse" });
    assertWholeJob(first.events);
    for (const transport of hasWebSocket ? ["sse", "ws"] : ["sse"]) {
      const again = await watchAll(t, { baseUrl: s.url, videoId: v.id, token, transport, lastEventId: 9 });
      assert.deepEqual(again.events, [], transport);
      // SSE answers 204; a WebSocket opens, then closes with 1000 at once.
      assert.deepEqual(again.states, transport === "sse" ? ["connecting", "closed"] : ["connecting", "open", "closed"], transport);
    }
    // Resuming after 4 sends the rest only.
    const rest = await watchAll(t, { baseUrl: s.url, videoId: v.id, token, transport: "auto", lastEventId: 4 });
    assert.deepEqual(rest.events.map((e) => e.id), [5, 6, 7, 8, 9]);
  });

  test("without tickets, SSE sends the token in the Authorization header", async (t) => {
    const s = await startServer(t);
    const token = userToken("headers");
    const v = await generate(s, token);
    const rec = recorder();
    const w = await watchAll(t, { baseUrl: s.url, videoId: v.id, token, transport: "sse", tickets: false, fetch: rec.fetch });
    assertWholeJob(w.events);
    assert.equal(rec.requests.length, 1);
    assert.match(rec.requests[0].url, /\/stream$/);
    assert.equal(rec.requests[0].headers.Authorization, `Bearer ${token}`);
    assertNoTokenInURLs(rec.requests, token);
  });
});

describe("resuming", () => {
  for (const transport of ["sse", "ws"]) {
    test(`${transport}: tickets expire mid-job; the client asks again and resumes`, { skip: transport === "ws" && wsSkip }, async (t) => {
      // Tickets last 2 s, the job about 3.6 s: each stream ends as its
      // ticket expires (SSE: the response ends; WebSocket: 4001).
      const s = await startServer(t, { TICKET_TTL: "2s", STEP_DELAY: "400ms" });
      const token = userToken(`expiry-${transport}`);
      const v = await generate(s, token);
      const rec = recorder();
      let asked = 0;
      const getToken = async () => {
        asked++;
        return token;
      };
      const w = await watchAll(t, { baseUrl: s.url, videoId: v.id, getToken, transport, fetch: rec.fetch, WebSocket: rec.WebSocket, backoff: FAST });
      assertWholeJob(w.events);
      const tickets = rec.requests.filter((r) => r.url.endsWith("/ticket")).length;
      assert.ok(tickets >= 2, `${tickets} tickets for a job that outlasts one`);
      assert.ok(asked >= 2, `getToken asked ${asked} times; want again after the expiry`);
      // Each stream after the first resumed after the last event it had.
      const streams = rec.requests.filter((r) => /\/(stream|ws)\?/.test(r.url)).map((r) => new URL(r.url));
      assert.equal(streams[0].searchParams.get("last_event_id"), null);
      for (const u of streams.slice(1)) assert.ok(Number(u.searchParams.get("last_event_id")) > 0, u.search);
      assertNoTokenInURLs(rec.requests, token);
    });

    test(`${transport}: the server restarts mid-job; the client resumes with no gap and no repeat`, { skip: transport === "ws" && wsSkip }, async (t) => {
      const s = await startServer(t, { STEP_DELAY: "300ms" });
      const token = userToken(`restart-${transport}`);
      const v = await generate(s, token);
      let stopped = false;
      const restarted = [];
      const w = await watchAll(t, {
        baseUrl: s.url,
        videoId: v.id,
        token,
        transport,
        backoff: FAST,
        onEvent(e) {
          if (e.id === 3 && !stopped) {
            stopped = true;
            // Stop, then start again on the same address and database.
            restarted.push(s.stop().then(() => s.start()));
          }
        },
      });
      await Promise.all(restarted);
      assert.ok(stopped, "the server was never stopped");
      assertWholeJob(w.events);
      assert.match(w.states.join(" "), /^connecting open (reconnecting )+open closed$/);
    });
  }
});

describe("errors", () => {
  test("429: too many streams is reported, over each transport", async (t) => {
    // One stream per user, and the test's own stream holds it; the job
    // waits for a worker (the test), which never comes.
    const s = await startServer(t, { MAX_STREAMS_PER_USER: "1", PIPELINE: "external" });
    const token = userToken("crowded");
    const v = await generate(s, token);
    const hog = new AbortController();
    t.after(() => hog.abort());
    const held = await fetch(`${s.url}/api/v1/videos/${v.id}/stream`, { headers: { Authorization: `Bearer ${token}` }, signal: hog.signal });
    assert.equal(held.status, 200);

    const sse = await watchAll(t, { baseUrl: s.url, videoId: v.id, token, transport: "sse", backoff: FAST, maxRefusals: 2 });
    assert.equal(sse.last.state, "error");
    assert.ok(sse.last.error instanceof StephubError);
    assert.equal(sse.last.error.status, 429);
    assert.equal(sse.last.error.code, "too_many_streams");
    // The first refusal was retried, and said so.
    const retried = sse.statuses.find((st) => st.state === "reconnecting");
    assert.equal(retried?.error?.code, "too_many_streams");
    assert.ok(retried.retryInMs >= 50 && retried.retryInMs <= 100, `pause ${retried.retryInMs} ms`);

    if (hasWebSocket) {
      // A browser-like WebSocket cannot read the 429; the client asks the
      // server whether it is up, and reports the refusal.
      const ws = await watchAll(t, { baseUrl: s.url, videoId: v.id, token, transport: "ws", backoff: FAST, maxRefusals: 2 });
      assert.equal(ws.last.state, "error");
      assert.equal(ws.last.error.code, "refused");
      // auto gives WebSocket up for SSE, which reads the 429.
      const auto = await watchAll(t, { baseUrl: s.url, videoId: v.id, token, transport: "auto", backoff: FAST, maxRefusals: 2 });
      assert.equal(auto.last.state, "error");
      assert.equal(auto.last.transport, "sse");
      assert.equal(auto.last.error.code, "too_many_streams");
    }

    // Once the stream is free, retry() streams.
    hog.abort();
    await waitFor("the held stream to end", async () => (await activeStreams(s, "sse")) === 0);
    const events = [];
    const h = watchVideo({ baseUrl: s.url, videoId: v.id, token, transport: "sse", onEvent: (e) => events.push(e) });
    t.after(() => h.close());
    await waitFor("the stream to open", () => h.state === "open");
    await postStep(s, v.id, { step: 1, message: "🔍 Checking", progress: 10 });
    await waitFor("the worker's step", () => events.length === 1);
    h.close();
  });

  test("402 and 403 are reported as errors with their codes", async (t) => {
    const s = await startServer(t);
    const token = userToken("broke");
    const client = createClient({ baseUrl: s.url, token });
    const admin = (body) => api(s, "PUT", "/api/v1/admin/users/broke", ADMIN_TOKEN, body);
    assert.equal((await admin({ credits: 50 })).status, 200);
    const body = { prompt: "A red kite over the hills", model: "sora-2" };
    await assert.rejects(client.generate(body), (err) => {
      assert.ok(err instanceof StephubError);
      assert.equal(err.status, 402);
      assert.equal(err.code, "insufficient_credits");
      assert.match(err.message, /credits/);
      return true;
    });
    assert.equal((await admin({ credits: 1000, subscription_status: "inactive" })).status, 200);
    await assert.rejects(client.generate(body), { status: 403, code: "subscription_inactive" });
    assert.equal((await admin({ subscription_status: "active" })).status, 200);
    const v = await client.generate(body);
    assert.equal(v.status === "pending" || v.status === "processing", true);
    assert.equal((await client.me()).credits, 900);
  });

  test("404: another user's video", async (t) => {
    const s = await startServer(t);
    const v = await generate(s, userToken("owner"));
    for (const transport of hasWebSocket ? ["sse", "ws"] : ["sse"]) {
      const w = await watchAll(t, { baseUrl: s.url, videoId: v.id, token: userToken("stranger"), transport });
      assert.deepEqual(w.states, ["connecting", "error"], transport);
      assert.equal(w.last.error.status, 404);
      assert.equal(w.last.error.code, "not_found");
    }
  });

  test("401: getToken is asked again, and the fresh token streams", async (t) => {
    const s = await startServer(t);
    const token = userToken("renewed");
    const v = await generate(s, token);
    const answers = ["not-a-token", token];
    let asked = 0;
    const getToken = () => answers[Math.min(asked++, answers.length - 1)];
    for (const transport of hasWebSocket ? ["sse", "ws"] : ["sse"]) {
      asked = 0;
      const w = await watchAll(t, { baseUrl: s.url, videoId: v.id, getToken, transport });
      assertWholeJob(w.events);
      assert.equal(asked, 2, transport);
      assert.equal(w.statuses.find((st) => st.state === "reconnecting")?.error?.status, 401);
    }
    // A fixed token that the server refuses: given up at once.
    const bad = await watchAll(t, { baseUrl: s.url, videoId: v.id, token: "not-a-token", transport: "sse" });
    assert.deepEqual(bad.states, ["connecting", "error"]);
    assert.equal(bad.last.error.code, "unauthorized");
    // An expired token, then a good one, without tickets: the stream's
    // own 401 is retried the same way.
    const expired = userToken("renewed", "1s");
    await new Promise((r) => setTimeout(r, 1100));
    const stale = [expired, token];
    asked = 0;
    const w = await watchAll(t, { baseUrl: s.url, videoId: v.id, getToken: () => stale[Math.min(asked++, 1)], transport: "sse", tickets: false });
    assertWholeJob(w.events);
    assert.equal(asked, 2);
  });
});
