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
     * The entries of connection `conn`'s wire lines, on the quick path: the
     * same entries as `record("in" | "out", { conn, remote, line })`.
     */
    readonly lines: (conn: number, remote: string) => LineLog
    /** Writes every buffered entry now. */
    readonly flush: Effect.Effect<void>
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
  readonly sentAnswer: (bytes: Uint8Array, start: number, end: number, body: string) => void
}

/**
 * Writes entries as JSON lines into a byte buffer that grows as needed;
 * `take` hands the bytes over and starts a new buffer.
 */
export class EntryWriter {
  private buffer: Buffer
  private length = 0
  /** The buffer behind the bytes `take` gave last, until they are recycled. */
  private lent: Buffer | undefined
  /** A written buffer, to fill next. */
  private spare: Buffer | undefined
  private headMs = -1
  /** `{"time":"<ISO time>","server":"<server>","event":`, as of `headMs`. */
  private headBytes = Buffer.alloc(0)
  private readonly serverField: string
  private readonly quotedEvents = new Map<string, string>()
  private readonly escapedBodies = new Map<string, Buffer>()

  constructor(server: string, private readonly initialSize = 64 * 1024) {
    this.serverField = `","server":${JSON.stringify(server)},"event":`
    this.buffer = Buffer.allocUnsafe(initialSize)
  }

  get size(): number {
    return this.length
  }

  record(event: string, fields?: EventFields): void {
    this.head()
    let quoted = this.quotedEvents.get(event)
    if (quoted === undefined) {
      quoted = JSON.stringify(event)
      this.quotedEvents.set(event, quoted)
    }
    this.text(quoted)
    if (fields !== undefined) {
      for (const key in fields) {
        const value = fields[key]
        if (value === undefined) continue
        if (key !== "line") {
          this.text(`,${JSON.stringify(key)}:${JSON.stringify(value)}`)
        } else if (typeof value === "string" || value instanceof Uint8Array) {
          this.ascii(`,"line":`)
          const bytes = typeof value === "string" ? Buffer.from(value, "latin1") : value
          this.wireLine(bytes, 0, bytes.length)
        }
      }
    }
    this.endEntry()
  }

  lines(conn: number, remote: string): LineLog {
    const fixedPart = (event: string) =>
      Buffer.from(`${JSON.stringify(event)},"conn":${conn},"remote":${JSON.stringify(remote)},"line":`, "utf8")
    const received = fixedPart("in")
    const sent = fixedPart("out")
    return {
      received: (bytes, start = 0, end = bytes.length) => this.lineEntry(received, bytes, start, end),
      sent: (bytes, start = 0, end = bytes.length) => this.lineEntry(sent, bytes, start, end),
      sentAnswer: (bytes, start, end, body) => this.answerEntry(sent, bytes, start, end, body)
    }
  }

  /**
   * The entries written so far, as bytes of JSON lines; the writer starts
   * afresh, in the buffer last given back to `recycle` if there is one.
   */
  take(): Buffer {
    const taken = this.buffer.subarray(0, this.length)
    this.lent = this.buffer
    this.buffer = this.spare ?? Buffer.allocUnsafe(this.initialSize)
    this.spare = undefined
    this.length = 0
    return taken
  }

  /**
   * Takes back the bytes `take` gave last, once they are written, to fill
   * again: a fresh buffer every flush is fresh pages for the kernel to map,
   * some 5,000 page faults a second under load. A buffer that grew past four
   * times the initial size in a burst is let go rather than kept.
   */
  recycle(taken: Buffer): void {
    const lent = this.lent
    if (lent === undefined || taken.buffer !== lent.buffer || taken.byteOffset !== lent.byteOffset) return
    this.lent = undefined
    if (lent.length <= 4 * this.initialSize) this.spare = lent
  }

  private lineEntry(fixedPart: Uint8Array, bytes: Uint8Array, start: number, end: number): void {
    this.head()
    this.bytes(fixedPart)
    this.wireLine(bytes, start, end)
    this.endEntry()
  }

