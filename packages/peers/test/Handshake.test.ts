/**
 * The extended handshake from the dialler's side, against a scripted
 * neighbour: it resumes from the neighbour's checkpoint when the epoch is
 * its store's, sends everything otherwise, marks where it is, beats, and
 * cuts a neighbour that falls silent.
 */
import { describe, expect, it } from "@effect/vitest"
import { Handshake, PeerLinks } from "../src/index.ts"
import { LocationRecord } from "@herd/protocol"
import { DurableStore, LocationStore } from "@herd/store"
import { Context, Effect, Layer } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import * as Net from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { record } from "./support.ts"

/**
 * A neighbour that answers each `PEER` with `reply` (or nothing), keeps
 * what each connection sends, and, if `beats`, says `DIGEST` every 300 ms.
 */
const scriptedNeighbour = (options: { readonly reply: () => string | undefined; readonly beats: boolean }) =>
  Effect.acquireRelease(
    Effect.async<{ readonly port: number; readonly connections: Array<{ text: string; readonly socket: Net.Socket }>; readonly server: Net.Server; readonly timers: Array<NodeJS.Timeout> }>((resume) => {
      const connections: Array<{ text: string; readonly socket: Net.Socket }> = []
      const timers: Array<NodeJS.Timeout> = []
      const server = Net.createServer((socket) => {
        const connection = { text: "", socket }
        connections.push(connection)
        socket.on("error", () => {})
        socket.on("data", (chunk: Buffer) => {
          const first = connection.text === ""
          connection.text += chunk.toString("latin1")
          const reply = first ? options.reply() : undefined
          if (reply !== undefined) socket.write(reply)
        })
        if (options.beats) timers.push(setInterval(() => socket.write("DIGEST 0 0000000000000000\n"), 300))
        socket.on("close", () => timers.forEach(clearInterval))
      })
      server.listen(0, "127.0.0.1", () => {
        const address = server.address()
        resume(Effect.succeed({ port: typeof address === "object" && address !== null ? address.port : 0, connections, server, timers }))
      })
    }),
    ({ server, timers }) =>
      Effect.async<void>((resume) => {
        timers.forEach(clearInterval)
        server.close(() => resume(Effect.void))
      })
  )

const tempDir = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "herd-handshake-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

/** Polls in real time until `check` holds (at most 5 s). */
const until = (check: () => boolean, what: string) =>
  Effect.gen(function*() {
    const deadline = Date.now() + 5000
    while (!check()) {
      if (Date.now() > deadline) return yield* Effect.dieMessage(`timed out waiting for ${what}`)
      yield* Effect.sleep("5 millis")
    }
  })

/** A durable store of 10 records, seq 1 to 10. */
const storeOfTen = Effect.gen(function*() {
  const dir = yield* tempDir
  const store = yield* DurableStore.make({ path: join(dir, "Alford.db") })
  for (let i = 1; i <= 10; i++) store.unsafeOffer(record(`c${i}`, String(i)))
  yield* store.commit
  return store
})

/** Links from Alford, on `store`, to the neighbour on `port`. */
const linkTo = (store: Effect.Effect.Success<typeof storeOfTen>, port: number, events: Array<PeerLinks.LinkEvent>) =>
  Layer.build(
    PeerLinks.layer({
      self: "Alford",
      neighbours: [{ name: "Parker", host: "127.0.0.1", port }],
      reconnect: { initialMs: 5, capMs: 50 },
      onEvent: (event) => events.push(event)
    }).pipe(Layer.provide(Layer.succeedContext(Context.make(LocationStore.LocationStore, store).pipe(Context.add(DurableStore.DurableStore, store)))))
  )

/** A durable store of 10 records, and links from Alford to the neighbour on `port`. */
const linksTo = (port: number, events: Array<PeerLinks.LinkEvent>) =>
  Effect.tap(storeOfTen, (store) => linkTo(store, port, events))

