/**
 * A connection's memory bound, checked line by line with no socket: a
 * stand-in socket says how many reply bytes wait unwritten, and a stand-in
 * log whether it has room.
 */
import { describe, expect, it } from "@effect/vitest"
import * as ProtocolLayer from "@herd/protocol"
import { Protocol } from "@herd/protocol"
import * as Store from "@herd/store"
import { Effect } from "effect"
import { EventEmitter } from "node:events"
import type * as Net from "node:net"
import { EntryWriter } from "../src/EventLog.ts"
import type { EventLog } from "../src/EventLog.ts"
import { Admission } from "../src/internal/Admission.ts"
import { Connection } from "../src/internal/Connection.ts"
import { Deadlines } from "../src/internal/Deadlines.ts"
import type { ConnectionServices } from "../src/internal/Connection.ts"

/** The part of a `net.Socket` a connection uses, with the unwritten bytes set by the test. */
class StandInSocket extends EventEmitter {
  readonly remoteAddress = "127.0.0.1"
  readonly remotePort = 40000
  readonly writable = true
  writableLength = 0
  paused = false
  readonly written: Array<string> = []
  write(bytes: Uint8Array): boolean {
    this.written.push(Buffer.from(bytes).toString("latin1"))
    return true
  }
  pause(): this {
    this.paused = true
    return this
  }
  resume(): this {
    this.paused = false
    return this
  }
}

const setUp = (options: {
  readonly pendingReplyBytes: number
  readonly wire?: EventLog["Type"]["wire"]
  readonly deadlines?: Deadlines
}) => {
  const socket = new StandInSocket()
  const writer = new EntryWriter("Alford", 1024, options.wire ?? "full")
  let logHasRoom = true
  const waitingForRoom: Array<() => void> = []
  const log: EventLog["Type"] = {
    record: (event, fields) => writer.record(event, fields),
    lines: (conn, remote) => writer.lines(conn, remote),
    flush: Effect.void,
    wire: writer.wire,
    hasRoom: () => logHasRoom,
    onRoom: (resume) => {
      waitingForRoom.push(resume)
    },
    reopen: Effect.void
  }
  const services: ConnectionServices = {
    serverName: "Alford",
    protocol: Effect.runSync(Effect.provide(Protocol, ProtocolLayer.layer)),
    store: Effect.runSync(Store.makeMemory),
    peers: { neighbours: [], flood: () => {} },
    places: { provider: "none", nearby: () => Effect.die("not asked") },
    log,
    lineLimit: 8192,
    pendingReplyBytes: options.pendingReplyBytes,
    maxClientAheadNs: 600_000_000_000n,
    admission: new Admission(10, 4),
    herdServers: new Set(["Alford"]),
    partialLineTimeoutMs: 30_000,
    deadlines: options.deadlines ?? new Deadlines(() => 0n),
    whenStored: undefined,
    lookUp: () => {}
  }
  const connection = new Connection(services, socket as unknown as Net.Socket, 1, {
    now: () => 1_700_000_000_000_000_000n,
    onInputClosed: () => {},
    onSettled: () => {}
  })
  const replies = () => socket.written.join("").split("\n").filter((line) => line !== "")
  const setLogRoom = (room: boolean) => {
    logHasRoom = room
    if (room) for (const resume of waitingForRoom.splice(0)) resume()
  }
  const logged = () => writer.take().toString("utf8").trimEnd().split("\n").map((entry) => JSON.parse(entry) as Record<string, unknown>)
  return { connection, socket, replies, setLogRoom, waitingForRoom, logged }
}

const iamats = (count: number) =>
  Buffer.from(Array.from({ length: count }, (_, i) => `IAMAT client${i} +1+1 1600000000.5\n`).join(""), "latin1")

describe("Connection", () => {
  it("answers the lines of a read until the unwritten replies pass the bound, holds the rest unparsed, and goes on once they drain", () => {
    const { connection, replies, socket } = setUp({ pendingReplyBytes: 1000 })
    // The kernel takes nothing: every reply written stays unwritten.
    socket.write = function(bytes: Uint8Array) {
      this.written.push(Buffer.from(bytes).toString("latin1"))
      this.writableLength += bytes.length
      return false
    }
    connection.receive(iamats(100))
    const replyLength = (replies()[0]?.length ?? 0) + 1
    expect(replyLength).toBe("AT Alford +99999999.500000000 client0 +1+1 1600000000.5\n".length)
    // Lines are answered until the replies' bytes pass 1000, and not one more.
    const firstBatch = Math.floor(1000 / replyLength) + 1
    expect(replies()).toHaveLength(firstBatch)
    expect(socket.paused).toBe(true)
    // Draining to half the bound is not enough to go on: the whole queue must fall below it.
    socket.writableLength = 600
    socket.emit("drain")
    expect(replies()).toHaveLength(firstBatch)
    socket.writableLength = 0
    socket.emit("drain")
    expect(replies()).toHaveLength(2 * firstBatch)
    for (let drains = 0; drains < 100 && socket.paused; drains++) {
      socket.writableLength = 0
      socket.emit("drain")
    }
    expect(socket.paused).toBe(false)
    expect(replies()).toHaveLength(100)
    expect(replies().map((reply) => reply.split(" ")[3])).toEqual(Array.from({ length: 100 }, (_, i) => `client${i}`))
  })

  it("pauses after the line during which the log filled, and goes on when the log has room again", () => {
    const { connection, replies, setLogRoom, socket, waitingForRoom } = setUp({ pendingReplyBytes: 1 << 20 })
    connection.receive(iamats(3))
    expect(replies()).toHaveLength(3)
    setLogRoom(false)
    connection.receive(iamats(10))
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
    connection.receive(Buffer.from(`PEER Bolden\n${floods}`, "latin1"))
    connection.close()
    const entries = logged()
    expect(entries.filter((entry) => entry["event"] === "in").map((entry) => entry["line"])).toEqual(["PEER Bolden"])
    expect(entries.find((entry) => entry["event"] === "close")).toMatchObject({ peer: "Bolden", floodLines: 3 })
  })

  it("closes only this connection, logged as a defect, when a drain or a deadline meets a bug", () => {
    const { connection, logged, socket } = setUp({ pendingReplyBytes: 100 })
    socket.write = function(bytes: Uint8Array) {
      this.writableLength += bytes.length
      return false
    }
    connection.receive(iamats(10))
    expect(socket.paused).toBe(true)
    socket.write = () => {
      throw new Error("a bug met while writing")
    }
    socket.writableLength = 0
    expect(() => socket.emit("drain")).not.toThrow()
    expect(connection.closeReason).toBe("internal error")
    expect(logged().filter((entry) => entry["event"] === "defect").map((entry) => entry["error"])).toEqual([
      "Error: a bug met while writing"
    ])

    let nowNs = 0n
    const deadlines = new Deadlines(() => nowNs)
    const second = setUp({ pendingReplyBytes: 1 << 20, deadlines })
    second.connection.receive(Buffer.from("IAMAT unfinish"))
    second.socket.pause = () => {
      throw new Error("a bug met at a deadline")
    }
    nowNs = 31_000_000_000n
    expect(() => deadlines.sweep(nowNs)).not.toThrow()
    expect(second.connection.closeReason).toBe("partial line timed out")
    expect(second.logged().some((entry) => entry["event"] === "defect")).toBe(true)
  })
})
