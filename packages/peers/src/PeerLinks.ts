/**
 * The links from one server to its neighbours (PROTOCOL.md section 7).
 *
 * For each neighbour, one fiber owned by the layer's scope dials it, says
 * `PEER <self>` and sends every stored record (catch-up). From then on
 * `unsafeFlood` writes the records flooded to it itself, all that one read made
 * win in one write, with no fiber in between. Any failure ends the
 * connection and the fiber dials again on a capped, jittered exponential
 * schedule. Closing the layer's scope stops every link.
 *
 * Memory stays bounded whatever the neighbour does:
 * - while a neighbour is unreachable nothing is queued for it: catch-up on
 *   reconnect resends the whole store, which holds every record it missed;
 * - while it is connected but does not read, records queue (during
 *   catch-up) or wait in the socket up to `maxPendingRecords`; one more and
 *   the link is cut, the records dropped, and the next connection's
 *   catch-up brings the neighbour up to date.
 */
import { LocationRecord } from "@herd/protocol"
import { DurableStore, LocationStore } from "@herd/store"
import { Clock, Context, Data, Deferred, Duration, Effect, Exit, FiberHandle, Layer, Option, Schedule } from "effect"
import * as Net from "node:net"
import * as Handshake from "./Handshake.ts"
import * as SocketAdapter from "./SocketAdapter.ts"

export class PeerLinks extends Context.Tag("@herd/peers/PeerLinks")<
  PeerLinks,
  {
    /** The neighbours this server floods to, by name. */
    readonly neighbours: ReadonlyArray<string>
    /**
     * Queues `record` for every neighbour except `from`, the server it came
     * from. Synchronous and never waits for the network: a server calls it on
     * its hot path, for every record that wins. `atLine`, the record's AT
     * line when the caller has made it already, saves making it again. A
     * synchronous side effect, hence `unsafe`.
     */
    readonly unsafeFlood: (record: LocationRecord.LocationRecord, from?: string, atLine?: string) => void
    /**
     * The neighbour `name` just linked to this server, so it is up: if this
     * server's link to it is down, waiting out a back-off, it dials now.
     */
    readonly unsafeNeighbourIsUp?: (name: string) => void
  }
>() {}

/** A server with no neighbours: a herd of one. */
export const layerAlone: Layer.Layer<PeerLinks> = Layer.succeed(
  PeerLinks,
  PeerLinks.of({ neighbours: [], unsafeFlood: () => {} })
)

export interface Neighbour {
  readonly name: string
  readonly host: string
  readonly port: number
}

/**
 * How a link's catch-up went: `incremental`, the neighbour resumed from its
 * checkpoint; `full`, it had none of this store; `old-style`, it did not
 * answer `SINCE` (in time).
 */
export type LinkHandshake = "incremental" | "full" | "old-style"

/**
 * Link changes, for the server's event log: `link-up` once catch-up is sent,
 * `link-down` when a link that was up fails, `link-failed` when dialling
 * (or catch-up) fails before the link came up.
 */
export type LinkEvent =
  | {
    readonly event: "link-up"
    readonly peer: string
    readonly address: string
    /** Records sent in catch-up, and how long sending them took. */
    readonly catchUp: number
    readonly catchUpMs: number
    /**
     * `incremental`: the neighbour resumed from its checkpoint; `full`: it
     * had none of this store; `old-style`: it did not answer `SINCE`.
     */
    readonly handshake: LinkHandshake
  }
  | { readonly event: "link-down" | "link-failed"; readonly peer: string; readonly address: string; readonly reason: string }
  /** A link taken for old-style turned extended: the neighbour answered `SINCE` after the wait. */
  | { readonly event: "link-extended"; readonly peer: string; readonly address: string }

