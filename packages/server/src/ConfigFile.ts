/**
 * Loads a `HerdConfig` from a file: `.ts`, `.js` and `.mjs` modules
 * default-export the config (TypeScript through tsx, loaded only for a `.ts`
 * config), `.json` files hold it as JSON.
 */
import { FileSystem } from "@effect/platform"
import { Effect } from "effect"
import * as NodePath from "node:path"
import { pathToFileURL } from "node:url"
import { decodeConfig, HerdConfigError } from "./HerdConfig.ts"
import type { HerdConfigValue } from "./HerdConfig.ts"

const moduleExtensions = new Set([".ts", ".js", ".mjs"])

const importModule = (absolute: string): Promise<{ readonly default?: unknown }> => {
  const url = pathToFileURL(absolute).href
  return absolute.endsWith(".ts")
    ? import("tsx/esm/api").then(({ tsImport }) => tsImport(url, import.meta.url))
    : import(url)
}

export const loadConfigFile = (
  path: string
): Effect.Effect<HerdConfigValue, HerdConfigError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const absolute = NodePath.resolve(path)
    const extension = NodePath.extname(absolute)
    const fail = (message: string) => new HerdConfigError({ source: path, message })
    if (!(yield* fs.exists(absolute).pipe(Effect.orElseSucceed(() => false)))) {
      return yield* fail("no such file")
    }
    let input: unknown
    if (extension === ".json") {
      const text = yield* fs.readFileString(absolute).pipe(Effect.mapError((error) => fail(error.message)))
      input = yield* Effect.try({
        try: () => JSON.parse(text) as unknown,
        catch: (error) => fail(`not valid JSON: ${error instanceof Error ? error.message : String(error)}`)
      })
    } else if (moduleExtensions.has(extension)) {
      const module = yield* Effect.tryPromise({
        try: () => importModule(absolute),
        catch: (error) => fail(`cannot be loaded: ${error instanceof Error ? error.message : String(error)}`)
      })
      if (module.default === undefined) return yield* fail("has no default export")
      input = module.default
    } else {
      return yield* fail(`unknown extension "${extension}": use .ts, .js, .mjs or .json`)
    }
    return yield* decodeConfig(input, path)
  })
