/**
 * What one connection does with the bytes it reads, client or neighbour,
 * with no socket: frame them into lines, answer the lines in order, store
 * and flood the records, and keep its memory bounded whatever the other
 * side does (ARCHITECTURE.md, "The connection core"). Its owner feeds it
 * reads (`feed(bytes, nowNs)`) and carries its replies through a
 * `SessionPort`: a socket's adapter in the server (`Connection.ts`), a
 * stand-in in the tests and in `scripts/hotpath.ts`.
 *
 * Almost every line can be answered at once, so each read is handled within
 * `feed`: frame, parse, store, flood, and send all the replies of the read
 * in one write, with no fiber hop or Effect per line. A WHATSAT whose answer
 * is at hand (the Places cache, the loaded offline gazetteer) is answered
 * the same way; any other takes a slot in the reply queue, its lookup leaves
 * the session as an Effect that the owner runs in a fiber, and the replies
 * behind it are sent once it is filled.
 *
 * Memory stays bounded: after every line, not only after every read, the
 * session checks its unsent replies and the event log's room; past the
 * bound the rest of the read is held, unparsed, and the port is paused
 * until the replies drain or the log is flushed (a client that sends
 * without reading stalls itself, not the server).
 *
 * Its deadlines (a partial line left unfinished, probation) are times it
 * reports through `wakeAt`; the owner calls `expire` when one falls due.
 */
import { Handshake } from "@herd/peers"
import type { PeerLinks } from "@herd/peers"
import { PlacesClient } from "@herd/places"
import { LocationRecord, Parse, Reply, Time } from "@herd/protocol"
import type { Command, Protocol } from "@herd/protocol"
import type { LocationStore } from "@herd/store"
import { Cause, Effect, Either, Option } from "effect"
import type { EventLog, LineLog } from "../EventLog.ts"
import type { Admission, OnProbation, Slot } from "./Admission.ts"
import { probationMs } from "./Admission.ts"
import { LineFramer, tooLong } from "./LineFramer.ts"
import type { LineSink } from "./LineFramer.ts"
import type { LinkStats, ServerStats } from "../Metrics.ts"
import { authorizePeer } from "./Tls.ts"
import type { PeerIdentity } from "./Tls.ts"

export interface SessionServices {
  readonly serverName: string
  readonly protocol: Protocol.Protocol["Type"]
  readonly store: LocationStore.LocationStore["Type"]
  readonly peers: PeerLinks.PeerLinks["Type"]
  readonly places: PlacesClient.PlacesClient["Type"]
  readonly log: EventLog["Type"]
  readonly lineLimit: number
  /** Unwritten reply bytes past which the connection stops being read. */
  readonly pendingReplyBytes: number
  /** How far ahead of the receive time a client time may be, in ns (PROTOCOL.md section 3). */
  readonly maxClientAheadNs: bigint
  /** Who holds the server's connection slots. */
  readonly admission: Admission
  /** The servers of the herd: a connection on probation must name one in `PEER`. */
  readonly herdServers: ReadonlySet<string>
  /**
   * A herd with TLS: `PEER` is taken only from a connection whose
   * certificate proves it that server, and `AT` only on such a link
   * (PROTOCOL.md section 10). Without TLS any connection may say either.
   */
  readonly peersMustProve: boolean
  /** How long a partial line may stay unfinished. */
  readonly partialLineTimeoutMs: number
  /**
   * With `store.sync: "always"`: calls back once every record offered so far
   * is committed and fsynced. The replies of a read that stored a record
   * wait for it (group commit: one wait a read, not a line). `failed` is
   * called instead when the commit that held them failed.
   */
  readonly whenStored: ((stored: () => void, failed: () => void) => void) | undefined
  /** A Places body as the bytes of a WHATSAT answer (latin1 text); a server prints each cached body once (`makeBodyPrinter`). */
  readonly printBody: (body: PlacesClient.PlacesBody) => string
  /** Where this server stands with each neighbour's store: what it answers `SINCE` with. */
  readonly checkpoints: Handshake.Checkpoints
  /** The sessions of neighbours' extended links into this server: asked where they stand when it stops (`askCheckpoint`). */
  readonly extendedLinksIn: Set<Session>
  /** What the server counts (`Metrics.ts`): the session bumps plain numbers, nothing more. */
  readonly stats: ServerStats
  /** Runs a Places lookup in a fiber of the server (it outlives no connection: each waits for its own). */
  readonly lookUp: (lookup: Effect.Effect<void>) => void
}

/** Replies queued behind a WHATSAT still waiting for Places, past which reading pauses. */
const maxQueuedReplies = 1024

/**
 * A WHATSAT answer, or its slot while it waits for Places: the reply's text,
 * and the printed Places body it ends with (the log reuses the body's escaping).
 */
