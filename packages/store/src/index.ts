/**
 * @herd/store: the latest record of every client, in memory or on disk.
 */

/** The `LocationStore` service (get, `unsafeOffer`, snapshot, digest) and the memory store. */
export * as LocationStore from "./LocationStore.ts"

/** The `DurableStore` service: a `LocationStore` on SQLite that outlives its process, with seqs for catch-up. */
export * as DurableStore from "./DurableStore.ts"
