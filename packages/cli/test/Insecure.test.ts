/**
 * The safe default (PROTOCOL.md section 10): `herd serve` and `herd up`
 * refuse to listen beyond loopback without `tls`, in one line naming
 * `--insecure`, exit 2, having listened on nothing; `--insecure`,
 * `insecure: true` or a `tls` config let them start. Loopback (127.0.0.0/8,
 * ::1, localhost) needs none of it. And the check itself, which library
 * users call too.
 */
import { describe, expect, it } from "@effect/vitest"
import { Exposure, HerdConfig } from "@herd/server"
import { Effect, Either } from "effect"
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { runHerd, spawn, tempDir, until } from "./support.ts"

const refusal = (name: string, host: string) =>
  `herd: ${name} would listen on ${host}, beyond loopback, without tls: anyone who reaches it could rewrite the herd's locations; set tls (herd certs), or pass --insecure (insecure: true) to serve in clear\n`

const writeConfig = (dir: string, file: string, config: object) => {
  const path = join(dir, file)
  writeFileSync(path, JSON.stringify({ logDir: join(dir, "logs"), dataDir: join(dir, "data"), ...config }))
  return path
}

/** Starts `herd args`, waits until it says it listens, stops it with SIGTERM: it must exit 0. */
const startsAndListens = (args: ReadonlyArray<string>, cwd: string) =>
  Effect.scoped(Effect.gen(function*() {
    const herd = yield* spawn(args, { cwd })
    yield* until(() => /listening on /.test(herd.stdout()) || herd.child.exitCode !== null, `herd ${args.join(" ")} to listen`)
    expect(herd.stderr()).toBe("")
    const said = herd.stdout()
    herd.child.kill("SIGTERM")
    const exited = yield* herd.exited()
    expect(exited.code, herd.stderr()).toBe(0)
    return said
  }))

describe("the safe default", () => {
  it.scopedLive("serve and up refuse an address beyond loopback without tls: one line naming --insecure, exit 2", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const anyV4 = writeConfig(dir, "any.json", { servers: { Alford: { host: "0.0.0.0", port: 0 } } })
      const mixed = writeConfig(dir, "mixed.json", {
        servers: { Alford: { port: 0 }, Bolden: { host: "::", port: 0 }, Parker: { host: "10.1.2.3", port: 0 } }
      })
      const [serve, up] = yield* Effect.all([
        runHerd(["serve", "Alford", "--config", anyV4], { cwd: dir }),
        runHerd(["up", "--config", mixed], { cwd: dir })
      ], { concurrency: 2 })
      expect(serve).toMatchObject({ code: 2, stdout: "", stderr: refusal("Alford", "0.0.0.0") })
      expect(up).toMatchObject({ code: 2, stdout: "", stderr: refusal("Bolden", "::") })
      // Alford, on loopback, was not started either.
      expect(up.stdout).not.toMatch(/listening/)
    }), 60_000)

  it.scopedLive("--insecure, insecure: true, or tls: it starts", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const anyV4 = writeConfig(dir, "any.json", { servers: { Alford: { host: "0.0.0.0", port: 0 } } })
      const declared = writeConfig(dir, "declared.json", { servers: { Alford: { host: "0.0.0.0", port: 0 } }, insecure: true })
      const certs = join(dir, "certs")
      const withTls = writeConfig(dir, "tls.json", { servers: { Alford: { host: "0.0.0.0", port: 0 } }, tls: { dir: certs } })
      expect((yield* runHerd(["certs", "--config", withTls, "--out", certs], { timeoutMs: 20_000 })).code).toBe(0)
      expect(yield* startsAndListens(["serve", "Alford", "--insecure", "--config", anyV4], dir)).toMatch(/Alford listening on 0\.0\.0\.0:\d+/)
      expect(yield* startsAndListens(["up", "--config", anyV4, "--insecure"], dir)).toMatch(/Alford listening on 0\.0\.0\.0:\d+/)
      expect(yield* startsAndListens(["serve", "Alford", "--config", declared], dir)).toMatch(/Alford listening on 0\.0\.0\.0:\d+/)
      expect(yield* startsAndListens(["serve", "Alford", "--config", withTls], dir)).toMatch(/Alford listening on 0\.0\.0\.0:\d+/)
    }), 90_000)

  it.scopedLive("loopback needs no flag: 127.0.0.0/8 and localhost", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const config = writeConfig(dir, "loopback.json", {
        servers: { Alford: { host: "127.0.0.1", port: 0 }, Bolden: { host: "127.0.0.2", port: 0 }, Parker: { host: "localhost", port: 0 } }
      })
      const said = yield* startsAndListens(["up", "--config", config], dir)
      expect(said).toMatch(/Alford listening on 127\.0\.0\.1:\d+/)
    }), 60_000)
})

