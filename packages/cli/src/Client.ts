/**
 * `herd client <name|host:port>`: stdin to the server, the server's replies
 * to stdout, the way people use redis-cli. When stdin ends the session
 * half-closes and waits for the last replies; when the server closes first,
 * it says so and exits 1.
 *
 * An argument of the form `host:port` (`[::1]:port` for IPv6) is an address
 * and needs no config; anything else is a server name of the config.
 *
 * With `--tls` (or `--ca FILE`) the session is TLS, verified against the
 * herd CA of `--ca FILE`, else `ca.crt` in the config's `tls.dir`: the
 * server's certificate must be signed by it and, for a server named by the
 * config, name that server (for an address, any server of the herd). The
 * client presents no certificate of its own: a server with `tls` takes such
 * clients as ordinary ones.
 */
import * as NodeSocket from "@effect/platform-node/NodeSocket"
import * as NodeStream from "@effect/platform-node/NodeStream"
import { FileSystem, Socket } from "@effect/platform"
import { Tls } from "@herd/server"
import type { HerdConfig } from "@herd/server"
import { Data, Deferred, Effect, Either, Exit, Fiber, Option, Stream } from "effect"
import * as NodePath from "node:path"
import type * as NodeTls from "node:tls"
import type { LoadedConfig } from "./Config.ts"
import { checkServerNames, resolveConfig } from "./Config.ts"
import { formatAddress, printLine, UsageError } from "./Report.ts"

/** Where a session goes, and how messages name it: `Alford at 127.0.0.1:11800`, or the address alone. */
export interface Target {
  readonly host: string
  readonly port: number
  readonly label: string
}

export class ClientError extends Data.TaggedError("ClientError")<{
  readonly reason: "Unreachable" | "Closed"
  readonly message: string
  readonly cause?: unknown
}> {}

/** A dial that has not connected by then is abandoned: an unroutable address would otherwise hang for minutes. */
const connectTimeout = "5 seconds"

const addressPattern = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d+)$/

/**
 * The address in `host:port` or `[v6]:port`; `undefined` when the text does
 * not have that shape (then it is a server name).
 */
export const parseAddress = (text: string): Effect.Effect<Target | undefined, UsageError> => {
  const match = addressPattern.exec(text)
  if (match === null) return Effect.succeed(undefined)
  const host = match[1] ?? match[2] ?? ""
  const port = Number(match[3])
  if (!(port >= 1 && port <= 65535)) {
    return Effect.fail(new UsageError({ message: `${text}: the port must be from 1 to 65535` }))
  }
  return Effect.succeed({ host, port, label: formatAddress(host, port) })
}

/** The target of a server name of the config. */
export const targetOf = (loaded: LoadedConfig, name: string): Effect.Effect<Target, UsageError> =>
  Effect.flatMap(checkServerNames(loaded, [name]), () => {
    const { host, port } = loaded.config.servers[name] ?? { host: "", port: 0 }
    return Effect.succeed({ host, port, label: `${name} at ${formatAddress(host, port)}` })
  })

/** How a TLS session verifies its server: the herd CA, and the server's name when the config gave it. */
export interface ClientTls {
  readonly context: NodeTls.SecureContext
  readonly server?: string
}

/**
 * Where `herd client <server>` goes, and how: `server` is an address or a
 * name of the config; with `tls` (or a `--ca` file) the session is TLS, its
 * CA from `--ca`, else from the config's `tls.dir`. The config is read only
 * when something needs it.
 */
export const resolveClient = (options: {
  readonly server: string
  readonly config: Option.Option<string>
  readonly tls: boolean
  readonly ca: Option.Option<string>
}): Effect.Effect<
  { readonly target: Target; readonly tls: ClientTls | undefined },
  UsageError | HerdConfig.HerdConfigError,
  FileSystem.FileSystem
