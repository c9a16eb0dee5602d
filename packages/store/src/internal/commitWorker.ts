/**
 * The durable stores' writer: a worker thread, one per process, that owns
 * each store's write connection, so that the main thread does no SQLite
 * work per record (and a process of several servers starts one thread).
 *
 * It is kept as JavaScript source text and started with `eval: true` rather
 * than as a file of its own: the same text then runs from `src` under tsx or
 * vitest, from `dist`, and from the CLI's bundle, which cannot carry a second
 * entry point. It loads better-sqlite3 from the path the main thread resolved.
 *
 * Messages, in order, each naming its `store` (an id the opening thread chose):
 * - `{ type: "open", path, sync, shared, retryMs }`: opens the store's connection;
 * - `{ type: "batch", firstSeq, lastSeq, lines, checkpoints }`: `lines` is one buffer of
 *   records, each a 32-bit little-endian length and an AT line's bytes; the
 *   records take the seqs `firstSeq` to `lastSeq` in order. `checkpoints`
 *   are `[peer, { epoch, seq } | null]` pairs to keep (or forget) in the same
 *   transaction. Batches that are queued together are written in one transaction.
 * - `{ type: "close" }`: writes what it holds, closes the connection, answers;
 * - `{ type: "drop" }`: forgets what it holds, as a crash would (for tests).
 *
 * Answers go two ways at once, each store's: into its shared memory (for a main thread that
 * blocks with `Atomics.wait` until its records are written) and as messages
 * (`{ store, answer }`, for one that goes on and is called back):
 * - `{ type: "committed", seq, ms }` once everything up to `seq` is committed
 *   (and fsynced, with `synchronous = FULL`), in `ms`;
 * - `{ type: "failed", seq, message }` when a transaction threw: nothing of
 *   it is committed, its records are kept and written again, in order, with
 *   the next transaction (or after `retryMs` if none comes);
 * - `{ type: "ready" }` once, first: the database is open (or it failed to
 *   open, and the failure is in the shared memory);
 * - `{ type: "closed" }`.
 */

/** Int32 slots of the shared memory. */
export const SHARED_ANSWERS = 0
export const SHARED_FAILURES = 1
export const SHARED_CLOSED = 2
/** A Float64 slot (byte offset 16): the last seq committed. */
export const SHARED_SEQ_BYTE_OFFSET = 16
/** The last failure's message, UTF-8, from this byte offset on. */
export const SHARED_MESSAGE_BYTE_OFFSET = 24
export const SHARED_MESSAGE_BYTES = 1000
export const SHARED_BYTES = SHARED_MESSAGE_BYTE_OFFSET + 4 + SHARED_MESSAGE_BYTES

export interface CommitWorkerData {
  readonly sqlitePath: string
}

/** What `{ type: "open" }` carries besides the store's id. */
export interface OpenStore {
  readonly path: string
  readonly sync: "batch" | "always"
  readonly shared: SharedArrayBuffer
  readonly retryMs: number
}

export type CommitWorkerAnswer =
  | { readonly type: "ready" }
  | { readonly type: "committed"; readonly seq: number; readonly ms: number }
  | { readonly type: "failed"; readonly seq: number; readonly message: string }
  | { readonly type: "closed" }