export interface PeerLinksOptions {
  /** This server's name, sent in `PEER <self>`. */
  readonly self: string
  readonly neighbours: ReadonlyArray<Neighbour>
  readonly reconnect: { readonly initialMs: number; readonly capMs: number }
  /** Records queued for a connected neighbour, or written to it but not yet taken by the kernel, past which its link is cut. */
  readonly maxPendingRecords?: number
  /** How long a dial may take to connect (default 2 s) before it is abandoned, its socket destroyed, and the link fails with `connect timed out`. */
  readonly dialTimeoutMs?: number
  readonly onEvent?: (event: LinkEvent) => void
  /**
   * How a link's socket is made, within `timeout` (`dialTimeoutMs`): TLS,
   * for instance. It fails with the reason the log gives; it must destroy
   * its socket if interrupted, and the link destroys the socket it gets once
   * that connection ends. Default: plain TCP.
   */
  readonly connect?: (neighbour: Neighbour, timeout: Duration.Duration) => Effect.Effect<Net.Socket, { readonly message: string }>
  /** How long to wait for the neighbour's `SINCE` before sending it everything, old-style (default 500 ms). */
  readonly handshakeWaitMs?: number
  /** Where each link counts what it floods and the bytes it sends (catch-up included), by neighbour. */
  readonly counters?: (neighbour: string) => LinkCounters
}

/** What a link counts, as plain numbers it bumps (a server's metrics read them). */
export interface LinkCounters {
  recordsSent: number
  bytesSent: number
}

export const defaultMaxPendingRecords = 100_000
const defaultDialTimeoutMs = 2000
/** Records per write during catch-up, so a big store is not one huge string. */
const catchUpBatch = 2048
/** Catch-up bytes unsent past which the next slice waits for them to drain. */
const catchUpHighWater = 1024 * 1024
/** The longest line a neighbour may send on a link (handshake lines are short). */
const maxLinkLine = 4096
/** How long a dialler waits for `SINCE` before it takes the neighbour for an old-style one. */
export const defaultHandshakeWaitMs = 500
/** How long it waits for a neighbour that answered `SINCE` before (it may be starting: loading its store, its gazetteer). */
const extendedHandshakeWaitMs = 10_000

class LinkFailure extends Data.TaggedError("LinkFailure")<{ readonly reason: string; readonly cause?: unknown }> {}

/** One neighbour's link state, shared by `unsafeFlood` and the link's fiber. */
class Link {
  /** AT lines waiting to be written; `undefined` while the link is down. */
  private pending: Array<string> | undefined = undefined
  /** The open connection, catching up or caught up. */
  private current: SocketAdapter.SocketAdapter | undefined = undefined
  /** Whether catch-up is sent: flooded records are written at once from then on, not through a fiber. */
  private caughtUp = false
  /** Records written to the connection that Node has not handed to the kernel yet. */
  private unsent = 0
  private flushScheduled = false
  /** Why this side cut the current connection (the neighbour is not reading, or went silent). */
  cutReason: string | undefined = undefined
  /** What the neighbour said in `SINCE`, once it has (an extended receiver). */
  private since: Deferred.Deferred<Handshake.Checkpoint> | undefined = undefined
  /** When the neighbour last sent anything (ms, the Effect clock). */
  lastHeardMs = 0
  /** The neighbour's bytes not yet ended by an LF. */
  private partial = ""
  /**
   * Whether the neighbour answered `SINCE` on an earlier connection: then it
   * is waited for longer (it may be busy starting), where an old-style one
   * is given a short wait.
   */
  spokeExtension = false
  /** Dials again at once when the link is down (set by the link's fiber runner). */
  redialNow: (() => void) | undefined = undefined
  /** Answers the neighbour's `CHECKPOINT` on `connection` (set by `make`, which knows the store). */
  answerCheckpoint: ((connection: SocketAdapter.SocketAdapter) => void) | undefined = undefined
  /** Set between a failed connection and the next dial: the link is waiting out its back-off. */
  waitingToDial = false
  /** How many of the lines in `pending` are the handshake's, not records. */
  private controlLines = 0
  /** Whether the current connection speaks the extension, caught up: `MARK`s go on it. */
  marking = false

  constructor(readonly neighbour: Neighbour, readonly maxPending: number, readonly counters: LinkCounters) {}

  /** Whether records are taken: a connection is open (catching up or caught up). */
  get isOpen(): boolean {
    return this.pending !== undefined
  }

