/**
 * The TLS toolkit with real sockets on loopback: tls.dir loaded and checked,
 * the first-byte sniff (plain lines and TLS clients on one port), the
 * identity a peer's certificate proves, and the dial of a peer link.
 *
 * The certificates are made here, per test run, with the library `herd certs`
 * uses, so that expired, foreign and misnamed ones can be made too and none
 * of them expires in the repository.
 */
import "reflect-metadata"
import { describe, expect, it } from "@effect/vitest"
import { NodeContext } from "@effect/platform-node"
import * as x509 from "@peculiar/x509"
import { PlacesClient } from "@herd/places"
import { Context, Duration, Effect, Either, Exit, Fiber, Layer, Option, Queue, Scope } from "effect"
import * as Crypto from "node:crypto"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import * as Net from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as NodeTls from "node:tls"
import * as HerdConfig from "../src/HerdConfig.ts"
import * as HerdServer from "../src/HerdServer.ts"
import * as Tls from "../src/internal/Tls.ts"

x509.cryptoProvider.set(Crypto.webcrypto)

const algorithm = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const
const day = 24 * 60 * 60 * 1000

interface Ca {
  readonly certificate: x509.X509Certificate
  readonly keys: Crypto.webcrypto.CryptoKeyPair
  readonly pem: string
}

interface Issued {
  readonly cert: string
  readonly key: string
}

const promise = <A>(run: () => Promise<A>) => Effect.promise(run)

const makeCa = (name: string): Effect.Effect<Ca> =>
  Effect.gen(function*() {
    const keys = yield* promise(() => Crypto.webcrypto.subtle.generateKey(algorithm, true, ["sign", "verify"]))
    const keyId = yield* promise(() => x509.SubjectKeyIdentifierExtension.create(keys.publicKey))
    const certificate = yield* promise(() =>
      x509.X509CertificateGenerator.createSelfSigned({
        name: [{ CN: [name] }],
        notBefore: new Date(Date.now() - day),
        notAfter: new Date(Date.now() + 30 * day),
        keys,
        signingAlgorithm: algorithm,
        extensions: [
          new x509.BasicConstraintsExtension(true, 0, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true),
          keyId
        ]
      })
    )
    return { certificate, keys, pem: certificate.toString("pem") }
  })

const issue = (
  ca: Ca,
  name: string,
  options: { readonly notAfter?: Date; readonly usages?: ReadonlyArray<string> } = {}
): Effect.Effect<Issued> =>
  Effect.gen(function*() {
    const keys = yield* promise(() => Crypto.webcrypto.subtle.generateKey(algorithm, true, ["sign", "verify"]))
    const keyId = yield* promise(() => x509.SubjectKeyIdentifierExtension.create(keys.publicKey))
    const caKeyId = yield* promise(() => x509.AuthorityKeyIdentifierExtension.create(ca.keys.publicKey))
    const certificate = yield* promise(() =>
      x509.X509CertificateGenerator.create({
        subject: [{ CN: [name] }],
        issuer: ca.certificate.subjectName,
        notBefore: new Date(Date.now() - 2 * day),
        notAfter: options.notAfter ?? new Date(Date.now() + 30 * day),
        publicKey: keys.publicKey,
        signingKey: ca.keys.privateKey,
        signingAlgorithm: algorithm,
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
          new x509.ExtendedKeyUsageExtension([
            ...(options.usages ?? [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth])
          ]),
          new x509.SubjectAlternativeNameExtension([{ type: "url", value: Tls.serverUri(name) }]),
          keyId,
          caKeyId
        ]
      })
    )
    const pkcs8 = yield* promise(() => Crypto.webcrypto.subtle.exportKey("pkcs8", keys.privateKey))
    return { cert: certificate.toString("pem"), key: x509.PemConverter.encode(pkcs8, "PRIVATE KEY") }
  })

const tempDir: Effect.Effect<string, never, Scope.Scope> = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "herd-tls-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

