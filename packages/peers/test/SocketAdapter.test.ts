/**
 * The socket adapter on real loopback sockets: what ends `closed`, and that
 * a throw in any callback it runs (data, drain, a write's, a timer's or a
 * microtask's through `guard`) becomes a defect of the owning fiber and
 * touches no other socket.
 */
import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit, Option } from "effect"
import * as Net from "node:net"
import { SocketAdapter } from "../src/index.ts"

/** A connected pair of sockets on loopback: the accepted side and the dialled side. */
const socketPair = Effect.acquireRelease(
  Effect.async<{ readonly accepted: Net.Socket; readonly dialled: Net.Socket; readonly server: Net.Server }>((resume) => {
    const server = Net.createServer((accepted) => {
      accepted.on("error", () => {})
      resume(Effect.succeed({ accepted, dialled, server }))
    })
    let dialled: Net.Socket
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      dialled = Net.createConnection({ host: "127.0.0.1", port })
      dialled.on("error", () => {})
    })
  }),
  ({ accepted, dialled, server }) =>
    Effect.async<void>((resume) => {
      accepted.destroy()
      dialled.destroy()
      server.close(() => resume(Effect.void))
    })
)

const defectOf = <A, E>(exit: Exit.Exit<A, E>): unknown =>
  Exit.isFailure(exit) ? Option.getOrUndefined(Cause.dieOption(exit.cause)) : undefined

describe("SocketAdapter", () => {
  it.scopedLive("hands bytes to onData and completes closed when the other side ends its input", () =>
    Effect.gen(function*() {
      const { accepted, dialled } = yield* socketPair
      let received = ""
      const adapter = yield* SocketAdapter.make(accepted, {
        onData: (chunk) => {
          received += chunk.toString("latin1")
        }
      })
      dialled.end("IAMAT a +1+1 1\n")
      expect(yield* adapter.closed).toBe("by-peer")
      expect(received).toBe("IAMAT a +1+1 1\n")
      expect(adapter.isClosed()).toBe(true)
    }))

  it.scopedLive("completes closed when its owner stops reading, and fails it with the socket's error", () =>
    Effect.gen(function*() {
      const first = yield* socketPair
      const stopped = yield* SocketAdapter.make(first.accepted, { onData: () => {} })
      stopped.stopReading()
      expect(yield* stopped.closed).toBe("by-owner")

      const second = yield* socketPair
      const reset = yield* SocketAdapter.make(second.accepted, { onData: () => {} })
      second.dialled.resetAndDestroy()
      const failure = yield* Effect.flip(reset.closed)
      expect(failure._tag).toBe("SocketFailure")
      expect(failure.message).toBe("ECONNRESET")
    }))

  it.scopedLive("turns a throw in each callback into a defect of closed, reported to onDefect, leaving other sockets alone", () =>
    Effect.gen(function*() {
      const paths = ["data", "drain", "write", "timer", "microtask"] as const
      for (const path of paths) {
        const { accepted, dialled } = yield* socketPair
        const bystander = yield* socketPair
        const reported: Array<unknown> = []
        const bug = new Error(`a bug in the ${path} callback`)
        const adapter = yield* SocketAdapter.make(accepted, {
          onData: () => {
            if (path === "data") throw bug
          },
          onDrain: () => {
            if (path === "drain") throw bug
          },
          onDefect: (defect) => reported.push(defect)
        })
        const calm = yield* SocketAdapter.make(bystander.accepted, { onData: () => {} })
        switch (path) {
          case "data":
            dialled.write("IAMAT a +1+1 1\n")
            break
          case "drain":
            // The other side does not read until the kernel's buffers are full and
            // the socket holds bytes: Node emits drain once it has handed them over.
            for (let i = 0; i < 256 && accepted.writableLength === 0; i++) adapter.write(Buffer.alloc(1 << 20))
            expect(accepted.writableLength).toBeGreaterThan(0)
            dialled.resume()
            break
          case "write":
            adapter.write(Buffer.from("AT ...\n"), () => {
              throw bug
            })
            break
          case "timer":
            setTimeout(() =>
              adapter.guard(() => {
                throw bug
              }), 1)
            break
          case "microtask":
            queueMicrotask(() =>
              adapter.guard(() => {
                throw bug
              })
            )
            break
        }
        const exit = yield* Effect.exit(adapter.closed).pipe(Effect.timeout("3 seconds"))
        expect(defectOf(exit), path).toBe(bug)
        expect(reported, path).toEqual([bug])
        expect(calm.isClosed(), path).toBe(false)
        expect(bystander.accepted.destroyed, path).toBe(false)
      }
    }))
})