export const commitWorkerSource = String.raw`
"use strict"
const { parentPort, workerData } = require("node:worker_threads")
const Database = require(workerData.sqlitePath)

// Whole seconds of a client time, as retention compares them (see wholeSecondsOf in durable.ts).
const wholeSecondsOf = (time) => {
  const dot = time.indexOf(".")
  const integer = dot === -1 ? time : time.slice(0, dot)
  let start = 0
  while (start < integer.length - 1 && integer.charCodeAt(start) === 48) start++
  if (integer.length - start > 15) return Number.MAX_SAFE_INTEGER
  const seconds = Number(integer.slice(start))
  return Number.isInteger(seconds) && integer.length > 0 ? seconds : Number.MAX_SAFE_INTEGER
}

/** One store's connection and what waits to be written to it. */
class Store {
  constructor(id, { path, sync, shared, retryMs }) {
    this.id = id
    this.retryMs = retryMs
    this.ints = new Int32Array(shared)
    this.seqs = new Float64Array(shared, ${SHARED_SEQ_BYTE_OFFSET}, 1)
    this.messageBytes = new Uint8Array(shared, ${SHARED_MESSAGE_BYTE_OFFSET + 4}, ${SHARED_MESSAGE_BYTES})
    this.queued = []
    this.scheduled = false
    this.retry = undefined
    this.closing = false
    this.db = undefined
    try {
      const db = new Database(path)
      this.db = db
      db.pragma("journal_mode = WAL")
      db.pragma("synchronous = " + (sync === "always" ? "FULL" : "NORMAL"))
      db.pragma("busy_timeout = 5000")
      const replace = db.prepare("INSERT OR REPLACE INTO records (seq, client, line, time_s) VALUES (?, ?, ?, ?)")
      const setLastSeq = db.prepare("UPDATE meta SET value = ? WHERE key = 'last_seq'")
      const setCheckpoint = db.prepare("INSERT OR REPLACE INTO checkpoints (peer, epoch, seq) VALUES (?, ?, ?)")
      const forgetCheckpoint = db.prepare("DELETE FROM checkpoints WHERE peer = ?")
      this.writeBatches = db.transaction((batches) => {
        let last = 0
        for (const batch of batches) {
          const lines = Buffer.from(batch.lines.buffer, batch.lines.byteOffset, batch.lines.byteLength)
          let seq = batch.firstSeq
          for (let at = 0; at < lines.length; seq++) {
            const length = lines.readUInt32LE(at)
            const from = at + 4
            const to = from + length
            // AT origin skew client location time: the client is the fourth field, the time the sixth.
            const c = lines.indexOf(32, lines.indexOf(32, lines.indexOf(32, from) + 1) + 1) + 1
            const l = lines.indexOf(32, c)
            const t = lines.indexOf(32, l + 1) + 1
            replace.run(seq, lines.toString("latin1", c, l), lines.subarray(from, to), wholeSecondsOf(lines.toString("latin1", t, to)))
            at = to
          }
          last = batch.lastSeq
          // A neighbour's checkpoint goes with the records that came before it: in the same commit or a later one.
          for (const [peer, checkpoint] of batch.checkpoints ?? []) {
            if (checkpoint === null) forgetCheckpoint.run(peer)
            else setCheckpoint.run(peer, checkpoint.epoch, checkpoint.seq)
          }
        }
        setLastSeq.run(last)
      })
    } catch (error) {
      this.fail(error)
    }
    // Ready (or failed to open): the opening thread waits for this first answer.
    this.answer({ type: "ready" })
  }

  fail(error) {
    const message = String((error && error.message) || error)
    const written = Buffer.from(message, "utf8").subarray(0, ${SHARED_MESSAGE_BYTES})
    this.messageBytes.set(written)
    this.ints[${SHARED_MESSAGE_BYTE_OFFSET / 4}] = written.length
    Atomics.add(this.ints, ${SHARED_FAILURES}, 1)
    return message
  }

  answer(message) {
    Atomics.add(this.ints, ${SHARED_ANSWERS}, 1)
    Atomics.notify(this.ints, ${SHARED_ANSWERS})
    parentPort.postMessage({ store: this.id, answer: message })
  }

  enqueue(batch) {
    this.queued.push(batch)
    // Batches that arrived together go in one transaction: group commit.
    if (!this.scheduled) {
      this.scheduled = true
      setImmediate(() => this.writeQueued())
    }
  }

  writeQueued() {
    this.scheduled = false
    if (this.retry !== undefined) clearTimeout(this.retry)
    this.retry = undefined
    if (this.queued.length === 0) return
    const batches = this.queued
    const seq = batches[batches.length - 1].lastSeq
    const started = performance.now()
    try {
      if (this.db === undefined || this.writeBatches === undefined) throw new Error("the database did not open")
      this.writeBatches(batches)
    } catch (error) {
      this.answer({ type: "failed", seq, message: this.fail(error) })
      // Its records stay queued, written again first with the next batch, or after a while.
      if (!this.closing) this.retry = setTimeout(() => this.writeQueued(), this.retryMs)
      return
    }
    this.queued = []
    this.seqs[0] = seq
    this.answer({ type: "committed", seq, ms: performance.now() - started })
  }

  close() {
    this.closing = true
    this.writeQueued()
    if (this.retry !== undefined) clearTimeout(this.retry)
    try {
      if (this.db !== undefined) this.db.close()
    } catch (error) {
      this.fail(error)
    }
    Atomics.store(this.ints, ${SHARED_CLOSED}, 1)
    this.answer({ type: "closed" })
  }

  /** As a crash would: nothing more is written; the connection is left to the process's end. */
  drop() {
    this.closing = true
    this.queued = []
    if (this.retry !== undefined) clearTimeout(this.retry)
  }
}

const stores = new Map()
parentPort.on("message", (message) => {
  if (message.type === "open") {
    stores.set(message.store, new Store(message.store, message))
    return
  }
  const store = stores.get(message.store)
  if (store === undefined) return
  if (message.type === "batch") store.enqueue(message)
  else if (message.type === "close") {
    store.close()
    stores.delete(message.store)
  } else if (message.type === "drop") {
    store.drop()
    stores.delete(message.store)
  }
})
`
