/**
 * The latest known location of every client, by the ordering rule of
 * PROTOCOL.md section 5: whatever order the same records arrive in, every
 * store that has seen them holds the same winner for each client.
 *
 * The methods are synchronous on purpose, like `Protocol`'s: a server calls
 * them once or twice per line on its hot path, where an Effect per call costs
 * more than the work itself. A durable store can still sit behind this tag
 * (answer from memory, persist behind).
 */
import { LocationRecord } from "@herd/protocol"
import { Context, Effect, Layer } from "effect"
import { fnv1a64Into, Digest } from "./internal/digest.ts"
import type { StoreDigest } from "./internal/digest.ts"
import { LatestRecords } from "./internal/LatestRecords.ts"
import { memoryStore } from "./internal/offer.ts"
import type { OfferResult } from "./internal/offer.ts"

export type { StoreDigest } from "./internal/digest.ts"

export { UnstorableRecordError } from "./internal/offer.ts"
export type { OfferResult } from "./internal/offer.ts"

export class LocationStore extends Context.Tag("@herd/store/LocationStore")<
  LocationStore,
  {
    readonly get: (client: string) => LocationRecord.LocationRecord | undefined
    /**
     * Keeps `record` if it is newer than the stored one; answers whether it
     * won, or why it could not be kept (`UnstorableRecordError`, the store
     * unchanged). A synchronous side effect, hence `unsafe`: the hot path
     * calls it once per record, where an Effect per call would cost more
     * than the work. `atLine`, when given, is `formatAtLine(record)`, made
     * by the caller already (a server replies with it): the store keeps it
     * rather than making it again.
     */
    readonly unsafeOffer: (record: LocationRecord.LocationRecord, atLine?: string) => OfferResult
    /** Every stored record, for catch-up of a neighbour. */
    readonly snapshot: () => ReadonlyArray<LocationRecord.LocationRecord>
    readonly size: () => number
    /**
     * The record count and the sum (mod 2^64) of the FNV-1a 64 hash of each
     * stored record's AT line bytes, as 16 hex digits: stores holding the
     * same winners have the same digest, whatever order the records came
     * in. Brought up to date when asked (a link's beat, a status): it hashes
     * the records changed since the last time, so storing costs no hash.
     */
    readonly digest: () => StoreDigest
  }
>() {}

const hashScratch = new Uint32Array(2)

/**
 * The digest of `records`, computed from scratch (the one a store holding
 * exactly these records answers): for a store of one's own, and to check one.
 */
export const digestOf = (records: Iterable<LocationRecord.LocationRecord>): StoreDigest => {
  const sum = new Digest()
  for (const record of records) {
    const line = Buffer.from(LocationRecord.formatAtLine(record), "latin1")
    fnv1a64Into(line, 0, line.length, hashScratch, 0)
    sum.add(hashScratch[0] ?? 0, hashScratch[1] ?? 0)
  }
  return sum.value()
}

/**
 * A store in this process's memory: a Map from each client to the id of its
 * AT line, kept as bytes (see `AtLines`). `get` and `snapshot` hand out plain
 * records, which can be spread and printed like any other. `unsafeOffer`
 * answers `UnstorableRecordError` for a record whose text is not latin1 (a
 * char past U+00FF), which no wire line can make, and keeps nothing of it.
 */
export const makeMemory: Effect.Effect<LocationStore["Type"]> = Effect.sync(() => memoryStore(new LatestRecords()))

export const layerMemory: Layer.Layer<LocationStore> = Layer.effect(LocationStore, makeMemory)
