/**
 * The winner of each client, in memory: the AT lines in `AtLines`, found by
 * client through an index of their ids (`ClientIndex`). The memory store is
 * this alone; the durable store answers from it too and persists behind.
 */
import { LocationRecord } from "@herd/protocol"
import { AtLines, hashClient, StoredView } from "./AtLines.ts"
import { Digest } from "./digest.ts"
import type { StoreDigest } from "./digest.ts"

/** What `offer` answers for a record that lost. */
export const LOST = -1

export { NO_ROOM, NOT_LATIN1 } from "./AtLines.ts"
export type { Refusal } from "./AtLines.ts"

/**
 * Each client's record id, in an open-addressing table (linear probing,
 * at most half full) of the ids and the hashes of their clients, keyed by
 * the client bytes that `AtLines` already holds. Why not a `Map` from the
 * client text: its entries and the key strings cost some 100 bytes a client
 * on the heap (a third of a stored client), and making the key strings was
 * much of the time to load a store; this table costs 8 to 16 bytes a client
 * and makes no string.
 */
class ClientIndex {
  private ids = new Int32Array(1024).fill(-1)
  private hashes = new Int32Array(1024)
  private mask = 1023
  count = 0
  /** The hash of the client `find` looked for last, for the `insert` that follows a miss. */
  lastHash = 0

  constructor(private readonly lines: AtLines) {}

  /** Where `client`'s id is, or -1. */
  private slotOf(client: string): number {
    const hash = hashClient(client)
    this.lastHash = hash
    const ids = this.ids
    const mask = this.mask
    for (let slot = hash & mask;; slot = (slot + 1) & mask) {
      const id = ids[slot] ?? -1
      if (id === -1) return -1
      if (this.hashes[slot] === hash && this.lines.clientIs(id, client)) return slot
    }
  }

  /** `client`'s record id, or -1. */
  find(client: string): number {
    const slot = this.slotOf(client)
    return slot === -1 ? -1 : (this.ids[slot] ?? -1)
  }

  /** Adds `id`, whose client (of hash `hash`) is not in the table. */
  insert(id: number, hash: number): void {
    if (2 * (this.count + 1) > this.ids.length) this.grow()
    const mask = this.mask
    let slot = hash & mask
    while (this.ids[slot] !== -1) slot = (slot + 1) & mask
    this.ids[slot] = id
    this.hashes[slot] = hash
    this.count++
  }

  /** Takes `client` out; answers its id, or -1. Later entries of its run move back into the hole (no tombstones). */
  remove(client: string): number {
    let hole = this.slotOf(client)
    if (hole === -1) return -1
    const ids = this.ids
    const hashes = this.hashes
    const mask = this.mask
    const id = ids[hole] ?? -1
    ids[hole] = -1
    this.count--
    for (let next = (hole + 1) & mask; ids[next] !== -1; next = (next + 1) & mask) {
      const home = (hashes[next] ?? 0) & mask
      // The entry at `next` may fill the hole if the hole lies on its probe path, from its home to it.
      if (((next - home) & mask) >= ((next - hole) & mask)) {
        ids[hole] = ids[next] ?? -1
        hashes[hole] = hashes[next] ?? 0
        ids[next] = -1
        hole = next
      }
    }
    return id
  }

  /** Every id held. */
  *values(): Generator<number> {
    for (const id of this.ids) if (id !== -1) yield id
  }

  private grow(): void {
    const oldIds = this.ids
    const oldHashes = this.hashes
    this.ids = new Int32Array(2 * oldIds.length).fill(-1)
    this.hashes = new Int32Array(2 * oldIds.length)
    this.mask = this.ids.length - 1
    this.count = 0
    for (let slot = 0; slot < oldIds.length; slot++) {
      const id = oldIds[slot] ?? -1
      if (id !== -1) this.insert(id, oldHashes[slot] ?? 0)
    }
  }
}

/** Where a record's hash stands with the digest's sum (`LatestRecords.summed`). */
const NO_RECORD = 0
const NOT_SUMMED = 1
const SUMMED = 2

export class LatestRecords {
  readonly lines: AtLines
  private readonly index: ClientIndex
  private readonly stored: StoredView
  /**
   * The sum of the hashes of the records whose hash is `SUMMED`. A record is
   * hashed when the digest is asked for (a link's beat, a status page), not
   * when it is stored: an offer, on the hot path, pays no hash of its
   * line, and a client that reports many times between two digests is
   * hashed once.
   */
  private readonly sum = new Digest()
  /** By id: `NO_RECORD`, `NOT_SUMMED` (its id is in `unsummed`) or `SUMMED`. */
  private summed = new Uint8Array(1024)
  /**
   * The ids stored or changed since the last digest: each at most once while
   * `NOT_SUMMED` (an id removed and reused meanwhile may be there twice, and
   * is hashed once), so never more than the records held and those removed.
   */
  private unsummed = new Int32Array(1024)
  private unsummedCount = 0

