// Checks that what is committed is what the sources make, so that the Go
// build, which embeds dist/ without running node, serves the current
// client:
//
//   src/openapi.ts  is openapi-typescript's rendering of ../../api/openapi.yaml
//   dist/           is tsc's output for src/ (which also type-checks src/
//                   against the document's types)
//
// `npm run types` and `npm run build` bring them up to date.

import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const bin = (name) => join(root, "node_modules", ".bin", name);
const tmp = mkdtempSync(join(tmpdir(), "stephub-client-check-"));
let failed = false;

function run(cmd, args) {
  execFileSync(cmd, args, { cwd: root, stdio: ["ignore", "ignore", "inherit"] });
}

/** Every file under dir, by its path relative to dir. */
function files(dir) {
  const out = new Map();
  const walk = (d) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.set(relative(dir, p), readFileSync(p));
    }
  };
  walk(dir);
  return out;
}

function compare(what, fix, want, got) {
  const names = new Set([...want.keys(), ...got.keys()]);
  for (const name of [...names].sort()) {
    const w = want.get(name);
    const g = got.get(name);
    if (w && g && w.equals(g)) continue;
    failed = true;
    console.error(`${what}: ${name} ${!g ? "is missing" : !w ? "should not be there" : "is out of date"}; run ${fix}`);
  }
}

try {
  run(bin("openapi-typescript"), ["../../api/openapi.yaml", "-o", join(tmp, "openapi.ts")]);
  compare("src/openapi.ts", "`npm run types`", new Map([["openapi.ts", readFileSync(join(tmp, "openapi.ts"))]]),
    new Map([["openapi.ts", readFileSync(join(root, "src", "openapi.ts"))]]));

  run(bin("tsc"), ["-p", ".", "--outDir", join(tmp, "dist")]);
  compare("dist", "`npm run build`", files(join(tmp, "dist")), files(join(root, "dist")));
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
if (failed) process.exit(1);
console.log("src/openapi.ts and dist/ are up to date");
