/**
 * The durable store's machinery, Effect-free: the records in memory
 * (`LatestRecords`, where every read is answered) and, behind them, a SQLite
 * database. This thread loads the database on open and reads it for
 * catch-up; the records that won since the last batch are handed, as one
 * buffer of AT lines, to the process's writer thread (`commitWorker.ts`),
 * which writes each batch (or all that queued up meanwhile) in one
 * transaction and answers, so that no SQLite work per record is done here.
 *
 * Schema: `records(seq INTEGER PRIMARY KEY, client TEXT UNIQUE, line BLOB,
 * time_s INTEGER)`, one row per client. `seq` is the row's local sequence
 * number, given at commit in the order the clients' records first won since
 * the last one; a client's newer record takes a new, greater seq (the row
 * moves), so the rows after a seq are what was accepted after it. Being the
 * rowid, seq orders the table itself: the records after a seq are one range
 * of it, with no extra index. `line` is the AT line, its bytes exactly;
 * `time_s` is the whole seconds of the record's client time, for retention
 * (indexed while retention is on). `meta` holds the database's `epoch` (a random id made with the
 * file) and `last_seq`, which retention must not lower.
 */
import { Parse } from "@herd/protocol"
import type { LocationRecord } from "@herd/protocol"
import Database from "better-sqlite3"
import { randomUUID } from "node:crypto"
import { mkdirSync } from "node:fs"
import { createRequire } from "node:module"
import { dirname } from "node:path"
import { Worker } from "node:worker_threads"
import {
  commitWorkerSource,
  SHARED_ANSWERS,
  SHARED_BYTES,
  SHARED_CLOSED,
  SHARED_FAILURES,
  SHARED_MESSAGE_BYTE_OFFSET,
  SHARED_MESSAGE_BYTES,
  SHARED_SEQ_BYTE_OFFSET
} from "./commitWorker.ts"
import type { CommitWorkerAnswer, CommitWorkerData, OpenStore } from "./commitWorker.ts"
import { LatestRecords } from "./LatestRecords.ts"

/** better-sqlite3's entry, resolved from here, for the writer thread to load the same one. */
const sqliteEntry = createRequire(import.meta.url).resolve("better-sqlite3")

interface WriterListener {
  readonly onAnswer: (answer: CommitWorkerAnswer) => void
}

/**
 * The process's writer thread, started with the first store opened: a
 * thread costs tens of milliseconds to start, a store's connection in it
 * about one. It holds the process alive only while a batch is in flight.
 */
interface Writer {
  readonly worker: Worker
  readonly stores: Map<number, WriterListener>
  inFlight: number
}

let writer: Writer | undefined
let nextStoreId = 1

const writerThread = (): Writer => {
  if (writer !== undefined) return writer
  const workerData: CommitWorkerData = { sqlitePath: sqliteEntry }
  // No loader hooks of the parent (tsx, vitest): the source is plain JavaScript.
  const worker = new Worker(commitWorkerSource, { eval: true, workerData, execArgv: [] })
  const started: Writer = { worker, stores: new Map(), inFlight: 0 }
  worker.on("message", (message: { readonly store: number; readonly answer: CommitWorkerAnswer }) => {
    started.stores.get(message.store)?.onAnswer(message.answer)
  })
  worker.on("error", (error) => {
    // Its stores' waiters fail; a store opened next starts another thread.
    if (writer === started) writer = undefined
    for (const store of started.stores.values()) {
      store.onAnswer({ type: "failed", seq: Number.MAX_SAFE_INTEGER, message: `the writer thread failed: ${error.message}` })
    }
  })
  // After the listeners: adding one refs the worker again.
  worker.unref()
  writer = started
  return started
}

export interface OpenOptions {
  readonly path: string
  /** `"always"` fsyncs every commit (`synchronous = FULL`) and commits once the current turn of the event loop is done. */
  readonly sync: "batch" | "always"
  readonly retainDays: number | undefined
  /** Told how long each commit took (ms), for a server's metrics. */
  readonly onCommitted?: ((ms: number) => void) | undefined
}

/** Where a receiver stands with a neighbour's store: its epoch, and the last of its seqs applied here. */
export interface Checkpoint {
  readonly epoch: string
  readonly seq: number
}

