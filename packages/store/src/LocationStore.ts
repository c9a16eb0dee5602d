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
import { isNewer } from "@herd/protocol"
import type { LocationRecord } from "@herd/protocol"
import { Context, Effect, Layer } from "effect"

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

/** A store in this process's memory: one Map entry per client. */
export const makeMemory: Effect.Effect<LocationStore["Type"]> = Effect.sync(() => {
  const records = new Map<string, LocationRecord>()
  return LocationStore.of({
    get: (client) => records.get(client),
    offer: (record) => {
      const stored = records.get(record.client)
      if (stored !== undefined && !isNewer(record, stored)) return false
      records.set(record.client, record)
      return true
    },
    snapshot: () => Array.from(records.values()),
    size: () => records.size
  })
})

export const layerMemory: Layer.Layer<LocationStore> = Layer.effect(LocationStore, makeMemory)
