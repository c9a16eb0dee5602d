/**
 * The TLS toolkit of a herd (PROTOCOL.md section 10): the certificates of
 * `tls.dir` loaded into a secure context, the sniff that tells a TLS client
 * hello from a plain line on the one port, the identity a peer's certificate
 * proves, and the dial of a TLS peer link.
 *
 * Everything returns an Effect that can be interrupted (its listeners are
 * removed, a half-made TLS socket destroyed), and fails with a `TlsError`
 * whose `reason` says what went wrong. No `acquireRelease` here: the raw
 * socket belongs to its owner, whose release destroys it (and with it any
 * TLS socket made over it), so an accepted connection waiting for its
 * first byte never holds up a server's stop.
 *
 * The layout of `tls.dir`, as `herd certs` writes it:
 *
 *   ca.crt           the herd CA's certificate (every server needs it)
 *   ca.key           the herd CA's key (only where certificates are issued)
 *   <name>.crt       a server's certificate, signed by the CA
 *   <name>.key       that server's key (PKCS #8, mode 0600)
 *
 * `<name>` is the server's name with every byte outside `A-Z a-z 0-9 . _ ~ -`
 * written as `%XX`, so that any name of the config makes a file name.
 *
 * A server's name is not a host name (`Alford`, or any printable ASCII), so
 * the certificate carries it as a URI in its subject alternative name,
 * `herd:server:<name>` (same escaping), the way SPIFFE names workloads in
 * URI SANs; the peer check compares that name, never a host name.
 */
import { FileSystem } from "@effect/platform"
import { Data, Duration, Effect, Either, Exit } from "effect"
import * as Crypto from "node:crypto"
import type * as Net from "node:net"
import * as NodePath from "node:path"
import * as NodeTls from "node:tls"

export type TlsErrorReason =
  /** A file of `tls.dir` is not there or cannot be read. */
  | "MissingFile"
  /** A file of `tls.dir` is there but is not what it must be (not PEM, another CA, another name, expired, a key that is not the certificate's). */
  | "BadFile"
  /** A plain-TCP client on a server whose `tls.clients` is `required`. */
  | "PlainRefused"
  /** The connection ended (or failed) before its first byte. */
  | "Closed"
  /** The TLS handshake failed or took too long. */
  | "Handshake"
  /** A peer without a certificate the herd CA signed. */
  | "PeerUnverified"
  /** A peer whose certificate names another server than the one expected (or said in `PEER`). */
  | "PeerName"
  /** A TCP connection could not be made. */
  | "Dial"

export class TlsError extends Data.TaggedError("TlsError")<{
  readonly reason: TlsErrorReason
  readonly message: string
  /** The file concerned, for `MissingFile` and `BadFile`. */
  readonly file?: string
  readonly cause?: unknown
}> {}

// -----------------------------------------------------------------------------
// Names
// -----------------------------------------------------------------------------

/** Every byte outside the URI's unreserved characters as `%XX`: names are printable ASCII. */
const escapeName = (name: string): string =>
  name.replace(/[^A-Za-z0-9._~-]/g, (char) => `%${char.charCodeAt(0).toString(16).toUpperCase().padStart(2, "0")}`)

const uriPrefix = "herd:server:"

/** The URI a server's certificate names it by, in its subject alternative name. */
export const serverUri = (name: string): string => `${uriPrefix}${escapeName(name)}`

export const caCertFile = "ca.crt"
export const caKeyFile = "ca.key"
/** The file names of a server's certificate and key in `tls.dir`. */
export const serverFiles = (name: string): { readonly cert: string; readonly key: string } => {
  const stem = escapeName(name)
  return { cert: `${stem}.crt`, key: `${stem}.key` }
}

/**
 * The entries of Node's `subjectAltName` text: `TYPE:value, TYPE:value`,
 * where a value holding a comma or quote is written as a JSON string.
 */
