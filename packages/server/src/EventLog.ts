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
    /**
     * Buffers a line in or out of connection `conn`: the same entry as
     * `record(event, { conn, line })`, on the quick path.
     */
    readonly line: (event: "in" | "out", conn: number, line: Uint8Array | string) => void
    /** Writes every buffered entry now. */
    readonly flush: Effect.Effect<void>
  }
>() {}

/**
 * Writes entries as JSON lines into a byte buffer that grows as needed;
 * `take` hands the bytes over and starts a new buffer.
 */
export class EntryWriter {
  private buffer: Buffer
  private length = 0
  private lastMs = -1
  private timePrefix = ""
  private readonly serverField: string
  private readonly quotedEvents = new Map<string, string>()

  constructor(server: string, private readonly initialSize = 64 * 1024) {
    this.serverField = `","server":${JSON.stringify(server)},"event":`
    this.buffer = Buffer.allocUnsafe(initialSize)
  }

  get size(): number {
    return this.length
  }

  record(event: string, fields?: EventFields): void {
    this.head(event)
    if (fields !== undefined) {
      for (const key in fields) {
        const value = fields[key]
        if (value === undefined) continue
        if (key === "line" && (typeof value === "string" || value instanceof Uint8Array)) this.wireLine(value)
        else this.text(`,${JSON.stringify(key)}:${JSON.stringify(value)}`)
      }
    }
    this.ascii("}\n")
  }

  line(event: string, conn: number, line: Uint8Array | string): void {
    this.head(event)
    this.ascii(`,"conn":${conn}`)
    this.wireLine(line)
    this.ascii("}\n")
  }

  /** The entries written so far, as bytes of JSON lines; the writer starts afresh. */
  take(): Buffer {
    const taken = this.buffer.subarray(0, this.length)
    this.buffer = Buffer.allocUnsafe(Math.max(this.initialSize, this.length))
    this.length = 0
    return taken
  }

  /** `{"time":...,"server":...,"event":...` */
  private head(event: string): void {
    const now = Date.now()
    if (now !== this.lastMs) {
      this.lastMs = now
      this.timePrefix = `{"time":"${new Date(now).toISOString()}${this.serverField}`
    }
    let quoted = this.quotedEvents.get(event)
    if (quoted === undefined) {
      quoted = JSON.stringify(event)
      this.quotedEvents.set(event, quoted)
    }
    this.ascii(this.timePrefix)
    this.text(quoted)
  }

  /**
   * `"line"`: a wire line given as bytes or as a latin1 string (one char per
   * byte). Printable ASCII is copied as it is; anything else is logged as
   * its UTF-8 text, with the bytes in base64 too when they are not valid
   * UTF-8, so the log loses nothing.
   */
  private wireLine(line: Uint8Array | string): void {
    if (isPlainAscii(line)) {
      this.ascii(`,"line":"`)
      if (typeof line === "string") this.ascii(line)
      else this.bytes(line)
      this.ascii(`"`)
      return
    }
    const bytes = typeof line === "string" ? Buffer.from(line, "latin1") : Buffer.from(line.buffer, line.byteOffset, line.length)
    this.text(`,"line":${JSON.stringify(bytes.toString("utf8"))}`)
    if (!isUtf8(bytes)) this.ascii(`,"lineBase64":"${bytes.toString("base64")}"`)
  }

  private ascii(text: string): void {
    this.reserve(text.length)
    this.length += this.buffer.write(text, this.length, "latin1")
  }

  private text(text: string): void {
    this.reserve(text.length * 3)
    this.length += this.buffer.write(text, this.length, "utf8")
  }

  private bytes(bytes: Uint8Array): void {
    this.reserve(bytes.length)
    this.buffer.set(bytes, this.length)
    this.length += bytes.length
  }

  private reserve(extra: number): void {
    if (this.length + extra <= this.buffer.length) return
    const grown = Buffer.allocUnsafe(Math.max(this.buffer.length * 2, this.length + extra))
    this.buffer.copy(grown, 0, 0, this.length)
    this.buffer = grown
  }
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

/** One JSON line for an entry (for tests and one-off use). */
export const formatEntry = (server: string, event: string, fields?: EventFields): string => {
  const writer = new EntryWriter(server, 256)
  writer.record(event, fields)
  return writer.take().toString("utf8")
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
      const writer = new EntryWriter(options.server, 1024 * 1024)
      // Uninterruptible: a batch taken from the writer is written whole, even
      // when shutdown interrupts the flushing fiber mid-write.
      const flush = Effect.suspend(() => writer.size === 0 ? Effect.void : file.writeAll(writer.take())).pipe(
        Effect.catchAll((error) => Effect.logError(`event log of ${options.server}: write failed`, error)),
        Effect.uninterruptible
      )
      yield* Effect.addFinalizer(() => flush)
      yield* flush.pipe(Effect.repeat(Schedule.spaced(flushEvery)), Effect.forkScoped)
      return EventLog.of({
        record: (event, fields) => writer.record(event, fields),
        line: (event, conn, line) => writer.line(event, conn, line),
        flush
      })
    })
  )

/** Keeps entries in memory as JSON lines, for tests: the same writer as the file's. */
export const makeMemory = (server: string) =>
  Effect.sync(() => {
    const lines: Array<string> = []
    const writer = new EntryWriter(server, 1024)
    const keep = () => lines.push(writer.take().toString("utf8"))
    const log = EventLog.of({
      record: (event, fields) => {
        writer.record(event, fields)
        keep()
      },
      line: (event, conn, line) => {
        writer.line(event, conn, line)
        keep()
      },
      flush: Effect.void
    })
    return { log, lines } as const
  })