  /** @param maxLineBytes how many bytes of AT lines it may hold (default: all that `AtLines` can address). */
  constructor(maxLineBytes?: number) {
    this.lines = new AtLines(maxLineBytes)
    this.index = new ClientIndex(this.lines)
    this.stored = new StoredView(this.lines)
  }

  get(client: string): LocationRecord.LocationRecord | undefined {
    const id = this.index.find(client)
    return id === -1 ? undefined : this.lines.record(id)
  }

  /**
   * Keeps `record` if it is newer than the stored one: answers its id if it
   * won, `LOST` if not, or the `Refusal` (below `LOST`) if it could not be
   * kept, the store then unchanged. `atLine`, if given, is
   * `formatAtLine(record)` (see `AtLines.add`).
   */
  offer(record: LocationRecord.LocationRecord, atLine?: string): number {
    const index = this.index
    const id = index.find(record.client)
    if (id === -1) {
      const hash = index.lastHash
      const added = this.lines.add(record, atLine)
      if (added < 0) return added
      index.insert(added, hash)
      this.changed(added)
      return added
    }
    // The winner rule (`LocationRecord.isNewer`) orders by client time
    // first: a time that differs decides, read from the stored bytes.
    const byTime = this.lines.compareTime(id, record.time)
    if (byTime < 0) return LOST
    if (byTime === 0) {
      this.stored.id = id
      if (!LocationRecord.isNewer(record, this.stored)) return LOST
    }
    const refused = this.lines.replace(id, record, atLine)
    if (refused !== 0) return refused
    this.changed(id)
    return id
  }

  /**
   * Keeps an AT line written by `AtLines`, `source[from, to)`, for a client
   * not held yet, with no comparison: for loading what a store kept, one line
   * per client. Answers whether it was such a line.
   */
  load(source: Buffer, from: number, to: number): boolean {
    const id = this.lines.addLine(source, from, to)
    if (id === undefined) return false
    this.index.insert(id, this.lines.clientHash(id))
    this.changed(id)
    return true
  }

  /** Forgets `client`'s record; answers whether there was one. */
  remove(client: string): boolean {
    const id = this.index.remove(client)
    if (id === -1) return false
    if (this.summed[id] === SUMMED) this.sum.subtract(this.lines.hashHi(id), this.lines.hashLo(id))
    // If its id is still in `unsummed`, it is skipped there.
    this.summed[id] = NO_RECORD
    this.lines.remove(id)
    return true
  }

  snapshot(): Array<LocationRecord.LocationRecord> {
    return Array.from(this.index.values(), (id) => this.lines.record(id))
  }

  size(): number {
    return this.index.count
  }

  /** The count and the sum of the hashes of the records held (see `Digest`); the records changed since the last digest are hashed now. */
  digest(): StoreDigest {
    const lines = this.lines
    const unsummed = this.unsummed
    for (let i = 0; i < this.unsummedCount; i++) {
      const id = unsummed[i] ?? 0
      if (this.summed[id] !== NOT_SUMMED) continue
      lines.hash(id)
      this.sum.add(lines.hashHi(id), lines.hashLo(id))
      this.summed[id] = SUMMED
    }
    this.unsummedCount = 0
    return this.sum.value()
  }

  /**
   * Record `id` was just added or changed: a hash in the sum is that of its
   * line before (`hash` has not run since), and leaves it until the next
   * digest hashes the line it has now.
   */
  private changed(id: number): void {
    if (id >= this.summed.length) {
      const grown = new Uint8Array(Math.max(2 * this.summed.length, id + 1))
      grown.set(this.summed)
      this.summed = grown
    }
    const state = this.summed[id]
    if (state === NOT_SUMMED) return
    if (state === SUMMED) this.sum.subtract(this.lines.hashHi(id), this.lines.hashLo(id))
    this.summed[id] = NOT_SUMMED
    if (this.unsummedCount === this.unsummed.length) {
      const grown = new Int32Array(2 * this.unsummed.length)
      grown.set(this.unsummed)
      this.unsummed = grown
    }
    this.unsummed[this.unsummedCount++] = id
  }
}
