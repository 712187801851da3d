// useVideoStream rendered for real: React and react-dom (the
// devDependencies) render into a jsdom document, in StrictMode, which runs
// every effect twice, and the hook watches a real stephub.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { JSDOM } from "jsdom";

import { activeStreams, generate, postStep, startServer, userToken, waitFor } from "./stephub.js";

let React, createRoot, useVideoStream;
const consoleErrors = [];

before(async () => {
  // react-dom reads the DOM through these globals.
  const dom = new JSDOM("<!DOCTYPE html><html><body></body></html>", { url: "http://localhost/", pretendToBeVisual: true });
  globalThis.window = dom.window;
  globalThis.document = dom.window.document;
  globalThis.HTMLElement = dom.window.HTMLElement;
  globalThis.Node = dom.window.Node;
  if (!("navigator" in globalThis)) globalThis.navigator = dom.window.navigator; // Node 21+ has its own
  const error = console.error;
  console.error = (...args) => {
    consoleErrors.push(args.map(String).join(" "));
    error(...args);
  };
  React = await import("react");
  ({ createRoot } = await import("react-dom/client"));
  ({ useVideoStream } = await import("../dist/react/index.js"));
});

after(() => {
  assert.deepEqual(consoleErrors, [], "React or the hook logged errors");
});

/** What the original front end's HeroSection showed, as plain elements. */
function Watch({ videoId, options }) {
  const h = React.createElement;
  const s = useVideoStream(videoId, options);
  return h(
    "section",
    null,
    h("p", { id: "conn" }, s.connected ? "● Connected" : s.state),
    h("p", { id: "current" }, s.currentStep),
    h("p", { id: "step" }, `${s.step}/${s.totalSteps}`),
    h("p", { id: "progress" }, String(s.progress)),
    h("p", { id: "eta" }, s.eta === null ? "—" : String(s.eta)),
    h("p", { id: "status" }, s.status ?? ""),
    h("p", { id: "error" }, s.error ?? ""),
    h("p", { id: "video" }, s.videoUrl ?? ""),
    h("p", { id: "count" }, String(s.logs.length)),
    h("ol", { id: "recent" }, s.recentLogs.map((e) => h("li", { key: e.id }, `[${e.step}] ${e.message}`))),
  );
}

/** Mounts Watch in StrictMode; returns render(props), text(id), unmount(). */
function mount(t) {
  const container = document.createElement("div");
  document.body.append(container);
  const root = createRoot(container);
  let mounted = true;
  const unmount = () => {
    if (mounted) root.unmount();
    mounted = false;
  };
  t.after(unmount);
  return {
    render: (props) => root.render(React.createElement(React.StrictMode, null, React.createElement(Watch, props))),
    text: (id) => container.querySelector(`#${id}`)?.textContent ?? null,
    recent: () => [...container.querySelectorAll("#recent li")].map((li) => li.textContent),
    unmount,
  };
}

