// Bundles the live map's browser script (map/main.ts with d3-geo,
// topojson-client and world-atlas's 110m countries) into dist/map.js with
// esbuild: one file, no request to any other host, so the page works with
// no network. `npm ci` (the root `prepare`), `npm run build` and `npm pack`
// of this package run it; the herd command's bundle takes the script in
// itself through `inlineMapScript`.
import { build } from "esbuild"
import { mkdirSync, renameSync } from "node:fs"
import { fileURLToPath } from "node:url"

export const mapScript = fileURLToPath(new URL("./dist/map.js", import.meta.url))

const options = {
  entryPoints: [fileURLToPath(new URL("./map/main.ts", import.meta.url))],
  bundle: true,
  format: "iife",
  platform: "browser",
  target: "es2020",
  minify: true,
  // d3-geo and topojson-client are ISC, world-atlas's data Natural Earth's (public domain): their notices stay.
  legalComments: "eof",
  logLevel: "warning"
}

/** Writes dist/map.js (beside, then renamed over, so no one reads half a file). */
export const buildMap = async () => {
  mkdirSync(fileURLToPath(new URL("./dist/", import.meta.url)), { recursive: true })
  const written = `${mapScript}.${process.pid}.tmp`
  await build({ ...options, outfile: written })
  renameSync(written, mapScript)
}

/** The script as text, for a bundle to hold. */
export const mapScriptText = async () => {
  const result = await build({ ...options, write: false })
  const file = result.outputFiles[0]
  if (file === undefined) throw new Error("esbuild wrote no map script")
  return file.text
}

/**
 * An esbuild plugin for a bundle of the admin endpoint: its MapScript module
 * becomes one that holds the map's script, so the bundle needs no file
 * beside it.
 */
export const inlineMapScript = {
  name: "herd-inline-map-script",
  setup(builder) {
    builder.onLoad({ filter: /[\\/]admin[\\/]src[\\/]MapScript\.ts$/ }, async () => ({
      contents: `export const mapScriptPath = undefined\nexport const bundledMapScript = ${JSON.stringify(await mapScriptText())}\n`,
      loader: "js"
    }))
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await buildMap()
