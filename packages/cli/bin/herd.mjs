#!/usr/bin/env node
// The herd command: runs the bundle in dist/, rebuilding it first when any
// source of the workspace is newer (so an edit never runs stale code).
import { readdirSync, statSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import { bundle, buildBundle } from "../build.mjs"

const packages = fileURLToPath(new URL("../../", import.meta.url))

const newestSource = (dir) => {
  let newest = 0
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    newest = Math.max(newest, entry.isDirectory() ? newestSource(path) : statSync(path).mtimeMs)
  }
  return newest
}

const bundleTime = (() => {
  try {
    return statSync(bundle).mtimeMs
  } catch {
    return 0
  }
})()
const sourceTime = Math.max(
  ...readdirSync(packages).map((name) => {
    try {
      return newestSource(join(packages, name, "src"))
    } catch {
      return 0
    }
  })
)
if (sourceTime > bundleTime) await buildBundle()
await import(pathToFileURL(bundle).href)
