export {
  DurableStore,
  DurableStoreError,
  layerDurable,
  makeDurable,
  makeDurableUnscheduled
} from "./Durable.ts"
export type { Checkpoint, DurableOptions, DurableStoreService, SequencedRecord } from "./Durable.ts"
export { digestOf, LocationStore, layerMemory, makeMemory } from "./LocationStore.ts"
export type { StoreDigest } from "./LocationStore.ts"