const altNames = (text: string | undefined): Array<{ readonly type: string; readonly value: string }> => {
  const names: Array<{ type: string; value: string }> = []
  if (text === undefined) return names
  let at = 0
  while (at < text.length) {
    const colon = text.indexOf(":", at)
    if (colon < 0) break
    const type = text.slice(at, colon).trim()
    let value: string
    let next: number
    if (text[colon + 1] === "\"") {
      // A JSON string: find its closing quote, past escaped ones.
      let end = colon + 2
      while (end < text.length && text[end] !== "\"") end += text[end] === "\\" ? 2 : 1
      const parsed = Either.try(() => JSON.parse(text.slice(colon + 1, end + 1)) as unknown)
      value = Either.isRight(parsed) && typeof parsed.right === "string" ? parsed.right : ""
      next = text.indexOf(",", end + 1)
    } else {
      next = text.indexOf(",", colon + 1)
      value = text.slice(colon + 1, next < 0 ? text.length : next)
    }
    names.push({ type, value })
    if (next < 0) break
    at = next + 1
  }
  return names
}

/** The herd server names a certificate carries (`herd:server:` URIs in its subject alternative name). */
export const serverNamesOf = (subjectAltName: string | undefined): ReadonlyArray<string> =>
  altNames(subjectAltName).flatMap(({ type, value }) => {
    if (type !== "URI" || !value.startsWith(uriPrefix)) return []
    const decoded = Either.try(() => decodeURIComponent(value.slice(uriPrefix.length)))
    return Either.isRight(decoded) ? [decoded.right] : []
  })

// -----------------------------------------------------------------------------
// Loading tls.dir
// -----------------------------------------------------------------------------

/** What a server of a herd with `tls` needs: the herd CA, its own certificate and key, in one secure context. */
export interface Credentials {
  /** The server these are for. */
  readonly name: string
  readonly clients: "optional" | "required"
  readonly ca: Crypto.X509Certificate
  readonly certificate: Crypto.X509Certificate
  /** The herd CA as trust anchor, this server's certificate and key: both for the server side and for dialling peers. */
  readonly context: NodeTls.SecureContext
}

const readPem = (fs: FileSystem.FileSystem, file: string): Effect.Effect<string, TlsError> =>
  fs.readFileString(file).pipe(
    Effect.mapError((cause) =>
      new TlsError({
        reason: "MissingFile",
        message: cause._tag === "SystemError" && cause.reason === "NotFound"
          ? `${file} is missing (herd certs --out ${NodePath.dirname(file)} makes it)`
          : `${file} cannot be read: ${cause.message}`,
        file,
        cause
      })
    )
  )

const parseCertificate = (file: string, pem: string): Effect.Effect<Crypto.X509Certificate, TlsError> =>
  Effect.try({
    try: () => new Crypto.X509Certificate(pem),
    catch: (cause) => new TlsError({ reason: "BadFile", message: `${file} is not a PEM certificate`, file, cause })
  })

const badFile = (file: string, message: string) => new TlsError({ reason: "BadFile", message: `${file} ${message}`, file })

/** Why `certificate` is not valid at `now`, if it is not. */
const outsideValidity = (certificate: Crypto.X509Certificate, now: Date): string | undefined => {
  if (now < new Date(certificate.validFrom)) return `is not valid before ${certificate.validFrom}`
  if (now > new Date(certificate.validTo)) return `expired on ${certificate.validTo}`
  return undefined
}

/** Whether `certificate` was signed by `ca`: issuer and key identifiers match, and the signature verifies. */
const signedBy = (certificate: Crypto.X509Certificate, ca: Crypto.X509Certificate): boolean =>
  certificate.checkIssued(ca) && certificate.verify(ca.publicKey)

/**
 * Loads `dir` (`tls.dir`) for server `name`: `ca.crt`, `<name>.crt` and
 * `<name>.key`, each checked (the certificate signed by that CA, naming the
 * server, valid now, and the key its own), into one secure context. A
 * missing or bad file fails with its path in the message.
 */
