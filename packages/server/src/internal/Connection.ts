/**
 * One inbound connection, client or peer: frame its bytes into lines, answer
 * them in order, and keep its memory bounded whatever the other side does.
 *
 * The socket's reads are push-based (ARCHITECTURE.md, platform facts), so the
 * data callback does only synchronous work: it frames the bytes and queues
 * complete lines. One worker fiber per connection takes the queued lines in
 * batches, answers a batch in request order and writes all its replies in one
 * write. When the queue or the unwritten replies grow past their bounds the
 * raw socket is paused, so a client that sends without reading stalls itself,
 * not the server.
 */
import type * as Socket from "@effect/platform/Socket"
import type { PeerLinks } from "@herd/peers"
import type { PlacesClient } from "@herd/places"
import { failureBody } from "@herd/places"
import type { Command, LocationRecord, Protocol, Whatsat } from "@herd/protocol"
import { coordinatesOf, formatWhatsatReply } from "@herd/protocol"
import type { LocationStore } from "@herd/store"
import { Clock, Effect, Option, Queue } from "effect"
import type { EventLog } from "../EventLog.ts"
import { netSocketOf } from "./NetSocket.ts"
import { LineFramer } from "./LineFramer.ts"

export interface ConnectionServices {
  readonly serverName: string
  readonly protocol: Protocol["Type"]
  readonly store: LocationStore["Type"]
  readonly peers: PeerLinks["Type"]
  readonly places: PlacesClient["Type"]
  readonly log: EventLog["Type"]
  readonly lineLimit: number
  /** Unwritten reply bytes past which the connection stops being read. */
  readonly pendingReplyBytes: number
  /** How long a partial line may stay unfinished. */
  readonly partialLineTimeoutMs: number
}

/** Lines answered together, at most; bounds the size of one write. */
const maxBatchLines = 256
/** Bytes of complete lines queued but not yet answered, past which reading pauses. */
const maxQueuedLineBytes = 64 * 1024

const EndOfInput = Symbol("EndOfInput")
type Inbound = Uint8Array | typeof EndOfInput

let connectionCount = 0

export const serveConnection = (services: ConnectionServices) => (socket: Socket.Socket) =>
  Effect.gen(function*() {
    const conn = yield* netSocketOf
    const id = ++connectionCount
    const remote = `${conn.remoteAddress}:${conn.remotePort}`
    const { log } = services
    log.record("open", { conn: id, remote })

    const inbox = yield* Queue.unbounded<Inbound>()
    const framer = new LineFramer(services.lineLimit)
    let queuedBytes = 0
    let readingPaused = false
    let inputEnded = false
    let closeReason = "closed by client"

    const endInput = (reason: string) => {
      if (inputEnded) return
      inputEnded = true
      closeReason = reason
      conn.pause()
      inbox.unsafeOffer(EndOfInput)
    }

    const queueLine = (line: Uint8Array) => {
      queuedBytes += line.length
      inbox.unsafeOffer(line)
    }

    let partialTimer: ReturnType<typeof setTimeout> | undefined
    const clearPartialTimer = () => {
      if (partialTimer !== undefined) clearTimeout(partialTimer)
      partialTimer = undefined
    }

    const onChunk = (chunk: Uint8Array) => {
      if (inputEnded) return
      if (!framer.push(chunk, queueLine)) {
        log.record("violation", { conn: id, remote, reason: `line longer than ${services.lineLimit} bytes` })
        clearPartialTimer()
        endInput("line too long")
        return
      }
      // A slow-loris client trickles a line that never ends: give each
      // partial line a deadline, restarted whenever a line completes.
      if (framer.pendingBytes === 0) {
        clearPartialTimer()
      } else if (partialTimer === undefined) {
        partialTimer = setTimeout(() => {
          partialTimer = undefined
          log.record("violation", { conn: id, remote, reason: "partial line timed out" })
          endInput("partial line timed out")
        }, services.partialLineTimeoutMs)
      }
      if (!readingPaused && queuedBytes > maxQueuedLineBytes) {
        readingPaused = true
        conn.pause()
      }
    }

    const session = new Session(services, id, remote)

    const worker = Effect.gen(function*() {
      while (true) {
        const exit = yield* Effect.exit(Effect.interruptible(Queue.takeBetween(inbox, 1, maxBatchLines)))
        // Interrupted (the server is shutting down): answer what was already
        // read, then stop.
        const stopping = exit._tag === "Failure"
        if (stopping) endInput("server shutting down")
        const batch = stopping ? yield* Queue.takeAll(inbox) : exit.value
        const lines: Array<Uint8Array> = []
        let ended = false
        for (const item of batch) {
          if (item === EndOfInput) ended = true
          else if (!ended) lines.push(item)
        }
        for (const line of lines) queuedBytes -= line.length
        if (readingPaused && !inputEnded && queuedBytes <= maxQueuedLineBytes / 2) {
          readingPaused = false
          conn.resume()
        }
        const replies = yield* session.answer(lines)
        if (replies.length > 0 && conn.writable) conn.write(replies, "latin1")
        if (ended || stopping) return
        if (conn.writableLength > services.pendingReplyBytes) yield* Effect.interruptible(drained(conn))
      }
    })

    const reader = socket.run(onChunk).pipe(
      Effect.catchAll(() => Effect.void),
      Effect.ensuring(Effect.sync(() => endInput(inputEnded ? closeReason : "closed by client")))
    )

    yield* Effect.fork(Effect.interruptible(reader))
    yield* worker.pipe(
      Effect.ensuring(Effect.sync(() => {
        clearPartialTimer()
        log.record("close", { conn: id, remote, reason: closeReason, ...(session.peerName ? { peer: session.peerName } : {}) })
      }))
    )
  }).pipe(Effect.uninterruptible)

