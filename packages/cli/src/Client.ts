/**
 * `herd client <name|host:port>`: stdin to the server, the server's replies
 * to stdout, the way people use redis-cli. When stdin ends the session
 * half-closes and waits for the last replies; when the server closes first,
 * it says so and exits 1.
 *
 * An argument of the form `host:port` (`[::1]:port` for IPv6) is an address
 * and needs no config; anything else is a server name of the config.
 */
import * as NodeSocket from "@effect/platform-node/NodeSocket"
import * as NodeStream from "@effect/platform-node/NodeStream"
import type { Socket } from "@effect/platform"
import { Data, Deferred, Effect, Exit, Fiber, Stream } from "effect"
import type { LoadedConfig } from "./Config.ts"
import { checkServerNames } from "./Config.ts"
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

export const runClient = (target: Target): Effect.Effect<void, ClientError> =>
  Effect.raceFirst(session(target), stdoutClosed).pipe(
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

const session = (target: Target): Effect.Effect<void, ClientError> =>
  Effect.gen(function*() {
    const socket = yield* NodeSocket.makeNet({
      host: target.host,
      port: target.port,
      openTimeout: connectTimeout,
      noDelay: true
    }).pipe(Effect.mapError((error) => sessionError(target, error)))
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