export interface SequencedRecord {
  readonly seq: number
  readonly record: LocationRecord.LocationRecord
}

/** The record an AT line stands for; none for a line that is not one. */
const recordOfLine = (line: string): LocationRecord.LocationRecord | undefined => {
  const command = Parse.parseLine(line)
  return command._tag === "At" ? command.record : undefined
}

/** The most digits of whole seconds kept exactly; a time past them is as good as never. */
const maxExactDigits = 15

/**
 * The whole seconds of a time text, `digits(.digits)?`: what retention
 * compares (a time is before the whole second `c` exactly when its whole
 * seconds are). A time too large to read exactly, or no time at all, is
 * kept forever.
 */
export const wholeSecondsOf = (time: string): number => {
  const dot = time.indexOf(".")
  const integer = dot === -1 ? time : time.slice(0, dot)
  let start = 0
  while (start < integer.length - 1 && integer.charCodeAt(start) === 48) start++
  if (integer.length - start > maxExactDigits) return Number.MAX_SAFE_INTEGER
  const seconds = Number(integer.slice(start))
  return Number.isInteger(seconds) && integer.length > 0 ? seconds : Number.MAX_SAFE_INTEGER
}

/** The whole second before which a record is forgotten, `retainDays` before `nowMs`. */
export const retentionCutoff = (nowMs: number, retainDays: number): number =>
  Math.floor((nowMs - retainDays * 86_400_000) / 1000)

const schema = `
  CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY,
    client TEXT NOT NULL UNIQUE,
    line BLOB NOT NULL,
    time_s INTEGER NOT NULL
  );
  CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS checkpoints (peer TEXT PRIMARY KEY, epoch TEXT NOT NULL, seq INTEGER NOT NULL) WITHOUT ROWID;
`

/** Who waits for a commit: called back once it is committed, or once it failed. */
interface Waiters {
  readonly committed: Array<() => void>
  readonly failed: Array<((error: Error) => void) | undefined>
}

const noWaiters = (): Waiters => ({ committed: [], failed: [] })

/**
 * With `sync: "batch"`, how many times as long as its last commit took the
 * writer rests before the next batch goes: SQLite takes at most
 * 1 / (1 + restFactor) of a core while commits take under `maxRestMs / restFactor`.
 */
const restFactor = 3

/**
 * The longest rest: what a crash can lose is at most this and the time of
 * one commit. Long enough that a client reporting a few times a second
 * mostly folds into one row per commit, which is what keeps the durable
 * store's IAMAT throughput near the memory store's (bench/durable.ts).
 */
const maxRestMs = 400

/** How long a thread blocked on a commit (`unsafeCommit`, `open`, close) waits for the writer before giving up. */
const syncWaitMs = 30_000

export class CommitFailedError extends Error {
  override readonly name = "CommitFailedError"
}

export class DurableDatabase {
  readonly latest = new LatestRecords()
  readonly epoch: string
  /** Rows the database held when opened that are no AT line, left out of memory (and deleted). */
  readonly unreadable: number
  /** Where this server stands with each neighbour's store (issue 17): as kept, and as noted since. */
  private readonly checkpoints = new Map<string, Checkpoint>()
  /** Checkpoints noted (or forgotten: null) since the last batch, to go with it. */
  private readonly pendingCheckpoints = new Map<string, Checkpoint | null>()
  /** Ids of the records that won since the last batch was sent to the writer, in the order they first won. */
  private readonly pending = new Set<number>()
  /** Who waits for the records in `pending`. */
  private waitingForPending: Waiters = noWaiters()
  /** Batches sent to the writer and not answered yet, in seq order, each with its last seq and who waits for it. */
  private readonly inFlight: Array<{ readonly seq: number; readonly waiters: Waiters }> = []
  /** The last seq given to a record sent to the writer. */
  private sentSeq: number
  /** The last seq of a batch whose commit failed, while no later commit has succeeded (else 0). */
  private failedSeq = 0
  /** Commit failures not yet taken by `takeFailures`: how many, and the last one's message. */
  private failureCount = 0
  private lastFailure = ""
  private immediate: ReturnType<typeof setImmediate> | undefined = undefined
  private closed = false
  private readonly writer: Writer
  private readonly storeId = nextStoreId++
  private readonly sharedInts: Int32Array
  private readonly sharedSeq: Float64Array
  private readonly sharedMessage: Uint8Array
  private readonly selectAfter: Database.Statement<[number, number], { seq: number; line: Buffer }>
  private readonly selectExpired: Database.Statement<[number], string>
  private readonly deleteExpired: Database.Statement<[number]>

