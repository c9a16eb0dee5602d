/**
 * For the tests of `herd certs` and `herd client --tls`: a loopback listener
 * that sniffs each connection with the server package's TLS toolkit (plain
 * or TLS on one port, as a server with `tls` does), says what each turned
 * out to be, and answers each line with `<kind> <line>`: `plain`, or `tls`
 * and the identity the peer's certificate proved (`Anonymous`,
 * `Unverified`, `Server <names>`). It ends its side when the client does.
 */
import { NodeContext } from "@effect/platform-node"
import { Tls } from "@herd/server"
import { Effect, Either, Queue } from "effect"
import type { Scope } from "effect"
import * as Net from "node:net"

export type Outcome = Either.Either<Tls.Accepted, Tls.TlsError>

export const describeIdentity = (peer: Tls.PeerIdentity): string =>
  peer._tag === "Server" ? `Server ${peer.names.join(",")}` : peer._tag

/** `Plain`, `Tls <identity>`, or `error <reason>`. */
export const outcomeTag = (outcome: Outcome): string =>
  Either.match(outcome, {
    onLeft: (error) => `error ${error.reason}`,
    onRight: (accepted) => accepted._tag === "Plain" ? "Plain" : `Tls ${describeIdentity(accepted.peer)}`
  })

const answerLines = (socket: Net.Socket, prefix: string) => {
  let pending = ""
  socket.on("data", (chunk: Buffer) => {
    pending += chunk.toString("latin1")
    let end: number
    while ((end = pending.indexOf("\n")) >= 0) {
      socket.write(`${prefix} ${pending.slice(0, end)}\n`)
      pending = pending.slice(end + 1)
    }
  })
  socket.on("end", () => socket.end())
}

/** `tls.dir` loaded for one server, as a server with `tls` loads it. */
export const loadCredentials = (dir: string, name: string, clients: "optional" | "required" = "optional") =>
  Tls.load({ dir, name, clients }).pipe(Effect.provide(NodeContext.layer))

export interface SniffingListener {
  readonly port: number
  /** What the next connection turned out to be (within 5 s). */
  readonly next: Effect.Effect<Outcome, Error>
}

export const sniffingListener = (credentials: Tls.Credentials): Effect.Effect<SniffingListener, never, Scope.Scope> =>
  Effect.gen(function*() {
    const outcomes = yield* Queue.unbounded<Outcome>()
    const sockets = new Set<Net.Socket>()
    const handle = (socket: Net.Socket) =>
      Tls.accept(socket, credentials).pipe(
        Effect.tap((accepted) =>
          Effect.sync(() => {
            if (accepted._tag === "Plain") {
              answerLines(accepted.socket, "plain")
              accepted.socket.resume()
            } else {
              answerLines(accepted.socket, `tls ${describeIdentity(accepted.peer)}`)
            }
          })
        ),
        Effect.either,
        Effect.flatMap((outcome) => Queue.offer(outcomes, outcome))
      )
    const server = yield* Effect.acquireRelease(
      Effect.async<Net.Server>((resume) => {
        const server = Net.createServer({ allowHalfOpen: true }, (socket) => {
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
    return {
      port: typeof address === "object" && address !== null ? address.port : 0,
      next: Queue.take(outcomes).pipe(
        Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => new Error("no connection sniffed within 5 s") })
      )
    }
  })

/** A socket destroyed with the test's scope. */
export const owned = <S extends Net.Socket>(socket: S): Effect.Effect<S, never, Scope.Scope> =>
  Effect.acquireRelease(Effect.succeed(socket), (socket) => Effect.sync(() => socket.destroy()))

/** The next line the socket receives, or `closed` if it closes first; within 5 s. */
export const nextLine = (socket: Net.Socket): Effect.Effect<string, Error> =>
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
