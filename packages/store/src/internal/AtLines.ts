/**
 * The AT lines of a store's records, kept as bytes in one buffer outside the
 * JS heap, each found by a small integer: its record's id.
 *
 * Why bytes and not strings: a record kept on the heap is young when it is
 * stored, and the store keeps it alive, so the next scavenge copies it, and
 * the record it replaced becomes old garbage for a full collection. With
 * thousands of clients reporting all the time, that was much of a store's
 * cost: in isolation, storing a fresh object added 0.2 to 0.5 µs to a
 * lookup's 0.14 to 0.22. Bytes written over a record's slot cost the
 * collector nothing, and an id is a small integer, which a Map holds
 * without an object.
 *
 * Every text is latin1: one char per wire byte, so the bytes are the line's.
 * Offsets are 32-bit: the lines of one store can take up to 4 GiB (some 40
 * million clients), past which adding one fails.
 *
 * A line that cannot be kept (not latin1, or no room left) is answered as a
 * refusal code, not thrown: the store hands it to its caller as a typed
 * failure, and a refused record leaves no trace.
 */
import { LocationRecord, Time } from "@herd/protocol"
import { fnv1a64Into } from "./digest.ts"

/**
 * Per record, in `meta`: where its slot starts and how long it is, where
 * each field of its line starts, and where the line ends. A field ends one
 * byte (its space) before the next one starts; the time ends with the line.
 */
const START = 0
const CAPACITY = 1
const ORIGIN_AT = 2
const SKEW_AT = 3
const CLIENT_AT = 4
const LOCATION_AT = 5
const TIME_AT = 6
const END = 7
/** The FNV-1a 64 hash of the line, for the store's digest: its high and low halves. */
const HASH_HI = 8
const HASH_LO = 9
const META_FIELDS = 10

const fnv32Offset = 0x811c9dc5 | 0
const fnv32Prime = 0x01000193

/** FNV-1a 32 of a client's text, one char per byte: what `clientHash` answers for its bytes. */
export const hashClient = (client: string): number => {
  let hash = fnv32Offset
  for (let i = 0; i < client.length; i++) hash = Math.imul(hash ^ client.charCodeAt(i), fnv32Prime)
  return hash
}

/** The most the 32-bit offsets in `meta` can address. */
const maxAddressableBytes = 2 ** 32 - 1

/** What `add` answers for a record with a char past U+00FF, which no wire line can make. */
export const NOT_LATIN1 = -2
/** What `add` answers, and `replace` too, when there is no room left for the line. */
export const NO_ROOM = -3
/** Why a record was refused: `NOT_LATIN1` or `NO_ROOM`. */
export type Refusal = typeof NOT_LATIN1 | typeof NO_ROOM

/**
 * How long a slot is for a line of `length` bytes: a multiple of 16 up to
 * 256 bytes (an AT line is about 90), a power of two beyond. A slot its
 * record outgrew is kept for the next line of that size, so a client whose
 * lines keep growing cannot make the buffer grow without bound.
 */
const capacityFor = (length: number): number =>
  length <= 256 ? Math.max(16, (length + 15) & ~15) : 2 ** Math.ceil(Math.log2(length))

const DOT = 0x2e

/** A char that is not one byte. */
const notLatin1 = /[^\x00-\xff]/

/**
 * `record`'s AT line (`atLine` if the caller made it already) if it is latin1
 * text like every wire field (one char per byte), else undefined: a char
 * past U+00FF would be cut to a byte, and the record would come back
 * changed. The check costs about 35 ns a line.
 */
const latin1AtLine = (record: LocationRecord.LocationRecord, atLine: string | undefined): string | undefined => {
  // A string of the line's length, or the store makes the line itself: a
  // caller from JavaScript may pass `unsafeOffer` to `map` (an index here),
  // and the fields' offsets are counted from the record, so a line of
  // another length would misplace them.
  const line = typeof atLine === "string" && atLine.length === atLineLength(record)
    ? atLine
    : LocationRecord.formatAtLine(record)
  return notLatin1.test(line) ? undefined : line
}

/** The length of `record`'s AT line: `AT`, its five fields, and a space before each. */
const atLineLength = (record: LocationRecord.LocationRecord): number =>
  7 + record.origin.length + record.skew.length + record.client.length + record.location.length + record.time.length

/** Where each field of the line `addLine` reads starts: one scratch array, as it runs to completion. */
const lineFieldStarts = new Uint32Array(6)