  /** A connection is made: queue records from now on, while catch-up is sent. */
  opened(connection: SocketAdapter.SocketAdapter, since: Deferred.Deferred<Handshake.Checkpoint>, nowMs: number): void {
    this.since = since
    this.lastHeardMs = nowMs
    this.partial = ""
    this.controlLines = 0
    this.pending = []
    // What the last connection left unsent is gone with it (its write
    // callbacks no longer count, the connection being another): it must not
    // count against this one.
    this.unsent = 0
    this.current = connection
    this.caughtUp = false
    this.marking = false
    this.cutReason = undefined
  }

  /** Catch-up is sent: what queued meanwhile, and every record from now on, follows it. */
  sentCatchUp(): void {
    this.caughtUp = true
    this.flush()
  }

  /** The connection is gone: nothing is queued until the next one (its catch-up resends all). */
  closed(): void {
    this.since = undefined
    this.pending = undefined
    this.current = undefined
    this.caughtUp = false
    this.marking = false
  }

  /** Ends the current connection from this side; the link dials again. */
  cut(reason: string): void {
    this.cutReason = reason
    this.pending = undefined
    this.current?.stopReading()
  }

  /** Whether `connection` is still this link's open connection. */
  isCurrent(connection: SocketAdapter.SocketAdapter): boolean {
    return this.current === connection && this.pending !== undefined
  }

  /**
   * What the neighbour sends on the link: the lines of the extended
   * handshake (`SINCE`, `DIGEST`, `CHECKPOINT`); any byte is a sign of life.
   */
  heard(chunk: Buffer, nowMs: number): void {
    this.lastHeardMs = nowMs
    const text = this.partial + chunk.toString("latin1")
    const lines = text.split("\n")
    this.partial = lines.pop() ?? ""
    if (this.partial.length > maxLinkLine) {
      this.cut(`the neighbour sent a line longer than ${maxLinkLine} bytes`)
      return
    }
    for (const line of lines) {
      const said = Handshake.parseLinkLine(line.endsWith("\r") ? line.slice(0, -1) : line)
      if (said?._tag === "Since" && this.since !== undefined) {
        this.spokeExtension = true
        Deferred.unsafeDone(this.since, Exit.succeed(said.checkpoint))
      } else if (said?._tag === "AskCheckpoint" && this.current !== undefined) {
        this.answerCheckpoint?.(this.current)
      }
    }
  }

  /** A line of the handshake (`MARK`, `DIGEST`), in order after the records queued before it; not counted as a record. */
  enqueueControl(line: string): void {
    if (this.pending === undefined) return
    this.controlLines++
    this.enqueue(line.slice(0, -1))
  }

  /**
   * The stopping server's last line on a marking link, written at once (not
   * at the next microtask): `onWritten` once Node has handed it to the
   * kernel, or at once when there is nothing to write it on.
   */
  sayLast(line: string, onWritten: () => void): void {
    const current = this.current
    if (current === undefined || !this.marking) return onWritten()
    // Called back from the store's commit, outside any fiber: a throw closes this connection only.
    current.guard(() => {
      this.enqueueControl(line)
      this.flush(onWritten)
    })
  }

  enqueue(line: string): void {
    if (this.pending === undefined) return
    if (this.pending.length + this.unsent >= this.maxPending) {
      this.cut(`more than ${this.maxPending} records unsent: not reading`)
      return
    }
    this.pending.push(line)
    const current = this.current
    if (current !== undefined && this.caughtUp && !this.flushScheduled) {
      this.flushScheduled = true
      queueMicrotask(() => current.guard(this.flush))
    }
  }

  /**
   * Writes every queued record in one write, right after the read that made
   * them win: a fiber woken to write them would add a scheduler hop to every
   * hop of a flood (about 0.5 ms of a 3-hop propagation in a fresh process).
   */
  private readonly flush = (onWritten?: () => void): void => {
    this.flushScheduled = false
    const current = this.current
    const batch = this.pending
    if (current === undefined || !this.caughtUp || batch === undefined || batch.length === 0) return onWritten?.()
    this.pending = []
    this.unsent += batch.length
    const bytes = linesOf(batch)
    this.counters.recordsSent += batch.length - this.controlLines
    this.controlLines = 0
    this.counters.bytesSent += bytes.length
    const taken = current.write(bytes, () => {
      if (this.current === current) this.unsent -= batch.length
      onWritten?.()
    })
    // A socket no longer writable takes nothing and never calls back.
    if (!taken) {
      if (this.current === current) this.unsent -= batch.length
      onWritten?.()
    }
  }
}

