/**
 * The event log's writer: entries as JSON lines in a growing byte buffer,
 * with the wire lines of each connection escaped straight into it. It is the
 * log's implementation, not its face: `EventLog` is the service, and its
 * layers own one of these.
 */
import { isUtf8 } from "node:buffer"
import type { EventFields, LineLog, WireLogging } from "../EventLog.ts"

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
  /**
   * Entries begun at or past this size are dropped whole and counted rather
   * than written: the owner lowers it while its file cannot be written, so
   * memory stays bounded, and checking it is one comparison per entry.
   */
  capacity = Number.POSITIVE_INFINITY
  private droppedCount = 0
  private firstDroppedMs = 0
  private lastDroppedMs = 0

  constructor(server: string, private readonly initialSize = 64 * 1024, readonly wire: WireLogging = "full") {
    this.serverField = `","server":${JSON.stringify(server)},"event":`
    this.buffer = Buffer.allocUnsafe(initialSize)
  }

  get size(): number {
    return this.length
  }

  /** Entries dropped since the last `recordGap`. */
  get dropped(): number {
    return this.droppedCount
  }

  record(event: string, fields?: EventFields): void {
    if (this.length >= this.capacity) return this.drop()
    this.entry(event, fields)
  }

  /**
   * The `log-gap` entry for the entries dropped since the last one, if any,
   * written whatever the capacity: it is what makes the loss visible.
   */
  recordGap(): void {
    if (this.droppedCount === 0) return
    this.entry("log-gap", {
      dropped: this.droppedCount,
      from: new Date(this.firstDroppedMs).toISOString(),
      to: new Date(this.lastDroppedMs).toISOString()
    })
    this.droppedCount = 0
  }

  /**
   * Counts as dropped the entries of `taken`, bytes `take` gave (whole JSON
   * lines), each at the time it was recorded: for a kept batch cut to fit the
   * bound.
   */
  dropTaken(taken: Buffer): void {
    for (let start = 0; start < taken.length;) {
      const lineFeedAt = taken.indexOf(0x0a, start)
      const time = Date.parse(taken.toString("latin1", start + timeOffset, start + timeOffset + isoTimeLength))
      this.dropAt(Number.isNaN(time) ? Date.now() : time)
      start = lineFeedAt < 0 ? taken.length : lineFeedAt + 1
    }
  }

  private drop(): void {
    this.dropAt(Date.now())
  }

  private dropAt(ms: number): void {
    if (this.droppedCount === 0 || ms < this.firstDroppedMs) this.firstDroppedMs = ms
    if (this.droppedCount === 0 || ms > this.lastDroppedMs) this.lastDroppedMs = ms
    this.droppedCount++
  }

  private entry(event: string, fields: EventFields | undefined): void {
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
    if (this.wire === "off") return silentLines
    const fixedPart = (event: string) =>
      Buffer.from(`${JSON.stringify(event)},"conn":${conn},"remote":${JSON.stringify(remote)},"line":`, "utf8")
    return new ConnectionLines(this, fixedPart("in"), fixedPart("out"))
  }

  /** A WHATSAT answer in short: its AT line, `bytes[start, atLineEnd)`, and the Places status. */
  answerSummary(fixedPart: Uint8Array, bytes: Uint8Array, start: number, atLineEnd: number, status: string): void {
    this.head()
    this.bytes(fixedPart)
    this.wireLine(bytes, start, atLineEnd)
    this.text(`,"status":${JSON.stringify(status)}`)
    this.endEntry()
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

  lineEntry(fixedPart: Uint8Array, bytes: Uint8Array, start: number, end: number): void {
    if (this.length >= this.capacity) return this.drop()
    this.head()
    this.bytes(fixedPart)
    this.wireLine(bytes, start, end)
    this.endEntry()
  }

  answerEntry(fixedPart: Uint8Array, bytes: Uint8Array, start: number, end: number, body: string): void {
    if (this.length >= this.capacity) return this.drop()
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

/** Where an entry's ISO time starts: after `{"time":"`. */
const timeOffset = 9
const isoTimeLength = "2000-01-01T00:00:00.000Z".length

/**
 * One connection's wire lines, written by `writer` after the connection's
 * fixed parts (`"in"` or `"out"`, its number and address): its methods on
 * the prototype, so that an idle connection costs this object and the two
 * fixed parts, and no closures.
 */
class ConnectionLines implements LineLog {
  constructor(
    private readonly writer: EntryWriter,
    private readonly receivedPart: Uint8Array,
    private readonly sentPart: Uint8Array
  ) {}

  received(bytes: Uint8Array, start = 0, end = bytes.length): void {
    this.writer.lineEntry(this.receivedPart, bytes, start, end)
  }

  sent(bytes: Uint8Array, start = 0, end = bytes.length): void {
    this.writer.lineEntry(this.sentPart, bytes, start, end)
  }

  sentAnswer(bytes: Uint8Array, start: number, end: number, body: string, status: string): void {
    if (this.writer.wire === "full") this.writer.answerEntry(this.sentPart, bytes, start, end, body)
    else this.writer.answerSummary(this.sentPart, bytes, start, end - body.length - 2, status)
  }
}

/** The wire lines of a log that keeps none. */
const silentLines: LineLog = { received: () => {}, sent: () => {}, sentAnswer: () => {} }

/** `\n` inside a JSON string. */
const escapedLf = Buffer.from("\\n", "latin1")

/** Escaped bodies kept by an EntryWriter, past which it forgets them all. */
const maxEscapedBodies = 2048