/** A tls.dir holding `ca` and the given servers' files. */
const writeDir = (caPem: string, servers: Record<string, Issued>) =>
  Effect.gen(function*() {
    const dir = yield* tempDir
    writeFileSync(join(dir, Tls.caCertFile), caPem)
    for (const [name, issued] of Object.entries(servers)) {
      const files = Tls.serverFiles(name)
      writeFileSync(join(dir, files.cert), issued.cert)
      writeFileSync(join(dir, files.key), issued.key, { mode: 0o600 })
    }
    return dir
  })

const load = (dir: string, name: string, clients: "optional" | "required" = "optional") =>
  Tls.load({ dir, name, clients }).pipe(Effect.provide(NodeContext.layer))

/** Everything a test needs: the herd CA, Alford and Bolden, and a foreign CA's "Bolden". */
const herd = Effect.gen(function*() {
  const ca = yield* makeCa("herd CA test")
  const other = yield* makeCa("herd CA test")
  const servers = { Alford: yield* issue(ca, "Alford"), Bolden: yield* issue(ca, "Bolden") }
  const dir = yield* writeDir(ca.pem, servers)
  const foreign = yield* issue(other, "Bolden")
  const foreignDir = yield* writeDir(other.pem, { Bolden: foreign })
  return {
    ca,
    other,
    servers,
    foreign,
    dir,
    alford: yield* load(dir, "Alford"),
    bolden: yield* load(dir, "Bolden"),
    foreignBolden: yield* load(foreignDir, "Bolden")
  }
})

// -----------------------------------------------------------------------------
// A sniffing listener: what each connection turned out to be, and an echo
// -----------------------------------------------------------------------------

type Outcome = Either.Either<Tls.Accepted, Tls.TlsError>

const describeIdentity = (peer: Tls.PeerIdentity) =>
  peer._tag === "Server" ? `Server ${peer.names.join(",")}` : peer._tag

/** Answers each line with the kind of connection and the line: `plain <line>` or `tls <identity> <line>`. */
const echoLines = (socket: Net.Socket, prefix: string) => {
  let pending = ""
  socket.on("data", (chunk: Buffer) => {
    pending += chunk.toString("latin1")
    let end: number
    while ((end = pending.indexOf("\n")) >= 0) {
      socket.write(`${prefix} ${pending.slice(0, end)}\n`)
      pending = pending.slice(end + 1)
    }
  })
}

const sniffingListener = (
  credentials: Tls.Credentials,
  options: { readonly handshakeTimeout?: Duration.DurationInput } = {}
) =>
  Effect.gen(function*() {
    const outcomes = yield* Queue.unbounded<Outcome>()
    const sockets = new Set<Net.Socket>()
    const handle = (socket: Net.Socket) =>
      Tls.accept(socket, credentials, options.handshakeTimeout === undefined ? {} : { handshakeTimeout: options.handshakeTimeout }).pipe(
        Effect.tap((accepted) =>
          Effect.sync(() => {
            if (accepted._tag === "Plain") {
              echoLines(accepted.socket, "plain")
              accepted.socket.resume()
            } else {
              echoLines(accepted.socket, `tls ${describeIdentity(accepted.peer)}`)
            }
          })
        ),
        Effect.either,
        Effect.flatMap((outcome) => Queue.offer(outcomes, outcome))
      )
    const server = yield* Effect.acquireRelease(
      Effect.async<Net.Server>((resume) => {
        const server = Net.createServer((socket) => {
          sockets.add(socket)
          socket.on("close", () => sockets.delete(socket))
          Effect.runFork(handle(socket))
        })
        server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
      }),
      (server) =>
        Effect.async<void>((resume) => {
          sockets.forEach((socket) => socket.destroy())
          server.close(() => resume(Effect.void))
        })
    )
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    return { port, next: Queue.take(outcomes).pipe(Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => new Error("no outcome within 5 s") })) }
  })

// -----------------------------------------------------------------------------
// Clients
// -----------------------------------------------------------------------------

/** A socket closed with the test's scope. */
const owned = <S extends Net.Socket>(socket: S): Effect.Effect<S, never, Scope.Scope> =>
  Effect.acquireRelease(Effect.succeed(socket), (socket) => Effect.sync(() => socket.destroy()))

