import { describe, expect, it } from "@effect/vitest"
import { NodeContext } from "@effect/platform-node"
import { Effect, Either } from "effect"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { ConfigFile, HerdConfig } from "../src/index.ts"

const defaultHerdPath = fileURLToPath(new URL("../../../herd.config.ts", import.meta.url))

const messageOf = (input: unknown) =>
  Effect.map(Effect.either(HerdConfig.decodeConfig(input, "test")), (result) =>
    Either.match(result, { onLeft: (error) => error.message, onRight: () => "accepted" }))

describe("HerdConfig", () => {
  it.effect("accepts the default herd and fills in the defaults", () =>
    Effect.gen(function*() {
      const config = yield* ConfigFile.loadConfigFile(defaultHerdPath).pipe(Effect.provide(NodeContext.layer))
      expect(Object.keys(config.servers)).toEqual(["Alford", "Bolden", "Hamilton", "Parker", "Welsh"])
      expect(HerdConfig.neighboursOf(config, "Parker")).toEqual(["Alford", "Bolden", "Hamilton"])
      expect(HerdConfig.neighboursOf(config, "Hamilton")).toEqual(["Parker"])
      expect(config.lineLimit).toBe(8192)
      expect(config.limits).toEqual({ maxConnections: 10000, partialLineTimeoutMs: 30000, pendingReplyBytes: 262144, maxClientAheadMs: 600000 })
      const minimal = yield* HerdConfig.decodeConfig({ servers: { A: { port: 1 } } }, "test")
      expect(minimal).toMatchObject({ links: [], logDir: "logs", lineLimit: 8192, reconnect: { initialMs: 50, capMs: 5000 } })
      expect(minimal.servers["A"]).toEqual({ host: "127.0.0.1", port: 1 })
    }))

  it.effect("names the field of a link to an unknown server", () =>
    Effect.gen(function*() {
      const message = yield* messageOf({
        servers: { Alford: { port: 1 }, Parker: { port: 2 } },
        links: [["Alford", "Parker"], ["Parker", "Alford"], ["Alford", "Parkr"]]
      })
      expect(message).toBe(`links[2][1]: unknown server "Parkr"`)
    }))

  it.effect("names the field of a bad value", () =>
    Effect.gen(function*() {
      expect(yield* messageOf({ servers: { A: { port: 70000 } } })).toBe(
        `servers.A.port: must be an integer from 0 to 65535`
      )
      expect(yield* messageOf({ servers: { A: { port: 1 } }, lineLimit: -1 })).toBe(
        `lineLimit: must be a positive integer`
      )
      expect(yield* messageOf({ servers: { A: { port: 1 } }, reconect: {} })).toContain("reconect")
      expect(yield* messageOf({ servers: {} })).toBe("servers: names no server")
    }))

  it.effect("refuses two servers on one address, naming both", () =>
    Effect.gen(function*() {
      expect(yield* messageOf({
        servers: {
          Alford: { host: "127.0.0.1", port: 11800 },
          Bolden: { port: 11800 },
          Hamilton: { host: "::1", port: 11800 },
          Parker: { host: "[::1]", port: 11800 },
          Welsh: { host: "LOCALHOST", port: 11801 },
          "Other-one": { host: "localhost", port: 11801 }
        }
      })).toBe([
        "servers.Bolden: same address as servers.Alford (127.0.0.1:11800)",
        "servers.Parker: same address as servers.Hamilton ([::1]:11800)",
        `servers["Other-one"]: same address as servers.Welsh (localhost:11801)`
      ].join("\n"))
      // Port 0 is any free port: never shared. Another host or port is another address.
      expect(yield* messageOf({
        servers: {
          A: { port: 0 },
          B: { port: 0 },
          C: { host: "127.0.0.2", port: 11800 },
          D: { port: 11800 },
          E: { port: 11801 }
        }
      })).toBe("accepted")
    }))
})

describe("loadConfigFile", () => {
  it.effect("reads JSON, and says what is wrong with a file it cannot use", () =>
    Effect.gen(function*() {
      const dir = yield* Effect.sync(() => mkdtempSync(join(tmpdir(), "herd-config-")))
      const good = join(dir, "herd.json")
      const bad = join(dir, "bad.json")
      const yaml = join(dir, "herd.yaml")
      writeFileSync(good, JSON.stringify({ servers: { Solo: { port: 4000 } } }))
      writeFileSync(bad, "{ not json")
      writeFileSync(yaml, "servers: {}")
      const load = (path: string) =>
        ConfigFile.loadConfigFile(path).pipe(
          Effect.map((config) => Object.keys(config.servers).join()),
          Effect.catchTag("HerdConfigError", (error) => Effect.succeed(error.message)),
          Effect.provide(NodeContext.layer)
        )
      expect(yield* load(good)).toBe("Solo")
      expect(yield* load(bad)).toMatch(/^not valid JSON/)
      expect(yield* load(yaml)).toBe(`unknown extension ".yaml": use .ts, .mts, .js, .mjs or .json`)
      expect(yield* load(join(dir, "missing.json"))).toBe("no such file")
      rmSync(dir, { recursive: true })
    }))

  it.scoped("loads .ts, .mts, .js and .mjs configs from a folder of \"type\": \"commonjs\", and names one with no default export", () =>
    Effect.gen(function*() {
      const dir = yield* Effect.acquireRelease(
        Effect.sync(() => mkdtempSync(join(tmpdir(), "herd-config-"))),
        (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
      )
      // What `npm init -y` writes.
      writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "elsewhere", version: "1.0.0", type: "commonjs" }))
      const write = (name: string, text: string) => {
        writeFileSync(join(dir, name), text)
        return join(dir, name)
      }
      const typed = [
        `import type { HerdConfig } from "@herd/server"`,
        `const port: number = 4001`,
        `export default { servers: { Typed: { port } }, links: [] } satisfies HerdConfig.HerdConfigInput`
      ].join("\n")
      const configs = {
        ts: write("herd.config.ts", typed),
        mts: write("herd.config.mts", typed.replace("Typed", "Mts")),
        js: write("herd.config.js", `export default { servers: { Js: { port: 4002 } } }`),
        mjs: write("herd.config.mjs", `export default { servers: { Mjs: { port: 4003 } } }`),
        cjs: write("common.js", `module.exports = { servers: { Common: { port: 4004 } } }`),
        none: write("none.ts", `export const servers = { A: { port: 1 } }`),
        broken: write("broken.ts", `export default {`),
        throws: write("throws.mjs", `throw new Error("no config today")`)
      }
      const load = (path: string) =>
        ConfigFile.loadConfigFile(path).pipe(
          Effect.map((config) => Object.keys(config.servers).join()),
          Effect.catchTag("HerdConfigError", (error) => Effect.succeed(error.message)),
          Effect.provide(NodeContext.layer)
        )
      expect(yield* load(configs.ts)).toBe("Typed")
      expect(yield* load(configs.mts)).toBe("Mts")
      expect(yield* load(configs.js)).toBe("Js")
      expect(yield* load(configs.mjs)).toBe("Mjs")
      expect(yield* load(configs.cjs)).toBe("Common")
      expect(yield* load(configs.none)).toBe("has no default export")
      expect(yield* load(configs.broken)).toMatch(/^cannot be loaded: .*broken\.ts:\d+/)
      expect(yield* load(configs.throws)).toBe("cannot be loaded: no config today")
      // Read anew each time: an edited config is not served from a cache.
      write("herd.config.js", `export default { servers: { Edited: { port: 4002 } } }`)
      expect(yield* load(configs.js)).toBe("Edited")
    }))
})
