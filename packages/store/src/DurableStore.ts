/**
 * A `LocationStore` that outlives its process, on SQLite (`better-sqlite3`).
 *
 * Reads and offers are answered from memory, as by the memory store; every
 * record that wins is also remembered as pending (the newest per client) and
 * written with the others in one transaction per commit, every
 * `commitIntervalMs` (`sync: "batch"`), or once the current turn of the event
 * loop is done and fsynced (`sync: "always"`: group commit). So an offer never
 * waits on disk; who must know a record is on disk waits on `whenCommitted`.
 *
 * On open the database is recovered by SQLite itself (WAL), whatever moment a
 * `kill -9` left it in, and every row is loaded into memory before the layer
 * is ready. Each stored record carries a local sequence number, for catch-up:
 * `recordsAfter(seq)`.
 */
import type { LocationRecord } from "@herd/protocol"
import { Clock, Context, Data, Duration, Effect, Layer } from "effect"
import type { Scope } from "effect"
import { DurableDatabase } from "./internal/durable.ts"
import type { Checkpoint, SequencedRecord } from "./internal/durable.ts"
import { offerResultOf } from "./internal/offer.ts"
import { LocationStore } from "./LocationStore.ts"

export type { Checkpoint, SequencedRecord } from "./internal/durable.ts"

export class DurableStoreError extends Data.TaggedError("DurableStoreError")<{
  readonly reason: "Open" | "Commit" | "Read" | "Expire"
  readonly path: string
  readonly cause: unknown
}> {
  override get message(): string {
    const why = this.cause instanceof Error ? this.cause.message : String(this.cause)
    return `durable store ${this.path}: ${this.reason.toLowerCase()} failed: ${why}`
  }
}

export interface DurableOptions {
  /** The database file; its folder is made if missing. SQLite keeps `-wal` and `-shm` files beside it. */
  readonly path: string
  /**
   * `"batch"` (default): a crash (even `kill -9`) loses at most the records of
   * the last `commitIntervalMs`; a power cut may lose the last commits too.
   * `"always"`: every commit is fsynced, and one is made as soon as the
   * current turn of the event loop is done: wait on `whenCommitted` to answer
   * only once a record is on disk.
   */
  readonly sync?: "batch" | "always"
  /** How often pending records are committed (default 5 ms). */
  readonly commitIntervalMs?: number
  /** Forget every record whose client time is older than this many days (default: keep forever). */
  readonly retainDays?: number
  /** How often retention runs while open (default a minute); it also runs on open. */
  readonly retentionIntervalMs?: number
  /** Told how long each commit took, in ms (a server's metrics). */
  readonly onCommitted?: (ms: number) => void
}

/** What the durable store offers beyond `LocationStore`. */
export interface DurableStoreService {
  readonly path: string
  /** A random id made with the database: seq numbers compare only within one epoch. */
  readonly epoch: string
  /** The seq of the last record committed (0 for none). */
  readonly lastSeq: () => number
  /** Records that won and wait for the next commit. */
  readonly pendingCount: () => number
  /**
   * The committed records after `seq`, in seq order, at most `limit`
   * (default all): after `committedNow`, every record accepted before it.
   * A read that never waits for the writer thread.
   */
  readonly recordsAfter: (seq: number, limit?: number) => Effect.Effect<ReadonlyArray<SequencedRecord>, DurableStoreError>
  /**
   * Sends what is pending to the writer now (without the rest it takes
   * between batches under load) and completes once every record offered so
   * far is committed; fails if that commit failed. It waits without
   * blocking the thread: a neighbour's catch-up begins with it, and the
   * server's clients go on meanwhile.
   */
  readonly committedNow: Effect.Effect<void, DurableStoreError>
  /**
   * `committedNow` for a callback: sends what is pending to the writer at
   * once; `unsafeOnCommitted` called next waits for that commit alone.
   */
  readonly unsafeCommitSoon: () => void
  /**
   * Completes once every record offered so far is committed (fsynced with
   * `sync: "always"`), or once the commit of one of them failed (the failure
   * is logged and the writer tries again): it never waits longer than one
   * attempt.
   */
  readonly whenCommitted: Effect.Effect<void>
  /**
   * `whenCommitted` for a hot path that makes no Effect per line: calls
   * `callback` once every record offered so far is committed, and at once
   * (before returning) if none is pending. If the commit of one of them
   * fails, calls `onFailed` instead (or, when none is given, `callback`):
   * a commit that keeps failing never keeps a caller waiting for more than
   * one attempt, and the failure is logged by the store.
   */
  readonly unsafeOnCommitted: (callback: () => void, onFailed?: (error: Error) => void) => void
  /** Commits what is pending now. */
  readonly commit: Effect.Effect<void, DurableStoreError>
  /** Runs retention now (the clock's time); answers how many records it forgot. */
  readonly expire: Effect.Effect<number, DurableStoreError>
  /** This server's checkpoint of a neighbour's store (the extended handshake's `SINCE`), as last noted. */
  readonly checkpointOf: (peer: string) => Checkpoint | undefined
  /**
   * Notes a neighbour's `MARK` (undefined: forgets its checkpoint). It is
   * kept with the next commit, in the transaction of the records offered
   * before it or a later one: a checkpoint on disk never claims a record
   * that is not.
   */
  readonly unsafeNoteCheckpoint: (peer: string, checkpoint: Checkpoint | undefined) => void
}

export class DurableStore extends Context.Tag("@herd/store/DurableStore")<DurableStore, DurableStoreService>() {}

