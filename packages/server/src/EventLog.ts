/**
 * The event log of PROTOCOL.md section 9: one JSON object per line in
 * `<logDir>/<server>.log`, for every line in and out, every connection and
 * peer link change, Places outcomes and protocol violations.
 *
 * A server logs two entries per request, so the cost is kept low: entries are
 * written as JSON straight into a growing byte buffer (no object per entry,
 * no string per line of plain ASCII), and a background fiber appends the
 * buffer to the file every 50 ms; the layer's finalizer writes whatever is
 * left, so closing the scope loses nothing.
 *
 * Nothing is lost silently and memory stays bounded: while the buffer is full
 * and the file is healthy, `hasRoom` tells connections to stop reading; while
 * the file cannot be written, the unwritten entries are kept up to the bound
 * and retried, entries past it are dropped whole and counted, and a `log-gap`
 * entry marks where they were once writing works again.
 */
import { FileSystem, Path } from "@effect/platform"
import type { PlatformError } from "@effect/platform/Error"
import { Clock, Context, Effect, Either, Exit, FiberSet, Layer, Option, Schedule, Scope } from "effect"
import { EntryWriter } from "./internal/EntryWriter.ts"

/** Fields of an entry besides its time, server and event name. */
export interface EventFields {
  readonly conn?: number
  readonly remote?: string
  /** A wire line; bytes that are not UTF-8 are also logged in base64. */
  readonly line?: Uint8Array | string
  readonly [field: string]: unknown
}

/**
 * How much of the wire the log keeps (PROTOCOL.md section 9): every line in
 * and out; or in short (a WHATSAT answer as its AT line and the Places
 * status, a neighbour's flood lines counted, not logged); or none.
 */
export type WireLogging = "full" | "summary" | "off"

export class EventLog extends Context.Tag("@herd/server/EventLog")<
  EventLog,
  {
    /**
     * Buffers one entry; never blocks and never fails. A synchronous side
     * effect, hence `unsafe`: it runs on the hot path, with no Effect per entry.
     */
    readonly unsafeRecord: (event: string, fields?: EventFields) => void
    /**
     * The entries of connection `conn`'s wire lines, on the quick path: the
     * same entries as `unsafeRecord("in" | "out", { conn, remote, line })`.
     */
    readonly lines: (conn: number, remote: string) => LineLog
    /** What `lines` keeps of the wire. */
    readonly wire: WireLogging
    /** Writes every buffered entry now; while the file cannot be written, one more try. */
    readonly flush: Effect.Effect<void>
    /**
     * False while the log is healthy and its buffer is full: a caller that can
     * wait (a connection between lines) stops reading until `unsafeOnRoom` calls it
     * back. True while the file cannot be written, since waiting would not
     * help: entries past the bound are then dropped and counted instead.
     */
    readonly hasRoom: () => boolean
    /**
     * Calls `resume` once, when there is room again (at once if there is now).
     * A callback that throws is ignored; the others are still called.
     */
    readonly unsafeOnRoom: (resume: () => void) => void
    /** Closes the file and opens its path again, as logrotate expects on SIGHUP. */
    readonly reopen: Effect.Effect<void>
  }
>() {}

/**
 * Logs one connection's wire lines. The entry's fixed part (event, connection
 * id, remote address) is encoded once per connection, not once per line.
 */
export interface LineLog {
  /** A line received, without its LF: `bytes[start, end)`. */
  readonly received: (bytes: Uint8Array, start?: number, end?: number) => void
  /** A reply sent, without its final LF: `bytes[start, end)`. */
  readonly sent: (bytes: Uint8Array, start?: number, end?: number) => void
  /**
   * A WHATSAT answer sent, without its final LF: `bytes[start, end)` holds
   * the AT line, an LF, `body` (latin1, one char per byte) and an LF. The Places cache
   * hands the same body to many answers, so its JSON escaping is kept and
   * reused rather than done again for each.
   */
  readonly sentAnswer: (bytes: Uint8Array, start: number, end: number, body: string, status: string) => void
}

/** One JSON line for an entry (for tests and one-off use). */
export const formatEntry = (server: string, event: string, fields?: EventFields): string => {
  const writer = new EntryWriter(server, 256)
  writer.record(event, fields)
  return writer.take().toString("utf8")
}

