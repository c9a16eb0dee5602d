/**
 * A line-protocol client for tests: connect to a server over loopback, write
 * bytes (all at once or split), and wait for replies with a real-time
 * deadline, so that a missing reply fails the test instead of hanging it
 * (it works the same under `TestClock`).
 */
import { Data, Effect } from "effect"
import type { Scope } from "effect"
import * as Net from "node:net"

export class LineClientError extends Data.TaggedError("LineClientError")<{
  readonly message: string
  /** The socket's error, when one is what went wrong. */
  readonly cause?: unknown
}> {}

export interface LineClient {
  /** Everything received so far. */
  readonly received: () => Buffer
  readonly write: (data: string | Uint8Array) => Effect.Effect<void, LineClientError>
  /** Writes `data` one byte per write, each flushed before the next. */
  readonly writeBytewise: (data: string | Uint8Array) => Effect.Effect<void, LineClientError>
  /** Waits until `count` LF-terminated lines have arrived; answers them (without LF). */
  readonly readLines: (count: number, timeoutMs?: number) => Effect.Effect<Array<Buffer>, LineClientError>
  /** Waits until what has arrived satisfies `done`; answers all of it. */
  readonly readUntil: (done: (received: Buffer) => boolean, timeoutMs?: number) => Effect.Effect<Buffer, LineClientError>
  /**
   * The next reply not yet taken by `nextReply`: one line (an AT or `? `
   * line) or, with `multiLine`, a WHATSAT answer through its empty line
   * (or a `? ` line). Without the final LF.
   */
  readonly nextReply: (options?: { readonly multiLine?: boolean; readonly timeoutMs?: number }) => Effect.Effect<string, LineClientError>
  /** Half-closes: no more writes, replies still arrive. */
  readonly end: Effect.Effect<void>
  /** Waits until the server has closed the connection. */
  readonly closed: (timeoutMs?: number) => Effect.Effect<void, LineClientError>
  readonly isClosed: () => boolean
  /** The raw socket, for tests of back-pressure. */
  readonly socket: Net.Socket
}

const defaultTimeoutMs = 5000

export const connect = (
  address: { readonly host: string; readonly port: number }
): Effect.Effect<LineClient, LineClientError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<Net.Socket, LineClientError>((resume) => {
      const socket = Net.connect({ host: address.host, port: address.port, allowHalfOpen: true })
      socket.setNoDelay(true)
      socket.once("connect", () => resume(Effect.succeed(socket)))
      socket.once("error", (error) =>
        resume(Effect.fail(new LineClientError({ message: `connect ${address.host}:${address.port}: ${error.message}`, cause: error }))))
    }),
    (socket) => Effect.sync(() => socket.destroy())
  ).pipe(Effect.map(makeClient))