  private answerEntry(fixedPart: Uint8Array, bytes: Uint8Array, start: number, end: number, body: string): void {
    this.head()
    this.bytes(fixedPart)
    const opening = this.length
    this.reserve(1)
    this.buffer[this.length++] = 0x22 // "
    // The AT line and its LF, then the body's escaping as kept.
    if (this.plainCopy(bytes, start, end - body.length - 2)) {
      this.bytes(escapedLf)
      this.bytes(this.escapedBody(body))
      this.reserve(1)
      this.buffer[this.length++] = 0x22
    } else {
      this.length = opening
      this.wireLine(bytes, start, end)
    }
    this.endEntry()
  }

  /**
   * The body's UTF-8 text (with its final LF) as the inside of a JSON string,
   * kept by the body's string: the same string object each time its cache
   * entry answers, so a lookup does not even hash it again. A few thousand
   * bodies at most are kept.
   */
  private escapedBody(body: string): Buffer {
    let escaped = this.escapedBodies.get(body)
    if (escaped === undefined) {
      if (this.escapedBodies.size >= maxEscapedBodies) this.escapedBodies.clear()
      const json = JSON.stringify(Buffer.from(body + "\n", "latin1").toString("utf8"))
      escaped = Buffer.from(json.slice(1, -1), "utf8")
      this.escapedBodies.set(body, escaped)
    }
    return escaped
  }

  /** `{"time":...,"server":...,"event":` (the time text is made once a millisecond). */
  private head(): void {
    const now = Date.now()
    if (now !== this.headMs) {
      this.headMs = now
      this.headBytes = Buffer.from(`{"time":"${new Date(now).toISOString()}${this.serverField}`, "latin1")
    }
    this.bytes(this.headBytes)
  }

  private endEntry(): void {
    this.reserve(2)
    this.buffer[this.length++] = 0x7d // }
    this.buffer[this.length++] = 0x0a // LF
  }

  /**
   * A wire line as a JSON string. Printable ASCII, by far the most common,
   * is copied as it is while it is checked; anything else is logged as its
   * UTF-8 text, with the bytes in base64 too when they are not valid UTF-8,
   * so the log loses nothing.
   */
  private wireLine(bytes: Uint8Array, start: number, end: number): void {
    const opening = this.length
    this.reserve(1)
    this.buffer[this.length++] = 0x22 // "
    if (this.plainCopy(bytes, start, end)) {
      this.reserve(1)
      this.buffer[this.length++] = 0x22
    } else {
      this.length = opening
      this.escapedLine(Buffer.from(bytes.buffer, bytes.byteOffset + start, end - start))
    }
  }

  /**
   * Copies `bytes[start, end)` if it is all printable ASCII other than `"`
   * and `\\` (what JSON quotes as it is) and answers true; else answers false
   * and writes nothing.
   */
  private plainCopy(bytes: Uint8Array, start: number, end: number): boolean {
    this.reserve(end - start)
    const buffer = this.buffer
    let at = this.length
    for (let i = start; i < end; i++) {
      const code = bytes[i] ?? 0
      if (code < 0x20 || code > 0x7e || code === 0x22 || code === 0x5c) return false
      buffer[at++] = code
    }
    this.length = at
    return true
  }

  private escapedLine(bytes: Buffer): void {
    this.text(JSON.stringify(bytes.toString("utf8")))
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

/** `\n` inside a JSON string. */
const escapedLf = Buffer.from("\\n", "latin1")

/** Escaped bodies kept by an EntryWriter, past which it forgets them all. */
const maxEscapedBodies = 2048

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
      const flush = Effect.suspend(() => {
        if (writer.size === 0) return Effect.void
        const batch = writer.take()
        return file.writeAll(batch).pipe(Effect.ensuring(Effect.sync(() => writer.recycle(batch))))
      }).pipe(
        Effect.catchAll((error) => Effect.logError(`event log of ${options.server}: write failed`, error)),
        Effect.uninterruptible
      )
      yield* Effect.addFinalizer(() => flush)
      yield* flush.pipe(Effect.repeat(Schedule.spaced(flushEvery)), Effect.forkScoped)
      return EventLog.of({
        record: (event, fields) => writer.record(event, fields),
        lines: (conn, remote) => writer.lines(conn, remote),
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
          sentAnswer: (bytes, start, end, body) => {
            lines.sentAnswer(bytes, start, end, body)
            keep()
          }
        }
      },
      flush: Effect.void
    })
    return { log, lines } as const
  })
