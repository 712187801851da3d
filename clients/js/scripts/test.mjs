// Runs every test/*.test.js with node's test runner, one file at a time
// (the machine is shared). Node 20 has WebSocket behind a flag: it is
// turned on where it exists, so that the ws tests run; without it they skip.

import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const only = process.argv.slice(2);
const tests = (only.length ? only : readdirSync(join(root, "test")).filter((f) => f.endsWith(".test.js")).map((f) => join("test", f))).sort();

const flags = [];
if (typeof WebSocket !== "function" && process.allowedNodeEnvironmentFlags.has("--experimental-websocket")) {
  flags.push("--experimental-websocket");
}
const args = [...flags, "--test", ...(process.allowedNodeEnvironmentFlags.has("--test-concurrency") ? ["--test-concurrency=1"] : []), ...tests];
const r = spawnSync(process.execPath, args, { cwd: root, stdio: "inherit" });
process.exit(r.status ?? 1);
