/**
 * Loads a `HerdConfig` from a file: `.ts`, `.mts`, `.js` and `.mjs` modules
 * default-export the config, `.json` files hold it as JSON.
 *
 * Modules are loaded by jiti, which transpiles them itself whatever the
 * `package.json` around them says: a `.ts` config with `export default` in a
 * folder of `"type": "commonjs"` (as `npm init -y` leaves it) loads like
 * anywhere else. jiti is imported only when a module config is read.
 */
import { FileSystem } from "@effect/platform"
import { Effect } from "effect"
import * as NodePath from "node:path"
import { decodeConfig, HerdConfigError } from "./HerdConfig.ts"
import type { HerdConfigValue } from "./HerdConfig.ts"

const moduleExtensions = new Set([".ts", ".mts", ".js", ".mjs"])

/**
 * The module's exports as written: without jiti's default interop, so that a
 * module with no default export has none (with it, `default` would fall back
 * to the whole module). No module cache: a config edited between two loads
 * in one process is read anew.
 */
const importModule = (absolute: string): Promise<{ readonly default?: unknown }> =>
  import("jiti").then(({ createJiti }) =>
    createJiti(import.meta.url, { moduleCache: false, interopDefault: false })
      .import<{ readonly default?: unknown }>(absolute)
  )

/** An error of the loader in one line: Node's "Require stack" dropped, a parse error's location kept. */
const oneLine = (error: unknown): string => {
  const message = error instanceof Error ? error.message : String(error)
  return message.split("\nRequire stack:")[0]?.split("\n").map((line) => line.trim()).filter((line) => line !== "")
    .join(" ") ?? message
}

export const loadConfigFile = (
  path: string
): Effect.Effect<HerdConfigValue, HerdConfigError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const absolute = NodePath.resolve(path)
    const extension = NodePath.extname(absolute)
    const fail = (message: string, cause?: unknown) => new HerdConfigError({ source: path, message, cause })
    if (!(yield* fs.exists(absolute).pipe(Effect.orElseSucceed(() => false)))) {
      return yield* fail("no such file")
    }
    let input: unknown
    if (extension === ".json") {
      const text = yield* fs.readFileString(absolute).pipe(Effect.mapError((error) => fail(error.message, error)))
      input = yield* Effect.try({
        try: () => JSON.parse(text) as unknown,
        catch: (error) => fail(`not valid JSON: ${oneLine(error)}`, error)
      })
    } else if (moduleExtensions.has(extension)) {
      const module = yield* Effect.tryPromise({
        try: () => importModule(absolute),
        catch: (error) => fail(`cannot be loaded: ${oneLine(error)}`, error)
      })
      if (module.default === undefined) return yield* fail("has no default export")
      input = module.default
    } else {
      return yield* fail(`unknown extension "${extension}": use .ts, .mts, .js, .mjs or .json`)
    }
    return yield* decodeConfig(input, path)
  })