interface AnswerReply {
  text: string | undefined
  body: string | undefined
  /** The Places status of the body, for a log that keeps answers in short. */
  status: string
  /** When the WHATSAT was received, for the reply latency. */
  readonly receivedNs: bigint
}


/** What a session needs of whoever carries its bytes: a socket's adapter, or a stand-in. */
export interface SessionPort {
  /** Sends bytes to the other side, in order; answers false, sending nothing, once that is no longer possible. */
  readonly send: (bytes: Buffer) => boolean
  /** Bytes sent that the other side's kernel has not taken yet. */
  readonly unsentBytes: () => number
  /** Stop, and start again, feeding this session: back-pressure. */
  readonly pause: () => void
  readonly resume: () => void
  /** The session reads no more (it still answers what it has read). */
  readonly inputEnded: () => void
  /** Every reply to what was read has been sent or dropped: the owner may close. */
  readonly settled: () => void
  /** The session's earliest deadline is now `dueNs` (none: undefined); the owner calls `expire` once it falls due. */
  readonly wakeAt: (dueNs: bigint | undefined) => void
  /**
   * Runs a callback that comes from outside `feed` (a lookup's answer, a
   * commit, the log's room, a microtask) so that a throw in it closes this
   * session, not the process: the owner's guard calls `defect`.
   */
  readonly guard: (body: () => void) => void
  /** The time now, on the owner's clock, for what happens outside `feed`. */
  readonly nowNs: () => bigint
}

/** What a session holds before its first read (shared: they never change). */
const beforeAnyRead = Time.receiveTime(0n)
const noTimeYet = Time.timeLimit(0n)

const beatNs = BigInt(Handshake.beatMs) * 1_000_000n
/** Silence on an extended link past this: the neighbour is gone, whatever TCP says. */
const silenceNs = BigInt(Handshake.silentBeats) * beatNs

const earliest = (a: bigint | undefined, b: bigint | undefined): bigint | undefined =>
  a === undefined ? b : b === undefined || a < b ? a : b

/** At most one violation entry per connection this often; the rest are counted into the next entry. */
const violationLogIntervalMs = 1000

/**
 * Its methods are on the prototype, and the few callbacks it hands out are
 * made when first needed: an idle connection costs this object, little more.
 * It is its own `LineSink` (the framer calls `onLine`) and its own candidate
 * for admission (`evict`).
 */
export class Session implements LineSink, OnProbation {
  private readonly framer: LineFramer
  private readonly lineLog: LineLog
  /** Replies not yet written, in request order. */
  private queued: Array<string | AnswerReply> = []
  /** Bytes of the replies in `queued` whose text is ready. */
  private queuedBytes = 0
  private waiting = 0
  private flushScheduled = false
  private inputEnded = false
  private readingPaused = false
  /** The rest of a read, not yet framed, while reading is paused. */
  private held: Buffer | undefined
  /** The other side ended its input while a read was held: the input ends once it is read. */
  private endOnceHeldIsRead: string | undefined
  private waitingForLogRoom = false
  /** When a partial line left unfinished closes the session (slow-loris). */
  private partialLineDueNs: bigint | undefined
  /** When a connection on probation that has not said PEER is refused. */
  private probationDueNs: bigint | undefined
  /** On an extended link: when this end next says `DIGEST` (its beat), and when it next checks for silence. */
  private beatDueNs: bigint | undefined
  private silenceDueNs: bigint | undefined
  /** When the current read came, for the silence check. */
  private lastReadNs = 0n
  /** Set once the neighbour spoke the extended handshake (`MARK`, `DIGEST`): this end beats too. */
  private extended = false
  private divergence: Handshake.DivergenceWatch | undefined
  /** The deadline last reported through `wakeAt`. */
  private reportedDueNs: bigint | undefined
  /** When the current read was received. */
  private receivedNs = 0n
  /**
   * `receivedNs` split for the skews of the read's records, and the latest
   * client time accepted from the read (its receive time plus the bound):
   * made by `splitReadTime` for the first line of a read that needs them.
   */
  private received: Time.ReceiveTime = beforeAnyRead
  private latestTime: Time.TimeLimit = noTimeYet
  private readTimeSplit = false
  /** Set once the other side said `PEER <name>`: a neighbour's link, never answered. */
  private peerName: string | undefined
  /** The counts of that neighbour's link, once it said `PEER`. */
  private peerLink: LinkStats | undefined
  private lastViolationMs = -Infinity
  private suppressedViolations = 0
  private floodLinesNotLogged = 0
  /** A record won since the replies were last written: with `whenStored`, they wait for its commit. */
  private storedSinceFlush = false
  /** `committed` and `commitFailed` as callbacks for `whenStored`, made at the first reply held for a commit. */
  private commitCallbacks: { readonly committed: () => void; readonly failed: () => void } | undefined
  /** Replies are held until `whenStored` calls back. */
  private awaitingCommit = false
  /**
   * A neighbour's record was refused on this connection (too far ahead, or
   * the store could not keep it): this server's checkpoint of its store
   * stays where it was, so that a later `MARK` never claims that record.
   */
  private refusedARecord = false
  /** Waits for the neighbour's answer to `CHECKPOINT` (this server is stopping). */
  private checkpointAnswered: ((answered: boolean) => void) | undefined
  closeReason: string | undefined