export const make = (options: PeerLinksOptions) =>
  Effect.gen(function*() {
    const store = yield* LocationStore.LocationStore
    const durable = Option.getOrUndefined(yield* Effect.serviceOption(DurableStore.DurableStore))
    const handshakeWait = Duration.millis(options.handshakeWaitMs ?? defaultHandshakeWaitMs)
    const extendedHandshakeWait = Duration.millis(Math.max(options.handshakeWaitMs ?? 0, extendedHandshakeWaitMs))
    const dialTimeout = Duration.millis(options.dialTimeoutMs ?? defaultDialTimeoutMs)
    const onEvent = options.onEvent ?? (() => {})
    const links = options.neighbours.map((neighbour) =>
      new Link(
        neighbour,
        options.maxPendingRecords ?? defaultMaxPendingRecords,
        options.counters?.(neighbour.name) ?? { recordsSent: 0, bytesSent: 0 }
      )
    )

    const retrySchedule = Schedule.exponential(Duration.millis(options.reconnect.initialMs)).pipe(
      Schedule.union(Schedule.spaced(Duration.millis(options.reconnect.capMs))),
      Schedule.jitteredWith({ min: 0.5, max: 1 }),
      // A link that stayed up a while starts again from the initial delay.
      Schedule.resetAfter(Duration.millis(options.reconnect.capMs * 2))
    )

    /** Writes one slice of catch-up, then waits for it to drain past `catchUpHighWater`, or yields to the clients. */
    const sendSlice = (
      connection: SocketAdapter.SocketAdapter,
      counters: LinkCounters,
      records: ReadonlyArray<LocationRecord.LocationRecord>,
      progress?: string
    ) =>
      Effect.suspend(() => {
        const lines = records.map(LocationRecord.formatAtLine)
        if (progress !== undefined) lines.push(progress.slice(0, -1))
        const slice = linesOf(lines)
        counters.bytesSent += slice.length
        connection.write(slice)
        return connection.unsentBytes() > catchUpHighWater ? connection.drained : Effect.yieldNow()
      })

    /**
     * Every stored record, in slices. With a durable store, the seq every
     * record up to which is in the snapshot (read before it is taken).
     */
    const sendAll = (connection: SocketAdapter.SocketAdapter, counters: LinkCounters) =>
      Effect.gen(function*() {
        const upTo = durable?.lastSeq() ?? 0
        const snapshot = store.snapshot()
        for (let i = 0; i < snapshot.length && !connection.isClosed(); i += catchUpBatch) {
          yield* sendSlice(connection, counters, snapshot.slice(i, i + catchUpBatch))
        }
        return { sent: snapshot.length, upTo }
      })

    /**
     * The records accepted after `seq`, in seq order, in slices: what a
     * neighbour that resumes lacks. Those accepted before the link opened are
     * committed first (without blocking this thread); those accepted since
     * are queued on the link, so committed or not they reach it.
     */
    const sendAfter = (durable: DurableStore.DurableStoreService, connection: SocketAdapter.SocketAdapter, counters: LinkCounters, seq: number) =>
      Effect.gen(function*() {
        yield* durable.committedNow
        let cursor = seq
        let sent = 0
        while (!connection.isClosed()) {
          const found = yield* durable.recordsAfter(cursor, catchUpBatch)
          if (found.length === 0) break
          sent += found.length
          cursor = found[found.length - 1]?.seq ?? cursor
          // Each slice ends with where it got to: every committed record up to `cursor`
          // is on the link now, so a neighbour that stops (or is killed) midway resumes
          // from there rather than redoing the whole catch-up.
          yield* sendSlice(connection, counters, found.map((sequenced) => sequenced.record), Handshake.checkpointLine({ epoch: durable.epoch, seq: cursor }))
        }
        // Every record committed by now is sent or queued on the link (accepted since it opened).
        return { sent, upTo: Math.max(cursor, durable.lastSeq()) }
      })

    /**
     * The extended link's beat, every `beatMs`: what this store holds, and
     * how far it is on the link (`DIGEST`, `MARK`); and the check that the
     * neighbour still speaks, whatever TCP says of a link that drops packets.
     */
    const beat = (link: Link) => {
      let lastBeatMs = link.lastHeardMs
      return Effect.gen(function*() {
        const nowMs = yield* Clock.currentTimeMillis
        // A beat that comes late means this process stood still (a long task,
        // a pause): what the neighbour sent meanwhile is still unread, so it
        // gets a fresh window rather than the blame.
        if (Handshake.isLate(nowMs - lastBeatMs)) link.lastHeardMs = nowMs
        lastBeatMs = nowMs
        if (nowMs - link.lastHeardMs > Handshake.silentBeats * Handshake.beatMs) {
          link.cut(`the neighbour said nothing for ${Handshake.silentBeats * Handshake.beatMs / 1000} s`)
          return
        }
        link.enqueueControl(Handshake.digestLine(store.digest()))
      }).pipe(Effect.repeat(Schedule.spaced(Duration.millis(Handshake.beatMs))))
    }

    /**
     * `MARK` as the store commits (looked at four times a beat): the
     * neighbour's checkpoint then trails this store's commits by a fraction
     * of a second, and a restart of it costs little more than what changed.
     */
    const markAsCommitted = (link: Link, durable: DurableStore.DurableStoreService, from: number) => {
      let marked = from
      return Effect.sync(() => {
        // Committed, not merely given: a seq lost in a crash is given again to another record,
        // which a checkpoint past it would skip.
        const seq = durable.lastSeq()
        if (seq === marked) return
        marked = seq
        link.enqueueControl(Handshake.markLine({ epoch: durable.epoch, seq }))
      }).pipe(Effect.repeat(Schedule.spaced(Duration.millis(Handshake.beatMs / 4))))
    }

    /**
     * The neighbour is stopping and asks where it stands (`CHECKPOINT`): the
     * answer, once every record queued on the link so far is committed here,
     * claims what this store has committed by then. Queued behind those
     * records (during catch-up, behind the catch-up too), it claims nothing
     * the neighbour has not been sent. From a store with no seqs, "- 0".
     */
    const answerCheckpoint = (link: Link) => (connection: SocketAdapter.SocketAdapter) => {
      if (durable === undefined) return link.enqueueControl(Handshake.checkpointLine(Handshake.noCheckpoint))
      // At once, not after the writer's rest: the neighbour waits for this before it stops.
      durable.unsafeCommitSoon()
      durable.unsafeOnCommitted(() =>
        connection.guard(() => {
          if (link.isCurrent(connection)) link.enqueueControl(Handshake.checkpointLine({ epoch: durable.epoch, seq: durable.lastSeq() }))
        })
      )
    }

    /**
     * The extended link once catch-up is sent: `MARK` of what was sent (even
     * from a store with no seqs, memory, whose "- 0" claims nothing but ends
     * the catch-up), then the beats and the `MARK`s as the store commits.
     * Every record committed up to `upTo` is on the link by now: in the
     * catch-up, or accepted since the link opened and queued on it.
     */
    const speakExtension = (link: Link, upTo: number) =>
      Effect.gen(function*() {
        link.enqueueControl(Handshake.markLine(durable === undefined ? Handshake.noCheckpoint : { epoch: durable.epoch, seq: upTo }))
        link.marking = true
        link.lastHeardMs = yield* Clock.currentTimeMillis
        yield* Effect.forkScoped(beat(link))
        if (durable !== undefined) yield* Effect.forkScoped(markAsCommitted(link, durable, upTo))
      })

    // Suspended, so that every retry starts with `up` false.
    const connectOnce = (link: Link) => Effect.suspend(() => {
      let up = false
      link.waitingToDial = false
      return Effect.scoped(Effect.gen(function*() {
        const { host, name, port } = link.neighbour
        const address = `${host}:${port}`
        const conn = options.connect === undefined
          ? yield* dial(link.neighbour, dialTimeout)
          : yield* connectWith(options.connect, link.neighbour, dialTimeout)
        const clock = yield* Effect.clock
        const connection = yield* SocketAdapter.make(conn, {
          onData: (chunk) => link.heard(chunk, clock.unsafeCurrentTimeMillis())
        })
        const since = yield* Deferred.make<Handshake.Checkpoint>()
        // Queue from now on, before the snapshot is taken: a record accepted
        // meanwhile is in both, and the neighbour drops the second copy.
        link.opened(connection, since, clock.unsafeCurrentTimeMillis())
        yield* Effect.addFinalizer(() => Effect.sync(() => link.closed()))
        const started = yield* Clock.currentTimeMillis
        connection.write(Buffer.from(`PEER ${options.self}\n${Handshake.resumeLine}`, "latin1"))
        // An extended neighbour answers where it stands; an old-style one drops RESUME and says nothing.
        const resume = yield* Deferred.await(since).pipe(
          Effect.timeoutOption(link.spokeExtension ? extendedHandshakeWait : handshakeWait)
        )
        const incremental = Option.isSome(resume) && durable !== undefined &&
          resume.value.epoch === durable.epoch && resume.value.seq <= durable.lastSeq()
        // An extended neighbour learns how much follows: it is not caught up until the MARK after it.
        if (Option.isSome(resume)) {
          const coming = incremental && durable !== undefined ? durable.lastSeq() - resume.value.seq : store.size()
          connection.write(Buffer.from(Handshake.catchUpLine(Math.max(0, coming)), "latin1"))
        }
        const { sent, upTo } = incremental
          ? yield* sendAfter(durable, connection, link.counters, resume.value.seq).pipe(
            Effect.mapError((cause) => new LinkFailure({ reason: `catch-up: ${cause.message}`, cause }))
          )
          : yield* sendAll(connection, link.counters)
        if (!connection.isClosed()) {
          up = true
          link.sentCatchUp()
          if (Option.isSome(resume)) {
            yield* speakExtension(link, upTo)
          } else {
            // A neighbour that answers SINCE after the wait (busy starting, say) speaks it
            // after all: the link turns extended, from a MARK of what it has had by then.
            yield* Effect.forkScoped(Effect.zipRight(
              Deferred.await(since),
              Effect.suspend(() => speakExtension(link, durable?.lastSeq() ?? 0)).pipe(
                Effect.tap(() => Effect.sync(() => onEvent({ event: "link-extended", peer: name, address })))
              )
            ))
          }
          const catchUpMs = (yield* Clock.currentTimeMillis) - started
          onEvent({
            event: "link-up",
            peer: name,
            address,
            catchUp: sent,
            catchUpMs,
            handshake: Option.isNone(resume) ? "old-style" : incremental ? "incremental" : "full"
          })
        }
        // Flooded records are written by `unsafeFlood` itself from now on.
        const ended = yield* Effect.either(connection.closed)
        return yield* new LinkFailure({
          reason: link.cutReason ??
            (ended._tag === "Left" ? `socket error: ${ended.left.message}` : "closed by neighbour"),
          ...(ended._tag === "Left" ? { cause: ended.left } : {})
        })
      })).pipe(
        // A bug met on the link (a guarded callback threw) ends this connection; the link dials again.
        Effect.catchAllDefect((defect) =>
          Effect.fail(new LinkFailure({ reason: `internal error: ${defect instanceof Error ? defect.message : String(defect)}`, cause: defect }))
        ),
        Effect.tapError((failure) =>
          Effect.sync(() => {
            link.waitingToDial = true
            onEvent({
              event: up ? "link-down" : "link-failed",
              peer: link.neighbour.name,
              address: `${link.neighbour.host}:${link.neighbour.port}`,
              reason: failure.reason
            })
          })
        )
      )
    })

    // Each link's fiber in a handle of its own: `unsafeNeighbourIsUp` can restart it,
    // cutting a back-off short, when the neighbour has just shown it is up.
    for (const link of links) {
      const run = yield* FiberHandle.makeRuntime<never, never, never>()
      const start = () => {
        run(connectOnce(link).pipe(Effect.retry(retrySchedule), Effect.orDie))
      }
      link.redialNow = start
      link.answerCheckpoint = answerCheckpoint(link)
      start()
    }
    // Added after the links start, so it runs before they stop.
    if (durable !== undefined) yield* Effect.addFinalizer(() => markAtStop(links, durable))

    return PeerLinks.of({
      neighbours: options.neighbours.map((neighbour) => neighbour.name),
      unsafeNeighbourIsUp: (name) => {
        for (const link of links) {
          // Only a link waiting out its back-off: one that is dialling or open goes on as it is.
          if (link.neighbour.name === name && link.waitingToDial) link.redialNow?.()
        }
      },
      unsafeFlood: (record, from, atLine) => {
        let line: string | undefined
        for (const link of links) {
          if (link.neighbour.name === from || !link.isOpen) continue
          line ??= atLine ?? LocationRecord.formatAtLine(record)
          link.enqueue(line)
        }
      }
    })
  })

