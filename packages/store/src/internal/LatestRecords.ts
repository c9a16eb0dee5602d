/**
 * The winner of each client, in memory: a Map from each client to the id of
 * its AT line in `AtLines`. The memory store is this alone; the durable store
 * answers from it too and persists behind.
 */
import { isNewer } from "@herd/protocol"
import type { LocationRecord } from "@herd/protocol"
import { AtLines, StoredView } from "./AtLines.ts"
import { Digest } from "./digest.ts"
import type { StoreDigest } from "./digest.ts"

/** What `offer` answers for a record that lost. */
export const LOST = -1

export class LatestRecords {
  readonly lines = new AtLines()
  private readonly ids = new Map<string, number>()
  private readonly stored = new StoredView(this.lines)
  private readonly sum = new Digest()

  get(client: string): LocationRecord | undefined {
    const id = this.ids.get(client)
    return id === undefined ? undefined : this.lines.record(id)
  }

  /** Keeps `record` if it is newer than the stored one: answers its id if it won, `LOST` if not. */
  offer(record: LocationRecord): number {
    const id = this.ids.get(record.client)
    if (id === undefined) {
      const added = this.lines.add(record)
      // Keyed by a copy of the client from the kept bytes, not by the
      // received one, which may be a slice that keeps its whole line alive.
      this.ids.set(this.lines.client(added), added)
      this.sum.add(this.lines.hashHi(added), this.lines.hashLo(added))
      return added
    }
    this.stored.id = id
    if (!isNewer(record, this.stored)) return LOST
    const replacedHi = this.lines.hashHi(id)
    const replacedLo = this.lines.hashLo(id)
    this.lines.replace(id, record)
    this.sum.subtract(replacedHi, replacedLo)
    this.sum.add(this.lines.hashHi(id), this.lines.hashLo(id))
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
    this.ids.set(this.lines.client(id), id)
    this.sum.add(this.lines.hashHi(id), this.lines.hashLo(id))
    return true
  }

  /** Forgets `client`'s record; answers whether there was one. */
  remove(client: string): boolean {
    const id = this.ids.get(client)
    if (id === undefined) return false
    this.ids.delete(client)
    this.sum.subtract(this.lines.hashHi(id), this.lines.hashLo(id))
    this.lines.remove(id)
    return true
  }

  /** The count and the sum of the hashes of the records held (see `Digest`). */
  digest(): StoreDigest {
    return this.sum.value()
  }

  snapshot(): Array<LocationRecord> {
    return Array.from(this.ids.values(), (id) => this.lines.record(id))
  }

  size(): number {
    return this.ids.size
  }
}