export class AtLines {
  private bytes: Buffer
  /** Bytes handed out to slots so far; the rest of `bytes` is free. */
  private used = 0
  private meta = new Uint32Array(META_FIELDS * 1024)
  private count = 0
  /** Slots given back when their record outgrew them, by capacity. */
  private readonly freeSlots = new Map<number, Array<number>>()
  /** Ids of removed records, for the next records added. */
  private readonly freeIds: Array<number> = []
  /** Why the last `NO_ROOM` came, when it was the runtime refusing memory (undefined: the buffer was at `maxBytes`). */
  lastGrowthFailure: unknown = undefined

  private readonly maxBytes: number

  /** @param maxBytes how many bytes of lines it may hold: the 32-bit offsets' limit, or less (tests). */
  constructor(maxBytes: number = maxAddressableBytes) {
    this.maxBytes = maxBytes
    this.bytes = Buffer.allocUnsafeSlow(Math.min(64 * 1024, maxBytes))
  }

  /**
   * Keeps `record`'s AT line and answers its id, or the `Refusal` (nothing
   * is kept). `atLine`, if given, must be `formatAtLine(record)`: a caller
   * that made the line already saves making it again.
   */
  add(record: LocationRecord.LocationRecord, atLine?: string): number {
    const line = latin1AtLine(record, atLine)
    if (line === undefined) return NOT_LATIN1
    const id = this.nextId()
    this.meta[META_FIELDS * id + CAPACITY] = 0
    if (!this.write(id, record, line)) return NO_ROOM
    // Taken only once written: a record refused above leaves no trace.
    this.takeId(id)
    return id
  }

  /**
   * Keeps an AT line given as bytes, `AT origin skew client location time`
   * with one space between fields, as written from a record of this class:
   * no parsing, no formatting, one copy. The line is `source[from, to)`.
   * Answers its id, or `undefined` for bytes that are not six fields so
   * separated (or, past 4 GiB of lines, that find no room).
   */
  addLine(source: Buffer, from: number, to: number): number | undefined {
    const SPACE = 0x20
    const fieldStarts = lineFieldStarts
    fieldStarts[0] = 0
    // Five searches for a space (memchr) rather than a look at every byte.
    let fieldStart = from
    for (let field = 1; field < 6; field++) {
      const space = source.indexOf(SPACE, fieldStart)
      if (space === -1 || space >= to || space === fieldStart) return undefined
      fieldStarts[field] = space - from + 1
      fieldStart = space + 1
    }
    const length = to - from
    const sixthSpace = source.indexOf(SPACE, fieldStart)
    if (fieldStart === to || (sixthSpace !== -1 && sixthSpace < to)) return undefined
    if (source[from] !== 0x41 || source[from + 1] !== 0x54 || fieldStarts[1] !== 3) return undefined
    const id = this.nextId()
    const at = META_FIELDS * id
    const meta = this.meta
    const capacity = capacityFor(length)
    const start = this.allocate(capacity)
    if (start === NO_ROOM) return undefined
    source.copy(this.bytes, start, from, to)
    meta[at + START] = start
    meta[at + CAPACITY] = capacity
    meta[at + ORIGIN_AT] = start + fieldStarts[1]!
    meta[at + SKEW_AT] = start + fieldStarts[2]!
    meta[at + CLIENT_AT] = start + fieldStarts[3]!
    meta[at + LOCATION_AT] = start + fieldStarts[4]!
    meta[at + TIME_AT] = start + fieldStarts[5]!
    meta[at + END] = start + length
    this.takeId(id)
    return id
  }

  /** The id the next record gets, a freed one first, with room for its fields; not taken until `takeId`. */
  private nextId(): number {
    const id = this.freeIds.at(-1) ?? this.count
    if (META_FIELDS * (id + 1) > this.meta.length) {
      const grown = new Uint32Array(2 * this.meta.length)
      grown.set(this.meta)
      this.meta = grown
    }
    return id
  }

  /** `id`, as `nextId` answered it, now holds a record. */
  private takeId(id: number): void {
    // A freed id is below `count`, so it can never equal the next new one.
    if (id === this.freeIds.at(-1)) this.freeIds.pop()
    else this.count++
  }

  /** Forgets record `id`: its slot and its id serve the next records added. */
  remove(id: number): void {
    const at = META_FIELDS * id
    this.release(this.meta[at + START]!, this.meta[at + CAPACITY]!)
    this.meta[at + CAPACITY] = 0
    this.freeIds.push(id)
  }