/**
 * A stopping server's last word on each link that speaks the extension: a
 * `MARK` of everything it has committed, once all it accepted is. The
 * neighbour's checkpoint of this store is then where the store stopped, and
 * the restart resends it nothing it has: without this, what was committed
 * after the last beat's `MARK` (some 14,000 records of a fill stopped at
 * once). Bounded, like the `CHECKPOINT` wait: a neighbour that reads nothing
 * does not hold the stop.
 */
const markAtStop = (links: ReadonlyArray<Link>, durable: DurableStore.DurableStoreService) =>
  Effect.gen(function*() {
    const marking = links.filter((link) => link.marking)
    if (marking.length === 0) return
    const done = yield* Deferred.make<void>()
    let unwritten = marking.length
    const written = () => {
      if (--unwritten === 0) Deferred.unsafeDone(done, Exit.void)
    }
    durable.unsafeCommitSoon()
    durable.unsafeOnCommitted(() => {
      const mark = Handshake.markLine({ epoch: durable.epoch, seq: durable.lastSeq() })
      for (const link of marking) link.sayLast(mark, written)
    }, () => Deferred.unsafeDone(done, Exit.void))
    yield* Handshake.awaitAtMost(done, Handshake.checkpointWaitMs)
  })

export const layer = (options: PeerLinksOptions): Layer.Layer<PeerLinks, never, LocationStore.LocationStore> =>
  Layer.scoped(PeerLinks, make(options))

