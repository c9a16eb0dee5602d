/**
 * The config the `herd` command reads, as a real process: `./herd.config.ts`
 * of the working directory when there is no `--config`, loaded whatever the
 * `package.json` of its folder says (here the `"type": "commonjs"` that
 * `npm init -y` writes, with a TypeScript config using `export default`);
 * a module with no default export is a usage error that says so.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { runHerd, spawn, tempDir, until } from "./support.ts"

describe("the config of herd", () => {
  it.scopedLive("./herd.config.ts with export default, in a folder of \"type\": \"commonjs\"", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "elsewhere", version: "1.0.0", main: "index.js", type: "commonjs" }))
      writeFileSync(join(dir, "herd.config.ts"), [
        `import type { HerdConfig } from "@herd/server"`,
        `const port: number = 0`,
        `export default { servers: { Typed: { port } }, logDir: "logs" } satisfies HerdConfig.HerdConfigInput`
      ].join("\n"))
      const herd = yield* spawn(["serve", "Typed"], { cwd: dir })
      yield* until(() => /Typed listening on 127\.0\.0\.1:\d+/.test(herd.stdout()), `the server to listen: ${herd.stderr()}`)
      herd.child.kill("SIGTERM")
      expect((yield* herd.exited()).code).toBe(0)
      expect(herd.stderr()).toBe("")
    }), 30_000)

  it.scopedLive("a .mts config by --config, and a module with no default export", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "elsewhere", type: "commonjs" }))
      writeFileSync(join(dir, "herd.mts"), `export default { servers: { Mts: { port: 1 as number } } }`)
      writeFileSync(join(dir, "none.ts"), `export const servers = { A: { port: 1 } }`)
      const [named, none] = yield* Effect.all([
        runHerd(["client", "Nope", "--config", join(dir, "herd.mts")], { cwd: dir }),
        runHerd(["up", "--config", join(dir, "none.ts")], { cwd: dir })
      ], { concurrency: 2 })
      // Loaded: it knows the servers of the .mts file.
      expect(named).toMatchObject({ code: 2, stderr: `herd: no server "Nope" in ${join(dir, "herd.mts")} (its servers: Mts)\n` })
      expect(none).toMatchObject({
        code: 2,
        stdout: "",
        stderr: `herd: config ${join(dir, "none.ts")}:\nhas no default export\n`
      })
    }), 30_000)
})
