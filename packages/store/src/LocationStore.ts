/**
 * The latest known location of every client, by the ordering rule of
 * PROTOCOL.md section 5: whatever order the same records arrive in, every
 * store that has seen them holds the same winner for each client.
 */
import { isNewer } from "@herd/protocol"
import type { LocationRecord } from "@herd/protocol"
import { Context, Effect, Layer, Option } from "effect"

export class LocationStore extends Context.Tag("@herd/store/LocationStore")<
  LocationStore,
  {
    readonly get: (client: string) => Effect.Effect<Option.Option<LocationRecord>>
    /** Keeps `record` if it is newer than the stored one; answers whether it won. */
    readonly offer: (record: LocationRecord) => Effect.Effect<boolean>
    /** Every stored record, for catch-up of a neighbour. */
    readonly snapshot: Effect.Effect<ReadonlyArray<LocationRecord>>
    readonly size: Effect.Effect<number>
  }
>() {}

/** A store in this process's memory: one Map entry per client. */
export const makeMemory = Effect.sync(() => {
  const records = new Map<string, LocationRecord>()
  return LocationStore.of({
    get: (client) => Effect.sync(() => Option.fromNullable(records.get(client))),
    offer: (record) =>
      Effect.sync(() => {
        const stored = records.get(record.client)
        if (stored !== undefined && !isNewer(record, stored)) return false
        records.set(record.client, record)
        return true
      }),
    snapshot: Effect.sync(() => Array.from(records.values())),
    size: Effect.sync(() => records.size)
  })
})

export const layerMemory: Layer.Layer<LocationStore> = Layer.effect(LocationStore, makeMemory)
