/**
 * `herd certs`: the herd's own certificate authority and one key and
 * certificate per server, for `tls.dir` (PROTOCOL.md section 10).
 *
 *   herd certs [--config PATH] --out DIR          a new CA, and every server of the config
 *   herd certs --add <name> --out DIR             one more server, from the CA already in DIR
 *
 * The layout of DIR (the server package's `Tls` module reads it):
 *
 *   ca.crt       the herd CA's certificate: every server needs it
 *   ca.key       the CA's key: keep it where certificates are issued, copy it nowhere else
 *   <name>.crt   a server's certificate, signed by the CA
 *   <name>.key   that server's key
 *
 * Keys are ECDSA P-256 (PKCS #8 PEM), written with mode 0600; every file is
 * written beside its place, synced, then renamed over it, so that a crash
 * never leaves half a key. The CA is never replaced unless `--force` asks.
 *
 * A server certificate names the server by the URI `herd:server:<name>` in
 * its subject alternative name (names such as `Alford` are not host names;
 * the peer check compares that name with the one said in `PEER`), and, when
 * the config gives the server an address, that address too (IP or DNS), for
 * tools that check a host name. It is for both server and client
 * authentication: a server is the client of its own peer links.
 *
 * The certificates are made with `@peculiar/x509` on Node's WebCrypto. Its
 * dependency injection needs the `reflect-metadata` polyfill loaded first.
 */
import "reflect-metadata"
import { FileSystem } from "@effect/platform"
import { Tls } from "@herd/server"
import * as x509 from "@peculiar/x509"
import { Console, Data, Effect, Option } from "effect"
import * as Crypto from "node:crypto"
import * as Net from "node:net"
import * as NodePath from "node:path"
import type { LoadedConfig } from "./Config.ts"
import { UsageError } from "./Report.ts"

x509.cryptoProvider.set(Crypto.webcrypto)

export class CertsError extends Data.TaggedError("CertsError")<{
  readonly reason: "Crypto" | "Write" | "BadCa"
  readonly message: string
  readonly cause?: unknown
}> {}

const algorithm = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const

/** The herd CA lives long; a server's certificate is reissued with `--add <name> --force`. */
const caYears = 10
const serverYears = 2
/** Backdated a little: another machine's clock may be behind this one's. */
const backdateMs = 60 * 60 * 1000

const yearsFrom = (now: Date, years: number) => {
  const date = new Date(now)
  date.setUTCFullYear(date.getUTCFullYear() + years)
  return date
}

const crypto = <A>(what: string, run: () => Promise<A>): Effect.Effect<A, CertsError> =>
  Effect.tryPromise({
    try: run,
    catch: (cause) => new CertsError({ reason: "Crypto", message: `${what}: ${String(cause)}`, cause })
  })

/** A positive, random 128-bit serial number (RFC 5280: at most 20 bytes, unique per CA). */
const serialNumber = (): string => {
  const bytes = Crypto.randomBytes(16)
  bytes[0] = (bytes[0] ?? 0) & 0x7f | 0x01
  return bytes.toString("hex")
}

const pemKey = (der: ArrayBuffer) => x509.PemConverter.encode(der, "PRIVATE KEY")

interface Authority {
  readonly certificate: x509.X509Certificate
  readonly keys: Crypto.webcrypto.CryptoKeyPair
}

interface Written {
  readonly cert: string
  readonly key: string
}

/**
 * Writes `data` to `file` atomically: a new file beside it (mode `mode`),
 * synced, renamed over `file`.
 */
const writeAtomically = (
  fs: FileSystem.FileSystem,
  file: string,
  data: string,
  mode: number
): Effect.Effect<void, CertsError> => {
  const temporary = `${file}.${process.pid}.${Crypto.randomBytes(4).toString("hex")}.tmp`
  return Effect.scoped(Effect.gen(function*() {
    const handle = yield* fs.open(temporary, { flag: "wx", mode })
    yield* handle.writeAll(new TextEncoder().encode(data))
    yield* handle.sync
  })).pipe(
    Effect.zipRight(fs.rename(temporary, file)),
    Effect.tapError(() => fs.remove(temporary).pipe(Effect.ignore)),
    Effect.mapError((cause) => new CertsError({ reason: "Write", message: `cannot write ${file}: ${cause.message}`, cause }))
  )
}