  /** Record `id`'s AT line as bytes: a view into the store's buffer, valid until the next change. */
  lineBytes(id: number): Buffer {
    const at = META_FIELDS * id
    return this.bytes.subarray(this.meta[at + START]!, this.meta[at + END]!)
  }

  /** FNV-1a 32 of record `id`'s client bytes: `hashClient` of its client text. */
  clientHash(id: number): number {
    const at = META_FIELDS * id
    const bytes = this.bytes
    const end = (this.meta[at + LOCATION_AT] ?? 0) - 1
    let hash = fnv32Offset
    for (let i = this.meta[at + CLIENT_AT] ?? 0; i < end; i++) hash = Math.imul(hash ^ (bytes[i] ?? 0), fnv32Prime)
    return hash
  }

  /**
   * `Time.compareTimes(time, record id's time)` (-1, 0 or 1), with no string
   * made when the two are written alike (the same length, the first `.` at
   * the same place), the common case: their byte order is then their order,
   * as `compareTimes` says.
   */
  compareTime(id: number, time: string): number {
    const at = META_FIELDS * id
    const start = this.meta[at + TIME_AT]!
    const length = this.meta[at + END]! - start
    const bytes = this.bytes
    if (length === time.length) {
      const dot = time.indexOf(".")
      let storedDot = 0
      while (storedDot < length && bytes[start + storedDot] !== DOT) storedDot++
      if (storedDot === (dot === -1 ? length : dot)) {
        for (let i = 0; i < length; i++) {
          const difference = time.charCodeAt(i) - bytes[start + i]!
          if (difference !== 0) return difference < 0 ? -1 : 1
        }
        return 0
      }
    }
    return Time.compareTimes(time, this.time(id))
  }

  /** Whether record `id`'s client is `client`, compared byte for char (latin1), with no string made. */
  clientIs(id: number, client: string): boolean {
    const at = META_FIELDS * id
    const start = this.meta[at + CLIENT_AT] ?? 0
    if ((this.meta[at + LOCATION_AT] ?? 0) - 1 - start !== client.length) return false
    const bytes = this.bytes
    for (let i = 0; i < client.length; i++) if (bytes[start + i] !== client.charCodeAt(i)) return false
    return true
  }

  /** How many bytes record `id`'s AT line has. */
  lineLength(id: number): number {
    const at = META_FIELDS * id
    return (this.meta[at + END] ?? 0) - (this.meta[at + START] ?? 0)
  }

  /** Copies record `id`'s AT line into `target` at `offset`; answers the offset past it. */
  copyLine(id: number, target: Uint8Array, offset: number): number {
    const at = META_FIELDS * id
    return offset + this.bytes.copy(target, offset, this.meta[at + START] ?? 0, this.meta[at + END] ?? 0)
  }

  /**
   * Keeps `record`'s AT line as record `id`, in place of the one it had;
   * answers 0, or the `Refusal` (record `id` is then left as it was).
   * `atLine` as for `add`.
   */
  replace(id: number, record: LocationRecord.LocationRecord, atLine?: string): 0 | Refusal {
    const line = latin1AtLine(record, atLine)
    if (line === undefined) return NOT_LATIN1
    return this.write(id, record, line) ? 0 : NO_ROOM
  }

  /** Writes `line` as record `id`'s; answers false, changing nothing, if no slot could be had. */
  private write(id: number, record: LocationRecord.LocationRecord, line: string): boolean {
    const at = META_FIELDS * id
    const meta = this.meta
    const capacity = meta[at + CAPACITY]!
    if (line.length > capacity) {
      const larger = capacityFor(line.length)
      // The new slot first: if there is no room, the record keeps its old one.
      const start = this.allocate(larger)
      if (start === NO_ROOM) return false
      if (capacity > 0) this.release(meta[at + START]!, capacity)
      meta[at + START] = start
      meta[at + CAPACITY] = larger
    }
    const start = meta[at + START]!
    this.bytes.write(line, start, "latin1")
    meta[at + ORIGIN_AT] = start + "AT ".length
    meta[at + SKEW_AT] = meta[at + ORIGIN_AT]! + record.origin.length + 1
    meta[at + CLIENT_AT] = meta[at + SKEW_AT]! + record.skew.length + 1
    meta[at + LOCATION_AT] = meta[at + CLIENT_AT]! + record.client.length + 1
    meta[at + TIME_AT] = meta[at + LOCATION_AT]! + record.location.length + 1
    meta[at + END] = start + line.length
    return true
  }

