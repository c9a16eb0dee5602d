/**
 * @herd/places: what is near a point, as a Nearby Search (legacy) body,
 * whatever the provider (PROTOCOL.md section 8).
 */
export { failureBody, PlacesClient, PlacesError } from "./PlacesClient.ts"
export type { NearbyQuery, PlacesBody } from "./PlacesClient.ts"

export { geonamesAttribution, layerOffline, makeOffline } from "./Offline.ts"
export { layerGoogleLegacy, makeGoogleLegacy } from "./GoogleLegacy.ts"
export type { GoogleLegacyOptions } from "./GoogleLegacy.ts"
export { googleFieldMask, layerGoogle, legacyResult, makeGoogle } from "./Google.ts"
export type { GoogleOptions } from "./Google.ts"
export { layerFixtures } from "./Fixtures.ts"
export type { FixtureAnswers } from "./Fixtures.ts"
export { cachedNearby, cachedPlaces, defaultCacheCapacity, defaultCacheTtlMs } from "./Cache.ts"
export type { CachedPlaces, CacheOptions } from "./Cache.ts"
export {
  layerFromConfig,
  PlacesConfig,
  PlacesConfigError,
  placesDefaults,
  PlacesProvider,
  readPlacesEnv,
  resolvePlaces
} from "./Config.ts"
export type { PlacesConfigInput, PlacesEnv, PlacesSettings } from "./Config.ts"