  /** Which of the server's connection slots this one holds. */
  private slot: Slot

  constructor(
    private readonly services: SessionServices,
    private readonly port: SessionPort,
    private readonly id: number,
    /** `host:port` of the other side, for the log. */
    private readonly remote: string,
    /** What the other side's TLS certificate proved; undefined on plain TCP. */
    private readonly identity?: PeerIdentity
  ) {
    this.framer = new LineFramer(services.lineLimit)
    this.slot = services.admission.admit(this)
    services.stats.connectionsAccepted++
    services.stats.connectionsOpen++
    services.log.unsafeRecord("open", { conn: id, remote, ...(this.slot === "probation" ? { probation: true } : {}) })
    this.lineLog = services.log.lines(id, remote)
    if (this.slot === "probation") {
      this.probationDueNs = port.nowNs() + BigInt(probationMs) * 1_000_000n
      this.reportDeadline()
    }
  }

  /** One read: every complete line in it is answered before this returns (WHATSATs queued), unless reading must pause. */
  feed(chunk: Buffer, nowNs: bigint): void {
    if (this.inputEnded) return
    this.readAt(nowNs)
    this.lastReadNs = nowNs
    const link = this.peerLink
    if (link !== undefined) {
      link.bytesReceived += chunk.length
      link.lastRecordAtMs = Number(nowNs / 1_000_000n)
    }
    this.consume(chunk)
  }

  /** The bytes sent so far have been taken by the other side's kernel: reading may go on. */
  drained(): void {
    this.resumeIfClear()
  }

  /** Acts on the deadlines that are due at `nowNs` (the owner calls it once the reported one falls due). */
  expire(nowNs: bigint): void {
    if (this.partialLineDueNs !== undefined && this.partialLineDueNs <= nowNs) {
      this.partialLineDueNs = undefined
      this.violation("partial line timed out")
      this.endInput("partial line timed out")
    }
    if (this.probationDueNs !== undefined && this.probationDueNs <= nowNs) {
      this.probationDueNs = undefined
      if (this.slot === "probation") this.refuseOnProbation("did not say PEER in time")
    }
    if (this.silenceDueNs !== undefined && this.silenceDueNs <= nowNs) {
      // Checked late, this process stood still: what came meanwhile is unread yet, and gets a fresh window.
      const silentSince = nowNs - this.silenceDueNs > beatNs / 2n ? nowNs : this.lastReadNs
      if (nowNs - silentSince >= silenceNs) {
        this.silenceDueNs = undefined
        this.beatDueNs = undefined
        this.endInput(`neighbour silent for ${silenceNs / 1_000_000_000n} s`)
      } else {
        this.silenceDueNs = silentSince + silenceNs
      }
    }
    if (this.beatDueNs !== undefined && this.beatDueNs <= nowNs && !this.inputEnded) {
      this.beatDueNs = nowNs + beatNs
      this.reply(Handshake.digestLine(this.services.store.digest()))
      this.flush()
    }
    this.reportDeadline()
  }

  /**
   * The other side ended its input (it half-closed): everything it sent is
   * answered first, the rest of a read held by back-pressure included, and
   * then the input ends.
   */
  finishInput(reason: string): void {
    if (this.held === undefined || this.inputEnded) this.endInput(reason)
    else this.endOnceHeldIsRead = reason
  }

  /** Stops reading, dropping what is held; once every queued reply is written, `settled` is called. */
  endInput(reason: string): void {
    if (!this.inputEnded) {
      this.inputEnded = true
      this.closeReason = reason
      this.held = undefined
      this.partialLineDueNs = undefined
      this.probationDueNs = undefined
      this.beatDueNs = undefined
      this.silenceDueNs = undefined
      this.reportDeadline()
      this.port.inputEnded()
      this.stopWaitingForCheckpoint(false)
    }
    this.settleIfDone()
  }

  /** A bug met while handling this connection: log it, answer what can be, close. */
  defect(defect: unknown): void {
    this.services.log.unsafeRecord("defect", {
      conn: this.id,
      remote: this.remote,
      error: defect instanceof Error ? `${defect.name}: ${defect.message}` : String(defect)
    })
    this.endInput("internal error")
    this.flush()
  }

