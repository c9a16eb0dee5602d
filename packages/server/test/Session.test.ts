/**
 * A connection's memory bound, checked line by line with no socket: a
 * stand-in socket says how many reply bytes wait unwritten, and a stand-in
 * log whether it has room.
 */
import { describe, expect, it } from "@effect/vitest"
import { Handshake } from "@herd/peers"
import { Protocol, Reply } from "@herd/protocol"
import { LocationStore } from "@herd/store"
import { Effect, Either } from "effect"
import { EntryWriter } from "../src/internal/EntryWriter.ts"
import type { EventLog } from "../src/EventLog.ts"
import { Admission } from "../src/internal/Admission.ts"
import { Session } from "../src/internal/Session.ts"
import { ServerStats } from "../src/Metrics.ts"
import type { SessionServices } from "../src/internal/Session.ts"

/** The owner's side of a session: what it sent, what the other side has not taken yet, whether it is paused. */
class StandInPort {
  unsentBytes = 0
  paused = false
  inputEnded = false
  settled = false
  dueNs: bigint | undefined = undefined
  readonly sent: Array<string> = []
  /** Whether what is sent stays unsent, as when the other side's kernel takes nothing. */
  keepsUnsent = false
  send = (bytes: Buffer): boolean => {
    this.sent.push(bytes.toString("latin1"))
    if (this.keepsUnsent) this.unsentBytes += bytes.length
    return true
  }
  /** What the owner's guard does: a throw is a defect of the session. */
  guardOf = (session: () => Session) => (body: () => void) => {
    try {
      body()
    } catch (defect) {
      session().defect(defect)
    }
  }
}

const setUp = (options: {
  readonly pendingReplyBytes: number
  readonly wire?: EventLog["Type"]["wire"]
  readonly services?: Partial<SessionServices>
}) => {
  const socket = new StandInPort()
  const writer = new EntryWriter("Alford", 1024, options.wire ?? "full")
  let logHasRoom = true
  const waitingForRoom: Array<() => void> = []
  const log: EventLog["Type"] = {
    unsafeRecord: (event, fields) => writer.record(event, fields),
    lines: (conn, remote) => writer.lines(conn, remote),
    flush: Effect.void,
    wire: writer.wire,
    hasRoom: () => logHasRoom,
    unsafeOnRoom: (resume) => {
      waitingForRoom.push(resume)
    },
    reopen: Effect.void
  }
  const services: SessionServices = {
    serverName: "Alford",
    protocol: Effect.runSync(Effect.provide(Protocol.Protocol, Protocol.layer)),
    store: Effect.runSync(LocationStore.makeMemory),
    peers: { neighbours: [], unsafeFlood: () => {} },
    places: { provider: "none", nearby: () => Effect.die("not asked") },
    log,
    lineLimit: 8192,
    pendingReplyBytes: options.pendingReplyBytes,
    maxClientAheadNs: 600_000_000_000n,
    admission: new Admission(10, 4),
    herdServers: new Set(["Alford"]),
    partialLineTimeoutMs: 30_000,
    peersMustProve: false,
    checkpoints: Handshake.makeMemoryCheckpoints(),
    extendedLinksIn: new Set(),
    stats: new ServerStats("Alford", 0),
    whenStored: undefined,
    printBody: Reply.printedPlacesBody,
    lookUp: () => {},
    ...options.services
  }
  // The owner's clock, for what happens outside a read (a drain, a commit): set by a test when it matters.
  let nowNs = 1_700_000_000_000_000_000n
  const setNow = (ns: bigint) => {
    nowNs = ns
  }
  const connection: Session = new Session(services, {
    send: (bytes) => socket.send(bytes),
    unsentBytes: () => socket.unsentBytes,
    pause: () => {
      socket.paused = true
    },
    resume: () => {
      socket.paused = false
    },
    inputEnded: () => {
      socket.inputEnded = true
    },
    settled: () => {
      socket.settled = true
    },
    wakeAt: (dueNs) => {
      socket.dueNs = dueNs
    },
    guard: socket.guardOf(() => connection),
    nowNs: () => nowNs
  }, 1, "127.0.0.1:40000")
  const replies = () => socket.sent.join("").split("\n").filter((line) => line !== "")
  const setLogRoom = (room: boolean) => {
    logHasRoom = room
    if (room) for (const resume of waitingForRoom.splice(0)) resume()
  }
  const logged = () => writer.take().toString("utf8").trimEnd().split("\n").map((entry) => JSON.parse(entry) as Record<string, unknown>)
  return { connection, socket, replies, setLogRoom, waitingForRoom, logged, setNow }
}