const linesOf = (lines: ReadonlyArray<string>): Uint8Array => Buffer.from(lines.join("\n") + "\n", "latin1")

/**
 * A connection to a neighbour, in the current scope, whose release destroys
 * the socket at once: a neighbour that stopped reading would keep a graceful
 * close waiting forever, and nothing unsent is lost (catch-up resends it).
 *
 * The socket is acquired (and its release registered) as soon as it is
 * created, and only then is its connect awaited, interruptibly: a connect
 * awaited inside an acquire could not be cut by the timeout (it would wait
 * as long as the kernel retries a SYN that a stopped neighbour drops), and
 * one that completed after the timeout would escape its release.
 */
const dial = (neighbour: Neighbour, timeout: Duration.Duration) =>
  Effect.gen(function*() {
    const connected = yield* Deferred.make<void, LinkFailure>()
    const conn = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const conn = Net.createConnection({ host: neighbour.host, port: neighbour.port, noDelay: true })
        conn.once("connect", () => Deferred.unsafeDone(connected, Exit.void))
        // Listening from the start, so that no error is ever unhandled; once
        // connected, errors are reported through the socket's adapter (and
        // this completes nothing: `connected` is done).
        conn.on("error", (cause) =>
          Deferred.unsafeDone(
            connected,
            Exit.fail(new LinkFailure({ reason: `connect failed: ${new SocketAdapter.SocketFailure({ cause }).message}`, cause }))
          )
        )
        return conn
      }),
      (conn) => Effect.sync(() => conn.destroy())
    )
    yield* Deferred.await(connected).pipe(
      Effect.timeoutFail({ duration: timeout, onTimeout: () => new LinkFailure({ reason: "connect timed out" }) })
    )
    return conn
  })

/** A socket made by `connect`, destroyed when the current scope closes. */
const connectWith = (
  connect: NonNullable<PeerLinksOptions["connect"]>,
  neighbour: Neighbour,
  timeout: Duration.Duration
) =>
  Effect.uninterruptibleMask((restore) =>
    restore(connect(neighbour, timeout)).pipe(
      Effect.mapError((error) => new LinkFailure({ reason: error.message, cause: error })),
      Effect.tap((conn) => Effect.addFinalizer(() => Effect.sync(() => conn.destroy())))
    )
  )