  close(): void {
    this.probationDueNs = undefined
    this.services.extendedLinksIn.delete(this)
    this.stopWaitingForCheckpoint(false)
    this.services.stats.connectionsOpen--
    this.services.admission.release(this.slot, this)
    this.services.log.unsafeRecord("close", {
      conn: this.id,
      remote: this.remote,
      reason: this.closeReason ?? "closed",
      ...(this.peerName === undefined ? {} : { peer: this.peerName }),
      ...(this.suppressedViolations === 0 ? {} : { violationsNotLogged: this.suppressedViolations }),
      ...(this.floodLinesNotLogged === 0 ? {} : { floodLines: this.floodLinesNotLogged })
    })
  }

  /**
   * This server is stopping: asks the neighbour where this server stands
   * with its store (`CHECKPOINT`), so that the checkpoint kept on disk is
   * where the link really is, and this server's restart resumes from there
   * rather than from the last `MARK`, which trails the neighbour's commits.
   * `settled` is called once the answer is noted (true), or the link is
   * gone (false).
   */
  askCheckpoint(settled: (answered: boolean) => void): void {
    this.port.guard(() => {
      if (this.inputEnded) return settled(false)
      this.checkpointAnswered = settled
      this.reply(Handshake.askCheckpointLine)
      this.flush()
    })
  }

  private stopWaitingForCheckpoint(answered: boolean): void {
    const settled = this.checkpointAnswered
    this.checkpointAnswered = undefined
    settled?.(answered)
  }

  /** Every line of a read shares its receive time, and so the bound on client times. */
  private readAt(nowNs: bigint): void {
    this.receivedNs = nowNs
    this.readTimeSplit = false
  }

  /** Whether a client time is past the bound of the current read (PROTOCOL.md section 3); the read's time is split then. */
  private isAheadOfRead(time: string): boolean {
    this.splitReadTime()
    return Time.isLaterThan(time, this.latestTime)
  }

  /**
   * Splits the read's receive time for its records (`received`,
   * `latestTime`): once a read, and only for a read that has records (a
   * read of WHATSATs needs neither), from the previous read's split when
   * within its second (no BigInt division).
   */
  private splitReadTime(): void {
    if (this.readTimeSplit) return
    this.readTimeSplit = true
    this.received = Time.receiveTime(this.receivedNs, this.received)
    this.latestTime = Time.timeLimit(this.receivedNs + this.services.maxClientAheadNs, this.latestTime)
  }

  /**
   * Frames and answers `chunk` until it is used up or the replies and the
   * log are past their bound; then the rest is held and reading pauses.
   */
  private consume(chunk: Buffer): void {
    let rest = chunk
    for (;;) {
      const taken = this.framer.push(rest, this)
      if (taken === tooLong) {
        this.violation(`line longer than ${this.services.lineLimit} bytes`)
        this.endInput("line too long")
        this.flush()
        return
      }
      this.flush()
      if (taken === rest.length || this.inputEnded) break
      rest = rest.subarray(taken)
      if (!this.hasRoomToGoOn()) {
        this.held = rest
        this.pauseReading()
        return
      }
    }
    if (!this.hasRoomToGoOn()) this.pauseReading()
    else this.watchPartialLine(this.receivedNs)
  }

  /** How admission closes this connection to make room, while it is on probation. */
  evict(): void {
    this.port.guard(() => this.refuseOnProbation("closed to make room for a newer connection"))
  }