const plainClient = (port: number) =>
  Effect.flatMap(
    Effect.async<Net.Socket, Error>((resume) => {
      const socket = Net.connect({ host: "127.0.0.1", port }, () => resume(Effect.succeed(socket)))
      socket.on("error", (error) => resume(Effect.fail(error)))
    }),
    owned
  )

/** The next line the socket receives, or `closed` if it closes first; within 5 s. */
const nextLine = (socket: Net.Socket) =>
  Effect.async<string>((resume) => {
    let text = ""
    const onData = (chunk: Buffer) => {
      text += chunk.toString("latin1")
      const end = text.indexOf("\n")
      if (end >= 0) {
        stop()
        resume(Effect.succeed(text.slice(0, end)))
      }
    }
    const onClose = () => {
      stop()
      resume(Effect.succeed("closed"))
    }
    const stop = () => {
      socket.off("data", onData)
      socket.off("close", onClose)
    }
    socket.on("data", onData)
    socket.on("close", onClose)
    socket.on("error", () => {})
    return Effect.sync(stop)
  }).pipe(Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => new Error("no line within 5 s") }))

const dialOwned = (options: Tls.DialOptions) => Effect.flatMap(Tls.dial(options), owned)

const clientContext = (caPem: string) => Either.getOrThrow(Tls.clientContext(caPem))

const expectTlsError = (exit: Exit.Exit<unknown, Tls.TlsError>, reason: Tls.TlsErrorReason, message?: RegExp) => {
  expect(Exit.isFailure(exit)).toBe(true)
  if (Exit.isFailure(exit)) {
    const error = exit.cause._tag === "Fail" ? exit.cause.error : undefined
    expect(error?.reason, String(exit.cause)).toBe(reason)
    if (message !== undefined) expect(error?.message).toMatch(message)
  }
}

const outcomeTag = (outcome: Outcome) =>
  Either.match(outcome, {
    onLeft: (error) => `error ${error.reason}`,
    onRight: (accepted) => accepted._tag === "Plain" ? "Plain" : `Tls ${describeIdentity(accepted.peer)}`
  })

// -----------------------------------------------------------------------------

describe("names", () => {
  it("a server's name as a URI and a file name, whatever printable ASCII it holds", () => {
    expect(Tls.serverUri("Alford")).toBe("herd:server:Alford")
    expect(Tls.serverFiles("Alford")).toEqual({ cert: "Alford.crt", key: "Alford.key" })
    const odd = `a/b, "c'd\\:%`
    expect(Tls.serverUri(odd)).toBe("herd:server:a%2Fb%2C%20%22c%27d%5C%3A%25")
    expect(Tls.serverFiles(odd).cert).toBe("a%2Fb%2C%20%22c%27d%5C%3A%25.crt")
    expect(Tls.serverNamesOf(`URI:${Tls.serverUri(odd)}, IP Address:127.0.0.1, URI:${Tls.serverUri("Bolden")}`)).toEqual([
      odd,
      "Bolden"
    ])
    // Node writes a value holding a comma or quote as a JSON string.
    expect(Tls.serverNamesOf(`DNS:"a,b", URI:herd:server:Welsh, URI:"http://x/,y"`)).toEqual(["Welsh"])
    expect(Tls.serverNamesOf(undefined)).toEqual([])
    expect(Tls.serverNamesOf("URI:https://Alford, DNS:Alford")).toEqual([])
  })
})