export const load = (options: {
  readonly dir: string
  readonly name: string
  readonly clients?: "optional" | "required"
}): Effect.Effect<Credentials, TlsError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const files = serverFiles(options.name)
    const caFile = NodePath.join(options.dir, caCertFile)
    const certFile = NodePath.join(options.dir, files.cert)
    const keyFile = NodePath.join(options.dir, files.key)
    const caPem = yield* readPem(fs, caFile)
    const certPem = yield* readPem(fs, certFile)
    const keyPem = yield* readPem(fs, keyFile)
    const ca = yield* parseCertificate(caFile, caPem)
    const certificate = yield* parseCertificate(certFile, certPem)
    const key = yield* Effect.try({
      try: () => Crypto.createPrivateKey(keyPem),
      catch: (cause) => new TlsError({ reason: "BadFile", message: `${keyFile} is not a PEM private key`, file: keyFile, cause })
    })
    const now = new Date()
    if (!ca.ca) return yield* badFile(caFile, "is not a CA certificate")
    const caOutside = outsideValidity(ca, now)
    if (caOutside !== undefined) return yield* badFile(caFile, caOutside)
    if (!signedBy(certificate, ca)) return yield* badFile(certFile, `is not signed by the herd CA of ${caFile}`)
    const names = serverNamesOf(certificate.subjectAltName)
    if (!names.includes(options.name)) {
      return yield* badFile(
        certFile,
        names.length === 0
          ? `names no herd server (expected ${options.name})`
          : `names ${names.join(", ")}, not ${options.name}`
      )
    }
    const certOutside = outsideValidity(certificate, now)
    if (certOutside !== undefined) return yield* badFile(certFile, certOutside)
    if (!certificate.checkPrivateKey(key)) return yield* badFile(keyFile, `is not the key of ${certFile}`)
    const context = yield* Effect.try({
      try: () => NodeTls.createSecureContext({ ca: caPem, cert: certPem, key: keyPem, minVersion: "TLSv1.2" }),
      catch: (cause) =>
        new TlsError({ reason: "BadFile", message: `${certFile}, ${keyFile}: ${String(cause)}`, file: certFile, cause })
    })
    return { name: options.name, clients: options.clients ?? "optional", ca, certificate, context }
  })

// -----------------------------------------------------------------------------
// The server side: sniff, handshake, the peer's identity
// -----------------------------------------------------------------------------

/** The first byte of a TLS record carrying a handshake message: a client hello starts with it. */
export const handshakeRecordByte = 0x16

/**
 * Errors between this toolkit handing a socket back and its owner adding
 * listeners (an Effect resumes on a later tick) would otherwise be thrown as
 * uncaught: a listener that does nothing stays on. The owner sees the
 * failure as its own listener's 'error' or as 'close' with `hadError`.
 */
const ignoreError = () => {}

/**
 * Calls back with the first byte the socket receives, that byte and the rest
 * of its chunk put back (`unshift`) so that nothing is lost, and the socket
 * paused: whoever reads it next adds a 'data' listener and calls `resume()`.
 * Calls back with a `Closed` error if the socket ends or fails first.
 * Returns a function that stops waiting (removes the listeners).
 */
export const unsafeFirstByte = (
  socket: Net.Socket,
  callback: (result: Either.Either<number, TlsError>) => void
): () => void => {
  const stop = () => {
    socket.off("data", onData)
    socket.off("end", onEnd)
    socket.off("close", onEnd)
    socket.off("error", onError)
  }
  const onData = (chunk: Buffer) => {
    stop()
    socket.pause()
    socket.unshift(chunk)
    callback(Either.right(chunk[0] ?? 0))
  }
  const onEnd = () => {
    stop()
    callback(Either.left(new TlsError({ reason: "Closed", message: "closed before its first byte" })))
  }
  const onError = (cause: Error) => {
    stop()
    callback(Either.left(new TlsError({ reason: "Closed", message: `failed before its first byte: ${cause.message}`, cause })))
  }
  socket.on("error", ignoreError)
  socket.on("data", onData)
  socket.on("end", onEnd)
  socket.on("close", onEnd)
  socket.on("error", onError)
  socket.resume()
  return stop
}

/** The identity a connection's peer proved in the handshake. */
export type PeerIdentity =
  /** It presented no certificate: an ordinary TLS client. */
  | { readonly _tag: "Anonymous" }
  /** It presented a certificate the herd CA did not sign, or one not valid now or not for a client. */
  | { readonly _tag: "Unverified"; readonly reason: string }
  /** A server of the herd, by its certificate. */
  | { readonly _tag: "Server"; readonly names: ReadonlyArray<string> }