  /** Handles one line (the framer's `LineSink`); answers whether the read may go on to the next. */
  onLine(bytes: Buffer, start: number, end: number): boolean {
    const { log, protocol, serverName, stats } = this.services
    // A neighbour's floods are counted, not logged, unless the log keeps the whole wire.
    if (this.peerName === undefined || this.services.log.wire === "full") this.lineLog.received(bytes, start, end)
    else this.floodLinesNotLogged++
    const line = bytes.toString("latin1", start, end)
    const command = protocol.parse(line)
    if (this.slot === "probation" && command._tag !== "Blank" && command._tag !== "Peer") {
      this.refuseOnProbation("said something other than PEER")
      return false
    }
    switch (command._tag) {
      case "Blank":
        return true
      case "Invalid": {
        const linkLine = this.peerName === undefined ? undefined : Handshake.parseLinkLine(command.line)
        if (linkLine !== undefined) {
          this.onLinkLine(linkLine)
          break
        }
        stats.invalidLines++
        if (this.peerName !== undefined) this.peerViolation(command.reason, command.line)
        else this.reply(Reply.invalidReply(command.line))
        break
      }
      case "Iamat": {
        // A time too far ahead would pin the location against later honest
        // reports; it is refused before any arithmetic on its digits.
        if (this.isAheadOfRead(command.time)) {
          stats.iamatRefused++
          this.reply(Reply.invalidReply(line.slice(0, Parse.contentEnd(line))))
          break
        }
        // `received` is this read's, split by `isAheadOfRead` above.
        const record = LocationRecord.recordOf(command, serverName, this.received)
        const atLine = LocationRecord.formatAtLine(record)
        // No neighbour may ever get a flood line it must refuse.
        if (atLine.length > this.services.lineLimit) {
          stats.iamatRefused++
          this.reply(Reply.invalidReply(line.slice(0, Parse.contentEnd(line))))
          break
        }
        const accepted = this.accept(record, undefined, atLine)
        if (Either.isLeft(accepted)) {
          // The store could not keep it (full): the client is told, as for any line refused.
          stats.iamatRefused++
          this.reply(Reply.invalidReply(line.slice(0, Parse.contentEnd(line))))
          break
        }
        if (accepted.right) stats.iamatStored++
        else stats.iamatNotNewer++
        this.reply(atLine + "\n")
        break
      }
      case "At":
        if (this.services.peersMustProve && this.peerName === undefined) {
          // With TLS, only a neighbour that proved who it is may flood (PROTOCOL.md section 10).
          stats.atRefused++
          this.reply(Reply.invalidReply(line.slice(0, Parse.contentEnd(line))))
        } else if (this.isAheadOfRead(command.record.time)) {
          stats.atRefused++
          this.refusedARecord = true
          this.peerViolation("time: too far ahead of this server's clock", line)
        } else {
          if (this.peerLink !== undefined) this.peerLink.recordsReceived++
          const accepted = this.accept(command.record, this.peerName)
          if (Either.isLeft(accepted)) {
            // The store could not keep it: logged, and the link goes on.
            stats.atRefused++
            this.refusedARecord = true
            this.peerViolation(accepted.left.message, line)
          } else if (accepted.right) stats.atStored++
          else stats.atNotNewer++
        }
        break
      case "Peer": {
        const unproven = this.services.peersMustProve ? this.unprovenPeer(command.name) : undefined
        if (unproven !== undefined) {
          if (this.slot === "probation") {
            this.refuseOnProbation(unproven)
            return false
          }
          stats.peerRefused++
          log.unsafeRecord("refused", { conn: this.id, remote: this.remote, reason: unproven })
          this.reply(Reply.invalidReply(line.slice(0, Parse.contentEnd(line))))
          break
        }
        if (this.slot === "probation" && !this.services.herdServers.has(command.name)) {
          this.refuseOnProbation(`PEER ${command.name}: not a server of the herd`)
          return false
        }
        this.slot = this.services.admission.promote(this.slot, this)
        if (this.slot === "probation") {
          this.refuseOnProbation("no room left for neighbours' links")
          return false
        }
        this.probationDueNs = undefined
        this.reportDeadline()
        this.peerName = command.name
        stats.peerAccepted++
        this.peerLink = stats.link(command.name)
        // A neighbour's link is never cut over one line (PROTOCOL.md section 7).
        this.framer.skipTooLongLines(() =>
          this.peerViolation(`line longer than ${this.services.lineLimit} bytes: skipped`, undefined)
        )
        log.unsafeRecord("peer-in", { conn: this.id, remote: this.remote, peer: command.name })
        // It is up: a link of ours to it that is waiting out a back-off dials now.
        this.services.peers.unsafeNeighbourIsUp?.(command.name)
        break
      }
      case "Whatsat": {
        const stored = this.services.store.get(command.client)
        if (stored === undefined) {
          stats.whatsatUnknownClient++
          this.reply(Reply.invalidReply(line.slice(0, Parse.contentEnd(line))))
        } else {
          stats.whatsatAnswered++
          this.whatsat(stored, command)
        }
        break
      }
    }
    return this.hasRoomToGoOn()
  }