  /** Opens (or makes) the database, deletes what retention no longer keeps, loads the rest. Throws what SQLite throws. */
  static open(options: OpenOptions, nowMs: number): DurableDatabase {
    mkdirSync(dirname(options.path), { recursive: true })
    const db = new Database(options.path)
    try {
      return new DurableDatabase(db, options, nowMs)
    } catch (cause) {
      db.close()
      throw cause
    }
  }

  private constructor(readonly db: Database.Database, readonly options: OpenOptions, nowMs: number) {
    db.pragma("journal_mode = WAL")
    db.pragma("busy_timeout = 5000")
    db.exec(schema)
    // The index serves retention only, and costs every write: it exists while retention is on.
    db.exec(
      options.retainDays === undefined
        ? "DROP INDEX IF EXISTS records_time"
        : "CREATE INDEX IF NOT EXISTS records_time ON records (time_s)"
    )
    const readMeta = db.prepare<[string], unknown>("SELECT value FROM meta WHERE key = ?").pluck()
    db.transaction(() => {
      const insertMeta = db.prepare("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)")
      insertMeta.run("epoch", randomUUID())
      insertMeta.run("last_seq", 0)
    }).immediate()
    this.epoch = String(readMeta.get("epoch"))
    for (const row of db.prepare<[], { peer: string; epoch: string; seq: number }>("SELECT peer, epoch, seq FROM checkpoints").all()) {
      this.checkpoints.set(row.peer, { epoch: row.epoch, seq: row.seq })
    }
    this.sentSeq = Number(readMeta.get("last_seq"))
    this.selectAfter = db.prepare<[number, number], { seq: number; line: Buffer }>(
      "SELECT seq, line FROM records WHERE seq > ? ORDER BY seq LIMIT ?"
    )
    this.selectExpired = db.prepare<[number], string>("SELECT client FROM records WHERE time_s < ?").pluck()
    this.deleteExpired = db.prepare<[number]>("DELETE FROM records WHERE time_s < ?")
    if (options.retainDays !== undefined) this.deleteExpired.run(retentionCutoff(nowMs, options.retainDays))

    // The writer opens its connection while this thread loads.
    const shared = new SharedArrayBuffer(SHARED_BYTES)
    this.sharedInts = new Int32Array(shared)
    this.sharedSeq = new Float64Array(shared, SHARED_SEQ_BYTE_OFFSET, 1)
    this.sharedSeq[0] = this.sentSeq
    this.sharedMessage = new Uint8Array(shared, SHARED_MESSAGE_BYTE_OFFSET + 4, SHARED_MESSAGE_BYTES)
    this.writer = writerThread()
    this.writer.stores.set(this.storeId, { onAnswer: (answer) => this.onAnswer(answer) })
    const open: OpenStore = { path: options.path, sync: options.sync, shared, retryMs: 100 }
    this.writer.worker.postMessage({ type: "open", store: this.storeId, ...open })
    try {
      this.unreadable = this.load()
      this.waitForAnswer(0, "open the database in the writer thread")
    } catch (cause) {
      this.unsafeDrop()
      throw cause
    }
  }