/** What a store full up answers an offer. */
const storeFull = (client: string): LocationStore.OfferResult =>
  Either.left(new LocationStore.UnstorableRecordError({ reason: "StoreFull", client }))

const feed = (session: Session, bytes: Buffer) => session.feed(bytes, 1_700_000_000_000_000_000n)

const iamats = (count: number) =>
  Buffer.from(Array.from({ length: count }, (_, i) => `IAMAT client${i} +1+1 1600000000.5\n`).join(""), "latin1")

describe("Session", () => {
  it("answers the lines of a read until the unwritten replies pass the bound, holds the rest unparsed, and goes on once they drain", () => {
    const { connection, replies, socket } = setUp({ pendingReplyBytes: 1000 })
    // The kernel takes nothing: every reply written stays unwritten.
    socket.keepsUnsent = true
    feed(connection, iamats(100))
    const replyLength = (replies()[0]?.length ?? 0) + 1
    expect(replyLength).toBe("AT Alford +99999999.500000000 client0 +1+1 1600000000.5\n".length)
    // Lines are answered until the replies' bytes pass 1000, and not one more.
    const firstBatch = Math.floor(1000 / replyLength) + 1
    expect(replies()).toHaveLength(firstBatch)
    expect(socket.paused).toBe(true)
    // Draining to half the bound is not enough to go on: the whole queue must fall below it.
    socket.unsentBytes = 600
    connection.drained()
    expect(replies()).toHaveLength(firstBatch)
    socket.unsentBytes = 0
    connection.drained()
    expect(replies()).toHaveLength(2 * firstBatch)
    for (let drains = 0; drains < 100 && socket.paused; drains++) {
      socket.unsentBytes = 0
      connection.drained()
    }
    expect(socket.paused).toBe(false)
    expect(replies()).toHaveLength(100)
    expect(replies().map((reply) => reply.split(" ")[3])).toEqual(Array.from({ length: 100 }, (_, i) => `client${i}`))
  })

  it("pauses after the line during which the log filled, and goes on when the log has room again", () => {
    const { connection, replies, setLogRoom, socket, waitingForRoom } = setUp({ pendingReplyBytes: 1 << 20 })
    feed(connection, iamats(3))
    expect(replies()).toHaveLength(3)
    setLogRoom(false)
    feed(connection, iamats(10))
    expect(replies()).toHaveLength(4)
    expect(socket.paused).toBe(true)
    expect(waitingForRoom).toHaveLength(1)
    setLogRoom(true)
    expect(replies()).toHaveLength(13)
    expect(socket.paused).toBe(false)
  })

  it("in a summary log, counts a neighbour's flood lines instead of logging each", () => {
    const { connection, logged } = setUp({ pendingReplyBytes: 1 << 20, wire: "summary" })
    const floods = Array.from({ length: 3 }, (_, i) => `AT Bolden +0.000000000 c${i} +1+1 1600000000\n`).join("")
    feed(connection, Buffer.from(`PEER Bolden\n${floods}`, "latin1"))
    connection.close()
    const entries = logged()
    expect(entries.filter((entry) => entry["event"] === "in").map((entry) => entry["line"])).toEqual(["PEER Bolden"])
    expect(entries.find((entry) => entry["event"] === "close")).toMatchObject({ peer: "Bolden", floodLines: 3 })
  })

  it("answers ? to an IAMAT the store cannot keep, floods nothing of it, and goes on with the next line", () => {
    const memory = Effect.runSync(LocationStore.makeMemory)
    const flooded: Array<string> = []
    const stats = new ServerStats("Alford", 0)
    const { connection, replies, socket } = setUp({
      pendingReplyBytes: 1 << 20,
      services: {
        stats,
        store: { ...memory, unsafeOffer: (record) => record.client === "full" ? storeFull(record.client) : memory.unsafeOffer(record) },
        peers: { neighbours: ["Bolden"], unsafeFlood: (record) => flooded.push(record.client) }
      }
    })
    feed(connection, Buffer.from("IAMAT full +1+1 1600000000.5\nIAMAT kiwi +1+1 1600000000.5\n", "latin1"))
    expect(replies()).toEqual([
      "? IAMAT full +1+1 1600000000.5",
      "AT Alford +99999999.500000000 kiwi +1+1 1600000000.5"
    ])
    expect(flooded).toEqual(["kiwi"])
    expect([stats.iamatRefused, stats.iamatStored]).toEqual([1, 1])
    expect(socket.inputEnded).toBe(false)
    expect(connection.closeReason).toBeUndefined()
  })

  it("logs a neighbour's flooded record that the store cannot keep, and the link goes on", () => {
    const memory = Effect.runSync(LocationStore.makeMemory)
    const flooded: Array<string> = []
    const stats = new ServerStats("Alford", 0)
    const { connection, logged, replies, socket } = setUp({
      pendingReplyBytes: 1 << 20,
      services: {
        stats,
        store: { ...memory, unsafeOffer: (record) => record.client === "full" ? storeFull(record.client) : memory.unsafeOffer(record) },
        peers: { neighbours: ["Bolden", "Parker"], unsafeFlood: (record) => flooded.push(record.client) }
      }
    })
    const refused = "AT Bolden +0.000000000 full +1+1 1600000000"
    feed(connection, Buffer.from(`PEER Bolden\n${refused}\nAT Bolden +0.000000000 kiwi +1+1 1600000000\n`, "latin1"))
    expect(replies()).toEqual([])
    expect(memory.get("kiwi")?.origin).toBe("Bolden")
    expect(flooded).toEqual(["kiwi"])
    expect([stats.atRefused, stats.atStored]).toEqual([1, 1])
    expect(socket.inputEnded).toBe(false)
    expect(connection.closeReason).toBeUndefined()
    expect(logged().filter((entry) => entry["event"] === "violation")).toEqual([
      expect.objectContaining({ peer: "Bolden", line: refused, reason: expect.stringContaining("no room left") })
    ])
  })

  it("reports its partial-line deadline, clears it when the line completes, and ends its input when it falls due", () => {
    const { connection, logged, socket } = setUp({ pendingReplyBytes: 1 << 20 })
    feed(connection, Buffer.from("IAMAT unfinish"))
    const due = socket.dueNs
    expect(due).toBe(1_700_000_000_000_000_000n + 30_000_000_000n)
    feed(connection, Buffer.from("ed +1+1 1600000000\n"))
    expect(socket.dueNs).toBeUndefined()
    feed(connection, Buffer.from("IAMAT again"))
    expect(socket.dueNs).toBe(due)
    connection.expire(1_700_000_000_000_000_000n + 29_000_000_000n)
    expect(socket.inputEnded).toBe(false)
    connection.expire(1_700_000_000_000_000_000n + 30_000_000_000n)
    expect(socket.inputEnded).toBe(true)
    expect(socket.dueNs).toBeUndefined()
    expect(connection.closeReason).toBe("partial line timed out")
    expect(logged().some((entry) => entry["event"] === "violation" && entry["reason"] === "partial line timed out")).toBe(true)
  })

  it("drops a partial line's deadline while it stops reading for back-pressure (what would end the line waits unread on its side), and starts it again when reading goes on", () => {
    const { connection, setNow, socket } = setUp({ pendingReplyBytes: 60 })
    socket.keepsUnsent = true
    const start = 1_700_000_000_000_000_000n
    feed(connection, Buffer.from("IAMAT unfini"))
    expect(socket.dueNs).toBe(start + 30_000_000_000n)
    // The line ends, and two more replies pass the bound: the rest of the read is held unread.
    feed(connection, Buffer.from("shed +1+1 1600000000\nIAMAT a +1+1 1600000000\nIAMAT b +1+1 1600000000\nIAMAT c"))
    expect(socket.paused).toBe(true)
    expect(socket.dueNs).toBeUndefined()
    // Long after: the client did nothing wrong, this side just did not read.
    connection.expire(start + 60_000_000_000n)
    expect(socket.inputEnded).toBe(false)
    // Drained: reading goes on, and the partial line now read has its deadline from then.
    setNow(start + 61_000_000_000n)
    socket.unsentBytes = 0
    connection.drained()
    expect(socket.paused).toBe(false)
    expect(socket.dueNs).toBe(start + 91_000_000_000n)
  })

  it("closes only itself, logged as a defect, when a callback from outside a read meets a bug", () => {
    const { connection, logged, socket } = setUp({ pendingReplyBytes: 100 })
    socket.keepsUnsent = true
    feed(connection, iamats(10))
    expect(socket.paused).toBe(true)
    socket.send = () => {
      throw new Error("a bug met while writing")
    }
    socket.unsentBytes = 0
    // The owner runs a drain through its guard, as the socket adapter does.
    expect(() => socket.guardOf(() => connection)(() => connection.drained())).not.toThrow()
    expect(connection.closeReason).toBe("internal error")
    expect(socket.inputEnded).toBe(true)
    expect(logged().filter((entry) => entry["event"] === "defect").map((entry) => entry["error"])).toEqual([
      "Error: a bug met while writing"
    ])
  })

  it("runs each callback from outside a read (a lookup's answer, a commit, the log's room) through the port's guard", async () => {
    const lookups: Array<Effect.Effect<void>> = []
    const commits: Array<() => void> = []
    const body = { html_attributions: [], results: [], status: "ZERO_RESULTS" }
    const paths = {
      lookup: setUp({
        pendingReplyBytes: 1 << 20,
        services: {
          places: { provider: "stand-in", nearby: () => Effect.succeed(body) },
          lookUp: (lookup) => lookups.push(lookup)
        }
      }),
      commit: setUp({ pendingReplyBytes: 1 << 20, services: { whenStored: (stored) => commits.push(stored) } }),
      room: setUp({ pendingReplyBytes: 1 << 20 })
    }
    feed(paths.lookup.connection, Buffer.from("IAMAT a +1+1 1600000000\nWHATSAT a 10 5\n"))
    feed(paths.commit.connection, Buffer.from("IAMAT a +1+1 1600000000\n"))
    paths.room.setLogRoom(false)
    feed(paths.room.connection, Buffer.from("IAMAT a +1+1 1600000000\nIAMAT b +1+1 1600000000\n"))
    expect(lookups).toHaveLength(1)
    expect(commits).toHaveLength(1)
    expect(paths.room.waitingForRoom).toHaveLength(1)
    for (const { socket } of Object.values(paths)) {
      socket.send = () => {
        throw new Error("a bug met while writing")
      }
    }
    // The lookup's answer is written from a microtask after it completes.
    await Effect.runPromise(Effect.all(lookups))
    await Promise.resolve()
    commits[0]?.()
    paths.room.setLogRoom(true)
    for (const [path, { connection, logged, socket }] of Object.entries(paths)) {
      expect(connection.closeReason, path).toBe("internal error")
      expect(socket.inputEnded, path).toBe(true)
      expect(logged().some((entry) => entry["event"] === "defect"), path).toBe(true)
    }
  })

  it("answers RESUME with its checkpoint, keeps MARKs, beats once the neighbour does, and ends a silent or diverged link", () => {
    const checkpoints = Handshake.makeMemoryCheckpoints()
    checkpoints.unsafeNote("Bolden", { epoch: "e1", seq: 4 })
    const stats = new ServerStats("Alford", 0)
    const { connection, replies, socket } = setUp({ pendingReplyBytes: 1 << 20, services: { checkpoints, stats } })
    const start = 1_700_000_000_000_000_000n
    const at = (seconds: number) => start + BigInt(seconds * 1000) * 1_000_000n
    connection.feed(Buffer.from("PEER Bolden\nRESUME\nCATCHUP 1\nAT Bolden +0.000000000 kiwi +1+1 1600000000\nMARK e1 9\n"), start)
    expect(replies()).toEqual(["SINCE e1 4"])
    expect(checkpoints.get("Bolden")).toEqual({ epoch: "e1", seq: 9 })
    // Its MARK made the link an extended one: this end beats every second, and watches for silence.
    expect(socket.dueNs).toBe(at(1))
    connection.expire(at(1))
    expect(replies()).toEqual(["SINCE e1 4", "DIGEST 1 " + LocationStore.digestOf([{ origin: "Bolden", skew: "+0.000000000", client: "kiwi", location: "+1+1", time: "1600000000" }]).digest])
    // What goes back on a neighbour's link (SINCE, the beat) is no reply: none is timed.
    expect(stats.replyLatency.counts.reduce((sum, count) => sum + count, 0)).toBe(0)
    connection.feed(Buffer.from("DIGEST 1 0000000000000001\n"), at(2.5))
    connection.expire(at(3))
    expect(socket.inputEnded).toBe(false)
    connection.expire(at(5.4))
    expect(socket.inputEnded).toBe(false)
    connection.expire(at(5.5))
    expect(socket.inputEnded).toBe(true)
    expect(connection.closeReason).toBe("neighbour silent for 3 s")

    // Another link whose neighbour's digest stands still, and differs: it ends, its checkpoint forgotten.
    const second = setUp({ pendingReplyBytes: 1 << 20, services: { checkpoints } })
    second.connection.feed(Buffer.from("PEER Bolden\n"), start)
    for (let beat = 1; beat <= 6; beat++) {
      second.connection.feed(Buffer.from("DIGEST 5 00000000000000aa\n"), at(beat))
    }
    expect(second.socket.inputEnded).toBe(true)
    expect(second.connection.closeReason).toBe("stores differ: a full catch-up follows")
    expect(checkpoints.get("Bolden")).toEqual(Handshake.noCheckpoint)
    expect(second.logged().find((entry) => entry["event"] === "divergence")).toMatchObject({
      peer: "Bolden",
      theirs: "5 00000000000000aa",
      ours: "0 0000000000000000"
    })
  })

  it("when its server stops, asks an extended link's neighbour where it stands (CHECKPOINT) and keeps the answer", () => {
    const checkpoints = Handshake.makeMemoryCheckpoints()
    const extendedLinksIn = new Set<Session>()
    const { connection, replies } = setUp({ pendingReplyBytes: 1 << 20, services: { checkpoints, extendedLinksIn } })
    connection.feed(Buffer.from("PEER Bolden\nRESUME\nCATCHUP 0\nMARK e1 9\n"), 1_700_000_000_000_000_000n)
    // Its MARK made it an extended link in: one the stopping server asks.
    expect([...extendedLinksIn]).toEqual([connection])
    let answered = 0
    connection.askCheckpoint(() => answered++)
    expect(replies()).toEqual(["SINCE - 0", "CHECKPOINT"])
    // A MARK of the beat is no answer; the answer moves the checkpoint past what the last MARK said.
    feed(connection, Buffer.from("AT Bolden +0.000000000 kiwi +1+1 1600000000\nMARK e1 10\n"))
    expect(answered).toBe(0)
    feed(connection, Buffer.from("CHECKPOINT e1 11\n"))
    expect(answered).toBe(1)
    expect(checkpoints.get("Bolden")).toEqual({ epoch: "e1", seq: 11 })

    // A link that ends while asked answers the wait too (no stop waits on a link gone), and leaves the set.
    connection.askCheckpoint(() => answered++)
    connection.endInput("closed by client")
    expect(answered).toBe(2)
    connection.close()
    expect(extendedLinksIn.size).toBe(0)
    // Asked once its input ended, it answers at once, saying nothing.
    connection.askCheckpoint(() => answered++)
    expect(answered).toBe(3)
    expect(replies().filter((line) => line === "CHECKPOINT")).toHaveLength(2)
  })

  it("keeps a catch-up's progress (CHECKPOINT after each slice) without ending the catch-up: the MARK does", () => {
    const checkpoints = Handshake.makeMemoryCheckpoints()
    const stats = new ServerStats("Alford", 0)
    const { connection } = setUp({ pendingReplyBytes: 1 << 20, services: { checkpoints, stats } })
    connection.feed(Buffer.from("PEER Bolden\nRESUME\nCATCHUP 2\nAT Bolden +0.000000000 kiwi +1+1 1600000000\nCHECKPOINT e1 7\n"), 1_700_000_000_000_000_000n)
    expect(checkpoints.get("Bolden")).toEqual({ epoch: "e1", seq: 7 })
    expect(stats.link("Bolden").caughtUpIn).toBe(false)
    feed(connection, Buffer.from("AT Bolden +0.000000000 lime +1+1 1600000000\nCHECKPOINT e1 9\nMARK e1 9\n"))
    expect(checkpoints.get("Bolden")).toEqual({ epoch: "e1", seq: 9 })
    expect(stats.link("Bolden").caughtUpIn).toBe(true)
  })

  it("keeps its checkpoint of a neighbour's store short of a record it refused on the link: a later MARK does not move it", () => {
    const checkpoints = Handshake.makeMemoryCheckpoints()
    const { connection } = setUp({ pendingReplyBytes: 1 << 20, services: { checkpoints } })
    const start = 1_700_000_000_000_000_000n
    connection.feed(Buffer.from("PEER Bolden\nRESUME\nCATCHUP 0\nMARK e1 4\n"), start)
    expect(checkpoints.get("Bolden")).toEqual({ epoch: "e1", seq: 4 })
    // A record from the year 3000 is refused (dropped and logged), and the link goes on.
    connection.feed(Buffer.from("AT Bolden +0.000000000 kiwi +1+1 32503680000\nMARK e1 5\nCHECKPOINT e1 6\n"), start)
    expect(connection.closeReason).toBeUndefined()
    expect(checkpoints.get("Bolden")).toEqual({ epoch: "e1", seq: 4 })
  })

  it("answers all a client sent before it half-closed, the rest of a read held by back-pressure included", () => {
    const { connection, replies, socket } = setUp({ pendingReplyBytes: 1000 })
    socket.keepsUnsent = true
    feed(connection, iamats(100))
    expect(socket.paused).toBe(true)
    expect(replies().length).toBeLessThan(100)
    connection.finishInput("closed by client")
    expect(socket.inputEnded).toBe(false)
    for (let drains = 0; drains < 100 && !socket.inputEnded; drains++) {
      socket.unsentBytes = 0
      connection.drained()
    }
    expect(replies()).toHaveLength(100)
    expect(socket.inputEnded).toBe(true)
    expect(socket.settled).toBe(true)
    expect(connection.closeReason).toBe("closed by client")
  })

  it("with sync always, never acknowledges reports whose commit failed: it closes without their replies, logged", () => {
    const failures: Array<() => void> = []
    const { connection, logged, replies, socket } = setUp({
      pendingReplyBytes: 1 << 20,
      services: { whenStored: (_stored, failed) => failures.push(failed) }
    })
    feed(connection, iamats(3))
    expect(replies()).toEqual([])
    expect(failures).toHaveLength(1)
    failures[0]?.()
    expect(replies()).toEqual([])
    expect(socket.inputEnded).toBe(true)
    expect(socket.settled).toBe(true)
    expect(connection.closeReason).toBe("store commit failed")
    expect(logged().some((entry) => entry["event"] === "unacknowledged")).toBe(true)
  })
})
