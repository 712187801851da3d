// Prints the size of the client as a page would ship it: the ESM entry
// bundled with esbuild, minified, then gzipped.

import { build } from "esbuild";
import { gzipSync } from "node:zlib";

const root = new URL("..", import.meta.url).pathname;
for (const entry of ["dist/index.js", "dist/react/index.js"]) {
  const out = await build({
    entryPoints: [root + entry],
    bundle: true,
    minify: true,
    format: "esm",
    target: "es2022",
    external: ["react"],
    write: false,
  });
  const code = out.outputFiles[0].contents;
  console.log(`${entry} (bundled${entry.includes("react") ? ", react external" : ""}): ${code.length} B minified, ${gzipSync(code, { level: 9 }).length} B gzipped`);
}