  /**
   * Loads every row into memory; answers how many were no AT line (deleted).
   * In pages of rows joined into one blob by SQLite, each row as `seq length
   * line`: one value per page costs a fraction of what a value per row does,
   * and the length keeps any byte of a line. Rows are unique by client (the
   * UNIQUE constraint), so each is loaded with no comparison, in whatever
   * order a page joins them: only its last seq matters, to ask for the next.
   */
  private load(): number {
    const db = this.db
    const page = db.prepare<[number, number], [number | null, Buffer | null]>(
      `SELECT max(seq), CAST(group_concat(seq || ' ' || length(line) || ' ' || line, '') AS BLOB)
       FROM (SELECT seq, line FROM records WHERE seq > ? ORDER BY seq LIMIT ?)`
    ).raw()
    const unreadable: Array<number> = []
    for (let after = 0;;) {
      const [last, rows] = page.get(after, 10_000) ?? [null, null]
      if (last === null || rows === null) break
      for (let at = 0; at < rows.length;) {
        const seqEnd = rows.indexOf(0x20, at)
        let length = 0
        let from = seqEnd + 1
        for (; rows[from] !== 0x20; from++) length = 10 * length + (rows[from] ?? 0x30) - 0x30
        from++
        if (!this.latest.load(rows, from, from + length)) {
          // A row refused for want of memory is no bad row: the open fails (the
          // caller's DurableStoreError keeps why) rather than delete it.
          const refused = this.latest.lines.lastGrowthFailure
          if (refused !== undefined) throw refused
          unreadable.push(Number(rows.toString("latin1", at, seqEnd)))
        }
        at = from + length
      }
      after = last
    }
    // No AT line can be served or flooded: keeping such a row would only make every start skip it again.
    const deleteRow = db.prepare<[number]>("DELETE FROM records WHERE seq = ?")
    db.transaction(() => unreadable.forEach((seq) => deleteRow.run(seq)))()
    return unreadable.length
  }

  /** When the next batch may go (`performance.now()`), with `sync: "batch"`: see `unsafeSend`. */
  private nextSendAt = 0

  /**
   * Keeps `record` in memory if it wins, to be sent to the writer with the
   * next batch; answers as `LatestRecords.offer` does (an id if it won).
   */
  unsafeOffer(record: LocationRecord.LocationRecord, atLine?: string): number {
    const id = this.latest.offer(record, atLine)
    if (id < 0) return id
    this.pending.add(id)
    if (this.options.sync === "always" && this.immediate === undefined && !this.closed) {
      // Group commit: every record won in this turn of the event loop goes in one batch.
      this.immediate = setImmediate(this.sendSoon)
    }
    return id
  }

  /** This server's checkpoint of `peer`'s store, as last noted. */
  checkpointOf(peer: string): Checkpoint | undefined {
    return this.checkpoints.get(peer)
  }

  /**
   * Notes `peer`'s MARK: kept with the next batch, in the transaction of the
   * records offered before it or a later one, so a checkpoint on disk never
   * claims a record that is not.
   */
  unsafeNoteCheckpoint(peer: string, checkpoint: Checkpoint | undefined): void {
    if (checkpoint === undefined) this.checkpoints.delete(peer)
    else this.checkpoints.set(peer, checkpoint)
    this.pendingCheckpoints.set(peer, checkpoint ?? null)
    if (this.options.sync === "always" && this.immediate === undefined && !this.closed) this.immediate = setImmediate(this.sendSoon)
  }

  private readonly sendSoon = () => {
    this.immediate = undefined
    this.unsafeSend()
  }

  /**
   * Hands the records that won since the last batch to the writer, as one
   * buffer of their AT lines, and goes on: who waits for them is called back
   * when the writer answers. One batch at a time: while one is in flight,
   * the records that win meanwhile wait in `pending`, where a client that
   * reports again takes its place once. With `sync: "batch"`, a batch also
   * waits until the writer has rested `restFactor` times as long as the last
   * commit took (at most `maxRestMs`), so that the writer's SQLite work
   * stays a bounded share of a core under load (the interval widens, and
   * more reports fold into one row, as the load grows). `force` (a blocking
   * commit, close) sends at once.
   */
  unsafeSend(force = false): void {
    if (this.closed || (this.pending.size === 0 && this.pendingCheckpoints.size === 0)) return
    if (!force && (this.inFlight.length > 0 || (this.options.sync === "batch" && performance.now() < this.nextSendAt))) return
    const lines = this.latest.lines
    let bytes = 0
    for (const id of this.pending) bytes += 4 + lines.lineLength(id)
    const batch = Buffer.allocUnsafeSlow(bytes)
    let at = 0
    for (const id of this.pending) {
      at = batch.writeUInt32LE(lines.lineLength(id), at)
      at = lines.copyLine(id, batch, at)
    }
    const firstSeq = this.sentSeq + 1
    this.sentSeq += this.pending.size
    this.pending.clear()
    const checkpoints = [...this.pendingCheckpoints]
    this.pendingCheckpoints.clear()
    this.writer.worker.postMessage(
      { type: "batch", store: this.storeId, firstSeq, lastSeq: this.sentSeq, lines: batch, checkpoints },
      [batch.buffer]
    )
    if (this.writer.inFlight++ === 0) this.writer.worker.ref()
    this.inFlight.push({ seq: this.sentSeq, waiters: this.waitingForPending })
    this.waitingForPending = noWaiters()
  }

