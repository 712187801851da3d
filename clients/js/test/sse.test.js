// The event-stream parser and the backoff, alone.

import assert from "node:assert/strict";
import { test } from "node:test";

import { backoffDelay, SSEParser } from "../dist/index.js";

/** Parses chunks; returns the messages and the parser. */
function parse(...chunks) {
  const got = [];
  const p = new SSEParser((m) => got.push(m));
  for (const c of chunks) p.push(c);
  return { got, p };
}

test("SSE: stephub's frames: retry, id, data, pings", () => {
  const { got, p } = parse('retry: 3000\n\nid: 1\ndata: {"id":1}\n\n: ping\n\nid: 2\ndata: {"id":2}\n\n');
  assert.deepEqual(got, [
    { data: '{"id":1}', id: "1", event: "message" },
    { data: '{"id":2}', id: "2", event: "message" },
  ]);
  assert.equal(p.retry, 3000);
  assert.equal(p.lastEventId, "2");
});

test("SSE: every line ending, split anywhere, CRLF across chunks", () => {
  const text = "id: 7\r\ndata: a\rdata: b\ndata: c\r\n\r\nevent: named\ndata: d\n\n";
  const want = [
    { data: "a\nb\nc", id: "7", event: "message" },
    { data: "d", id: "7", event: "named" },
  ];
  // Every way of cutting the text in two, and one character at a time.
  for (let i = 0; i <= text.length; i++) {
    assert.deepEqual(parse(text.slice(0, i), text.slice(i)).got, want, `cut at ${i}`);
  }
  assert.deepEqual(parse(...text).got, want, "one character at a time");
});

test("SSE: a BOM at the start only; a field without a colon; one leading space taken", () => {
  const { got } = parse("\uFEFF", "data\n\ndata:  two spaces\n\ndata:x\n\n");
  assert.deepEqual(got.map((m) => m.data), ["", " two spaces", "x"]);
  // The second BOM was not at the start of the stream: it is part of the
  // field name, which is then no field at all.
  const second = parse("data: 1\n\n", "\uFEFFdata: 2\n\n").got;
  assert.deepEqual(second.map((m) => m.data), ["1"]);
});

test("SSE: no message without data; an id with NUL is ignored; an unfinished message is dropped", () => {
  const { got, p } = parse("id: 5\n\nevent: x\n\nid: 6\0\ndata: a\n\nretry: soon\ndata: unfinished");
  assert.deepEqual(got, [{ data: "a", id: "5", event: "message" }]);
  assert.equal(p.retry, undefined);
});

test("SSE: comments and unknown fields are skipped", () => {
  const { got } = parse(":comment\nfoo: bar\ndata: 1\n:another\ndata: 2\n\n");
  assert.deepEqual(got.map((m) => m.data), ["1\n2"]);
});

test("backoff: a doubling ceiling, capped, with half of it random", () => {
  const o = { initialMs: 100, maxMs: 1000 };
  assert.deepEqual([0, 1, 2, 3, 4, 5].map((a) => backoffDelay(a, o, () => 1)), [100, 200, 400, 800, 1000, 1000]);
  assert.deepEqual([0, 1, 2, 3, 4, 5].map((a) => backoffDelay(a, o, () => 0)), [50, 100, 200, 400, 500, 500]);
  // The defaults: 1 s, up to 15 s.
  assert.equal(backoffDelay(0, {}, () => 1), 1000);
  assert.equal(backoffDelay(100, {}, () => 1), 15000);
  // Real randomness stays within the bounds, and varies.
  const seen = new Set();
  for (let i = 0; i < 200; i++) {
    const d = backoffDelay(2, o);
    assert.ok(d >= 200 && d <= 400, `${d}`);
    seen.add(d);
  }
  assert.ok(seen.size > 20, `only ${seen.size} different pauses`);
});
