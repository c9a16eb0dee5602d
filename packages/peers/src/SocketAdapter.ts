/**
 * One socket's life as an Effect resource, the same for a client's
 * connection, a neighbour's inbound link and an outbound link
 * (ARCHITECTURE.md, "The connection core").
 *
 * Node's socket is push-based: bytes arrive in callbacks, not through a
 * fiber. The adapter adds the callbacks when it is acquired and removes them
 * when it is released, so that nothing of a finished connection is ever
 * called again; and it runs every callback body, its own and any its owner
 * hands it (a timer's, a microtask's, a write's), through one guard: a throw
 * there is a bug, and it becomes a defect of the owning fiber (which logs it
 * and closes that connection) instead of an exception in Node's event
 * emitter, which would take the whole process down.
 *
 * It takes any `net.Socket`, a `tls.TLSSocket` included: how a socket is made
 * (accepted, dialled, plain or TLS) is its owner's business.
 */
import { Data, Effect, Exit } from "effect"
import type { Scope } from "effect"
import type * as Net from "node:net"

/** The socket failed (reset, timed out, a TLS alert): the error Node reported. */
export class SocketFailure extends Data.TaggedError("SocketFailure")<{ readonly cause: unknown }> {
  override get message(): string {
    const cause = this.cause
    if (cause instanceof Error) return "code" in cause && typeof cause.code === "string" ? cause.code : cause.message
    return String(cause)
  }
}

/** Why reading ended: the other side ended its input or closed the socket, or the owner stopped reading. */
export type Ended = "by-peer" | "by-owner"

export interface Handlers {
  /** Bytes from the other side. */
  readonly onData: (chunk: Buffer) => void
  /** The bytes written so far have been taken by the kernel. */
  readonly onDrain?: () => void
  /**
   * A guarded callback threw. Called whether or not `closed` has completed
   * yet: an owner still finishing its replies learns of it too.
   */
  readonly onDefect?: (defect: unknown) => void
}

export interface SocketAdapter {
  readonly socket: Net.Socket
  /** `host:port` of the other side, for logs. */
  readonly remote: string
  /**
   * Queues bytes for the other side; `onWritten` runs (guarded) once the
   * kernel has them. Answers false, writing nothing, once the socket can no
   * longer be written.
   */
  write(bytes: Uint8Array, onWritten?: () => void): boolean
  /** Bytes written that the kernel has not taken yet. */
  unsentBytes(): number
  pause(): void
  resume(): void
  /**
   * Completes when reading ends: the other side ended its input or closed
   * (`"by-peer"`), or the owner called `stopReading` (`"by-owner"`). Fails
   * with the socket's error; dies with the defect of a guarded callback.
   */
  readonly closed: Effect.Effect<Ended, SocketFailure>
  /** Stops reading and completes `closed`: the owner is done with the input. */
  stopReading(): void
  /** Whether `closed` has completed. */
  isClosed(): boolean
  /** Completes once what is written has drained to the kernel, or the socket is closed: a writer's back-pressure. */
  readonly drained: Effect.Effect<void>
  /** Runs `body` under the guard (see the module comment). */
  guard(body: () => void): void
}

/**
 * Adapts `socket` for the current scope. The release removes every listener
 * the adapter added and leaves the socket itself open: closing it (at once,
 * or once the replies are written) is the owner's choice.
 */
export const make = (socket: Net.Socket, handlers: Handlers): Effect.Effect<SocketAdapter, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => new Adapter(socket, handlers)),
    (adapter) => Effect.sync(() => adapter.unsafeDetach())
  )

/**
 * An adapter whose listeners its owner removes itself, with `unsafeDetach`,
 * whatever happens: for a connection's fiber, which holds nothing else, so
 * that an idle connection costs no scope and no extra fiber frames.
 */
export const unsafeMake = (socket: Net.Socket, handlers: Handlers): OwnedSocketAdapter => new Adapter(socket, handlers)

/** An adapter made by `unsafeMake`: its owner removes the listeners. */
export interface OwnedSocketAdapter extends SocketAdapter {
  /** Removes the listeners (see `make`'s release) and completes `closed`. */
  unsafeDetach(): void
}

/**
 * Its methods are on the prototype and only the four listeners are bound:
 * an adapter per idle connection is most of what that connection costs.
 */
