export { LocationStore, layerMemory, makeMemory } from "./LocationStore.ts"
