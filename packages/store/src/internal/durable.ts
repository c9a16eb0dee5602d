/**
 * The durable store's machinery, synchronous and Effect-free: the records in
 * memory (`LatestRecords`, where every read is answered) and, behind them, a
 * SQLite database that the records which won since the last commit are
 * written to in one transaction per commit.
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
import type { LocationRecord } from "@herd/protocol"
import { parseLine } from "@herd/protocol"
import Database from "better-sqlite3"
import { randomUUID } from "node:crypto"
import { mkdirSync } from "node:fs"
import { dirname } from "node:path"
import { LatestRecords, LOST } from "./LatestRecords.ts"

export interface OpenOptions {
  readonly path: string
  /** `"always"` fsyncs every commit (`synchronous = FULL`) and commits once the current turn of the event loop is done. */
  readonly sync: "batch" | "always"
  readonly retainDays: number | undefined
}

export interface SequencedRecord {
  readonly seq: number
  readonly record: LocationRecord
}

/** The record an AT line stands for; none for a line that is not one. */
const recordOfLine = (line: string): LocationRecord | undefined => {
  const command = parseLine(line)
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
`

export class DurableDatabase {
  readonly latest = new LatestRecords()
  readonly epoch: string
  /** Rows the database held when opened that are no AT line, left out of memory (and deleted). */
  readonly unreadable: number
  /** Ids of the records that won since the last commit, in the order they first won. */
  private readonly pending = new Set<number>()
  private waiters: Array<() => void> = []
  private committedSeq: number
  private immediate: ReturnType<typeof setImmediate> | undefined = undefined
  private closed = false
  private readonly writePending: () => number
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
    db.pragma(`synchronous = ${options.sync === "always" ? "FULL" : "NORMAL"}`)
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
    this.committedSeq = Number(readMeta.get("last_seq"))

    const replace = db.prepare<[number, string, Buffer, number]>(
      "INSERT OR REPLACE INTO records (seq, client, line, time_s) VALUES (?, ?, ?, ?)"
    )
    const setLastSeq = db.prepare<[number]>("UPDATE meta SET value = ? WHERE key = 'last_seq'")
    const lines = this.latest.lines
    this.writePending = db.transaction(() => {
      let seq = this.committedSeq
      for (const id of this.pending) {
        seq++
        replace.run(seq, lines.client(id), lines.lineBytes(id), wholeSecondsOf(lines.time(id)))
      }
      setLastSeq.run(seq)
      return seq
    })
    this.selectAfter = db.prepare<[number, number], { seq: number; line: Buffer }>(
      "SELECT seq, line FROM records WHERE seq > ? ORDER BY seq LIMIT ?"
    )
    this.selectExpired = db.prepare<[number], string>("SELECT client FROM records WHERE time_s < ?").pluck()
    this.deleteExpired = db.prepare<[number]>("DELETE FROM records WHERE time_s < ?")

    if (options.retainDays !== undefined) this.deleteExpired.run(retentionCutoff(nowMs, options.retainDays))
    // In pages of rows joined into one blob by SQLite, each row as `seq length line`: one
    // value per page costs a fraction of what a value per row does, and the length keeps any byte of a line.
    // Rows are unique by client (the UNIQUE constraint), so each is loaded with no comparison, in
    // whatever order a page joins them: only its last seq matters, to ask for the next one.
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
        for (; rows[from] !== 0x20; from++) length = 10 * length + rows[from]! - 0x30
        from++
        if (!this.latest.load(rows, from, from + length)) unreadable.push(Number(rows.toString("latin1", at, seqEnd)))
        at = from + length
      }
      after = last
    }
    // No AT line can be served or flooded: keeping such a row would only make every start skip it again.
    const deleteRow = db.prepare<[number]>("DELETE FROM records WHERE seq = ?")
    db.transaction(() => unreadable.forEach((seq) => deleteRow.run(seq)))()
    this.unreadable = unreadable.length
  }

  /** Keeps `record` in memory if it wins, to be committed with the next commit; answers whether it won. */
  offer(record: LocationRecord): boolean {
    const id = this.latest.offer(record)
    if (id === LOST) return false
    this.pending.add(id)
    if (this.options.sync === "always" && this.immediate === undefined) {
      // Group commit: every record won in this turn of the event loop goes in one transaction.
      this.immediate = setImmediate(this.commitSoon)
    }
    return true
  }

  private readonly commitSoon = () => {
    this.immediate = undefined
    try {
      this.unsafeCommit()
    } catch {
      // The records stay pending: the periodic commit tries again and reports the failure.
    }
  }

  /** Records that won and are not committed yet. */
  pendingCount(): number {
    return this.pending.size
  }

  lastSeq(): number {
    return this.committedSeq
  }

  /**
   * Writes the records that won since the last commit in one transaction,
   * then calls back whoever waited for them. Throws what SQLite throws, and
   * then keeps the records pending and the waiters waiting.
   */
  unsafeCommit(): void {
    if (this.pending.size > 0) {
      this.committedSeq = this.writePending()
      this.pending.clear()
    }
    if (this.waiters.length > 0) {
      const waiters = this.waiters
      this.waiters = []
      for (const waiter of waiters) waiter()
    }
  }

  /** Calls `callback` once every record that won so far is committed: at once if none is pending. */
  unsafeOnCommitted(callback: () => void): void {
    if (this.pending.size === 0) callback()
    else this.waiters.push(callback)
  }

  /** The records accepted after `seq` (committing any pending first), in seq order, at most `limit`. */
  unsafeRecordsAfter(seq: number, limit: number): Array<SequencedRecord> {
    this.unsafeCommit()
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
   * pending first, so memory and disk hold the same records.
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
    this.closed = true
    if (this.immediate !== undefined) clearImmediate(this.immediate)
    this.immediate = undefined
    try {
      this.unsafeCommit()
    } finally {
      this.db.close()
    }
  }
}