const clientAuthOid = "1.3.6.1.5.5.7.3.2"

/**
 * The identity proven by the certificate a TLS peer presented. The handshake
 * has proven that the peer holds the certificate's key; this checks the
 * certificate against the herd CA.
 *
 * Why not `socket.authorized`: Node sets it only on sockets a `tls.Server`
 * made, and the sniff makes its TLS socket itself, over an accepted one
 * (nothing else keeps plain and TLS on one port without a second listener).
 * The herd's chain is one link, CA to server, which `X509Certificate`
 * verifies: issued by the CA, its signature, its dates, its use for clients.
 */
export const peerIdentity = (socket: NodeTls.TLSSocket, ca: Crypto.X509Certificate): PeerIdentity => {
  const certificate = socket.getPeerX509Certificate()
  if (certificate === undefined) return { _tag: "Anonymous" }
  const now = new Date()
  if (!signedBy(certificate, ca)) return { _tag: "Unverified", reason: "certificate not signed by the herd CA" }
  const outside = outsideValidity(certificate, now) ?? outsideValidity(ca, now)
  if (outside !== undefined) return { _tag: "Unverified", reason: `certificate ${outside}` }
  if (certificate.ca) return { _tag: "Unverified", reason: "a CA certificate, not a server's" }
  const usage = certificate.keyUsage
  if (usage !== undefined && !usage.includes(clientAuthOid)) {
    return { _tag: "Unverified", reason: "certificate not for client authentication" }
  }
  const names = serverNamesOf(certificate.subjectAltName)
  if (names.length === 0) return { _tag: "Unverified", reason: "certificate names no herd server" }
  return { _tag: "Server", names }
}

/**
 * Whether a peer may say `PEER <said>`: only with a certificate of the herd
 * CA that names that server. The error's message says why not, for the log.
 */
export const authorizePeer = (identity: PeerIdentity, said: string): Either.Either<void, TlsError> => {
  switch (identity._tag) {
    case "Anonymous":
      return Either.left(new TlsError({ reason: "PeerUnverified", message: `PEER ${said} without a certificate` }))
    case "Unverified":
      return Either.left(new TlsError({ reason: "PeerUnverified", message: `PEER ${said}: ${identity.reason}` }))
    case "Server":
      return identity.names.includes(said)
        ? Either.void
        : Either.left(
          new TlsError({ reason: "PeerName", message: `PEER ${said}: certificate names ${identity.names.join(", ")}` })
        )
  }
}

/**
 * Makes the server side of a TLS connection over an accepted socket (whose
 * bytes read so far, unshifted, are its client hello) and calls back once
 * the handshake is done, or failed. A client certificate is asked for but
 * not required: ordinary TLS clients have none. Returns a function that
 * abandons the handshake (destroys the TLS socket, and so the raw one).
 */
export const unsafeServerHandshake = (
  socket: Net.Socket,
  credentials: Credentials,
  callback: (result: Either.Either<NodeTls.TLSSocket, TlsError>) => void
): () => void => {
  const secure = new NodeTls.TLSSocket(socket, {
    isServer: true,
    secureContext: credentials.context,
    requestCert: true,
    rejectUnauthorized: false
  })
  let done = false
  const stop = () => {
    done = true
    secure.off("secure", onSecure)
    secure.off("error", onError)
    secure.off("end", onClose)
    secure.off("close", onClose)
  }
  const onSecure = () => {
    stop()
    callback(Either.right(secure))
  }
  const onError = (cause: Error) => {
    stop()
    secure.destroy()
    callback(Either.left(new TlsError({ reason: "Handshake", message: `TLS handshake failed: ${cause.message}`, cause })))
  }
  // An end counts as a close: on a half-open socket the peer's FIN alone never closes it.
  const onClose = () => {
    stop()
    secure.destroy()
    callback(Either.left(new TlsError({ reason: "Handshake", message: "closed during the TLS handshake" })))
  }
  secure.on("error", ignoreError)
  secure.on("secure", onSecure)
  secure.on("error", onError)
  secure.on("end", onClose)
  secure.on("close", onClose)
  return () => {
    if (!done) {
      stop()
      secure.destroy()
    }
  }
}

