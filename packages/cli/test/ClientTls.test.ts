/**
 * `herd client --tls` as a real process, against a listener that sniffs
 * plain and TLS on one port with the server's TLS toolkit and certificates
 * made by `herd certs`: the session is TLS (the listener sees a TLS client
 * without a certificate), verified against the config's `tls.dir` or
 * `--ca FILE`; a server whose certificate names another server, or comes
 * from another CA, is refused in one line, exit 1.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { runHerd, tempDir } from "./support.ts"
import { loadCredentials, outcomeTag, sniffingListener } from "./tlsSupport.ts"

describe("herd client --tls", () => {
  it.scopedLive("speaks TLS to the server, verified by the config's tls.dir or --ca, and still plain without --tls", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const certs = join(dir, "certs")
      const config = join(dir, "herd.json")
      writeFileSync(config, JSON.stringify({ servers: { Alford: { port: 0 }, Bolden: { port: 0 } }, tls: { dir: certs } }))
      expect((yield* runHerd(["certs", "--config", config, "--out", certs], { timeoutMs: 20_000 })).code).toBe(0)
      const listener = yield* sniffingListener(yield* loadCredentials(certs, "Alford"))
      writeFileSync(config, JSON.stringify({ servers: { Alford: { port: listener.port } }, tls: { dir: certs } }))

      const byName = yield* runHerd(["client", "Alford", "--tls", "--config", config], {
        input: "IAMAT kiwi +34.068930-118.445127 1621464827.959498503\nWHATSAT kiwi 10 5\n"
      })
      expect(byName).toMatchObject({
        code: 0,
        stderr: "",
        stdout: "tls Anonymous IAMAT kiwi +34.068930-118.445127 1621464827.959498503\ntls Anonymous WHATSAT kiwi 10 5\n"
      })
      expect(outcomeTag(yield* listener.next)).toBe("Tls Anonymous")

      const byAddress = yield* runHerd(["client", `127.0.0.1:${listener.port}`, "--ca", join(certs, "ca.crt")], { input: "one\n" })
      expect(byAddress).toMatchObject({ code: 0, stderr: "", stdout: "tls Anonymous one\n" })
      expect(outcomeTag(yield* listener.next)).toBe("Tls Anonymous")

      const plain = yield* runHerd(["client", "Alford", "--config", config], { input: "two\n" })
      expect(plain).toMatchObject({ code: 0, stderr: "", stdout: "plain two\n" })
      expect(outcomeTag(yield* listener.next)).toBe("Plain")
    }), 60_000)

  it.scopedLive("refuses a server whose certificate names another server, or comes from another CA: one line, exit 1", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const certs = join(dir, "certs")
      const otherCerts = join(dir, "other")
      const config = join(dir, "herd.json")
      writeFileSync(config, JSON.stringify({ servers: { Alford: { port: 0 }, Bolden: { port: 0 } }, tls: { dir: certs } }))
      const made = yield* Effect.all([
        runHerd(["certs", "--config", config, "--out", certs], { timeoutMs: 20_000 }),
        runHerd(["certs", "--config", config, "--out", otherCerts], { timeoutMs: 20_000 })
      ], { concurrency: 2 })
      expect(made.map(({ code }) => code)).toEqual([0, 0])
      const listener = yield* sniffingListener(yield* loadCredentials(certs, "Alford"))
      // The config puts Bolden where Alford listens.
      writeFileSync(config, JSON.stringify({ servers: { Bolden: { port: listener.port } }, tls: { dir: certs } }))

      const misnamed = yield* runHerd(["client", "Bolden", "--tls", "--config", config], { input: "one\n" })
      expect(misnamed).toMatchObject({
        code: 1,
        stdout: "",
        stderr: `herd: cannot reach Bolden at 127.0.0.1:${listener.port}: the server's certificate names Alford, not Bolden\n`
      })

      const foreign = yield* runHerd(["client", `127.0.0.1:${listener.port}`, "--ca", join(otherCerts, "ca.crt")], { input: "one\n" })
      expect(foreign.code).toBe(1)
      expect(foreign.stdout).toBe("")
      expect(foreign.stderr).toMatch(new RegExp(`^herd: cannot reach 127\\.0\\.0\\.1:${listener.port}: TLS handshake failed: [^\\n]+\\n$`))
    }), 60_000)

  it.scopedLive("--tls without a CA to verify with is a usage error", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const config = join(dir, "herd.json")
      writeFileSync(config, JSON.stringify({ servers: { Alford: { port: 1 } } }))
      const [noTls, notPem] = yield* Effect.all([
        runHerd(["client", "Alford", "--tls", "--config", config]),
        runHerd(["client", "127.0.0.1:1", "--ca", config])
      ], { concurrency: 2 })
      expect(noTls).toMatchObject({
        code: 2,
        stdout: "",
        stderr: `herd: --tls needs the herd CA: --ca FILE, or a config with tls.dir (${config} has none)\n`
      })
      expect(notPem).toMatchObject({ code: 2, stdout: "", stderr: `herd: ${config} is not a PEM CA certificate\n` })
    }), 60_000)
})
