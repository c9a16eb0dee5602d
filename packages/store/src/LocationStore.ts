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
import type { LocationRecord } from "@herd/protocol"
import { Context, Effect, Layer } from "effect"
import { LatestRecords, LOST } from "./internal/LatestRecords.ts"

export class LocationStore extends Context.Tag("@herd/store/LocationStore")<
  LocationStore,
  {
    readonly get: (client: string) => LocationRecord | undefined
    /** Keeps `record` if it is newer than the stored one; answers whether it won. */
    readonly offer: (record: LocationRecord) => boolean
    /** Every stored record, for catch-up of a neighbour. */
    readonly snapshot: () => ReadonlyArray<LocationRecord>
    readonly size: () => number
  }
>() {}

/**
 * A store in this process's memory: a Map from each client to the id of its
 * AT line, kept as bytes (see `AtLines`). `get` and `snapshot` hand out plain
 * records, which can be spread and printed like any other. `offer` throws a
 * RangeError for a record whose text is not latin1 (a char past U+00FF),
 * which no wire line can make, and keeps nothing of it.
 */
export const makeMemory: Effect.Effect<LocationStore["Type"]> = Effect.sync(() => {
  const latest = new LatestRecords()
  return LocationStore.of({
    get: (client) => latest.get(client),
    offer: (record) => latest.offer(record) !== LOST,
    snapshot: () => latest.snapshot(),
    size: () => latest.size()
  })
})

export const layerMemory: Layer.Layer<LocationStore> = Layer.effect(LocationStore, makeMemory)