const makeClient = (socket: Net.Socket): LineClient => {
  let chunks: Array<Buffer> = []
  let closed = false
  /** Where `nextReply` goes on from. */
  let cursor = 0
  const listeners = new Set<() => void>()
  const notify = () => listeners.forEach((listener) => listener())
  socket.on("data", (chunk: Buffer) => {
    chunks.push(chunk)
    notify()
  })
  socket.on("error", () => {})
  // The server closing its side is what tests wait for: `end` (its FIN)
  // comes first, `close` (the socket fully gone) may never come here.
  const onClosed = () => {
    closed = true
    notify()
  }
  socket.on("end", onClosed)
  socket.on("close", onClosed)
  const received = () => {
    if (chunks.length > 1) chunks = [Buffer.concat(chunks)]
    return chunks[0] ?? Buffer.alloc(0)
  }

  const waitFor = <A>(
    check: () => A | undefined,
    describe: () => string,
    timeoutMs: number
  ): Effect.Effect<A, LineClientError> =>
    Effect.async<A, LineClientError>((resume) => {
      const attempt = () => {
        const result = check()
        if (result !== undefined) {
          stop()
          resume(Effect.succeed(result))
        } else if (closed) {
          stop()
          resume(Effect.fail(new LineClientError({ message: `connection closed while waiting for ${describe()}` })))
        }
      }
      const timer = setTimeout(() => {
        stop()
        resume(Effect.fail(new LineClientError({ message: `timed out after ${timeoutMs} ms waiting for ${describe()}` })))
      }, timeoutMs)
      const stop = () => {
        clearTimeout(timer)
        listeners.delete(attempt)
      }
      listeners.add(attempt)
      attempt()
      return Effect.sync(stop)
    })

  const write = (data: string | Uint8Array) =>
    Effect.async<void, LineClientError>((resume) => {
      socket.write(typeof data === "string" ? Buffer.from(data, "utf8") : data, (error) =>
        resume(error ? Effect.fail(new LineClientError({ message: `write: ${error.message}`, cause: error })) : Effect.void))
    })

  return {
    received,
    write,
    writeBytewise: (data) => {
      const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : data
      return Effect.forEach(bytes, (_, index) => write(bytes.subarray(index, index + 1)), { discard: true })
    },
    readLines: (count, timeoutMs = defaultTimeoutMs) =>
      waitFor(() => {
        const all = received()
        const lines: Array<Buffer> = []
        let start = 0
        let newline = all.indexOf(10)
        while (newline !== -1 && lines.length < count) {
          lines.push(all.subarray(start, newline))
          start = newline + 1
          newline = all.indexOf(10, start)
        }
        return lines.length === count ? lines : undefined
      }, () => `${count} lines (got: ${JSON.stringify(received().toString("latin1").slice(-300))})`, timeoutMs),
    readUntil: (done, timeoutMs = defaultTimeoutMs) =>
      waitFor(() => {
        const all = received()
        return done(all) ? all : undefined
      }, () => `a reply (got: ${JSON.stringify(received().toString("latin1").slice(-300))})`, timeoutMs),
    nextReply: (options = {}) =>
      waitFor(() => {
        const all = received()
        const newline = all.indexOf(10, cursor)
        if (newline === -1) return undefined
        let end = newline
        if (options.multiLine === true && !(all[cursor] === 0x3f && all[cursor + 1] === 0x20)) {
          const blank = all.indexOf("\n\n", cursor)
          if (blank === -1) return undefined
          end = blank + 1
        }
        const reply = all.subarray(cursor, end).toString("latin1")
        cursor = end + 1
        return reply
      }, () => `a reply (got: ${JSON.stringify(received().subarray(cursor).toString("latin1").slice(-300))})`, options.timeoutMs ?? defaultTimeoutMs),
    end: Effect.sync(() => {
      socket.end()
    }),
    closed: (timeoutMs = defaultTimeoutMs) =>
      Effect.async<void, LineClientError>((resume) => {
        if (closed) return resume(Effect.void)
        const timer = setTimeout(() => {
          listeners.delete(onClose)
          resume(Effect.fail(new LineClientError({ message: `the server did not close within ${timeoutMs} ms` })))
        }, timeoutMs)
        const onClose = () => {
          if (!closed) return
          clearTimeout(timer)
          listeners.delete(onClose)
          resume(Effect.void)
        }
        listeners.add(onClose)
        return Effect.sync(() => {
          clearTimeout(timer)
          listeners.delete(onClose)
        })
      }),
    isClosed: () => closed,
    socket
  }
}

/**
 * Splits what a server sent into replies: one line each (without its LF), or
 * for a WHATSAT answer its AT line and JSON through the `}` line's LF (the
 * empty line that ends it dropped). An unfinished reply at the end is left out.
 */
export const splitReplies = (all: Buffer): Array<Buffer> => {
  const replies: Array<Buffer> = []
  let start = 0
  while (start < all.length) {
    const newline = all.indexOf(10, start)
    if (newline === -1) break
    if (all[newline + 1] === 0x7b) {
      const end = all.indexOf("\n\n", newline)
      if (end === -1) break
      replies.push(all.subarray(start, end + 1))
      start = end + 2
    } else {
      replies.push(all.subarray(start, newline))
      start = newline + 1
    }
  }
  return replies
}