const flushEvery = "50 millis"

/** How often the path is compared with the open file, to notice a rotation that sent no SIGHUP. */
const pathCheckEveryMs = 1000

const defaultMaxBufferBytes = 8 * 1024 * 1024
const defaultMaxFileBytes = 100 * 1024 * 1024
const defaultKeep = 5

const lineFeed = Buffer.from("\n", "latin1")

/** The most bytes of entries appended in one write. */
const pieceBytes = 256 * 1024

/** Where the piece of whole entries starting at `start` ends: at most `pieceBytes` on, or one entry if that is longer. */
const pieceEnd = (batch: Buffer, start: number): number => {
  if (batch.length - start <= pieceBytes) return batch.length
  const lastLineFeed = batch.lastIndexOf(0x0a, start + pieceBytes - 1)
  if (lastLineFeed >= start) return lastLineFeed + 1
  const next = batch.indexOf(0x0a, start + pieceBytes)
  return next === -1 ? batch.length : next + 1
}

export interface FileOptions {
  readonly dir: string
  readonly server: string
  /**
   * The bytes of entries held in memory, buffered or kept for a retry (default 8 MiB): while
   * the file is healthy, `hasRoom` turns false here; while it cannot be
   * written, newer entries are dropped and counted.
   */
  readonly maxBufferBytes?: number
  /** Reopens the file on SIGHUP, which then no longer ends the process (default true). */
  readonly reopenOnSighup?: boolean
  /** What the log keeps of the wire (default `full`). */
  readonly wire?: WireLogging
  /**
   * The size past which the file is rotated (default 100 MiB): before a
   * flush would take it past this, `<server>.log` becomes `<server>.log.1`
   * (`.1` becomes `.2`, and so on) and a new file is started.
   */
  readonly maxFileBytes?: number
  /** Rotated files kept besides the current one (default 5); the oldest goes. */
  readonly keep?: number
  /** Told the bytes of each write that landed (a server counts them for its metrics). */
  readonly onWritten?: (bytes: number) => void
}

/** The open log file, what identifies it, and what is known of its end. */
interface OpenFile {
  readonly file: FileSystem.File
  readonly scope: Scope.CloseableScope
  readonly dev: number
  readonly ino: number | undefined
  /**
   * Where the first queued batch began, when a failed write left the start
   * of it in this file and cutting that off failed too.
   */
  tornFrom: bigint | undefined
}

/**
 * Appends to `<dir>/<server>.log`, creating the directory if needed, and
 * opens the path again on SIGHUP or when the file is found deleted or moved.
 */
export const layerFile = (
  options: FileOptions
): Layer.Layer<EventLog, PlatformError, FileSystem.FileSystem | Path.Path> => Layer.scoped(EventLog, makeFile(options))