describe("load", () => {
  it.scopedLive("loads tls.dir for a server, and names the file that is missing or wrong", () =>
    Effect.gen(function*() {
      const ca = yield* makeCa("herd CA test")
      const other = yield* makeCa("herd CA other")
      const alford = yield* issue(ca, "Alford")
      const bolden = yield* issue(ca, "Bolden")
      const good = yield* writeDir(ca.pem, { Alford: alford })
      const loaded = yield* load(good, "Alford", "required")
      expect(loaded.name).toBe("Alford")
      expect(loaded.clients).toBe("required")

      const missing = yield* Effect.exit(load(good, "Bolden"))
      expectTlsError(missing, "MissingFile", /Bolden\.crt is missing \(herd certs --out .*\)$/)

      const foreign = yield* writeDir(ca.pem, { Alford: yield* issue(other, "Alford") })
      expectTlsError(yield* Effect.exit(load(foreign, "Alford")), "BadFile", /Alford\.crt is not signed by the herd CA of .*ca\.crt$/)

      const misnamed = yield* writeDir(ca.pem, { Alford: bolden })
      expectTlsError(yield* Effect.exit(load(misnamed, "Alford")), "BadFile", /Alford\.crt names Bolden, not Alford$/)

      const wrongKey = yield* writeDir(ca.pem, { Alford: { cert: alford.cert, key: bolden.key } })
      expectTlsError(yield* Effect.exit(load(wrongKey, "Alford")), "BadFile", /Alford\.key is not the key of .*Alford\.crt$/)

      const expired = yield* writeDir(ca.pem, { Alford: yield* issue(ca, "Alford", { notAfter: new Date(Date.now() - day) }) })
      expectTlsError(yield* Effect.exit(load(expired, "Alford")), "BadFile", /Alford\.crt expired on /)

      const notPem = yield* writeDir("not a certificate", { Alford: alford })
      expectTlsError(yield* Effect.exit(load(notPem, "Alford")), "BadFile", /ca\.crt is not a PEM certificate$/)

      const leafAsCa = yield* writeDir(alford.cert, { Alford: alford })
      expectTlsError(yield* Effect.exit(load(leafAsCa, "Alford")), "BadFile", /ca\.crt is not a CA certificate$/)
    }), 30_000)
})

describe("the sniff: plain and TLS on one port", () => {
  it.scopedLive("a plain line, sent a byte at a time, loses nothing; a TLS client without a certificate is Anonymous", () =>
    Effect.gen(function*() {
      const { alford, ca } = yield* herd
      const listener = yield* sniffingListener(alford)

      const plain = yield* plainClient(listener.port)
      // The first byte alone, then the rest: the sniff must put it back.
      plain.write("I")
      expect(outcomeTag(yield* listener.next)).toBe("Plain")
      plain.write("AMAT kiwi +34.068930-118.445127 1621464827.959498503\n")
      expect(yield* nextLine(plain)).toBe("plain IAMAT kiwi +34.068930-118.445127 1621464827.959498503")
      plain.write("WHATSAT kiwi 10 5\n")
      expect(yield* nextLine(plain)).toBe("plain WHATSAT kiwi 10 5")

      const secure = yield* dialOwned({ host: "127.0.0.1", port: listener.port, context: clientContext(ca.pem), server: "Alford" })
      expect(outcomeTag(yield* listener.next)).toBe("Tls Anonymous")
      expect(secure.getPeerX509Certificate()?.subjectAltName).toContain("URI:herd:server:Alford")
      secure.write("IAMAT kiwi +1+1 1\n")
      expect(yield* nextLine(secure)).toBe("tls Anonymous IAMAT kiwi +1+1 1")
    }), 30_000)

  it.scopedLive("tls.clients required: a plain client is refused, a TLS client without a certificate is served", () =>
    Effect.gen(function*() {
      const { ca, dir } = yield* herd
      const listener = yield* sniffingListener(yield* load(dir, "Alford", "required"))
      const plain = yield* plainClient(listener.port)
      plain.write("IAMAT kiwi +1+1 1\n")
      expect(outcomeTag(yield* listener.next)).toBe("error PlainRefused")
      expect(yield* nextLine(plain)).toBe("closed")

      const secure = yield* dialOwned({ host: "127.0.0.1", port: listener.port, context: clientContext(ca.pem) })
      expect(outcomeTag(yield* listener.next)).toBe("Tls Anonymous")
      secure.write("WHATSAT kiwi 10 5\n")
      expect(yield* nextLine(secure)).toBe("tls Anonymous WHATSAT kiwi 10 5")
    }), 30_000)

  it.scopedLive("a connection that closes before its first byte, or stalls in the handshake, fails and is closed", () =>
    Effect.gen(function*() {
      const { alford } = yield* herd
      const listener = yield* sniffingListener(alford, { handshakeTimeout: "300 millis" })
      const quiet = yield* plainClient(listener.port)
      quiet.end()
      expect(outcomeTag(yield* listener.next)).toBe("error Closed")

      const stalled = yield* plainClient(listener.port)
      // A TLS record header and no more.
      stalled.write(Buffer.from([0x16, 0x03, 0x01]))
      expect(outcomeTag(yield* listener.next)).toBe("error Handshake")
      expect(yield* nextLine(stalled)).toBe("closed")

      const garbage = yield* plainClient(listener.port)
      garbage.write(Buffer.from([0x16, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a]))
      expect(outcomeTag(yield* listener.next)).toBe("error Handshake")
      expect(yield* nextLine(garbage)).toBe("closed")
    }), 30_000)
})

