#!/usr/bin/env node
// The herd command: runs the bundle in dist/. Inside the repository, where
// the sources sit beside it, it first rebuilds the bundle when any source of
// the workspace is newer, so an edit never runs stale code; an installed
// package holds the bundle alone.
import { existsSync, readdirSync, statSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"

const bundle = fileURLToPath(new URL("../dist/herd.mjs", import.meta.url))
const packages = fileURLToPath(new URL("../../", import.meta.url))
const inRepository = existsSync(fileURLToPath(new URL("../src/main.ts", import.meta.url)))

const newestSource = (dir) => {
  let newest = 0
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    newest = Math.max(newest, entry.isDirectory() ? newestSource(path) : statSync(path).mtimeMs)
  }
  return newest
}

const modifiedTime = (path) => {
  try {
    return statSync(path).mtimeMs
  } catch {
    return 0
  }
}

if (inRepository) {
  const sourceTime = Math.max(
    ...readdirSync(packages).map((name) => {
      const sources = join(packages, name, "src")
      return existsSync(sources) ? newestSource(sources) : 0
    })
  )
  if (sourceTime > modifiedTime(bundle)) {
    const { buildBundle } = await import("../build.mjs")
    await buildBundle()
  }
}
await import(pathToFileURL(bundle).href)
