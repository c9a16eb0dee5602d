/**
 * One accepted connection, client or neighbour: a `Session` (what is done
 * with the bytes) carried by a `SocketAdapter` (the socket), owned by one
 * fiber of the server (ARCHITECTURE.md, "The connection core").
 *
 * The fiber waits for the input to end (the other side half-closed or
 * closed, the session stopped reading, or a callback threw), lets the
 * session answer what it read, and closes the socket once the replies are
 * written. The session's deadlines go on the server's `Deadlines`, which run
 * on the Effect clock.
 */
import type * as Socket from "@effect/platform/Socket"
import { SocketAdapter } from "@herd/peers"
import { Cause, Deferred, Effect, Exit, FiberId, Option } from "effect"
import type { Clock } from "effect"
import type * as Net from "node:net"
import { probationMs } from "./Admission.ts"
import type { OnProbation } from "./Admission.ts"
import type { Deadline, Deadlines } from "./Deadlines.ts"
import { netSocketOf } from "./NetSocket.ts"
import { Session } from "./Session.ts"
import type { SessionPort, SessionServices } from "./Session.ts"
import * as Tls from "./Tls.ts"

export interface ConnectionServices extends SessionServices {
  /** The server's deadlines, on the Effect clock. */
  readonly deadlines: Deadlines
  /** With `tls`: the server's certificates; each connection is sniffed for TLS by its first byte. */
  readonly tls: Tls.Credentials | undefined
}

let connectionCount = 0

/**
 * Serves one accepted connection until it is done: its input ended and
 * every reply to what it sent is written (or the socket is gone).
 *
 * The adapter reads the raw socket's events itself rather than through
 * `Socket.run`: a connection then costs one fiber, not four (about 15 KB
 * less each, which is what lets 10,000 idle clients stay cheap).
 */
export const serveConnection = (services: ConnectionServices) => (_socket: Socket.Socket) =>
  Effect.uninterruptibleMask((restore) => Effect.gen(() => connectionLife(services, restore)))

/**
 * `serveConnection`'s body: a generator function of the module's, not one
 * made per connection, whose generator objects would each need a prototype
 * and a hidden class of their own (some 700 bytes an idle connection).
 */
function* connectionLife(
  services: ConnectionServices,
  restore: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
) {
  const accepted = yield* netSocketOf
  const secured = services.tls === undefined
    ? undefined
    : yield* restore(Tls.accept(accepted, services.tls)).pipe(
      Effect.either,
      // Counted from its accept, as a session counts itself: with no limit on
      // the wait for a first byte, strangers that send nothing could otherwise
      // hold any number of sockets. The session takes a slot of its own next.
      holdingSlot(services, accepted)
    )
  if (secured !== undefined && secured._tag === "Left") {
    // Gone before its first byte is no refusal: nothing was said.
    if (secured.left.reason !== "Closed") {
      services.stats.connectionsRefused++
      services.log.unsafeRecord("refused", {
        remote: `${accepted.remoteAddress}:${accepted.remotePort}`,
        reason: secured.left.message
      })
    }
    return
  }
  const conn: Net.Socket = secured === undefined ? accepted : secured.right.socket
  const identity = secured !== undefined && secured.right._tag === "Tls" ? secured.right.peer : undefined
  // Paused until the session exists: no byte may come while there is none to take it.
  conn.pause()
  const carrier = new Carrier(services, yield* Effect.clock)
  // Not in a scope: this fiber holds nothing else, and an idle connection should cost no more.
  const adapter = SocketAdapter.unsafeMake(conn, carrier)
  const session = carrier.start(adapter, identity)
  // Until the other side ends its input or the socket fails, or until the
  // session stops reading (line too long, partial line too slow).
  const ended = yield* restore(adapter.closed).pipe(Effect.exit)
  // Also on interruption (the server shutting down): what was read gets
  // its reply before the connection closes. A defect was handed to the
  // session by the adapter already (`onDefect`).
  if (Exit.isSuccess(ended) && ended.value === "by-peer") session.finishInput("closed by client")
  else session.endInput(closeReasonOf(ended))
  // A client that half-closed may still have a read held by back-pressure
  // (it does not read its replies): a stopping server does not wait for it.
  const answered = yield* restore(carrier.whenSettled()).pipe(Effect.exit)
  if (Exit.isFailure(answered)) session.endInput("server shutting down")
  yield* carrier.whenSettled().pipe(
    Effect.ensuring(Effect.sync(() => {
      carrier.stop()
      adapter.unsafeDetach()
    }))
  )
  session.close()
  closeWhenWritten(conn, services.deadlines)
}

/**
 * Runs `sniff` holding a connection slot of the server's admission for
 * `socket`. Past the client limit it is a probation slot: the oldest holder
 * makes room for a newer one, and none holds it longer than a session on
 * probation may wait for `PEER` (a neighbour's first byte and TLS handshake
 * take milliseconds); either way the socket is destroyed.
 */