/** An accepted connection, once its first byte has told what it speaks. */
export type Accepted =
  /** Plain TCP: paused, its first bytes put back; add a 'data' listener and `resume()`. */
  | { readonly _tag: "Plain"; readonly socket: Net.Socket }
  /** TLS, its handshake done: read and write `socket`; `peer` is what its certificate proved. */
  | { readonly _tag: "Tls"; readonly socket: NodeTls.TLSSocket; readonly peer: PeerIdentity }

/** The first byte of an accepted socket (see `unsafeFirstByte`), as an Effect that can be interrupted. */
export const firstByte = (socket: Net.Socket): Effect.Effect<number, TlsError> =>
  Effect.async<number, TlsError>((resume) => {
    const stop = unsafeFirstByte(socket, (result) => resume(result))
    return Effect.sync(stop)
  })

/**
 * The TLS server handshake over an accepted socket (see
 * `unsafeServerHandshake`), within `timeout` by the Effect clock; on
 * interruption or time-out the TLS socket is destroyed.
 */
export const serverHandshake = (
  socket: Net.Socket,
  credentials: Credentials,
  timeout: Duration.DurationInput = defaultHandshakeTimeout
): Effect.Effect<NodeTls.TLSSocket, TlsError> =>
  Effect.async<NodeTls.TLSSocket, TlsError>((resume) => {
    const abandon = unsafeServerHandshake(socket, credentials, (result) => resume(result))
    return Effect.sync(abandon)
  }).pipe(
    Effect.timeoutFail({
      duration: timeout,
      onTimeout: () =>
        new TlsError({ reason: "Handshake", message: `TLS handshake not done within ${Duration.format(timeout)}` })
    })
  )

/** A client hello fits in one segment; a peer that takes this long to finish a handshake is not one of ours. */
export const defaultHandshakeTimeout: Duration.DurationInput = "10 seconds"

/**
 * Tells a TLS connection from a plain one on a freshly accepted socket by
 * its first byte (0x16, a TLS handshake record, is TLS; anything else is a
 * plain line) and, for TLS, does the handshake. With `clients: "required"`
 * a plain connection fails with `PlainRefused`. Waiting for the first byte
 * has no time limit (a plain client may connect and type later: the server
 * counts the connection against its limit meanwhile); the handshake has
 * `handshakeTimeout`. On failure or interruption the socket is destroyed.
 */
export const accept = (
  socket: Net.Socket,
  credentials: Credentials,
  options: { readonly handshakeTimeout?: Duration.DurationInput } = {}
): Effect.Effect<Accepted, TlsError> =>
  Effect.flatMap(firstByte(socket), (byte): Effect.Effect<Accepted, TlsError> => {
    if (byte !== handshakeRecordByte) {
      return credentials.clients === "required"
        ? Effect.fail(new TlsError({ reason: "PlainRefused", message: "plain TCP refused: this server requires TLS" }))
        : Effect.succeed({ _tag: "Plain", socket })
    }
    return Effect.map(
      serverHandshake(socket, credentials, options.handshakeTimeout),
      (secure): Accepted => ({ _tag: "Tls", socket: secure, peer: peerIdentity(secure, credentials.ca) })
    )
  }).pipe(
    // Interrupted too (the server stopping): a socket left open would keep the
    // listener's close, which waits for every connection, waiting for ever.
    Effect.onExit((exit) => Exit.isSuccess(exit) ? Effect.void : Effect.sync(() => socket.destroy()))
  )

// -----------------------------------------------------------------------------
// The client side: a peer link, or a client that verifies the server
// -----------------------------------------------------------------------------

export interface DialOptions {
  readonly host: string
  readonly port: number
  /**
   * The secure context: the herd CA as trust anchor, and for a peer link the
   * dialling server's own certificate and key (`Credentials.context`).
   */
  readonly context: NodeTls.SecureContext
  /** The server expected there: its certificate must name it. Absent: any server of the herd. */
  readonly server?: string
  /** TCP connect and TLS handshake together, by the Effect clock. */
  readonly timeout?: Duration.DurationInput
}

/**
 * A secure context that trusts only the herd CA of `caPem`, for a client
 * with no certificate of its own. Checked first: Node's own context takes
 * text that holds no certificate at all without a word.
 */