const newCa = (now: Date): Effect.Effect<Authority & { readonly keyPem: string }, CertsError> =>
  Effect.gen(function*() {
    const keys = yield* crypto("generating the CA key", () => Crypto.webcrypto.subtle.generateKey(algorithm, true, ["sign", "verify"]))
    // A random tag in the name: two herds' CAs are told apart by name too.
    const tag = Crypto.randomBytes(4).toString("hex")
    const keyId = yield* crypto("identifying the CA key", () => x509.SubjectKeyIdentifierExtension.create(keys.publicKey))
    const certificate = yield* crypto("making the CA certificate", () =>
      x509.X509CertificateGenerator.createSelfSigned({
        serialNumber: serialNumber(),
        name: [{ CN: [`herd CA ${tag}`] }],
        notBefore: new Date(now.getTime() - backdateMs),
        notAfter: yearsFrom(now, caYears),
        keys,
        signingAlgorithm: algorithm,
        extensions: [
          new x509.BasicConstraintsExtension(true, 0, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
          keyId
        ]
      }))
    const keyPem = pemKey(yield* crypto("exporting the CA key", () => Crypto.webcrypto.subtle.exportKey("pkcs8", keys.privateKey)))
    return { certificate, keys, keyPem }
  })

/** The CA already in `dir`: its certificate and key, checked to belong together. */
const existingCa = (fs: FileSystem.FileSystem, dir: string): Effect.Effect<Authority, CertsError | UsageError> =>
  Effect.gen(function*() {
    const certFile = NodePath.join(dir, Tls.caCertFile)
    const keyFile = NodePath.join(dir, Tls.caKeyFile)
    const read = (file: string) =>
      fs.readFileString(file).pipe(
        Effect.mapError((cause) =>
          new UsageError({ message: `${file} cannot be read: --add needs the herd CA that herd certs --out ${dir} made`, cause })
        )
      )
    const certPem = yield* read(certFile)
    const keyPem = yield* read(keyFile)
    const bad = (message: string) => (cause: unknown) => new CertsError({ reason: "BadCa", message, cause })
    const nodeCert = yield* Effect.try({ try: () => new Crypto.X509Certificate(certPem), catch: bad(`${certFile} is not a PEM certificate`) })
    const nodeKey = yield* Effect.try({ try: () => Crypto.createPrivateKey(keyPem), catch: bad(`${keyFile} is not a PEM private key`) })
    if (!nodeCert.ca) return yield* Effect.fail(bad(`${certFile} is not a CA certificate`)(undefined))
    if (!nodeCert.checkPrivateKey(nodeKey)) return yield* Effect.fail(bad(`${keyFile} is not the key of ${certFile}`)(undefined))
    const certificate = new x509.X509Certificate(certPem)
    const pkcs8 = nodeKey.export({ type: "pkcs8", format: "der" })
    const privateKey = yield* crypto(
      `reading ${keyFile}`,
      () => Crypto.webcrypto.subtle.importKey("pkcs8", pkcs8, algorithm, false, ["sign"])
    )
    const publicKey = yield* crypto(`reading ${certFile}`, () => certificate.publicKey.export(algorithm, ["verify"]))
    return { certificate, keys: { privateKey, publicKey } }
  })

/** The addresses a certificate names beside the server's name: its host, when it is a specific one. */
const hostNames = (host: string | undefined): Array<x509.JsonGeneralName> => {
  if (host === undefined || host === "") return []
  const bare = host.replace(/^\[(.*)\]$/, "$1")
  if (Net.isIP(bare) !== 0) return bare === "0.0.0.0" || bare === "::" ? [] : [{ type: "ip", value: bare }]
  return [{ type: "dns", value: bare }]
}

const issueServer = (
  fs: FileSystem.FileSystem,
  dir: string,
  ca: Authority,
  name: string,
  host: string | undefined,
  now: Date
): Effect.Effect<Written & { readonly names: ReadonlyArray<string> }, CertsError> =>
  Effect.gen(function*() {
    const keys = yield* crypto(`generating ${name}'s key`, () => Crypto.webcrypto.subtle.generateKey(algorithm, true, ["sign", "verify"]))
    const altNames: Array<x509.JsonGeneralName> = [{ type: "url", value: Tls.serverUri(name) }, ...hostNames(host)]
    const keyId = yield* crypto(`identifying ${name}'s key`, () => x509.SubjectKeyIdentifierExtension.create(keys.publicKey))
    const caKeyId = yield* crypto("identifying the CA key", () => x509.AuthorityKeyIdentifierExtension.create(ca.keys.publicKey))
    const certificate = yield* crypto(`making ${name}'s certificate`, () =>
      x509.X509CertificateGenerator.create({
        serialNumber: serialNumber(),
        subject: [{ CN: [name] }],
        issuer: ca.certificate.subjectName,
        notBefore: new Date(now.getTime() - backdateMs),
        notAfter: yearsFrom(now, serverYears),
        publicKey: keys.publicKey,
        signingKey: ca.keys.privateKey,
        signingAlgorithm: algorithm,
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
          new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
          new x509.SubjectAlternativeNameExtension(altNames),
          keyId,
          caKeyId
        ]
      }))
    const keyPem = pemKey(yield* crypto(`exporting ${name}'s key`, () => Crypto.webcrypto.subtle.exportKey("pkcs8", keys.privateKey)))
    const files = Tls.serverFiles(name)
    const key = NodePath.join(dir, files.key)
    const cert = NodePath.join(dir, files.cert)
    // The key first: a certificate is never there without its key.
    yield* writeAtomically(fs, key, keyPem, 0o600)
    yield* writeAtomically(fs, cert, certificate.toString("pem"), 0o644)
    return { key, cert, names: altNames.map(({ type, value }) => `${type === "url" ? "URI" : type.toUpperCase()} ${value}`) }
  })