  /**
   * Hashes record `id`'s AT line for the store's digest (`hashHi`, `hashLo`).
   * Writing a line does not: the store hashes a line only when its digest is
   * asked for (see `LatestRecords`), so the hash kept is that of the line
   * as it was at the last `hash`.
   */
  hash(id: number): void {
    const at = META_FIELDS * id
    fnv1a64Into(this.bytes, this.meta[at + START] ?? 0, this.meta[at + END] ?? 0, this.meta, at + HASH_HI)
  }

  /** The high half of the hash of record `id`'s AT line, as of its last `hash`. */
  hashHi(id: number): number {
    return this.meta[META_FIELDS * id + HASH_HI] ?? 0
  }

  /** The low half of the hash of record `id`'s AT line, as of its last `hash`. */
  hashLo(id: number): number {
    return this.meta[META_FIELDS * id + HASH_LO] ?? 0
  }

  /** Record `id` as a plain record of five strings. */
  record(id: number): LocationRecord.LocationRecord {
    const at = META_FIELDS * id
    const start = this.meta[at + START]!
    // One decode, then slices of it: one native call rather than five.
    const line = this.text(start, this.meta[at + END]!)
    const sliceOf = (field: number) => line.slice(this.meta[at + field]! - start, this.fieldEnd(at, field) - start)
    return {
      origin: sliceOf(ORIGIN_AT),
      skew: sliceOf(SKEW_AT),
      client: sliceOf(CLIENT_AT),
      location: sliceOf(LOCATION_AT),
      time: sliceOf(TIME_AT)
    }
  }

  origin(id: number): string {
    return this.field(id, ORIGIN_AT)
  }
  skew(id: number): string {
    return this.field(id, SKEW_AT)
  }
  client(id: number): string {
    return this.field(id, CLIENT_AT)
  }
  location(id: number): string {
    return this.field(id, LOCATION_AT)
  }
  time(id: number): string {
    return this.field(id, TIME_AT)
  }

  private field(id: number, field: number): string {
    const at = META_FIELDS * id
    return this.text(this.meta[at + field]!, this.fieldEnd(at, field))
  }

  private fieldEnd(at: number, field: number): number {
    return field === TIME_AT ? this.meta[at + END]! : this.meta[at + field + 1]! - 1
  }

  private text(start: number, end: number): string {
    return this.bytes.toString("latin1", start, end)
  }

  /** Where a slot of `capacity` bytes starts, or `NO_ROOM`. */
  private allocate(capacity: number): number {
    const reused = this.freeSlots.get(capacity)?.pop()
    if (reused !== undefined) return reused
    if (this.used + capacity > this.bytes.length) {
      if (this.used + capacity > this.maxBytes) {
        this.lastGrowthFailure = undefined
        return NO_ROOM
      }
      let grown: Buffer
      try {
        grown = Buffer.allocUnsafeSlow(Math.min(this.maxBytes, Math.max(2 * this.bytes.length, this.used + capacity)))
      } catch (cause) {
        // The runtime has no memory to give: the same answer as a full store, with its reason kept.
        this.lastGrowthFailure = cause
        return NO_ROOM
      }
      this.bytes.copy(grown, 0, 0, this.used)
      this.bytes = grown
    }
    const start = this.used
    this.used += capacity
    return start
  }

  private release(start: number, capacity: number): void {
    const slots = this.freeSlots.get(capacity)
    if (slots === undefined) this.freeSlots.set(capacity, [start])
    else slots.push(start)
  }
}

/**
 * Record `id` of some AT lines as a LocationRecord whose fields are read
 * when asked for: comparing a new record with a stored one mostly needs only
 * the stored time. One view serves every comparison (`id` is set before each).
 */
export class StoredView implements LocationRecord.LocationRecord {
  id = 0
  constructor(private readonly lines: AtLines) {}
  get origin(): string {
    return this.lines.origin(this.id)
  }
  get skew(): string {
    return this.lines.skew(this.id)
  }
  get client(): string {
    return this.lines.client(this.id)
  }
  get location(): string {
    return this.lines.location(this.id)
  }
  get time(): string {
    return this.lines.time(this.id)
  }
}