const holdingSlot = (services: ConnectionServices, socket: Net.Socket) => <A, E, R>(sniff: Effect.Effect<A, E, R>) =>
  Effect.suspend(() => {
    const candidate: OnProbation = { evict: () => socket.destroy() }
    const slot = services.admission.admit(candidate)
    const cut = slot === "probation" ? services.deadlines.set(probationMs, () => socket.destroy()) : undefined
    return sniff.pipe(Effect.ensuring(Effect.sync(() => {
      services.deadlines.clear(cut)
      services.admission.release(slot, candidate)
    })))
  })

/**
 * What carries one session over its socket's adapter: the adapter's
 * handlers and the session's port in one object, its methods on the
 * prototype (an idle connection costs this object, the adapter and the
 * session, little more).
 */
class Carrier implements SessionPort, SocketAdapter.Handlers {
  private session: Session | undefined
  private adapter: SocketAdapter.SocketAdapter | undefined
  private deadline: Deadline | undefined

  /** Whether every reply to what was read is sent or dropped (the session said `settled`). */
  private isSettled = false
  /** Made when first awaited, once the input ended: an idle connection has none. */
  private settledSignal: Deferred.Deferred<void> | undefined = undefined

  constructor(
    private readonly services: ConnectionServices,
    private readonly clock: Clock.Clock
  ) {}

  /** Completes once the session has settled. */
  whenSettled(): Effect.Effect<void> {
    if (this.isSettled) return Effect.void
    this.settledSignal ??= Deferred.unsafeMake<void>(FiberId.none)
    return Deferred.await(this.settledSignal)
  }

  start(adapter: SocketAdapter.SocketAdapter, identity: Tls.PeerIdentity | undefined): Session {
    this.adapter = adapter
    const session = new Session(this.services, this, ++connectionCount, adapter.remote, identity)
    this.session = session
    adapter.resume()
    return session
  }

  stop(): void {
    this.services.deadlines.clear(this.deadline)
    this.deadline = undefined
  }

  // The adapter's handlers.
  onData(chunk: Buffer): void {
    this.session?.feed(chunk, this.nowNs())
  }

  onDrain(): void {
    this.session?.drained()
  }

  onDefect(defect: unknown): void {
    this.session?.defect(defect)
  }

  // The session's port.
  send(bytes: Buffer): boolean {
    return this.adapter?.write(bytes) ?? false
  }

  unsentBytes(): number {
    return this.adapter?.unsentBytes() ?? 0
  }

  pause(): void {
    this.adapter?.pause()
  }

  resume(): void {
    this.adapter?.resume()
  }

  inputEnded(): void {
    this.adapter?.stopReading()
  }

  settled(): void {
    this.isSettled = true
    if (this.settledSignal !== undefined) Deferred.unsafeDone(this.settledSignal, Exit.void)
  }

  wakeAt(dueNs: bigint | undefined): void {
    this.services.deadlines.clear(this.deadline)
    if (dueNs === undefined) {
      this.deadline = undefined
      return
    }
    this.expire ??= () => this.guard(() => this.session?.expire(this.nowNs()))
    this.deadline = this.services.deadlines.setAt(dueNs, this.expire)
  }

  guard(body: () => void): void {
    if (this.adapter === undefined) body()
    else this.adapter.guard(body)
  }

  nowNs(): bigint {
    return this.clock.unsafeCurrentTimeNanos()
  }

  /** The session's `expire` as a deadline's callback, made at its first deadline: an idle client may have none. */
  private expire: (() => void) | undefined
}

const closeReasonOf = (ended: Exit.Exit<SocketAdapter.Ended, SocketAdapter.SocketFailure>): string =>
  Exit.match(ended, {
    onSuccess: () => "closed by client",
    onFailure: (cause) =>
      Option.match(Cause.failureOption(cause), {
        onSome: (failure) => `socket error: ${failure.message}`,
        onNone: () => Cause.isInterruptedOnly(cause) ? "server shutting down" : "internal error"
      })
  })

/** Time a closing connection gets to take its last replies and close its side. */
const lingerMs = 1000

/**
 * Ends the connection once its replies are written. Input that arrives
 * meanwhile is read and dropped: closing a socket with unread input makes
 * the kernel reset the connection, and a reset can destroy replies the
 * client has not read yet. The connection closes when the client closes its
 * side too, or after `lingerMs`, so that neither it nor a shutting-down
 * server waits on it forever.
 */
const closeWhenWritten = (conn: Net.Socket, deadlines: Deadlines): void => {
  if (conn.destroyed) return
  const cut = deadlines.set(lingerMs, () => conn.destroy())
  conn.once("close", () => deadlines.clear(cut))
  const closeWhenBothEnded = () => {
    if (conn.readableEnded && conn.writableFinished) conn.destroy()
  }
  conn.on("end", closeWhenBothEnded)
  conn.end(closeWhenBothEnded)
  conn.resume()
}
