import { describe, expect, it } from "@effect/vitest"
import type { LocationRecord } from "@herd/protocol"
import { makeMemory } from "@herd/store"
import { LocationStore } from "@herd/store"
import { Context, Effect, Exit, Layer, Scope } from "effect"
import * as Net from "node:net"
import { PeerLinks } from "../src/index.ts"
import * as Peers from "../src/index.ts"
import type { LinkEvent } from "../src/index.ts"

const record = (client: string, time: string): LocationRecord => ({
  origin: "Alford",
  skew: "+0.000000000",
  client,
  location: "+1+1",
  time
})

/** A neighbour stand-in on a free port: it keeps what it receives and counts its connections. */
const fakeNeighbour = Effect.acquireRelease(
  Effect.async<{ readonly server: Net.Server; readonly port: number; readonly received: () => string; readonly open: () => number; readonly accepted: () => number }>((resume) => {
    let text = ""
    let open = 0
    let accepted = 0
    const server = Net.createServer((socket) => {
      accepted++
      open++
      socket.on("data", (chunk) => {
        text += chunk.toString("latin1")
      })
      socket.on("error", () => {})
      socket.on("close", () => {
        open--
      })
    })
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      resume(Effect.succeed({ server, port, received: () => text, open: () => open, accepted: () => accepted }))
    })
  }),
  ({ server }) =>
    Effect.async<void>((resume) => {
      server.close(() => resume(Effect.void))
    })
)

/** Polls `check` in real time until it holds (at most 3 s). */
const until = (check: () => boolean, what: string) =>
  Effect.gen(function*() {
    const deadline = Date.now() + 3000
    while (!check()) {
      if (Date.now() > deadline) return yield* Effect.dieMessage(`timed out waiting for ${what}`)
      yield* Effect.sleep("2 millis")
    }
  })

describe("PeerLinks", () => {
  it.scopedLive("says PEER, sends catch-up, floods, and leaves no socket or retrying fiber when its scope closes", () =>
    Effect.gen(function*() {
      const neighbour = yield* fakeNeighbour
      const store = yield* makeMemory
      store.offer(record("before", "1"))
      const events: Array<LinkEvent> = []
      const scope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(
        Peers.layer({
          self: "Alford",
          neighbours: [{ name: "Parker", host: "127.0.0.1", port: neighbour.port }],
          reconnect: { initialMs: 5, capMs: 20 },
          onEvent: (event) => events.push(event)
        }).pipe(Layer.provide(Layer.succeed(LocationStore, store))),
        scope
      )
      const links = Context.get(context, PeerLinks)
      yield* until(() => events.some((e) => e.event === "link-up"), "the link")
      expect(events[0]).toEqual({ event: "link-up", peer: "Parker", address: `127.0.0.1:${neighbour.port}`, catchUp: 1 })
      links.flood(record("after", "2"))
      links.flood(record("echo", "3"), "Parker") // came from Parker: not sent back
      links.flood(record("last", "4"))
      yield* until(() => neighbour.received().includes(" last "), "the floods")
      expect(neighbour.received()).toBe(
        "PEER Alford\n" +
          "AT Alford +0.000000000 before +1+1 1\n" +
          "AT Alford +0.000000000 after +1+1 2\n" +
          "AT Alford +0.000000000 last +1+1 4\n"
      )
      yield* Scope.close(scope, Exit.void)
      yield* until(() => neighbour.open() === 0, "the link's socket to close")
      // Well past the retry delays: a fiber left behind would have dialled again.
      const accepted = neighbour.accepted()
      yield* Effect.sleep("200 millis")
      expect(neighbour.accepted()).toBe(accepted)
    }))

  it.scopedLive("re-dials an unreachable neighbour with back-off, queueing nothing meanwhile", () =>
    Effect.gen(function*() {
      const store = yield* makeMemory
      const events: Array<LinkEvent> = []
      // A port with nothing listening: take a free one and close it.
      const port = yield* Effect.scoped(Effect.map(fakeNeighbour, (n) => n.port))
      const links = yield* Peers.make({
        self: "Alford",
        neighbours: [{ name: "Parker", host: "127.0.0.1", port }],
        reconnect: { initialMs: 5, capMs: 40 },
        onEvent: (event) => events.push(event)
      }).pipe(Effect.provideService(LocationStore, store))
      for (let i = 0; i < 10_000; i++) links.flood(record(`c${i}`, "1"))
      yield* until(() => events.length >= 4, "several dial attempts")
      expect(events.every((e) => e.event === "link-failed" && e.reason === "open: ECONNREFUSED")).toBe(true)
    }))

  it.scopedLive("cuts a neighbour that stops reading once its queue is full, and dials again", () =>
    Effect.gen(function*() {
      const store = yield* makeMemory
      const events: Array<LinkEvent> = []
      // A neighbour that accepts and does not read, until it is told to.
      const sockets: Array<Net.Socket> = []
      let reading = false
      const server = yield* Effect.acquireRelease(
        Effect.async<Net.Server>((resume) => {
          const s = Net.createServer((socket) => {
            if (!reading) socket.pause()
            socket.on("error", () => {})
            sockets.push(socket)
          })
          s.listen(0, "127.0.0.1", () => resume(Effect.succeed(s)))
        }),
        (s) => Effect.async<void>((resume) => {
          sockets.forEach((socket) => socket.destroy())
          s.close(() => resume(Effect.void))
        })
      )
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      const links = yield* Peers.make({
        self: "Alford",
        neighbours: [{ name: "Parker", host: "127.0.0.1", port }],
        reconnect: { initialMs: 5, capMs: 40 },
        maxPendingRecords: 1000,
        onEvent: (event) => events.push(event)
      }).pipe(Effect.provideService(LocationStore, store))
      yield* until(() => events.some((e) => e.event === "link-up"), "the link")
      const padding = "x".repeat(200)
      // Far more than the socket buffers hold, in bursts well below the
      // bound (a burst is what one read can make win), until the link is cut.
      let sent = 0
      const burst = () => {
        for (let i = 0; i < 200; i++) links.flood(record(`${padding}${sent++}`, "1"))
      }
      while (!events.some((e) => e.event === "link-down") && sent < 2_000_000) {
        burst()
        yield* Effect.sleep("1 millis")
      }
      const down = events.find((e) => e.event === "link-down")
      expect(down).toMatchObject({ peer: "Parker", reason: "more than 1000 records unsent: not reading" })
      // It reads again, and the flood goes on: the next link comes up and
      // stays up (what the cut connection left unsent does not count against it).
      reading = true
      const ups = () => events.filter((e) => e.event === "link-up").length
      for (let bursts = 0; bursts < 2000 && ups() < 2; bursts++) {
        burst()
        yield* Effect.sleep("1 millis")
      }
      expect(ups()).toBe(2)
      for (let bursts = 0; bursts < 50; bursts++) {
        burst()
        yield* Effect.sleep("1 millis")
      }
      expect(events.filter((e) => e.event === "link-down")).toHaveLength(1)
    }))
})