describe("Exposure.check", () => {
  const check = (servers: Record<string, { host?: string; port: number }>, extra: object = {}, insecure = false) =>
    Effect.map(
      HerdConfig.decodeConfig({ servers, ...extra }, "test"),
      (config) => Either.mapLeft(Exposure.check(config, Object.keys(config.servers), insecure), (error) => `${error.server} ${error.host}`)
    )

  it.effect("loopback is 127.0.0.0/8, ::1 and localhost, however written; anything else needs tls or insecure", () =>
    Effect.gen(function*() {
      for (const host of ["127.0.0.1", "127.255.0.9", "::1", "[::1]", "0:0:0:0:0:0:0:1", "::ffff:127.0.0.1", "localhost", "LOCALHOST"]) {
        expect(Exposure.isLoopback(host), host).toBe(true)
      }
      for (const host of ["0.0.0.0", "::", "", "10.0.0.1", "128.0.0.1", "::ffff:10.0.0.1", "example.com", "localhost.example", "127.0.0.1.nip.io"]) {
        expect(Exposure.isLoopback(host), host).toBe(false)
      }
      expect(yield* check({ A: { port: 1 }, B: { host: "::1", port: 2 } })).toEqual(Either.void)
      expect(yield* check({ A: { port: 1 }, B: { host: "10.0.0.1", port: 2 } })).toEqual(Either.left("B 10.0.0.1"))
      expect(yield* check({ B: { host: "10.0.0.1", port: 2 } }, {}, true)).toEqual(Either.void)
      expect(yield* check({ B: { host: "10.0.0.1", port: 2 } }, { insecure: true })).toEqual(Either.void)
      expect(yield* check({ B: { host: "10.0.0.1", port: 2 } }, { tls: { dir: "certs" } })).toEqual(Either.void)
    }))

  it.effect("an admin endpoint beyond loopback needs insecure, with tls or without; on loopback it needs nothing", () =>
    Effect.gen(function*() {
      const withAdmin = (host: string, tls: boolean, insecure: boolean) =>
        HerdConfig.decodeConfig({
          servers: { A: { host, port: 9000, httpPort: 9100 } },
          ...(tls ? { tls: { dir: "certs" } } : {}),
          insecure
        }, "test")
      const refused = Exposure.check(yield* withAdmin("10.0.0.5", true, false), ["A"])
      expect(Either.isLeft(refused)).toBe(true)
      if (Either.isLeft(refused)) {
        expect(refused.left.message).toBe(
          "A's admin endpoint (httpPort 9100) would listen on 10.0.0.5, beyond loopback: it is plain HTTP with no authentication and shows every client's location; drop httpPort, or pass --insecure (insecure: true) to serve it anyway"
        )
      }
      expect(Either.isLeft(Exposure.check(yield* withAdmin("10.0.0.5", false, false), ["A"]))).toBe(true)
      expect(Exposure.check(yield* withAdmin("10.0.0.5", true, true), ["A"])).toEqual(Either.void)
      expect(Exposure.check(yield* withAdmin("10.0.0.5", true, false), ["A"], true)).toEqual(Either.void)
      expect(Exposure.check(yield* withAdmin("127.0.0.1", false, false), ["A"])).toEqual(Either.void)
    }))

  it.effect("only the servers asked about count", () =>
    Effect.gen(function*() {
      const config = yield* HerdConfig.decodeConfig({ servers: { A: { port: 1 }, B: { host: "0.0.0.0", port: 2 } } }, "test")
      expect(Exposure.check(config, ["A"])).toEqual(Either.void)
      expect(Either.isLeft(Exposure.check(config, ["A", "B"]))).toBe(true)
      expect(Exposure.check(config, ["Nobody"])).toEqual(Either.void)
    }))
})
