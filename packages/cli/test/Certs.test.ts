/**
 * `herd certs` as a real process (the bundled command): the folder it
 * writes (the layout the server's TLS toolkit reads, keys mode 0600), the
 * certificates it makes used in real TLS handshakes on loopback (mutual TLS
 * between two of its servers verifies; a certificate of another herd's CA
 * does not), `--add` from the same CA, and never a CA replaced unasked.
 */
import { describe, expect, it } from "@effect/vitest"
import { Tls } from "@herd/server"
import { Effect, Either, Exit } from "effect"
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs"
import * as Crypto from "node:crypto"
import { join } from "node:path"
import { runHerd, tempDir } from "./support.ts"
import { loadCredentials, nextLine, outcomeTag, owned, sniffingListener } from "./tlsSupport.ts"

const modeOf = (file: string) => statSync(file).mode & 0o777

const writeConfig = (dir: string, servers: Record<string, { host?: string; port: number }>) => {
  const config = join(dir, "herd.json")
  writeFileSync(config, JSON.stringify({ servers }))
  return config
}

describe("herd certs", () => {
  it.scopedLive("writes a CA and a key and certificate per server, which verify each other in a mutual TLS handshake", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const out = join(dir, "certs")
      const config = writeConfig(dir, {
        Alford: { port: 0 },
        Bolden: { host: "herd-b.example", port: 0 },
        "Odd,name/x": { host: "0.0.0.0", port: 0 }
      })
      const run = yield* runHerd(["certs", "--config", config, "--out", out], { timeoutMs: 20_000 })
      expect(run.stderr).toBe("")
      expect(run.code).toBe(0)
      expect(run.stdout.split("\n")).toEqual([
        `herd CA: ${out}/ca.crt, ${out}/ca.key (keep ca.key here: only herd certs --add needs it)`,
        `Alford: ${out}/Alford.crt, ${out}/Alford.key (URI herd:server:Alford, IP 127.0.0.1)`,
        `Bolden: ${out}/Bolden.crt, ${out}/Bolden.key (URI herd:server:Bolden, DNS herd-b.example)`,
        `Odd,name/x: ${out}/Odd%2Cname%2Fx.crt, ${out}/Odd%2Cname%2Fx.key (URI herd:server:Odd%2Cname%2Fx)`,
        `Set tls: { dir: ${JSON.stringify(out)} } in the config; each machine needs ca.crt and its servers' .crt and .key.`,
        ""
      ])
      expect(readdirSync(out).sort()).toEqual([
        "Alford.crt",
        "Alford.key",
        "Bolden.crt",
        "Bolden.key",
        "Odd%2Cname%2Fx.crt",
        "Odd%2Cname%2Fx.key",
        "ca.crt",
        "ca.key"
      ])
      expect(modeOf(out)).toBe(0o700)
      for (const key of ["ca.key", "Alford.key", "Bolden.key", "Odd%2Cname%2Fx.key"]) expect(modeOf(join(out, key))).toBe(0o600)

      // What the certificates say, as Node reads them.
      const ca = new Crypto.X509Certificate(readFileSync(join(out, "ca.crt")))
      expect(ca.ca).toBe(true)
      expect(ca.subject).toMatch(/^CN=herd CA [0-9a-f]{8}$/)
      const alford = new Crypto.X509Certificate(readFileSync(join(out, "Alford.crt")))
      expect(alford.ca).toBe(false)
      expect(alford.checkIssued(ca) && alford.verify(ca.publicKey)).toBe(true)
      expect(alford.subjectAltName).toBe("URI:herd:server:Alford, IP Address:127.0.0.1")
      expect(alford.keyUsage).toEqual(["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"])
      expect(new Crypto.X509Certificate(readFileSync(join(out, "Bolden.crt"))).subjectAltName).toBe(
        "URI:herd:server:Bolden, DNS:herd-b.example"
      )
      expect(alford.checkPrivateKey(Crypto.createPrivateKey(readFileSync(join(out, "Alford.key"))))).toBe(true)

      // Every server's files load as a server with tls loads them.
      const credentials = {
        alford: yield* loadCredentials(out, "Alford"),
        bolden: yield* loadCredentials(out, "Bolden"),
        odd: yield* loadCredentials(out, "Odd,name/x")
      }
      expect(credentials.odd.name).toBe("Odd,name/x")

      // A real handshake between two of them: Bolden dials Alford, each verifies the other.
      const listener = yield* sniffingListener(credentials.alford)
      const link = yield* Effect.flatMap(
        Tls.dialPeer(credentials.bolden, { name: "Alford", host: "127.0.0.1", port: listener.port }, "5 seconds"),
        owned
      )
      const outcome = yield* listener.next
      expect(outcomeTag(outcome)).toBe("Tls Server Bolden")
      if (Either.isRight(outcome) && outcome.right._tag === "Tls") {
        expect(Either.isRight(Tls.authorizePeer(outcome.right.peer, "Bolden"))).toBe(true)
        expect(Either.isLeft(Tls.authorizePeer(outcome.right.peer, "Alford"))).toBe(true)
      }
      link.write("PEER Bolden\n")
      expect(yield* nextLine(link)).toBe("tls Server Bolden PEER Bolden")
    }), 60_000)

  it.scopedLive("a certificate from another herd's CA fails the handshake's checks, either way", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const config = writeConfig(dir, { Alford: { port: 0 }, Bolden: { port: 0 } })
      const [first, second] = yield* Effect.all([
        runHerd(["certs", "--config", config, "--out", join(dir, "one")], { timeoutMs: 20_000 }),
        runHerd(["certs", "--config", config, "--out", join(dir, "two")], { timeoutMs: 20_000 })
      ], { concurrency: 2 })
      expect([first.code, second.code]).toEqual([0, 0])
      const alford = yield* loadCredentials(join(dir, "one"), "Alford")
      const foreignBolden = yield* loadCredentials(join(dir, "two"), "Bolden")

      // Alford dials the other herd's Bolden: the server's certificate is refused.
      const foreign = yield* sniffingListener(foreignBolden)
      const dialled = yield* Effect.exit(Tls.dialPeer(alford, { name: "Bolden", host: "127.0.0.1", port: foreign.port }, "5 seconds"))
      expect(Exit.isFailure(dialled) && dialled.cause._tag === "Fail" && dialled.cause.error.reason).toBe("Handshake")

      // The other herd's Bolden dials Alford: its certificate proves nothing here.
      const listener = yield* sniffingListener(alford)
      yield* Effect.exit(Tls.dialPeer(foreignBolden, { name: "Alford", host: "127.0.0.1", port: listener.port }, "5 seconds"))
      const outcome = yield* listener.next
      // Alford's certificate is not of its CA. Node checks the chain once its
      // side of the handshake is done (TLS 1.3: after sending its own
      // certificate and Finished), then drops the connection: Alford's side
      // sees the handshake fail or, when it finished first, a certificate
      // the herd CA did not sign. Either way Bolden is not taken for a peer.
      expect(["error Handshake", "Tls Unverified"]).toContain(outcomeTag(outcome))
    }), 60_000)

  it.scopedLive("--add issues one more server from the same CA; nothing is replaced unless --force asks", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const out = join(dir, "certs")
      const config = writeConfig(dir, { Alford: { port: 0 } })
      expect((yield* runHerd(["certs", "--config", config, "--out", out], { timeoutMs: 20_000 })).code).toBe(0)
      const caBefore = readFileSync(join(out, "ca.crt"), "utf8")
      const caKeyBefore = readFileSync(join(out, "ca.key"), "utf8")

      const again = yield* runHerd(["certs", "--config", config, "--out", out])
      expect(again).toMatchObject({
        code: 2,
        stdout: "",
        stderr: `herd: ${out} already has a herd CA: --add <name> issues one more server from it, --force makes a new CA (every server's certificate with it)\n`
      })
      expect(readFileSync(join(out, "ca.crt"), "utf8")).toBe(caBefore)

      const added = yield* runHerd(["certs", "--config", config, "--add", "Welsh", "--out", out], { timeoutMs: 20_000 })
      expect(added).toMatchObject({ code: 0, stderr: "", stdout: `Welsh: ${out}/Welsh.crt, ${out}/Welsh.key (URI herd:server:Welsh)\n` })
      expect(readFileSync(join(out, "ca.crt"), "utf8")).toBe(caBefore)
      expect(readFileSync(join(out, "ca.key"), "utf8")).toBe(caKeyBefore)
      expect(modeOf(join(out, "Welsh.key"))).toBe(0o600)
      const welsh = yield* loadCredentials(out, "Welsh")
      const alford = yield* loadCredentials(out, "Alford")
      // Welsh, added later, and Alford are of one herd.
      const listener = yield* sniffingListener(alford)
      yield* Effect.flatMap(Tls.dialPeer(welsh, { name: "Alford", host: "127.0.0.1", port: listener.port }, "5 seconds"), owned)
      expect(outcomeTag(yield* listener.next)).toBe("Tls Server Welsh")

      const welshBefore = readFileSync(join(out, "Welsh.crt"), "utf8")
      expect(yield* runHerd(["certs", "--add", "Welsh", "--out", out])).toMatchObject({
        code: 2,
        stderr: `herd: ${out}/Welsh.crt exists: --force to issue Welsh a new one\n`
      })
      expect(readFileSync(join(out, "Welsh.crt"), "utf8")).toBe(welshBefore)
      expect((yield* runHerd(["certs", "--add", "Welsh", "--force", "--out", out], { timeoutMs: 20_000 })).code).toBe(0)
      expect(readFileSync(join(out, "Welsh.crt"), "utf8")).not.toBe(welshBefore)

      const forced = yield* runHerd(["certs", "--config", config, "--force", "--out", out], { timeoutMs: 20_000 })
      expect(forced.code).toBe(0)
      expect(readFileSync(join(out, "ca.crt"), "utf8")).not.toBe(caBefore)
      // No stray temporary file left by the atomic writes.
      expect(readdirSync(out).filter((file) => file.endsWith(".tmp"))).toEqual([])
    }), 90_000)

  it.scopedLive("usage errors: --add without a CA, a server named ca, no --out", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const [noCa, namedCa, noOut] = yield* Effect.all([
        runHerd(["certs", "--add", "Welsh", "--out", join(dir, "empty")]),
        runHerd(["certs", "--config", writeConfig(dir, { CA: { port: 0 } }), "--out", join(dir, "x")]),
        runHerd(["certs"])
      ], { concurrency: 3 })
      expect(noCa).toMatchObject({
        code: 2,
        stdout: "",
        stderr: `herd: ${join(dir, "empty", "ca.crt")} cannot be read: --add needs the herd CA that herd certs --out ${join(dir, "empty")} made\n`
      })
      expect(namedCa).toMatchObject({
        code: 2,
        stdout: "",
        stderr: "herd: a server named CA would write over the CA's files (ca.crt): rename it\n"
      })
      expect(noOut.code).toBe(2)
      expect(noOut.stderr).toMatch(/^herd: Expected to find option: '--out'/)
    }), 60_000)
})