describe("a server with tls, before a connection's first byte", () => {
  it.scopedLive("counts the connection against its limit, and closes it when stopping: strangers that send nothing cannot hold any number of sockets, nor the stop", () =>
    Effect.gen(function*() {
      const { dir } = yield* herd
      const logs = yield* tempDir
      const config = yield* HerdConfig.decodeConfig({
        servers: { Alford: { port: 0 } },
        tls: { dir },
        store: { kind: "memory" },
        // A herd of one: two client slots, four probation slots.
        limits: { maxConnections: 2 },
        logDir: logs,
        dataDir: logs
      }, "test")
      const places = Layer.succeed(PlacesClient.PlacesClient, { provider: "none", nearby: () => Effect.die("not asked") })
      const serverScope = yield* Scope.make()
      const server = yield* Layer.build(HerdServer.layer({ name: "Alford" })).pipe(
        Effect.provide(Layer.merge(Layer.succeed(HerdConfig.HerdConfig, config), places)), Scope.extend(serverScope)
      )
      const port = Context.get(server, HerdServer.HerdServer).address.port
      // Ten connections that never send a byte: two take the client slots, the rest probation
      // slots, of which there are four: the oldest make room for the newer.
      const silent: Array<Net.Socket> = []
      for (let i = 0; i < 10; i++) silent.push(yield* plainClient(port))
      const closed = () => silent.map((socket) => socket.closed)
      const within = (check: () => boolean) =>
        Effect.gen(function*() {
          const deadline = Date.now() + 5000
          while (!check() && Date.now() < deadline) yield* Effect.sleep("10 millis")
        })
      yield* within(() => closed().slice(2, 6).every(Boolean))
      expect(closed().slice(0, 6)).toEqual([false, false, true, true, true, true])
      // And none holds a probation slot longer than a second, where a session would have to say PEER.
      yield* within(() => closed().slice(6).every(Boolean))
      expect(closed()).toEqual([false, false, true, true, true, true, true, true, true, true])

      // And the server stops with them still waiting: each is closed, none holds the stop.
      const stopping = yield* Effect.fork(Scope.close(serverScope, Exit.void))
      const stopped = yield* Fiber.await(stopping).pipe(Effect.timeout("5 seconds"), Effect.option)
      expect(Option.isSome(stopped)).toBe(true)
      yield* within(() => closed().every(Boolean))
      expect(closed().every(Boolean)).toBe(true)
    }), 30_000)
})

