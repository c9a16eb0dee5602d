/**
 * The event log of PROTOCOL.md section 9: one JSON object per line in
 * `<logDir>/<server>.log`, for every line in and out, every connection and
 * peer link change, Places outcomes and protocol violations.
 *
 * Logging is off the hot path: `record` only pushes the raw parts of an entry
 * onto an array (no JSON, no decoding, no I/O); a background fiber turns the
 * batch into JSON and appends it to the file, and the layer's finalizer writes
 * whatever is left, so closing the scope loses nothing.
 */
import { FileSystem, Path } from "@effect/platform"
import type { PlatformError } from "@effect/platform/Error"
import { Context, Effect, Layer, Schedule } from "effect"
import { isUtf8 } from "node:buffer"

/** Fields of an entry besides its time, server and event name. */
export interface EventFields {
  readonly conn?: number
  readonly remote?: string
  /** A wire line; bytes that are not UTF-8 are also logged in base64. */
  readonly line?: Uint8Array | string
  readonly [field: string]: unknown
}

export class EventLog extends Context.Tag("@herd/server/EventLog")<
  EventLog,
  {
    /** Buffers one entry; never blocks and never fails. */
    readonly record: (event: string, fields?: EventFields) => void
    /** Writes every buffered entry now. */
    readonly flush: Effect.Effect<void>
  }
>() {}

interface PendingEntry {
  readonly timeMs: number
  readonly event: string
  readonly fields: EventFields | undefined
}

/**
 * Turns entries into JSON lines. It runs for every line in and out, so the
 * common case is kept cheap: the time text is reused within a millisecond,
 * the server and event names are quoted once, and a wire line of plain
 * printable ASCII is quoted as it is, without a decode or JSON.stringify.
 */
export class EntryFormatter {
  private lastMs = -1
  private lastTime = ""
  private readonly quotedEvents = new Map<string, string>()
  private readonly serverField: string

  constructor(server: string) {
    this.serverField = `","server":${JSON.stringify(server)},"event":`
  }

  format(entry: PendingEntry): string {
    if (entry.timeMs !== this.lastMs) {
      this.lastMs = entry.timeMs
      this.lastTime = new Date(entry.timeMs).toISOString()
    }
    let event = this.quotedEvents.get(entry.event)
    if (event === undefined) {
      event = JSON.stringify(entry.event)
      this.quotedEvents.set(entry.event, event)
    }
    let text = `{"time":"${this.lastTime}${this.serverField}${event}`
    const fields = entry.fields
    if (fields !== undefined) {
      for (const key in fields) {
        const value = fields[key]
        if (value === undefined) continue
        text += key === "line" && (typeof value === "string" || value instanceof Uint8Array)
          ? wireLineFields(value)
          : `,${JSON.stringify(key)}:${JSON.stringify(value)}`
      }
    }
    return text + "}\n"
  }
}

/** One JSON line for an entry (for tests and one-off use). */
export const formatEntry = (server: string, entry: PendingEntry): string => new EntryFormatter(server).format(entry)

/**
 * `"line"` for a wire line given as bytes or as a latin1 string (one char per
 * byte): its UTF-8 text, and its bytes in base64 as well when they are not
 * valid UTF-8, so the log loses nothing.
 */
const wireLineFields = (line: Uint8Array | string): string => {
  if (isPlainAscii(line)) {
    return `,"line":"${typeof line === "string" ? line : Buffer.from(line.buffer, line.byteOffset, line.length).toString("latin1")}"`
  }
  const bytes = typeof line === "string" ? Buffer.from(line, "latin1") : Buffer.from(line.buffer, line.byteOffset, line.length)
  const text = `,"line":${JSON.stringify(bytes.toString("utf8"))}`
  return isUtf8(bytes) ? text : `${text},"lineBase64":"${bytes.toString("base64")}"`
}

/** Printable ASCII other than `"` and `\\`: what JSON quotes as it is. */
const isPlainAscii = (line: Uint8Array | string): boolean => {
  const length = line.length
  for (let i = 0; i < length; i++) {
    const code = typeof line === "string" ? line.charCodeAt(i) : line[i] ?? 0
    if (code < 0x20 || code > 0x7e || code === 0x22 || code === 0x5c) return false
  }
  return true
}

const flushEvery = "50 millis"

/** Appends to `<dir>/<server>.log`, creating the directory if needed. */
export const layerFile = (options: {
  readonly dir: string
  readonly server: string
}): Layer.Layer<EventLog, PlatformError, FileSystem.FileSystem | Path.Path> =>
  Layer.scoped(
    EventLog,
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const path = yield* Path.Path
      yield* fs.makeDirectory(options.dir, { recursive: true })
      const file = yield* fs.open(path.join(options.dir, `${options.server}.log`), { flag: "a" })
      const formatter = new EntryFormatter(options.server)
      let pending: Array<PendingEntry> = []
      const flush = Effect.suspend(() => {
        if (pending.length === 0) return Effect.void
        const batch = pending
        pending = []
        let text = ""
        for (const entry of batch) text += formatter.format(entry)
        return file.writeAll(Buffer.from(text, "utf8"))
      }).pipe(
        Effect.catchAll((error) => Effect.logError(`event log of ${options.server}: write failed`, error))
      )
      yield* Effect.addFinalizer(() => flush)
      yield* flush.pipe(Effect.repeat(Schedule.spaced(flushEvery)), Effect.forkScoped)
      return EventLog.of({
        record: (event, fields) => {
          pending.push({ timeMs: Date.now(), event, fields })
        },
        flush
      })
    })
  )

/** Keeps entries in memory as formatted JSON lines, for tests. */
export const makeMemory = (server: string) =>
  Effect.sync(() => {
    const lines: Array<string> = []
    const formatter = new EntryFormatter(server)
    const log = EventLog.of({
      record: (event, fields) => {
        lines.push(formatter.format({ timeMs: Date.now(), event, fields }))
      },
      flush: Effect.void
    })
    return { log, lines } as const
  })
