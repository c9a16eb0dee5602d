import { describe, expect, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { distance } from "geokdbush"
import { Offline, PlacesClient } from "../src/index.ts"

const ucla = { latitude: 34.06893, longitude: -118.445127 }

/** The fields every offline result has, checked rather than cast. */
const OfflineResult = Schema.Struct({
  name: Schema.String,
  place_id: Schema.String,
  geometry: Schema.Struct({ location: Schema.Struct({ lat: Schema.Number, lng: Schema.Number }) }),
  vicinity: Schema.String,
  types: Schema.Array(Schema.String),
  population: Schema.Number,
  country: Schema.String
})
const decodeResults = Schema.decodeUnknown(Schema.Array(OfflineResult))

describe("offline provider", () => {
  it.effect("answers at once, without a fiber, once its gazetteer is loaded; the same as nearby", () =>
    Effect.gen(function*() {
      const places = yield* PlacesClient.PlacesClient
      const query = { ...ucla, radiusMetres: 5_000, limit: 3 }
      yield* places.warmUp ?? Effect.void
      const immediate = places.immediate?.(query)
      expect(immediate?.status).toBe("OK")
      expect(yield* places.nearby(query)).toEqual(immediate)
    }).pipe(Effect.provide(Offline.layer)))

  it.effect("answers UCLA, 10 km, 5 places: the nearest five, nearest first", () =>
    Effect.gen(function*() {
      const places = yield* PlacesClient.PlacesClient
      expect(places.provider).toBe("offline")
      const body = yield* places.nearby({ ...ucla, radiusMetres: 10_000, limit: 5 })
      expect(body.status).toBe("OK")
      expect(body.html_attributions).toEqual([Offline.geonamesAttribution])
      const results = yield* decodeResults(body.results)
      expect(results).toHaveLength(5)
      const kilometres = results.map((place) =>
        distance(ucla.longitude, ucla.latitude, place.geometry.location.lng, place.geometry.location.lat)
      )
      kilometres.forEach((km, i) => {
        expect(km).toBeLessThanOrEqual(10)
        if (i > 0) expect(km).toBeGreaterThanOrEqual(kilometres[i - 1] ?? Number.NaN)
      })
      expect(results.slice(0, 3).map((place) => place.name)).toEqual(["Westwood", "Century City", "Beverly Hills"])
      expect(new Set(results.slice(3).map((place) => place.name))).toEqual(new Set(["Santa Monica", "Culver City"]))
      expect(results[2]).toEqual({
        name: "Beverly Hills",
        place_id: "geonames:5328041",
        geometry: { location: { lat: 34.07362, lng: -118.40036 } },
        vicinity: "CA, US",
        types: ["locality", "political"],
        population: 34869,
        country: "US"
      })
    }).pipe(Effect.provide(Offline.layer)))

  it.effect("keeps to the radius and the limit", () =>
    Effect.gen(function*() {
      const places = yield* PlacesClient.PlacesClient
      const within3km = yield* places.nearby({ ...ucla, radiusMetres: 3000, limit: 20 })
      expect((yield* decodeResults(within3km.results)).map((place) => place.name)).toEqual(["Westwood", "Century City"])
      const one = yield* places.nearby({ ...ucla, radiusMetres: 50_000, limit: 1 })
      expect((yield* decodeResults(one.results)).map((place) => place.name)).toEqual(["Westwood"])
      const wide = yield* places.nearby({ ...ucla, radiusMetres: 50_000, limit: 20 })
      expect(wide.results).toHaveLength(20)
    }).pipe(Effect.provide(Offline.layer)))

  it.effect("answers ZERO_RESULTS in the middle of the Pacific, still crediting GeoNames", () =>
    Effect.gen(function*() {
      const places = yield* PlacesClient.PlacesClient
      const body = yield* places.nearby({ latitude: 0, longitude: -140, radiusMetres: 50_000, limit: 20 })
      expect(body).toEqual({ html_attributions: [Offline.geonamesAttribution], results: [], status: "ZERO_RESULTS" })
    }).pipe(Effect.provide(Offline.layer)))

  it.effect("leaves a numeric admin code out of the vicinity", () =>
    Effect.gen(function*() {
      const places = yield* PlacesClient.PlacesClient
      const body = yield* places.nearby({ latitude: 48.85341, longitude: 2.3488, radiusMetres: 1000, limit: 1 })
      expect((yield* decodeResults(body.results)).map((place) => [place.name, place.vicinity])).toEqual([["Paris", "FR"]])
    }).pipe(Effect.provide(Offline.layer)))
})