  private onAnswer(answer: CommitWorkerAnswer): void {
    if (answer.type === "committed") {
      if (answer.seq >= this.failedSeq) this.failedSeq = 0
      this.nextSendAt = performance.now() + Math.min(maxRestMs, restFactor * answer.ms)
      this.options.onCommitted?.(answer.ms)
      this.settle(answer.seq, undefined)
      // With sync "always", who waits for the records pending now waits for this.
      if (this.options.sync === "always") this.unsafeSend()
    } else if (answer.type === "failed") {
      this.failureCount++
      this.lastFailure = answer.message
      this.failedSeq = Math.max(this.failedSeq, answer.seq)
      this.settle(answer.seq, new CommitFailedError(answer.message))
      if (this.options.sync === "always") this.unsafeSend()
    }
  }

  /** Calls back who waited for the batches up to `seq`: committed, or failed with `error`. */
  private settle(seq: number, error: Error | undefined): void {
    while (this.inFlight.length > 0 && (this.inFlight[0]?.seq ?? Infinity) <= seq) {
      const batch = this.inFlight.shift()
      if (--this.writer.inFlight === 0) this.writer.worker.unref()
      if (batch !== undefined) callBack(batch.waiters, error)
    }
  }

  /** Records that won and are not committed yet (pending, or sent and not answered). */
  pendingCount(): number {
    return this.pending.size + this.sentSeq - this.lastSeq()
  }

  /** The seq of the last record committed. */
  lastSeq(): number {
    return this.sharedSeq[0] ?? 0
  }

  /** Commit failures since the last call (for the owner to log), with the last one's message. */
  takeFailures(): { readonly count: number; readonly message: string } | undefined {
    if (this.failureCount === 0) return undefined
    const failures = { count: this.failureCount, message: this.lastFailure }
    this.failureCount = 0
    return failures
  }

  /**
   * Sends what is pending and blocks this thread until the writer has
   * committed everything sent, then calls back whoever waited. Throws a
   * `CommitFailedError` if the commit failed (the writer keeps its records
   * and tries again) or the writer did not answer in time.
   */
  unsafeCommit(): void {
    this.unsafeSend(true)
    const target = this.sentSeq
    if (this.lastSeq() < target) this.waitForAnswer(target, "commit")
    this.settle(this.lastSeq(), undefined)
  }

  /** Blocks until the writer has committed up to `seq` (or, for 0, answered once); throws if it failed meanwhile. */
  private waitForAnswer(seq: number, what: string): void {
    const failures = Atomics.load(this.sharedInts, SHARED_FAILURES)
    const deadline = performance.now() + syncWaitMs
    for (;;) {
      const answers = Atomics.load(this.sharedInts, SHARED_ANSWERS)
      if (Atomics.load(this.sharedInts, SHARED_FAILURES) !== failures) {
        const length = Atomics.load(this.sharedInts, SHARED_MESSAGE_BYTE_OFFSET / 4)
        const message = Buffer.from(this.sharedMessage.subarray(0, length)).toString("utf8")
        this.failedSeq = Math.max(this.failedSeq, this.sentSeq)
        throw new CommitFailedError(`${what} failed: ${message}`)
      }
      if (seq === 0 ? answers > 0 : this.lastSeq() >= seq) return
      const left = deadline - performance.now()
      if (left <= 0) throw new CommitFailedError(`${what}: the writer thread did not answer within ${syncWaitMs} ms`)
      Atomics.wait(this.sharedInts, SHARED_ANSWERS, answers, left)
    }
  }