> =>
  Effect.gen(function*() {
    const address = yield* parseAddress(options.server)
    const useTls = options.tls || Option.isSome(options.ca)
    const needsConfig = address === undefined || (useTls && Option.isNone(options.ca))
    const loaded = needsConfig ? yield* resolveConfig(options.config) : undefined
    const target = address ?? (loaded === undefined ? undefined : yield* targetOf(loaded, options.server))
    if (target === undefined) return yield* new UsageError({ message: `${options.server}: no such server` })
    if (!useTls) return { target, tls: undefined }
    let caFile: string
    if (Option.isSome(options.ca)) caFile = options.ca.value
    else if (loaded?.config.tls !== undefined) caFile = NodePath.join(loaded.config.tls.dir, Tls.caCertFile)
    else {
      return yield* new UsageError({
        message: `--tls needs the herd CA: --ca FILE, or a config with tls.dir (${loaded?.source ?? "no config"} has none)`
      })
    }
    const fs = yield* FileSystem.FileSystem
    const caPem = yield* fs.readFileString(caFile).pipe(
      Effect.mapError((error) => new UsageError({ message: `${caFile} cannot be read: ${error.message}`, cause: error }))
    )
    const context = yield* Either.mapLeft(
      Tls.clientContext(caPem),
      (error) => new UsageError({ message: `${caFile} is not a PEM CA certificate`, cause: error })
    )
    return { target, tls: address === undefined ? { context, server: options.server } : { context } }
  })

export const runClient = (target: Target, tls?: ClientTls): Effect.Effect<void, ClientError> =>
  Effect.raceFirst(session(target, tls), stdoutClosed).pipe(
    // Done with stdin, whether or not it ended: it must not keep the process waiting.
    Effect.ensuring(Effect.sync(() => process.stdin.destroy()))
  )

/**
 * Completes when stdout's reader has gone (`herd client Alford | head -1`):
 * the session then ends quietly, as any filter of a pipeline does, instead of
 * dying of the EPIPE.
 */
const stdoutClosed: Effect.Effect<void> = Effect.scoped(Effect.gen(function*() {
  const closed = yield* Deferred.make<void>()
  const onError = () => Deferred.unsafeDone(closed, Exit.void)
  yield* Effect.acquireRelease(
    Effect.sync(() => process.stdout.on("error", onError)),
    () => Effect.sync(() => process.stdout.off("error", onError))
  )
  yield* Deferred.await(closed)
}))

/** A TLS socket to the target, verified as `tls` says, as an Effect socket. */
const tlsSocket = (target: Target, tls: ClientTls) =>
  NodeSocket.fromDuplex(
    Effect.acquireRelease(
      Tls.dial({
        host: target.host,
        port: target.port,
        context: tls.context,
        ...(tls.server === undefined ? {} : { server: tls.server }),
        timeout: connectTimeout
      }).pipe(
        Effect.tap((socket) => Effect.sync(() => socket.setNoDelay(true))),
        Effect.mapError((cause) => new Socket.SocketGenericError({ reason: "Open", cause }))
      ),
      (socket) => Effect.sync(() => socket.destroy())
    )
  )

const session = (target: Target, tls: ClientTls | undefined): Effect.Effect<void, ClientError> =>
  Effect.gen(function*() {
    const socket = tls === undefined
      ? yield* NodeSocket.makeNet({
        host: target.host,
        port: target.port,
        openTimeout: connectTimeout,
        noDelay: true
      }).pipe(Effect.mapError((error) => sessionError(target, error)))
      : yield* tlsSocket(target, tls)
    const reading = yield* socket.run(
      (chunk) => {
        process.stdout.write(chunk)
      },
      // Someone typing wants to know where the lines go.
      { onOpen: process.stdin.isTTY ? printLine(`connected to ${target.label}`) : Effect.void }
    ).pipe(Effect.mapError((error) => sessionError(target, error)), Effect.fork)
    const sending = Effect.scoped(Effect.gen(function*() {
      const write = yield* socket.writer
      yield* NodeStream.stdin.pipe(Stream.runForEach(write))
      // Waits until the socket is open, so that the writer's release can
      // half-close it even when stdin was empty.
      yield* write(new Uint8Array(0))
    })).pipe(
      // A write fails only once the connection is broken: the reading side says how.
      Effect.catchAll(() => Effect.never)
    )
    const serverClosedFirst = Fiber.join(reading).pipe(
      Effect.zipRight(Effect.fail(new ClientError({ reason: "Closed", message: `${target.label} closed the connection` })))
    )
    yield* Effect.raceFirst(sending, serverClosedFirst)
    // Stdin ended and the socket is half-closed: the replies still coming, until the server closes.
    yield* Fiber.join(reading)
  })

const sessionError = (target: Target, error: Socket.SocketError): ClientError => {
  const cause = "cause" in error && error.cause instanceof Error ? error.cause.message : undefined
  return error.reason === "Open"
    ? new ClientError({
      reason: "Unreachable",
      message: `cannot reach ${target.label}: ${cause ?? error.message}`,
      cause: error
    })
    : new ClientError({
      reason: "Closed",
      message: `${target.label} closed the connection${cause === undefined ? "" : ` (${cause})`}`,
      cause: error
    })
}