class Adapter implements OwnedSocketAdapter {
  readonly remote: string
  /**
   * How the socket ended, once it has, and who waits for that meanwhile: not
   * a `Deferred`, whose object literal gets a hidden class and a `commit`
   * closure of its own (some 400 bytes of every idle connection).
   */
  private ending: Exit.Exit<Ended, SocketFailure> | undefined = undefined
  private waiters: Array<(exit: Exit.Exit<Ended, SocketFailure>) => void> | undefined = undefined
  private readonly onData: (chunk: Buffer) => void
  private readonly onDrain: () => void
  private readonly onEnd: () => void
  private readonly onError: (cause: Error) => void

  constructor(readonly socket: Net.Socket, private readonly handlers: Handlers) {
    this.remote = `${socket.remoteAddress}:${socket.remotePort}`
    this.onData = (chunk) => {
      try {
        handlers.onData(chunk)
      } catch (defect) {
        this.defect(defect)
      }
    }
    this.onDrain = () => {
      try {
        handlers.onDrain?.()
      } catch (defect) {
        this.defect(defect)
      }
    }
    this.onEnd = () => this.finish(Exit.succeed("by-peer"))
    this.onError = (cause) => this.finish(Exit.fail(new SocketFailure({ cause })))
    socket.on("data", this.onData)
    socket.on("drain", this.onDrain)
    socket.on("end", this.onEnd)
    socket.on("close", this.onEnd)
    socket.on("error", this.onError)
  }

  get closed(): Effect.Effect<Ended, SocketFailure> {
    return Effect.async<Ended, SocketFailure>((resume) => {
      if (this.ending !== undefined) return resume(this.ending)
      const waiters = this.waiters ??= []
      waiters.push(resume)
      return Effect.sync(() => {
        const index = waiters.indexOf(resume)
        if (index !== -1) waiters.splice(index, 1)
      })
    })
  }

  get drained(): Effect.Effect<void> {
    const socket = this.socket
    return Effect.async<void>((resume) => {
      if (socket.writableLength === 0 || socket.destroyed || !socket.writable) return resume(Effect.void)
      const wake = () => {
        socket.off("drain", wake)
        socket.off("close", wake)
        resume(Effect.void)
      }
      socket.on("drain", wake)
      socket.on("close", wake)
      return Effect.sync(() => {
        socket.off("drain", wake)
        socket.off("close", wake)
      })
    })
  }

  write(bytes: Uint8Array, onWritten?: () => void): boolean {
    if (!this.socket.writable) return false
    if (onWritten === undefined) this.socket.write(bytes)
    else this.socket.write(bytes, () => this.guard(onWritten))
    return true
  }

  unsentBytes(): number {
    return this.socket.writableLength
  }

  pause(): void {
    this.socket.pause()
  }

  resume(): void {
    this.socket.resume()
  }

  stopReading(): void {
    this.socket.pause()
    this.finish(Exit.succeed("by-owner"))
  }

  isClosed(): boolean {
    return this.ending !== undefined
  }

  guard(body: () => void): void {
    try {
      body()
    } catch (defect) {
      this.defect(defect)
    }
  }

  /** Removes the listeners; an `error` listener stays, as a socket with none would crash the process on its next error. */
  unsafeDetach(): void {
    const socket = this.socket
    socket.off("data", this.onData)
    socket.off("drain", this.onDrain)
    socket.off("end", this.onEnd)
    socket.off("close", this.onEnd)
    socket.off("error", this.onError)
    if (socket.listenerCount("error") === 0) socket.on("error", ignoreError)
    this.finish(Exit.succeed("by-owner"))
  }

  private finish(exit: Exit.Exit<Ended, SocketFailure>): void {
    if (this.ending !== undefined) return
    this.ending = exit
    const waiters = this.waiters
    this.waiters = undefined
    if (waiters !== undefined) for (const resume of waiters) resume(exit)
  }

  private defect(defect: unknown): void {
    this.finish(Exit.die(defect))
    try {
      this.handlers.onDefect?.(defect)
    } catch {
      // The owner's own handling failed: its fiber has the first defect, and the socket goes.
      this.socket.destroy()
    }
  }
}

const ignoreError = (): void => {}