export const clientContext = (caPem: string): Either.Either<NodeTls.SecureContext, TlsError> => {
  const notCa = (cause?: unknown) =>
    new TlsError({ reason: "BadFile", message: `not a PEM CA certificate${cause === undefined ? "" : `: ${String(cause)}`}`, cause })
  return Either.try({ try: () => new Crypto.X509Certificate(caPem), catch: notCa }).pipe(
    Either.filterOrLeft((ca) => ca.ca, () => notCa()),
    Either.flatMap(() =>
      Either.try({ try: () => NodeTls.createSecureContext({ ca: caPem, minVersion: "TLSv1.2" }), catch: notCa })
    )
  )
}

/**
 * Opens a TLS connection to a herd server and verifies it: its certificate
 * must be signed by the herd CA of `context` (OpenSSL checks the chain) and
 * name `server` (a herd name, not a host name: Node's host name check is
 * replaced). The dial fails with `Dial` (no TCP connection), `Handshake`
 * (TLS failed, another CA included) or `PeerName` (the certificate names
 * another server); on failure, time-out or interruption the socket is
 * destroyed.
 */
export const dial = (options: DialOptions): Effect.Effect<NodeTls.TLSSocket, TlsError> =>
  Effect.async<NodeTls.TLSSocket, TlsError>((resume) => {
    let nameMismatch: TlsError | undefined
    let connected = false
    const secure = NodeTls.connect({
      host: options.host,
      port: options.port,
      secureContext: options.context,
      rejectUnauthorized: true,
      // Names are not host names: no SNI to send.
      servername: "",
      checkServerIdentity: (_host, certificate) => {
        const names = serverNamesOf(certificate.subjectaltname)
        if (names.length === 0) {
          nameMismatch = new TlsError({ reason: "PeerName", message: "the server's certificate names no herd server" })
        } else if (options.server !== undefined && !names.includes(options.server)) {
          nameMismatch = new TlsError({
            reason: "PeerName",
            message: `the server's certificate names ${names.join(", ")}, not ${options.server}`
          })
        }
        return nameMismatch === undefined ? undefined : new Error(nameMismatch.message)
      }
    })
    const stop = () => {
      secure.off("connect", onConnect)
      secure.off("secureConnect", onSecure)
      secure.off("error", onError)
      secure.off("end", onClose)
      secure.off("close", onClose)
    }
    const onConnect = () => {
      connected = true
    }
    const onSecure = () => {
      stop()
      resume(Effect.succeed(secure))
    }
    const fail = (error: TlsError) => {
      stop()
      secure.destroy()
      resume(Effect.fail(error))
    }
    const onError = (cause: Error) =>
      fail(
        nameMismatch ?? (connected
          ? new TlsError({ reason: "Handshake", message: `TLS handshake failed: ${cause.message}`, cause })
          : new TlsError({ reason: "Dial", message: cause.message, cause }))
      )
    const onClose = () =>
      fail(
        new TlsError({ reason: connected ? "Handshake" : "Dial", message: "closed before the TLS handshake was done" })
      )
    secure.on("error", ignoreError)
    secure.on("connect", onConnect)
    secure.on("secureConnect", onSecure)
    secure.on("error", onError)
    secure.on("end", onClose)
    secure.on("close", onClose)
    return Effect.sync(() => {
      stop()
      secure.destroy()
    })
  }).pipe(
    (dialling) =>
      options.timeout === undefined ? dialling : Effect.timeoutFail(dialling, {
        duration: options.timeout,
        onTimeout: () =>
          new TlsError({ reason: "Dial", message: `not connected within ${Duration.format(options.timeout ?? 0)}` })
      })
  )

/** A peer link's dial: this server's credentials, the neighbour's name checked in its certificate. */
export const dialPeer = (
  credentials: Credentials,
  neighbour: { readonly name: string; readonly host: string; readonly port: number },
  timeout?: Duration.DurationInput
): Effect.Effect<NodeTls.TLSSocket, TlsError> =>
  dial({
    host: neighbour.host,
    port: neighbour.port,
    context: credentials.context,
    server: neighbour.name,
    ...(timeout === undefined ? {} : { timeout })
  })
