/**
 * Where the live map's browser script comes from. `build-map.mjs` bundles
 * `map/main.ts` (d3-geo, topojson-client and the world-atlas countries, no
 * request to any other host) into `dist/map.js` of this package, which the
 * admin endpoint reads once at start. The herd command's own bundle
 * replaces this module with one holding the script itself, so an installed
 * command needs no file beside it.
 */
import { fileURLToPath } from "node:url"

/** `dist/map.js` of this package, from `src/` and from `dist/` alike. */
export const mapScriptPath: string | undefined = fileURLToPath(new URL("../dist/map.js", import.meta.url))

/** The script itself, where a bundle put it here. */
export const bundledMapScript: string | undefined = undefined