  /**
   * Calls `committed` once every record that won so far is committed: at
   * once if none is waiting. If the commit of one of them fails, calls
   * `failed` instead (or, without it, `committed`): a commit that keeps
   * failing never keeps anyone waiting longer than one attempt.
   */
  unsafeOnCommitted(committed: () => void, failed?: (error: Error) => void): void {
    let waiters: Waiters | undefined
    if (this.pending.size > 0) waiters = this.waitingForPending
    else waiters = this.inFlight.at(-1)?.waiters
    if (waiters !== undefined) {
      waiters.committed.push(committed)
      waiters.failed.push(failed)
    } else if (this.failedSeq > 0) {
      // Nothing in flight, but records whose commit failed wait for the writer's next try.
      callBack({ committed: [committed], failed: [failed] }, new CommitFailedError(this.lastFailure))
    } else {
      committed()
    }
  }

  /**
   * The committed records after `seq`, in seq order, at most `limit`. A read
   * of the database (WAL: it never waits for the writer); what is pending is
   * not in it, see `unsafeOnCommitted`.
   */
  unsafeRecordsAfter(seq: number, limit: number): Array<SequencedRecord> {
    const found: Array<SequencedRecord> = []
    for (const row of this.selectAfter.all(seq, limit)) {
      const record = recordOfLine(row.line.toString("latin1"))
      if (record !== undefined) found.push({ seq: row.seq, record })
    }
    return found
  }

  /**
   * Forgets, in memory and on disk, every record whose client time is older
   * than `retainDays` before `nowMs`; answers how many. Commits what is
   * pending first, so memory and disk hold the same records, and the writer
   * has nothing to write while this thread deletes.
   */
  unsafeExpire(nowMs: number): number {
    const retainDays = this.options.retainDays
    if (retainDays === undefined) return 0
    this.unsafeCommit()
    const cutoff = retentionCutoff(nowMs, retainDays)
    const clients = this.selectExpired.all(cutoff)
    if (clients.length === 0) return 0
    this.deleteExpired.run(cutoff)
    for (const client of clients) this.latest.remove(client)
    return clients.length
  }

  /** Commits what is pending and closes the database. Throws what the commit throws, having closed it all the same. */
  unsafeClose(): void {
    if (this.closed) return
    if (this.immediate !== undefined) clearImmediate(this.immediate)
    this.immediate = undefined
    try {
      this.unsafeCommit()
    } finally {
      this.closed = true
      this.writer.worker.postMessage({ type: "close", store: this.storeId })
      try {
        const deadline = performance.now() + syncWaitMs
        while (Atomics.load(this.sharedInts, SHARED_CLOSED) === 0 && performance.now() < deadline) {
          Atomics.wait(this.sharedInts, SHARED_ANSWERS, Atomics.load(this.sharedInts, SHARED_ANSWERS), 100)
        }
      } finally {
        this.forget()
        this.db.close()
      }
    }
  }

  /** No more answers for this store: who still waits is called back as failed. */
  private forget(): void {
    this.writer.stores.delete(this.storeId)
    this.settle(Number.MAX_SAFE_INTEGER, new CommitFailedError("the store was closed before its records were committed"))
  }

  /**
   * Drops this handle as a crash would: nothing pending is sent, the writer
   * writes nothing more for it, and the connections are left open (so SQLite
   * does not checkpoint as a clean close does) until the process ends or the
   * caller closes `db`.
   */
  unsafeDrop(): void {
    this.closed = true
    if (this.immediate !== undefined) clearImmediate(this.immediate)
    this.writer.worker.postMessage({ type: "drop", store: this.storeId })
    this.forget()
  }
}

/** Calls back every waiter: as committed, or with `error` (as committed if it gave no failure callback). */
const callBack = (waiters: Waiters, error: Error | undefined): void => {
  for (let i = 0; i < waiters.committed.length; i++) {
    const failed = waiters.failed[i]
    if (error !== undefined && failed !== undefined) failed(error)
    else waiters.committed[i]?.()
  }
}