  /**
   * A line of the extended handshake from the neighbour: `MARK` moves this
   * server's checkpoint for its store; `DIGEST` is its beat, and its store's
   * digest, held against this one's. The first makes this end beat too.
   */
  private onLinkLine(said: Handshake.LinkLine): void {
    const peer = this.peerName
    if (peer === undefined) return
    if (!this.extended) {
      this.extended = true
      this.services.extendedLinksIn.add(this)
      this.divergence = new Handshake.DivergenceWatch()
      this.beatDueNs = this.receivedNs + beatNs
      this.silenceDueNs = this.receivedNs + silenceNs
      this.reportDeadline()
    }
    switch (said._tag) {
      case "Mark":
        // Not past a record refused on this connection: a restart resends it.
        if (!this.refusedARecord) this.services.checkpoints.unsafeNote(peer, said.checkpoint)
        // Everything the neighbour's store held a moment ago is here: its catch-up is done.
        if (this.peerLink !== undefined) {
          this.peerLink.caughtUpIn = true
          this.peerLink.lagRecords = 0
        }
        break
      case "Checkpoint":
        // A checkpoint to keep (the answer to this server's CHECKPOINT, or the
        // progress of a catch-up), which ends no catch-up: a MARK does.
        if (!this.refusedARecord) this.services.checkpoints.unsafeNote(peer, said.checkpoint)
        this.stopWaitingForCheckpoint(true)
        break
      case "Digest": {
        const ours = this.services.store.digest()
        if (this.divergence?.observe(said.digest, ours) === true) {
          // Both stores stood still for several beats and still differ: start over with everything it has.
          this.services.log.unsafeRecord("divergence", {
            peer,
            theirs: `${said.digest.count} ${said.digest.digest}`,
            ours: `${ours.count} ${ours.digest}`
          })
          this.services.checkpoints.unsafeForget(peer)
          this.endInput("stores differ: a full catch-up follows")
        }
        break
      }
      case "CatchUp":
        // Until its MARK, the neighbour's catch-up is under way (the server is not ready).
        if (this.peerLink !== undefined) {
          this.peerLink.caughtUpIn = false
          this.peerLink.lagRecords = said.records
        }
        break
      case "Resume":
        // Where this server stands with the neighbour's store: it resumes from there.
        this.reply(Handshake.sinceLine(this.services.checkpoints.get(peer)))
        break
      case "Since":
      case "AskCheckpoint":
        break
    }
  }

  /**
   * Why the other side may not say `PEER <name>` on a herd with TLS: it must
   * have proved, by a certificate of the herd CA, that it is that server.
   */
  private unprovenPeer(name: string): string | undefined {
    if (this.identity === undefined) return `PEER ${name} over plain TCP: a herd with TLS takes neighbours over TLS only`
    const verdict = authorizePeer(this.identity, name)
    return Either.isLeft(verdict) ? verdict.left.message : undefined
  }

  /**
   * Stores a record and, if it won, floods it on (never back to `from`);
   * answers whether it won, or why the store could not keep it.
   */
  private accept(record: LocationRecord.LocationRecord, from: string | undefined, atLine?: string): LocationStore.OfferResult {
    const offered = this.services.store.unsafeOffer(record, atLine)
    if (Either.isLeft(offered) || !offered.right) return offered
    this.storedSinceFlush = true
    this.services.peers.unsafeFlood(record, from, atLine)
    return offered
  }

  private reply(text: string): void {
    this.queued.push(text)
    this.queuedBytes += text.length
  }

  private whatsat(record: LocationRecord.LocationRecord, command: Command.Whatsat): void {
    const { log, places } = this.services
    const query = new WhatsatQuery(record.location, command)
    const atLine = LocationRecord.formatAtLine(record)
    const answer = (reply: AnswerReply, body: PlacesClient.PlacesBody): AnswerReply => {
      reply.body = this.services.printBody(body)
      reply.status = body.status
      reply.text = atLine + "\n" + reply.body + "\n\n"
      this.queuedBytes += reply.text.length
      return reply
    }
    // An answer at hand (the provider's cache, the offline gazetteer) is the
    // common case: no fiber, and no "places" entry (no request was made; the
    // reply is logged).
    const immediate = places.immediate?.(query)
    if (immediate !== undefined) {
      this.queued.push(answer({ text: undefined, body: undefined, status: "", receivedNs: this.receivedNs }, immediate))
      return
    }
    const slot: AnswerReply = { text: undefined, body: undefined, status: "", receivedNs: this.receivedNs }
    this.queued.push(slot)
    this.waiting++
    this.services.lookUp(
      places.nearby(query).pipe(
        Effect.tap((body) => log.unsafeRecord("places", { conn: this.id, provider: places.provider, status: body.status })),
        // A bug in a provider (a defect, not a PlacesError) is answered as a
        // failure too: the WHATSAT and the replies behind it must not wait forever.
        Effect.catchAllCause((cause) => {
          const error = Option.getOrElse(Cause.failureOption(cause), () => providerDefect(cause))
          log.unsafeRecord("places", {
            conn: this.id,
            provider: places.provider,
            status: error.status ?? "UNKNOWN_ERROR",
            reason: error.reason,
            error: error.message
          })
          return Effect.succeed(PlacesClient.failureBody(error))
        }),
        Effect.map((body) =>
          this.port.guard(() => {
            answer(slot, body)
            this.waiting--
            this.scheduleFlush()
          })
        )
      )
    )
  }