/** A server named `ca` would write over the CA's files (any case: some file systems ignore it). */
const checkFileName = (name: string): Effect.Effect<void, UsageError> =>
  name.toLowerCase() === "ca"
    ? Effect.fail(new UsageError({ message: `a server named ${name} would write over the CA's files (${Tls.caCertFile}): rename it` }))
    : Effect.void

const exists = (fs: FileSystem.FileSystem, file: string) => fs.exists(file).pipe(Effect.orElseSucceed(() => false))

export interface CertsOptions {
  readonly out: string
  /** Issue one more server's certificate from the CA in `out`, instead of a new CA and every server of the config. */
  readonly add: Option.Option<string>
  /** Replace what is there: a new CA (and so every server's), or the certificate of the server added. */
  readonly force: boolean
}

/** `herd certs`: says what it wrote, one line a file pair, and what to do with them. */
export const runCerts = (
  loaded: LoadedConfig,
  options: CertsOptions
): Effect.Effect<void, CertsError | UsageError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const dir = options.out
    const now = new Date()
    const hostOf = (name: string) => Object.hasOwn(loaded.config.servers, name) ? loaded.config.servers[name]?.host : undefined
    const say = (written: Written & { readonly names: ReadonlyArray<string> }, name: string) =>
      Console.log(`${name}: ${written.cert}, ${written.key} (${written.names.join(", ")})`)

    if (Option.isSome(options.add)) {
      const name = options.add.value
      yield* checkFileName(name)
      const ca = yield* existingCa(fs, dir)
      const cert = NodePath.join(dir, Tls.serverFiles(name).cert)
      if (!options.force && (yield* exists(fs, cert))) {
        return yield* new UsageError({ message: `${cert} exists: --force to issue ${name} a new one` })
      }
      yield* say(yield* issueServer(fs, dir, ca, name, hostOf(name), now), name)
      return
    }

    const names = Object.keys(loaded.config.servers)
    yield* Effect.forEach(names, checkFileName)
    const caCert = NodePath.join(dir, Tls.caCertFile)
    const caKey = NodePath.join(dir, Tls.caKeyFile)
    if (!options.force && ((yield* exists(fs, caCert)) || (yield* exists(fs, caKey)))) {
      return yield* new UsageError({
        message: `${dir} already has a herd CA: --add <name> issues one more server from it, --force makes a new CA (every server's certificate with it)`
      })
    }
    yield* fs.makeDirectory(dir, { recursive: true, mode: 0o700 }).pipe(
      Effect.mapError((cause) => new CertsError({ reason: "Write", message: `cannot make ${dir}: ${cause.message}`, cause }))
    )
    const ca = yield* newCa(now)
    yield* writeAtomically(fs, caKey, ca.keyPem, 0o600)
    yield* writeAtomically(fs, caCert, ca.certificate.toString("pem"), 0o644)
    yield* Console.log(`herd CA: ${caCert}, ${caKey} (keep ${Tls.caKeyFile} here: only herd certs --add needs it)`)
    for (const name of names) yield* say(yield* issueServer(fs, dir, ca, name, hostOf(name), now), name)
    yield* Console.log(
      `Set tls: { dir: ${JSON.stringify(dir)} } in the config; each machine needs ${Tls.caCertFile} and its servers' .crt and .key.`
    )
  })