describe("the extended handshake, dialling", () => {
  it("reads its lines and nothing else", () => {
    expect(Handshake.parseLinkLine("SINCE 3f9a 12")).toEqual({ _tag: "Since", checkpoint: { epoch: "3f9a", seq: 12 } })
    expect(Handshake.parseLinkLine("MARK - 0")).toEqual({ _tag: "Mark", checkpoint: { epoch: "-", seq: 0 } })
    expect(Handshake.parseLinkLine("CATCHUP 42")).toEqual({ _tag: "CatchUp", records: 42 })
    expect(Handshake.parseLinkLine("RESUME")).toEqual({ _tag: "Resume" })
    expect(Handshake.parseLinkLine("CHECKPOINT")).toEqual({ _tag: "AskCheckpoint" })
    expect(Handshake.parseLinkLine("CHECKPOINT 3f9a 12")).toEqual({ _tag: "Checkpoint", checkpoint: { epoch: "3f9a", seq: 12 } })
    expect(Handshake.parseLinkLine("DIGEST 2 00000000000000ff")).toEqual({
      _tag: "Digest",
      digest: { count: 2, digest: "00000000000000ff" }
    })
    for (const line of ["SINCE 3f9a", "SINCE 3f9a -1", "MARK a 1 2", "DIGEST 2 ff", "AT x", "SINCE a 1e5", "CATCHUP", "CATCHUP -1", "CHECKPOINT 3f9a"]) {
      expect(Handshake.parseLinkLine(line), line).toBeUndefined()
    }
  })

  it("takes stores as diverged only when both stood still for several beats and still differ", () => {
    const watch = new Handshake.DivergenceWatch(3)
    const a = { count: 1, digest: "0000000000000001" }
    const b = { count: 1, digest: "0000000000000002" }
    const c = { count: 2, digest: "0000000000000003" }
    // Moving: never judged.
    expect([watch.observe(a, b), watch.observe(c, b), watch.observe(a, c), watch.observe(c, a)]).toEqual([false, false, false, false])
    // Standing still, and equal: fine.
    expect([watch.observe(a, a), watch.observe(a, a), watch.observe(a, a), watch.observe(a, a)]).toEqual([false, false, false, false])
    // Standing still, and different: the third beat in a row says so.
    expect([watch.observe(a, b), watch.observe(a, b), watch.observe(a, b), watch.observe(a, b)]).toEqual([false, false, false, true])
  })

  it.scopedLive("resumes from the neighbour's checkpoint of its store: only the records after it, each slice with its CHECKPOINT, then MARK", () =>
    Effect.gen(function*() {
      // The neighbour's answer names this store's epoch, known once it is open.
      const store = yield* storeOfTen
      const neighbour = yield* scriptedNeighbour({ reply: () => `SINCE ${store.epoch} 7\n`, beats: true })
      const events: Array<PeerLinks.LinkEvent> = []
      yield* linkTo(store, neighbour.port, events)
      yield* until(() => (neighbour.connections[0]?.text ?? "").includes("MARK"), "the catch-up and its MARK")
      expect(events[0]).toMatchObject({ event: "link-up", handshake: "incremental", catchUp: 3 })
      // Then the beats (DIGEST, MARK) follow.
      expect(neighbour.connections[0]?.text.slice(0, -1).split("\nDIGEST ")[0] + "\n").toBe(
        "PEER Alford\nRESUME\nCATCHUP 3\n" +
          [8, 9, 10].map((i) => LocationRecord.formatAtLine(record(`c${i}`, String(i))) + "\n").join("") +
          // Each slice of the catch-up ends with where it got to; the MARK ends the catch-up.
          `CHECKPOINT ${store.epoch} 10\n` +
          `MARK ${store.epoch} 10\n`
      )
    }))

  it.scopedLive("answers a stopping neighbour's CHECKPOINT once what it sent is committed, behind the records it claims", () =>
    Effect.gen(function*() {
      const store = yield* storeOfTen
      const neighbour = yield* scriptedNeighbour({ reply: () => `SINCE ${store.epoch} 10\n`, beats: true })
      const links = Context.get(yield* linkTo(store, neighbour.port, []), PeerLinks.PeerLinks)
      const connection = () => neighbour.connections[0]
      yield* until(() => (connection()?.text ?? "").includes(`MARK ${store.epoch} 10\n`), "the catch-up's MARK")
      // A record won and flooded, not committed yet: the answer waits for its commit, and claims it.
      const eleventh = record("c11", "11")
      store.unsafeOffer(eleventh)
      links.unsafeFlood(eleventh, "Bolden")
      connection()?.socket.write("CHECKPOINT\n")
      yield* until(() => (connection()?.text ?? "").includes("CHECKPOINT "), "the answer")
      const text = connection()?.text ?? ""
      expect(text).toContain(`CHECKPOINT ${store.epoch} 11\n`)
      expect(text.indexOf(LocationRecord.formatAtLine(eleventh))).toBeLessThan(text.indexOf("CHECKPOINT "))
      expect(text.indexOf(LocationRecord.formatAtLine(eleventh))).toBeGreaterThan(0)
    }))

  it.scopedLive("sends everything to a neighbour whose checkpoint is of another store, and to an old-style one, which gets no MARK", () =>
    Effect.gen(function*() {
      const stranger = yield* scriptedNeighbour({ reply: () => "SINCE another-epoch 7\n", beats: true })
      const events: Array<PeerLinks.LinkEvent> = []
      const store = yield* linksTo(stranger.port, events)
      yield* until(() => (stranger.connections[0]?.text ?? "").includes("MARK"), "the full catch-up and its MARK")
      expect(events[0]).toMatchObject({ event: "link-up", handshake: "full", catchUp: 10 })
      expect(stranger.connections[0]?.text).toContain(`${LocationRecord.formatAtLine(record("c1", "1"))}\n`)
      expect(stranger.connections[0]?.text).toContain(`MARK ${store.epoch} 10\n`)

      const oldStyle = yield* scriptedNeighbour({ reply: () => undefined, beats: false })
      const oldEvents: Array<PeerLinks.LinkEvent> = []
      yield* linksTo(oldStyle.port, oldEvents)
      yield* until(() => oldEvents.some((e) => e.event === "link-up"), "the old-style link")
      expect(oldEvents[0]).toMatchObject({ event: "link-up", handshake: "old-style", catchUp: 10 })
      // Past a beat: still nothing but PEER and AT lines.
      yield* Effect.sleep("1500 millis")
      const lines = (oldStyle.connections[0]?.text ?? "").trimEnd().split("\n")
      // RESUME, which an old-style receiver drops, and nothing else but PEER and AT lines.
      expect(lines.slice(0, 2)).toEqual(["PEER Alford", "RESUME"])
      expect(lines.slice(2).every((line) => line.startsWith("AT "))).toBe(true)
      expect(lines).toHaveLength(12)
    }))

  it.scopedLive("turns a link extended when the neighbour answers SINCE after the wait: a MARK of what it has had, then beats", () =>
    Effect.gen(function*() {
      const late = yield* scriptedNeighbour({ reply: () => undefined, beats: false })
      const events: Array<PeerLinks.LinkEvent> = []
      const store = yield* linksTo(late.port, events)
      yield* until(() => events.some((e) => e.event === "link-up"), "the link, taken for old-style")
      expect(events[0]).toMatchObject({ event: "link-up", handshake: "old-style", catchUp: 10 })
      const text = () => late.connections[0]?.text ?? ""
      expect(text()).not.toContain("MARK")
      late.connections[0]?.socket.write("SINCE - 0\n")
      yield* until(() => text().includes(`MARK ${store.epoch} 10\n`), "the MARK")
      yield* until(() => text().includes("DIGEST "), "a beat")
      expect(events.map((event) => event.event)).toContain("link-extended")
    }))

  it.scopedLive("beats (DIGEST, MARK) on an extended link, and cuts it once the neighbour has said nothing for three beats", () =>
    Effect.gen(function*() {
      const silent = yield* scriptedNeighbour({ reply: () => "SINCE - 0\n", beats: false })
      const events: Array<PeerLinks.LinkEvent> = []
      const store = yield* linksTo(silent.port, events)
      yield* until(() => events.some((e) => e.event === "link-down"), "the silent neighbour to be cut")
      expect(events.find((e) => e.event === "link-down")).toMatchObject({ reason: "the neighbour said nothing for 3 s" })
      const digest = store.digest()
      expect(silent.connections[0]?.text).toContain(`DIGEST ${digest.count} ${digest.digest}\n`)
      // It dials again at once.
      yield* until(() => silent.connections.length >= 2, "a new connection")
    }), 15_000)
})