  /**
   * Writes every reply that is ready, in order, in one write. The replies
   * are latin1 text (one char per byte), so they are joined and turned into
   * bytes at once, and each reply's bytes are where its length says; the log
   * copies those bytes rather than converting the text again.
   */
  private flush(): void {
    if (this.awaitingCommit) return
    const whenStored = this.services.whenStored
    if (whenStored !== undefined && this.storedSinceFlush) {
      this.storedSinceFlush = false
      this.awaitingCommit = true
      const callbacks = this.commitCallbacks ??= { committed: () => this.committed(), failed: () => this.commitFailed() }
      whenStored(callbacks.committed, callbacks.failed)
      if (this.awaitingCommit) return
    }
    let ready = 0
    let text = ""
    for (const reply of this.queued) {
      const replyText = typeof reply === "string" ? reply : reply.text
      if (replyText === undefined) break
      text += replyText
      ready++
    }
    if (ready === 0) return
    const replies = this.queued
    this.queued = ready === replies.length ? [] : replies.slice(ready)
    this.queuedBytes -= text.length
    // Replies that can no longer be sent are lost: they are not logged as sent.
    const bytes = Buffer.from(text, "latin1")
    if (!this.port.send(bytes)) return
    const nowNs = this.port.nowNs()
    const latency = this.services.stats.replyLatency
    const sinceReadSeconds = Number(nowNs - this.receivedNs) / 1e9
    let plainReplies = 0
    let answersOfThisRead = 0
    let start = 0
    for (let i = 0; i < ready; i++) {
      const reply = replies[i]
      // Logged without its final LF, like a line in.
      if (typeof reply === "string") {
        this.lineLog.sent(bytes, start, start + reply.length - 1)
        start += reply.length
        plainReplies++
      } else if (reply !== undefined) {
        const end = start + (reply.text?.length ?? 0)
        if (reply.body === undefined) this.lineLog.sent(bytes, start, end - 1)
        else this.lineLog.sentAnswer(bytes, start, end - 1, reply.body, reply.status)
        start = end
        // An answer at hand came with the current read (the common case): timed
        // with the others of the read at once, with no BigInt work of its own.
        if (reply.receivedNs === this.receivedNs) answersOfThisRead++
        else latency.observe(Number(nowNs - reply.receivedNs) / 1e9)
      }
    }
    latency.observeMany(answersOfThisRead, answersOfThisRead * sinceReadSeconds)
    // Replies that are lines of their own (AT, `?`) are timed from the current
    // read: they are written within it, but for those held behind a lookup. A
    // neighbour's link is never answered: what goes back on it (SINCE, the
    // beat's DIGEST) is no reply, and not timed.
    if (this.peerName === undefined) latency.observeMany(plainReplies, plainReplies * sinceReadSeconds)
  }

  /**
   * The commit that held the records of the replies held failed: they are
   * not on disk, so they are never acknowledged. The connection closes
   * without them (the client knows its reports were not taken), logged.
   */
  private commitFailed(): void {
    this.port.guard(() => {
      this.awaitingCommit = false
      this.services.log.unsafeRecord("unacknowledged", {
        conn: this.id,
        remote: this.remote,
        reason: "the store could not commit: the replies waiting for it are not sent"
      })
      this.queued = []
      this.queuedBytes = 0
      this.endInput("store commit failed")
    })
  }

  /** The records of the replies held are on disk: write them, and go on. */
  private committed(): void {
    this.port.guard(() => {
      this.awaitingCommit = false
      this.flush()
      this.resumeIfClear()
      this.settleIfDone()
    })
  }

  /** Whether the replies and the log leave room to handle another line. */
  private hasRoomToGoOn(): boolean {
    return this.repliesWithin(1) && this.services.log.hasRoom()
  }

  /** Whether the unwritten replies, in bytes and in number, are within `share` of their bounds. */
  private repliesWithin(share: number): boolean {
    return this.queuedBytes + this.port.unsentBytes() <= this.services.pendingReplyBytes * share &&
      this.queued.length <= maxQueuedReplies * share
  }

  private pauseReading(): void {
    if (this.inputEnded) return
    if (!this.readingPaused) {
      this.readingPaused = true
      this.port.pause()
      // The rest of a partial line waits unread because this side stopped
      // reading: its deadline is dropped, and starts again when reading goes on.
      if (this.partialLineDueNs !== undefined) {
        this.partialLineDueNs = undefined
        this.reportDeadline()
      }
    }
    if (!this.services.log.hasRoom() && !this.waitingForLogRoom) {
      this.waitingForLogRoom = true
      this.services.log.unsafeOnRoom(() =>
        this.port.guard(() => {
          this.waitingForLogRoom = false
          this.resumeIfClear()
        })
      )
    }
  }

  /** Reads again once the replies have drained to half the bound and the log has room: the held rest of a read first. */
  private resumeIfClear(): void {
    if (!this.readingPaused || this.inputEnded) return
    if (!this.repliesWithin(0.5)) return
    if (!this.services.log.hasRoom()) {
      this.pauseReading()
      return
    }
    this.readingPaused = false
    const held = this.held
    this.held = undefined
    if (held !== undefined) {
      this.readAt(this.port.nowNs())
      this.consume(held)
    }
    const endReason = this.endOnceHeldIsRead
    if (endReason !== undefined && this.held === undefined) {
      this.endOnceHeldIsRead = undefined
      this.endInput(endReason)
      return
    }
    if (!this.readingPaused && !this.inputEnded) {
      this.port.resume()
      this.watchPartialLine(this.port.nowNs())
    }
  }