describe("useVideoStream", () => {
  test("renders a job from connected to the video, with the last five steps", async (t) => {
    const s = await startServer(t, { STEP_DELAY: "150ms" });
    const token = userToken("hook");
    const v = await generate(s, token);
    const page = mount(t);
    const completed = [];
    const seenConnected = [];
    page.render({
      videoId: v.id,
      options: { baseUrl: s.url, token, onComplete: (url, ev) => completed.push([url, ev.id]), onEvent: () => seenConnected.push(page.text("conn")) },
    });
    await waitFor("● Connected", () => page.text("conn") === "● Connected");
    await waitFor("the completion", () => page.text("status") === "completed");
    assert.equal(page.text("count"), "9");
    assert.deepEqual(page.recent().map((l) => l.slice(0, 3)), ["[5]", "[6]", "[7]", "[8]", "[9]"]);
    assert.equal(page.text("current"), "🎉 Video ready!");
    assert.equal(page.text("step"), "9/8");
    assert.equal(page.text("progress"), "100");
    assert.equal(page.text("eta"), "0");
    assert.equal(page.text("video"), "/uploads/videos/mock-video.mp4");
    assert.equal(page.text("error"), "");
    await waitFor("the stream closed", () => page.text("conn") === "closed");
    // Once, though StrictMode ran the effect twice.
    assert.deepEqual(completed, [["/uploads/videos/mock-video.mp4", 9]]);
    assert.ok(seenConnected.includes("● Connected"), "the steps arrived while connected");
  });

  test("a new videoId closes the old stream and starts from nothing; unmounting closes it", async (t) => {
    // The jobs wait for the test to post their steps.
    const s = await startServer(t, { PIPELINE: "external" });
    const token = userToken("switcher");
    const a = await generate(s, token);
    const b = await generate(s, token);
    const page = mount(t);
    const options = { baseUrl: s.url, token, transport: "sse" };
    page.render({ videoId: a.id, options });
    await waitFor("a's stream", () => page.text("conn") === "● Connected");
    await postStep(s, a.id, { step: 1, message: "a one", progress: 10 });
    await postStep(s, a.id, { step: 2, message: "a two", progress: 20 });
    await waitFor("a's steps", () => page.text("count") === "2");

    // Options rebuilt at each render (a new object, same values) do not
    // reopen the stream.
    page.render({ videoId: a.id, options: { ...options } });
    await postStep(s, a.id, { step: 3, message: "a three", progress: 30 });
    await waitFor("a's third step", () => page.text("count") === "3");
    assert.deepEqual(page.recent(), ["[1] a one", "[2] a two", "[3] a three"]);

    const errors = [];
    page.render({ videoId: b.id, options: { ...options, onError: (message) => errors.push(message) } });
    await waitFor("b's stream", () => page.text("conn") === "● Connected" && page.text("count") === "0");
    assert.deepEqual(page.recent(), []);
    await waitFor("one stream, b's", async () => (await activeStreams(s, "sse")) === 1);
    await postStep(s, a.id, { step: 4, message: "a four", progress: 40 });
    await postStep(s, b.id, { step: 1, message: "b one", progress: 10 });
    await waitFor("b's step", () => page.text("count") === "1");
    assert.deepEqual(page.recent(), ["[1] b one"]);

    // A failed job: the error, and onError.
    await postStep(s, b.id, { step: 2, message: "b broke", progress: 20, status: "failed", error: "the renderer crashed" });
    await waitFor("the failure", () => page.text("status") === "failed");
    assert.equal(page.text("error"), "the renderer crashed");
    assert.equal(page.text("video"), "");
    assert.deepEqual(errors, ["the renderer crashed"]);

    page.render({ videoId: a.id, options });
    await waitFor("a again, from the start", () => page.text("count") === "4");
    assert.deepEqual(page.recent().map((l) => l.slice(0, 3)), ["[1]", "[2]", "[3]", "[4]"]);

    // Disabled: the stream closes, the events stay; enabled again, it
    // resumes after them.
    page.render({ videoId: a.id, options: { ...options, enabled: false } });
    await waitFor("idle", () => page.text("conn") === "idle");
    await waitFor("no stream while disabled", async () => (await activeStreams(s, "sse")) === 0);
    assert.equal(page.text("count"), "4");
    await postStep(s, a.id, { step: 5, message: "a five", progress: 50 });
    page.render({ videoId: a.id, options });
    await waitFor("a's fifth step", () => page.text("count") === "5");
    assert.deepEqual(page.recent().map((l) => l.slice(0, 3)), ["[1]", "[2]", "[3]", "[4]", "[5]"]);

    // No video, then a again: from the start.
    page.render({ videoId: null, options });
    await waitFor("nothing", () => page.text("conn") === "idle" && page.text("count") === "0");
    page.render({ videoId: a.id, options });
    await waitFor("a from the start", () => page.text("count") === "5" && page.text("conn") === "● Connected");
    page.unmount();
    await waitFor("no stream left", async () => (await activeStreams(s, "sse")) === 0);
  });

  test("a token that comes after the first render (auth loading) starts the stream", async (t) => {
    const s = await startServer(t, { PIPELINE: "external" });
    const token = userToken("late");
    const v = await generate(s, token);
    const page = mount(t);
    const errors = [];
    const states = [];
    const options = { baseUrl: s.url, transport: "sse", onError: (m, cause) => errors.push(cause.code) };
    page.render({ videoId: v.id, options });
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(page.text("conn"), "idle");
    assert.equal(page.text("error"), "");
    assert.deepEqual(errors, []);

    page.render({ videoId: v.id, options: { ...options, token } });
    await waitFor("the stream, once the token came", () => page.text("conn") === "● Connected");
    await postStep(s, v.id, { step: 1, message: "one", progress: 10 });
    await waitFor("the step", () => page.text("count") === "1");

    // A renewed token does not reopen a stream that works.
    const watching = new window.MutationObserver(() => states.push(page.text("conn")));
    watching.observe(document.body, { subtree: true, characterData: true, childList: true });
    t.after(() => watching.disconnect());
    page.render({ videoId: v.id, options: { ...options, token: userToken("late", "2h") } });
    await postStep(s, v.id, { step: 2, message: "two", progress: 20 });
    await waitFor("the second step", () => page.text("count") === "2");
    assert.ok(!states.includes("connecting") && !states.includes("idle"), states.join(" "));
    assert.equal(await activeStreams(s, "sse"), 1);
    assert.deepEqual(errors, []);
  });

  test("null watches nothing; an error is shown and reported", async (t) => {
    const s = await startServer(t);
    const owner = userToken("owner");
    const v = await generate(s, owner);
    const page = mount(t);
    page.render({ videoId: null, options: { baseUrl: s.url, token: owner } });
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(page.text("conn"), "idle");
    assert.equal(page.text("count"), "0");

    const errors = [];
    page.render({ videoId: v.id, options: { baseUrl: s.url, token: userToken("stranger"), onError: (m, cause) => errors.push(cause.code) } });
    await waitFor("the error", () => page.text("conn") === "error");
    assert.match(page.text("error"), /not found/i);
    assert.deepEqual(errors, ["not_found"]);
  });
});