const makeFile = (options: FileOptions) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const filePath = path.join(options.dir, `${options.server}.log`)
    const maxBufferBytes = options.maxBufferBytes ?? defaultMaxBufferBytes
    const maxFileBytes = options.maxFileBytes ?? defaultMaxFileBytes
    const keep = options.keep ?? defaultKeep
    const name = `event log of ${options.server} (${filePath})`

    const open: Effect.Effect<OpenFile, PlatformError> = Effect.gen(function*() {
      yield* fs.makeDirectory(options.dir, { recursive: true })
      const scope = yield* Scope.make()
      return yield* Effect.gen(function*() {
        const file = yield* fs.open(filePath, { flag: "a" })
        const info = yield* file.stat
        const opened: OpenFile = { file, scope, dev: info.dev, ino: Option.getOrUndefined(info.ino), tornFrom: undefined }
        return opened
      }).pipe(Scope.extend(scope), Effect.onError(() => Scope.close(scope, Exit.void)))
    }).pipe(Effect.uninterruptible)

    let current = yield* open
    yield* Effect.addFinalizer(() => Scope.close(current.scope, Exit.void))
    const writer = new EntryWriter(options.server, 1024 * 1024, options.wire ?? "full")
    /** Batches taken from the writer and not yet written, oldest first: they go before anything newer. */
    const queue: Array<Buffer> = []
    let queuedBytes = 0
    /** From a failed write until one succeeds. */
    let failing = false
    let closed = false
    let waiters: Array<() => void> = []
    let lastPathCheckMs = yield* Clock.currentTimeMillis
    let automaticReopenFailed = false
    const lock = yield* Effect.makeSemaphore(1)
    const runFork = yield* FiberSet.makeRuntime<never>()

    // Waiting only helps while the file takes writes; while it does not,
    // entries past the bound are dropped instead of stalling every connection.
    const hasRoom = () => failing || closed || writer.size + queuedBytes < maxBufferBytes

    /** A caller's throwing callback must not keep the other waiters waiting. */
    const callSafely = (resume: () => void): boolean => {
      try {
        resume()
        return true
      } catch {
        return false
      }
    }

    const notifyIfRoom = Effect.suspend(() => {
      if (waiters.length === 0 || !hasRoom()) return Effect.void
      const due = waiters
      waiters = []
      let threw = 0
      for (const resume of due) if (!callSafely(resume)) threw++
      return threw === 0 ? Effect.void : Effect.logError(`${name}: ${threw} unsafeOnRoom callbacks threw`)
    })

    const swapFile = Effect.gen(function*() {
      const fresh = yield* open
      const old = current
      // The same file again (a SIGHUP with nothing rotated): what is known of its end still holds.
      if (fresh.ino !== undefined && fresh.ino === old.ino && fresh.dev === old.dev) fresh.tornFrom = old.tornFrom
      current = fresh
      yield* Scope.close(old.scope, Exit.void)
    }).pipe(Effect.uninterruptible)

    const reopen: Effect.Effect<void> = lock.withPermits(1)(Effect.suspend(() => closed ? Effect.void : swapFile)).pipe(
      Effect.catchAll((error) => Effect.logError(`${name}: cannot reopen (${error.message}); still writing to the file open before`))
    )

    /** A logrotate that sent no SIGHUP, or a deleted log: the path no longer names the open file. */
    const reopenIfReplaced = Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      if (now - lastPathCheckMs < pathCheckEveryMs) return
      lastPathCheckMs = now
      const onDisk = yield* Effect.either(fs.stat(filePath))
      const replaced = Either.isLeft(onDisk)
        ? onDisk.left._tag === "SystemError" && onDisk.left.reason === "NotFound"
        : onDisk.right.dev !== current.dev || Option.getOrUndefined(onDisk.right.ino) !== current.ino
      if (!replaced) return
      const reopened = yield* Effect.either(swapFile)
      if (Either.isRight(reopened)) {
        automaticReopenFailed = false
      } else if (!automaticReopenFailed) {
        // Tried again every second: reported once, not every second.
        automaticReopenFailed = true
        yield* Effect.logError(`${name}: the path names another file or none, and reopening it failed (${reopened.left.message})`)
      }
    })

    /** `<server>.log.i` becomes `.i+1` (the oldest kept is overwritten), the file `.1`, and a new file is opened. */
    const rotate = Effect.gen(function*() {
      for (let index = keep - 1; index >= 1; index--) {
        yield* fs.rename(`${filePath}.${index}`, `${filePath}.${index + 1}`).pipe(
          Effect.catchIf((error) => error._tag === "SystemError" && error.reason === "NotFound", () => Effect.void)
        )
      }
      yield* keep === 0 ? fs.remove(filePath) : fs.rename(filePath, `${filePath}.1`)
      yield* swapFile
    })

    /**
     * What of `batch` to write into a file that may hold the start of it from
     * `tornFrom` on: all of it once that start is cut off; if it cannot be,
     * the rest, since only this log writes the file and its end is the
     * batch's first bytes.
     */
    const resumeTorn = (target: OpenFile, size: bigint, batch: Buffer) => {
      const tornFrom = target.tornFrom
      if (tornFrom === undefined) return Effect.succeed({ bytes: batch, sizeBefore: size })
      return Effect.matchEffect(size === tornFrom ? Effect.void : target.file.truncate(tornFrom), {
        onSuccess: () =>
          Effect.sync(() => {
            target.tornFrom = undefined
            return { bytes: batch, sizeBefore: tornFrom }
          }),
        onFailure: () =>
          Effect.sync(() => {
            const landed = size - tornFrom
            if (landed > 0n && landed <= BigInt(batch.length)) {
              return { bytes: batch.subarray(Number(landed)), sizeBefore: size }
            }
            // Someone else cut or wrote the file, so how it ends is unknown:
            // a line break keeps the batch's first entry off a torn one.
            target.tornFrom = undefined
            return { bytes: size > 0n ? Buffer.concat([lineFeed, batch]) : batch, sizeBefore: size }
          })
      })
    }

    /**
     * Appends `batch` whole or leaves the file as it was: a write that fails
     * part-way (ENOSPC) is cut back off, so the retry writes whole entries and
     * never glues one onto a torn one.
     */
    const writeBatch = (batch: Buffer): Effect.Effect<void, PlatformError> =>
      Effect.gen(function*() {
        let info = yield* current.file.stat
        // Entries written into a deleted file would go with it.
        if (Option.getOrUndefined(info.nlink) === 0) {
          yield* swapFile
          info = yield* current.file.stat
        }
        // Rotated before the batch would take the file past its size; not a
        // file that holds the start of a torn batch, which must be completed first.
        if (current.tornFrom === undefined && info.size > 0n && Number(info.size) + batch.length > maxFileBytes) {
          yield* rotate
          info = yield* current.file.stat
        }
        const target = current
        const { bytes, sizeBefore } = yield* resumeTorn(target, info.size, batch)
        // Nothing left when the failed write had in fact landed whole; and writing nothing is an error.
        if (bytes.length > 0) {
          yield* target.file.writeAll(bytes).pipe(
            Effect.tapError(() =>
              target.file.truncate(sizeBefore).pipe(
                Effect.catchAll(() => Effect.sync(() => (target.tornFrom ??= sizeBefore)))
              )
            )
          )
        }
        target.tornFrom = undefined
        options.onWritten?.(bytes.length)
      })

    /**
     * Cuts the queue to the bound, whole entries only, the newest going: a
     * batch taken while healthy can be past it when callers did not pause.
     * Kept bytes are copied so the big buffer can go.
     */
    const trimQueueToBound = () => {
      let room = maxBufferBytes
      for (let i = 0; i < queue.length; i++) {
        const batch = queue[i]
        if (batch === undefined) break
        // Part of the first batch may already be in the file, and cannot be cut: it stays whole.
        const cuttable = i > 0 || current.tornFrom === undefined
        if (batch.length <= room || !cuttable) {
          room = Math.max(0, room - batch.length)
          continue
        }
        const keptLength = room === 0 ? 0 : batch.lastIndexOf(0x0a, room - 1) + 1
        writer.dropTaken(batch.subarray(keptLength))
        for (const later of queue.splice(i + 1)) writer.dropTaken(later)
        if (keptLength === 0) queue.splice(i, 1)
        else queue[i] = Buffer.from(batch.subarray(0, keptLength))
        writer.recycle(batch)
        break
      }
      queuedBytes = queue.reduce((bytes, batch) => bytes + batch.length, 0)
    }

    const enterFailing = (error: PlatformError) =>
      Effect.suspend(() => {
        if (queuedBytes > maxBufferBytes) trimQueueToBound()
        writer.capacity = Math.max(0, maxBufferBytes - queuedBytes)
        if (failing) return Effect.void
        failing = true
        return Effect.logError(
          `${name}: cannot write (${error.message}); keeping up to ${maxBufferBytes} bytes of entries to retry, dropping and counting the rest`
        )
      })

    const leaveFailing = Effect.suspend(() => {
      failing = false
      writer.capacity = Number.POSITIVE_INFINITY
      const dropped = writer.dropped
      // Right after the entries kept while failing: where the dropped ones were.
      writer.recordGap()
      return Effect.logInfo(`${name}: writing again${dropped > 0 ? `; ${dropped} entries were dropped` : ""}`)
    })

    /**
     * Writes `batch`: whole while the file is healthy (one write, the cheap
     * case), and in pieces of whole entries once a write failed, each
     * appended whole or not at all, so that a disk with less room than the
     * batch still takes what fits. Answers how many bytes were written, and
     * the error that stopped the rest.
     */
    const writeInPieces = (batch: Buffer) =>
      Effect.gen(function*() {
        if (!failing && Either.isRight(yield* Effect.either(writeBatch(batch)))) {
          return { bytes: batch.length, error: undefined }
        }
        let start = 0
        while (start < batch.length) {
          const end = pieceEnd(batch, start)
          const written = yield* Effect.either(writeBatch(batch.subarray(start, end)))
          if (Either.isLeft(written)) return { bytes: start, error: written.left }
          start = end
        }
        return { bytes: start, error: undefined }
      })

    /** Writes the queued batches in order, up to the first that fails, whose rest is kept for the next try. */
    const drain = Effect.gen(function*() {
      for (let batch = queue[0]; batch !== undefined; batch = queue[0]) {
        const written = yield* writeInPieces(batch)
        if (written.error !== undefined) {
          queue[0] = batch.subarray(written.bytes)
          queuedBytes -= written.bytes
          return yield* enterFailing(written.error)
        }
        queue.shift()
        queuedBytes -= batch.length
        writer.recycle(batch)
        if (failing) yield* leaveFailing
      }
    })

    const enqueueWriter = () => {
      if (writer.size === 0) return
      const batch = writer.take()
      queue.push(batch)
      queuedBytes += batch.length
    }

    const flushOnce = Effect.gen(function*() {
      yield* reopenIfReplaced
      yield* drain
      if (queue.length === 0) {
        enqueueWriter()
        yield* drain
      }
      yield* notifyIfRoom
    })

    // Uninterruptible: a batch taken from the writer is written whole, even
    // when shutdown interrupts the flushing fiber mid-write.
    const flush = lock.withPermits(1)(Effect.suspend(() => closed ? Effect.void : flushOnce)).pipe(
      Effect.uninterruptible
    )

    if (options.reopenOnSighup ?? true) {
      const onHangup = () => {
        runFork(reopen)
      }
      yield* Effect.acquireRelease(
        Effect.sync(() => {
          process.on("SIGHUP", onHangup)
        }),
        () =>
          Effect.sync(() => {
            process.off("SIGHUP", onHangup)
          })
      )
    }

    // One attempt, not a retry: a log that cannot be written must not hold up shutdown.
    yield* Effect.addFinalizer(() =>
      lock.withPermits(1)(Effect.gen(function*() {
        yield* flushOnce
        closed = true
        writer.capacity = 0
        const unwritten = queuedBytes + writer.size
        if (unwritten > 0 || writer.dropped > 0) {
          yield* Effect.logError(
            `${name}: closed with ${unwritten} bytes of entries unwritten and ${writer.dropped} entries dropped`
          )
        }
        yield* notifyIfRoom
      })).pipe(Effect.uninterruptible)
    )
    yield* flush.pipe(Effect.repeat(Schedule.spaced(flushEvery)), Effect.forkScoped)

    return EventLog.of({
      unsafeRecord: (event, fields) => writer.record(event, fields),
      lines: (conn, remote) => writer.lines(conn, remote),
      wire: writer.wire,
      flush,
      hasRoom,
      unsafeOnRoom: (resume) => {
        if (!hasRoom()) waiters.push(resume)
        else if (!callSafely(resume)) runFork(Effect.logError(`${name}: an unsafeOnRoom callback threw`))
      },
      reopen
    })
  })

/** Keeps entries in memory as JSON lines, for tests: the same writer as the file's. */
export const makeMemory = (server: string, wire: WireLogging = "full") =>
  Effect.sync(() => {
    const lines: Array<string> = []
    const writer = new EntryWriter(server, 1024, wire)
    const keep = () => lines.push(writer.take().toString("utf8"))
    const log = EventLog.of({
      unsafeRecord: (event, fields) => {
        writer.record(event, fields)
        keep()
      },
      lines: (conn, remote) => {
        const lines = writer.lines(conn, remote)
        return {
          received: (bytes, start, end) => {
            lines.received(bytes, start, end)
            keep()
          },
          sent: (bytes, start, end) => {
            lines.sent(bytes, start, end)
            keep()
          },
          sentAnswer: (bytes, start, end, body, status) => {
            lines.sentAnswer(bytes, start, end, body, status)
            keep()
          }
        }
      },
      wire,
      flush: Effect.void,
      hasRoom: () => true,
      unsafeOnRoom: (resume) => resume(),
      reopen: Effect.void
    })
    return { log, lines } as const
  })
