// A real stephub for the tests: bin/stephub serve on a free loopback port
// with a SQLite database in a temporary folder, stopped when the test ends.

import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));

/** The binary under test: STEPHUB_BIN, or the repository's bin/stephub (make build). */
export const BIN = process.env.STEPHUB_BIN ?? join(here, "..", "..", "..", "bin", "stephub");

const JWT_SECRET = "stephub-js-client-tests";
export const ADMIN_TOKEN = "admin-js-tests";
export const WORKER_TOKEN = "worker-js-tests";

/** A token for user sub, signed as the servers here expect: bin/stephub token. */
export function userToken(sub, ttl = "1h") {
  return execFileSync(BIN, ["token", "-sub", sub, "-email", `${sub}@example.com`, "-ttl", ttl], {
    env: { ...process.env, JWT_SECRET },
  }).toString().trim();
}

async function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * A stephub serve process. start() waits for /healthz; stop() sends SIGTERM
 * and waits for the exit; start() again serves on the same address and
 * database, as a restart does.
 */
export class Stephub {
  constructor(env, dir, port) {
    this.env = env;
    this.dir = dir;
    this.port = port;
    this.url = `http://127.0.0.1:${port}`;
    this.proc = null;
    this.logs = "";
  }

  async start() {
    const proc = spawn(BIN, ["serve"], {
      env: {
        ...process.env,
        ADDR: `127.0.0.1:${this.port}`,
        DATABASE_URL: `sqlite://${join(this.dir, "stephub.db")}`,
        JWT_SECRET,
        ADMIN_TOKEN,
        WORKER_TOKEN,
        STEP_DELAY: "100ms",
        LOG_LEVEL: "warn",
        ...this.env,
      },
      stdio: ["ignore", "ignore", "pipe"],
    });
    this.proc = proc;
    proc.stderr.on("data", (b) => (this.logs += b));
    proc.exited = new Promise((resolve) => proc.on("exit", resolve));
    const deadline = Date.now() + 15_000;
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`stephub serve exited with ${proc.exitCode}:\n${this.logs}`);
      try {
        if ((await fetch(`${this.url}/healthz`)).ok) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`stephub serve did not answer /healthz:\n${this.logs}`);
      await sleep(25);
    }
  }

  async stop() {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null) return;
    proc.kill("SIGTERM");
    await proc.exited;
  }
}

/**
 * startServer starts a stephub for test t (node:test's context) with env
 * added to the defaults (STEP_DELAY 100ms, the mock pipeline).
 */
export async function startServer(t, env = {}) {
  const dir = mkdtempSync(join(tmpdir(), "stephub-js-"));
  const s = new Stephub(env, dir, await freePort());
  t.after(async () => {
    await s.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  await s.start();
  return s;
}

/** Calls the API with a bearer token; returns {status, body}. */
export async function api(s, method, path, token, body) {
  const headers = { Authorization: `Bearer ${token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const resp = await fetch(s.url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await resp.text();
  return { status: resp.status, body: text ? JSON.parse(text) : null };
}

/** Creates a video for the token's user; returns it. */
export async function generate(s, token) {
  const { status, body } = await api(s, "POST", "/api/v1/videos/generate", token, {
    prompt: "A cat surfing a wave at sunset",
    model: "sora-2",
  });
  if (status !== 201) throw new Error(`generate: ${status} ${JSON.stringify(body)}`);
  return body;
}

/** Posts one worker step (PIPELINE=external). */
export async function postStep(s, videoId, step) {
  const resp = await fetch(`${s.url}/api/v1/videos/${videoId}/events`, {
    method: "POST",
    headers: { Authorization: `Bearer ${WORKER_TOKEN}`, "Content-Type": "application/json" },
    body: JSON.stringify(step),
  });
  if (resp.status !== 202) throw new Error(`worker post: ${resp.status} ${await resp.text()}`);
}

/** Reads the stephub_connections_active gauge of a transport. */
export async function activeStreams(s, transport) {
  const text = await (await fetch(`${s.url}/metrics`)).text();
  const m = new RegExp(`^stephub_connections_active\\{transport="${transport}"\\} (\\d+)`, "m").exec(text);
  return m ? Number(m[1]) : NaN;
}

/** Polls cond every 20 ms until it is truthy, for at most ms. */
export async function waitFor(what, cond, ms = 15_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

export { sleep };
