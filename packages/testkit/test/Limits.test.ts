/**
 * The resource limits of a server, each configurable and each logged: too
 * many connections, a client that sends without reading, a partial line
 * held open (slow-loris).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, TestClock } from "effect"
import { Eventually, LineClient, SingleServer } from "../src/index.ts"

const events = (lines: ReadonlyArray<string>, event: string) =>
  lines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((entry) => entry["event"] === event)

describe("server limits", () => {
  it.scopedLive("closes a connection past maxConnections that does not say PEER, and keeps serving the others", () =>
    Effect.gen(function*() {
      const server = yield* SingleServer.startServer({ config: { limits: { maxConnections: 3 } } })
      const first = yield* LineClient.connect(server.address)
      const second = yield* LineClient.connect(server.address)
      const third = yield* LineClient.connect(server.address)
      for (const client of [first, second, third]) {
        yield* client.write("IAMAT held +1+1 1\n")
        yield* client.nextReply()
      }
      const extra = yield* LineClient.connect(server.address)
      yield* extra.write("IAMAT extra +1+1 1\n")
      yield* extra.closed(1000)
      expect(extra.received().length).toBe(0)
      expect(events(server.logLines(), "refused").length).toBe(1)
      yield* first.write("IAMAT still +1+1 1\n")
      expect(yield* first.nextReply()).toMatch(/^AT Alford \S+ still \+1\+1 1$/)
      // Once one closes, a new one is let in.
      third.socket.destroy()
      yield* Eventually.eventually(Effect.sync(() => events(server.logLines(), "close").length === 1 ? true : undefined))
      const next = yield* LineClient.connect(server.address)
      yield* next.write("IAMAT next +1+1 1\n")
      expect(yield* next.nextReply()).toMatch(/^AT Alford \S+ next \+1\+1 1$/)
    }))

  it.scopedLive("stops reading a client that sends without reading, and answers everything once it reads", () =>
    Effect.gen(function*() {
      const server = yield* SingleServer.startServer({ config: { limits: { pendingReplyBytes: 16 * 1024 } } })
      const client = yield* LineClient.connect(server.address)
      const socket = client.socket
      socket.pause() // the client does not read
      const batch = "IAMAT a-client-that-never-reads +34.068930-118.445127 1621464827.959498503\n".repeat(1000)
      // Write until the bytes stop leaving: the server's unwritten replies passed
      // the limit, it stopped reading, and the kernel buffers between us filled.
      let batches = 0
      while (batches < 300 && socket.writableLength < 1024 * 1024) {
        socket.write(batch)
        batches++
        yield* Effect.sleep("1 millis")
      }
      const stalled = socket.writableLength
      expect(stalled).toBeGreaterThanOrEqual(1024 * 1024)
      // Stopped, not slow: nothing more leaves while the client does not read.
      yield* Effect.sleep("200 millis")
      expect(socket.writableLength).toBe(stalled)
      // Now read: every line gets its reply, in order.
      const sentLines = batches * 1000
      let replies = 0
      let wrong = 0
      let partial = ""
      socket.on("data", (chunk: Buffer) => {
        const lines = (partial + chunk.toString("latin1")).split("\n")
        partial = lines.pop() ?? ""
        for (const reply of lines) {
          replies++
          if (!/^AT Alford \S+ a-client-that-never-reads \S+ 1621464827\.959498503$/.test(reply)) wrong++
        }
      })
      socket.resume()
      yield* Eventually.eventually(Effect.sync(() => replies >= sentLines ? true : undefined), {
        timeoutMs: 20_000,
        describe: () => `${sentLines} replies (got ${replies})`
      })
      expect(replies).toBe(sentLines)
      expect(wrong).toBe(0)
    }), 30_000)

  it.scoped("closes a connection whose partial line stays unfinished past partialLineTimeoutMs (on the Effect clock)", () =>
    Effect.gen(function*() {
      const server = yield* SingleServer.startServer({ config: { limits: { partialLineTimeoutMs: 30_000 } } })
      const slow = yield* LineClient.connect(server.address)
      const steady = yield* LineClient.connect(server.address)
      yield* slow.write("IAMAT slow +1+1 1\nIAMAT sl")
      yield* slow.nextReply()
      // A client that finishes each line within the limit is not affected.
      for (let i = 0; i < 4; i++) {
        yield* steady.write("IAMAT stea")
        yield* TestClock.adjust("10 seconds")
        yield* steady.write(`dy +1+1 ${i}\n`)
        yield* steady.nextReply()
      }
      yield* TestClock.adjust("30 seconds")
      yield* slow.closed(2000)
      expect(slow.received().toString("latin1")).toMatch(/^AT Alford \S+ slow \+1\+1 1\n$/)
      expect(steady.isClosed()).toBe(false)
      yield* steady.write("IAMAT still +1+1 1\n")
      expect(yield* steady.nextReply()).toMatch(/^AT Alford \S+ still \+1\+1 1$/)
      const violations = events(server.logLines(), "violation")
      expect(violations.map((v) => v["reason"])).toEqual(["partial line timed out"])
    }), 15_000)

  it.scoped("closes a connection whose client never closes its side, one linger after the server closed its own (on the Effect clock)", () =>
    Effect.gen(function*() {
      const server = yield* SingleServer.startServer({})
      const client = yield* LineClient.connect(server.address)
      // Too long: the server answers nothing more, ends its side, and reads
      // and drops what comes next while it lingers for the client to close.
      yield* client.write("IAMAT " + "x".repeat(9000) + "\n")
      yield* client.closed()
      client.socket.write("IAMAT dropped +1+1 1\n")
      yield* TestClock.adjust("1 second")
      // Gone past its linger: a write of the client's is answered by a reset.
      yield* Eventually.eventually(Effect.sync(() => {
        if (!client.socket.destroyed) client.socket.write("IAMAT reset +1+1 1\n")
        return client.socket.destroyed ? true : undefined
      }), { describe: () => "the server's socket to be gone" })
      expect(client.received().length).toBe(0)
    }))
})