/**
 * The durable store without its schedules: no commit or retention happens
 * but the ones asked for (`commit`, `whenCommitted` with `sync: "always"`,
 * `expire`) and the one on close. For tests, and for owners that drive
 * commits themselves.
 */
export const makeUnscheduled = (
  options: DurableOptions
): Effect.Effect<LocationStore["Type"] & DurableStoreService, DurableStoreError, Scope.Scope> =>
  Effect.map(openDurable(options), ({ store }) => store)

const openDurable = (
  options: DurableOptions
): Effect.Effect<{ readonly database: DurableDatabase; readonly store: LocationStore["Type"] & DurableStoreService }, DurableStoreError, Scope.Scope> =>
  Effect.gen(function*() {
    const openedAt = yield* Clock.currentTimeMillis
    const database = yield* Effect.acquireRelease(
      Effect.try({
        try: () =>
          DurableDatabase.open({
            path: options.path,
            sync: options.sync ?? "batch",
            retainDays: options.retainDays,
            onCommitted: options.onCommitted
          }, openedAt),
        catch: (cause) => new DurableStoreError({ reason: "Open", path: options.path, cause })
      }),
      (database) =>
        Effect.try({
          try: () => database.unsafeClose(),
          catch: (cause) => new DurableStoreError({ reason: "Commit", path: options.path, cause })
        }).pipe(Effect.catchAll(Effect.logError))
    )
    if (database.unreadable > 0) {
      yield* Effect.logWarning(`durable store ${options.path}: ${database.unreadable} rows were no AT line and were deleted`)
    }
    return { database, store: serviceOf(database, options.path) }
  })

const serviceOf = (database: DurableDatabase, path: string): LocationStore["Type"] & DurableStoreService => {
  const commit = Effect.try({
    try: () => database.unsafeCommit(),
    catch: (cause) => new DurableStoreError({ reason: "Commit", path, cause })
  })
  return {
    get: (client) => database.latest.get(client),
    unsafeOffer: (record: LocationRecord.LocationRecord, atLine?: string) =>
      offerResultOf(database.unsafeOffer(record, atLine), record, database.latest.lines.lastGrowthFailure),
    snapshot: () => database.latest.snapshot(),
    size: () => database.latest.size(),
    digest: () => database.latest.digest(),
    path,
    epoch: database.epoch,
    lastSeq: () => database.lastSeq(),
    pendingCount: () => database.pendingCount(),
    recordsAfter: (seq, limit = Number.MAX_SAFE_INTEGER) =>
      Effect.try({
        try: () => database.unsafeRecordsAfter(seq, limit),
        catch: (cause) => new DurableStoreError({ reason: "Read", path, cause })
      }),
    unsafeCommitSoon: () => database.unsafeSend(true),
    committedNow: Effect.async<void, DurableStoreError>((resume) => {
      database.unsafeSend(true)
      database.unsafeOnCommitted(
        () => resume(Effect.void),
        (cause) => resume(Effect.fail(new DurableStoreError({ reason: "Commit", path, cause })))
      )
    }),
    whenCommitted: Effect.async<void>((resume) => database.unsafeOnCommitted(() => resume(Effect.void))),
    unsafeOnCommitted: (callback, onFailed) => database.unsafeOnCommitted(callback, onFailed),
    commit,
    checkpointOf: (peer) => database.checkpointOf(peer),
    unsafeNoteCheckpoint: (peer, checkpoint) => database.unsafeNoteCheckpoint(peer, checkpoint),
    expire: Effect.flatMap(Clock.currentTimeMillis, (now) =>
      Effect.try({
        try: () => database.unsafeExpire(now),
        catch: (cause) => new DurableStoreError({ reason: "Expire", path, cause })
      }))
  }
}

/**
 * The durable store, loaded, with its commits every `commitIntervalMs` and
 * its retention every `retentionIntervalMs` as fibers of the scope; closing
 * the scope commits what is pending and closes the database.
 */
export const make = (
  options: DurableOptions
): Effect.Effect<LocationStore["Type"] & DurableStoreService, DurableStoreError, Scope.Scope> =>
  Effect.gen(function*() {
    const { database, store } = yield* openDurable(options)
    // Every interval, what won since the last one goes to the writer thread,
    // and the commits that failed since are logged (the writer keeps their
    // records and tries again), at most once a second.
    let reportedAt = Number.NEGATIVE_INFINITY
    yield* Effect.gen(function*() {
      database.unsafeSend()
      const now = yield* Clock.currentTimeMillis
      if (now - reportedAt < 1000) return
      const failures = database.takeFailures()
      if (failures === undefined) return
      reportedAt = now
      yield* Effect.logError(
        new DurableStoreError({ reason: "Commit", path: options.path, cause: new Error(`${failures.count} commits failed, the last: ${failures.message}`) })
      )
    }).pipe(
      Effect.delay(Duration.millis(options.commitIntervalMs ?? 5)),
      Effect.forever,
      Effect.forkScoped
    )
    if (options.retainDays !== undefined) {
      yield* store.expire.pipe(
        Effect.catchAll(Effect.logError),
        Effect.delay(Duration.millis(options.retentionIntervalMs ?? 60_000)),
        Effect.forever,
        Effect.forkScoped
      )
    }
    return store
  })

/** `LocationStore` and `DurableStore` (the same store) on the SQLite file `options.path`. */
export const layer = (options: DurableOptions): Layer.Layer<LocationStore | DurableStore, DurableStoreError> =>
  Layer.scopedContext(
    Effect.map(make(options), (store) =>
      Context.make(LocationStore, store).pipe(Context.add(DurableStore, store)))
  )