  /**
   * Lookups that finish together (requests shared by several WHATSATs,
   * most often) are written together: one write
   * after the current read or burst of completions, not one per WHATSAT.
   */
  private scheduleFlush(): void {
    if (this.flushScheduled) return
    this.flushScheduled = true
    queueMicrotask(() =>
      this.port.guard(() => {
        this.flushScheduled = false
        this.flush()
        this.resumeIfClear()
        this.settleIfDone()
      })
    )
  }

  private settleIfDone(): void {
    if (this.inputEnded && this.waiting === 0 && !this.flushScheduled && !this.awaitingCommit) this.port.settled()
  }

  /**
   * A slow-loris client trickles a line that never ends: each partial line
   * gets a deadline from `fromNs`, cleared when a line completes and while
   * this side has stopped reading (`pauseReading`): it starts again when
   * reading goes on.
   */
  private watchPartialLine(fromNs: bigint): void {
    if (this.framer.pendingBytes === 0) {
      if (this.partialLineDueNs === undefined) return
      this.partialLineDueNs = undefined
    } else if (this.partialLineDueNs === undefined) {
      this.partialLineDueNs = fromNs + BigInt(this.services.partialLineTimeoutMs) * 1_000_000n
    } else {
      return
    }
    this.reportDeadline()
  }

  /** Tells the owner the earliest deadline, when it changed. */
  private reportDeadline(): void {
    const dueNs = earliest(earliest(this.partialLineDueNs, this.probationDueNs), earliest(this.beatDueNs, this.silenceDueNs))
    if (dueNs === this.reportedDueNs) return
    this.reportedDueNs = dueNs
    this.port.wakeAt(dueNs)
  }

  /** A connection past the client limit that is not a neighbour's link: closed, with no reply. */
  private refuseOnProbation(why: string): void {
    if (this.inputEnded) return
    this.services.stats.connectionsRefused++
    this.services.log.unsafeRecord("refused", {
      conn: this.id,
      remote: this.remote,
      reason: `${this.services.admission.openClients} client connections open, the limit; ${why}`
    })
    this.queued = []
    this.queuedBytes = 0
    this.endInput("connection limit")
  }

  private violation(reason: string): void {
    this.services.log.unsafeRecord("violation", { conn: this.id, remote: this.remote, reason })
  }

  /**
   * A line a neighbour (or an old-style peer sending AT lines) should not
   * have sent: dropped and logged, the link kept. At most one entry a second
   * per connection, carrying the count of those not logged since.
   */
  private peerViolation(reason: string, line: string | undefined): void {
    const nowMs = Number(this.receivedNs / 1_000_000n)
    if (nowMs - this.lastViolationMs < violationLogIntervalMs) {
      this.suppressedViolations++
      return
    }
    this.lastViolationMs = nowMs
    this.services.log.unsafeRecord("violation", {
      conn: this.id,
      ...(this.peerName === undefined ? { remote: this.remote } : { peer: this.peerName }),
      reason,
      ...(line === undefined ? {} : { line }),
      ...(this.suppressedViolations === 0 ? {} : { notLoggedSince: this.suppressedViolations })
    })
    this.suppressedViolations = 0
  }
}

/**
 * The Places question of a WHATSAT. Its key is the text the numbers were
 * read from, cheaper than printing them; its coordinates are read from the
 * location only when a provider asks, as a cache hit (the common case)
 * needs the key alone.
 */
class WhatsatQuery implements PlacesClient.NearbyQuery {
  readonly radiusMetres: number
  readonly limit: number
  readonly key: string
  private coordinates: { readonly latitude: number; readonly longitude: number } | undefined

  constructor(private readonly location: string, command: Command.Whatsat) {
    this.radiusMetres = command.radiusMetres
    this.limit = command.bound
    this.key = location + " " + command.radius + " " + command.bound
  }

  get latitude(): number {
    return this.readCoordinates().latitude
  }

  get longitude(): number {
    return this.readCoordinates().longitude
  }

  private readCoordinates() {
    return this.coordinates ??= LocationRecord.coordinatesOf(this.location)
  }
}

const providerDefect = (cause: Cause.Cause<unknown>): PlacesClient.PlacesError => {
  const defect = Cause.squash(cause)
  return new PlacesClient.PlacesError({
    reason: "Defect",
    message: `the Places provider failed: ${defect instanceof Error ? defect.message : String(defect)}`
  })
}