describe("peer links: mutual TLS", () => {
  it.scopedLive("a peer with the herd CA's certificate for its name is verified, both ways", () =>
    Effect.gen(function*() {
      const { alford, bolden } = yield* herd
      const listener = yield* sniffingListener(alford)
      const link = yield* Effect.flatMap(
        Tls.dialPeer(bolden, { name: "Alford", host: "127.0.0.1", port: listener.port }, "5 seconds"),
        owned
      )
      const outcome = yield* listener.next
      expect(outcomeTag(outcome)).toBe("Tls Server Bolden")
      if (Either.isRight(outcome) && outcome.right._tag === "Tls") {
        const identity = outcome.right.peer
        expect(Either.isRight(Tls.authorizePeer(identity, "Bolden"))).toBe(true)
        const lie = Tls.authorizePeer(identity, "Parker")
        expect(Either.isLeft(lie) && lie.left).toMatchObject({ reason: "PeerName", message: "PEER Parker: certificate names Bolden" })
      }
      link.write("PEER Bolden\n")
      expect(yield* nextLine(link)).toBe("tls Server Bolden PEER Bolden")
      expect(link.getPeerX509Certificate()?.subjectAltName).toBe("URI:herd:server:Alford")
    }), 30_000)

  it.scopedLive("a neighbour whose certificate names another server is refused by the dialler", () =>
    Effect.gen(function*() {
      const { alford, bolden } = yield* herd
      const listener = yield* sniffingListener(alford)
      const exit = yield* Effect.exit(Tls.dialPeer(bolden, { name: "Parker", host: "127.0.0.1", port: listener.port }))
      expectTlsError(exit, "PeerName", /^the server's certificate names Alford, not Parker$/)
    }), 30_000)

  it.scopedLive("a certificate from another CA fails, whichever side holds it", () =>
    Effect.gen(function*() {
      const { alford, ca, foreign, foreignBolden } = yield* herd
      // The foreign server is dialled: the dialler refuses its certificate.
      const foreignListener = yield* sniffingListener(foreignBolden)
      const dialled = yield* Effect.exit(Tls.dialPeer(alford, { name: "Bolden", host: "127.0.0.1", port: foreignListener.port }))
      expectTlsError(dialled, "Handshake", /TLS handshake failed/)

      // The foreign server dials: the handshake is done (TLS clients need no
      // certificate) but its identity is not the herd's, so PEER is refused.
      const listener = yield* sniffingListener(alford)
      // It trusts the herd CA, to get that far.
      const foreignWithHerdCa = yield* Effect.flatMap(
        Tls.dial({ host: "127.0.0.1", port: listener.port, context: contextOf(ca.pem, foreign), server: "Alford" }),
        owned
      )
      const outcome = yield* listener.next
      expect(outcomeTag(outcome)).toBe("Tls Unverified")
      if (Either.isRight(outcome) && outcome.right._tag === "Tls") {
        const refused = Tls.authorizePeer(outcome.right.peer, "Bolden")
        expect(Either.isLeft(refused) && refused.left).toMatchObject({
          reason: "PeerUnverified",
          message: "PEER Bolden: certificate not signed by the herd CA"
        })
      }
      foreignWithHerdCa.write("PEER Bolden\n")
      expect(yield* nextLine(foreignWithHerdCa)).toBe("tls Unverified PEER Bolden")
    }), 30_000)

  it.scopedLive("an expired certificate, or one not for clients, is not verified", () =>
    Effect.gen(function*() {
      const { alford, ca } = yield* herd
      const listener = yield* sniffingListener(alford)
      const expired = yield* issue(ca, "Bolden", { notAfter: new Date(Date.now() - day) })
      const serverOnly = yield* issue(ca, "Bolden", { usages: [x509.ExtendedKeyUsage.serverAuth] })
      for (const [issued, reason] of [[expired, /^certificate expired on /], [serverOnly, /^certificate not for client authentication$/]] as const) {
        const context = contextOf(ca.pem, issued)
        yield* Effect.flatMap(Tls.dial({ host: "127.0.0.1", port: listener.port, context, server: "Alford" }), owned)
        const outcome = yield* listener.next
        expect(outcomeTag(outcome)).toBe("Tls Unverified")
        if (Either.isRight(outcome) && outcome.right._tag === "Tls" && outcome.right.peer._tag === "Unverified") {
          expect(outcome.right.peer.reason).toMatch(reason)
        }
      }
    }), 30_000)

  it.scopedLive("a dial to a port where nothing listens fails with Dial", () =>
    Effect.gen(function*() {
      const { alford } = yield* herd
      const port = yield* Effect.scoped(Effect.map(sniffingListener(alford), ({ port }) => port))
      const exit = yield* Effect.exit(Tls.dialPeer(alford, { name: "Bolden", host: "127.0.0.1", port }, "5 seconds"))
      expectTlsError(exit, "Dial", /ECONNREFUSED/)
    }), 30_000)
})

/** A client context trusting the CA of `caPem` and presenting `issued`. */
const contextOf = (caPem: string, issued: Issued): NodeTls.SecureContext =>
  NodeTls.createSecureContext({ ca: caPem, cert: issued.cert, key: issued.key })