/** Resolves once the socket has written out its buffered replies (or closed). */
const drained = (conn: import("node:net").Socket) =>
  Effect.async<void>((resume) => {
    if (conn.writableLength === 0 || conn.destroyed) return resume(Effect.void)
    const done = () => resume(Effect.void)
    conn.once("drain", done)
    conn.once("close", done)
    return Effect.sync(() => {
      conn.off("drain", done)
      conn.off("close", done)
    })
  })

/** `? ` and the line as received: the answer to anything invalid. */
const invalidReply = (line: Uint8Array): string => `? ${Buffer.from(line.buffer, line.byteOffset, line.length).toString("latin1")}\n`

const withoutCarriageReturn = (line: Uint8Array): Uint8Array =>
  line.length > 0 && line[line.length - 1] === 13 ? line.subarray(0, line.length - 1) : line

/** What a connection remembers between batches, and how it answers one. */
class Session {
  /** Set once the other side said `PEER <name>`: a neighbour's link, never answered. */
  peerName: string | undefined = undefined

  constructor(
    private readonly services: ConnectionServices,
    private readonly id: number,
    private readonly remote: string
  ) {}

  /** Answers a batch of lines: the replies in request order, as one latin1 string. */
  answer(lines: ReadonlyArray<Uint8Array>): Effect.Effect<string> {
    if (lines.length === 0) return Effect.succeed("")
    const self = this
    return Effect.gen(function*() {
      const receivedNs = yield* Clock.currentTimeNanos
      const replies: Array<string | Effect.Effect<string>> = []
      let waiting = false
      for (const line of lines) {
        self.services.log.record("in", { conn: self.id, line })
        const reply = yield* self.handle(self.services.protocol.parse(line), line, receivedNs)
        if (reply === undefined) continue
        if (typeof reply !== "string") waiting = true
        replies.push(reply)
      }
      const texts = waiting
        ? yield* Effect.all(replies.map((r) => typeof r === "string" ? Effect.succeed(r) : r), {
          concurrency: "unbounded"
        })
        : replies as Array<string>
      for (const text of texts) self.services.log.record("out", { conn: self.id, line: text })
      return texts.join("")
    })
  }

  /** The reply to one command (a string, or an effect for one that must wait), if any. */
  private handle(
    command: Command,
    line: Uint8Array,
    receivedNs: bigint
  ): Effect.Effect<string | Effect.Effect<string> | undefined> {
    const { log, protocol, serverName, store } = this.services
    switch (command._tag) {
      case "Blank":
        return Effect.succeed(undefined)
      case "Invalid":
        if (this.peerName !== undefined) {
          log.record("violation", { conn: this.id, peer: this.peerName, reason: command.reason, line: command.line })
          return Effect.succeed(undefined)
        }
        return Effect.succeed(invalidReply(command.line))
      case "Iamat": {
        const record = protocol.record(command, serverName, receivedNs)
        return this.accept(record, undefined).pipe(Effect.as(protocol.formatAt(record) + "\n"))
      }
      case "At":
        return this.accept(command.record, this.peerName).pipe(Effect.as(undefined))
      case "Peer":
        this.peerName = command.name
        log.record("peer-in", { conn: this.id, remote: this.remote, peer: command.name })
        return Effect.succeed(undefined)
      case "Whatsat":
        return Effect.map(store.get(command.client), (stored) =>
          Option.isNone(stored)
            ? invalidReply(withoutCarriageReturn(line))
            : this.whatsatReply(stored.value, command))
    }
  }

  /** Stores a record and, if it won, floods it on (never back to `from`). */
  private accept(record: LocationRecord, from: string | undefined): Effect.Effect<void> {
    const { peers, store } = this.services
    return Effect.flatMap(store.offer(record), (won) => won ? peers.flood(record, from) : Effect.void)
  }

  private whatsatReply(record: LocationRecord, command: Whatsat): Effect.Effect<string> {
    const { log, places, protocol } = this.services
    const { latitude, longitude } = coordinatesOf(record.location)
    return places.nearby({ latitude, longitude, radiusMetres: command.radiusMetres, limit: command.bound }).pipe(
      Effect.tap((body) => log.record("places", { conn: this.id, provider: places.provider, status: body.status })),
      Effect.catchAll((error) => {
        log.record("places", {
          conn: this.id,
          provider: places.provider,
          status: error.status ?? "UNKNOWN_ERROR",
          reason: error.reason,
          error: error.message
        })
        return Effect.succeed(failureBody(error))
      }),
      Effect.map((body) => formatWhatsatReply(protocol.formatAt(record), body))
    )
  }
}
