import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, TestClock } from "effect"
import { Fixtures, PlacesClient } from "../src/index.ts"

const query: PlacesClient.NearbyQuery = { latitude: 1, longitude: 2, radiusMetres: 3000, limit: 2 }
const threeResults: PlacesClient.PlacesBody = { html_attributions: [], results: [{ n: 1 }, { n: 2 }, { n: 3 }], status: "OK" }

describe("layerFixtures", () => {
  it.effect("answers a fixed body, cut to the limit", () =>
    Effect.gen(function*() {
      const places = yield* PlacesClient.PlacesClient
      expect(places.provider).toBe("fixtures")
      expect(yield* places.nearby(query)).toEqual({ ...threeResults, results: [{ n: 1 }, { n: 2 }] })
    }).pipe(Effect.provide(Fixtures.layer(threeResults))))

  it.effect("answers from a function of the query, which may fail or take its time", () =>
    Effect.gen(function*() {
      const places = yield* PlacesClient.PlacesClient
      expect(places.provider).toBe("slow-and-flaky")
      const slow = yield* Effect.fork(places.nearby({ ...query, radiusMetres: 1 }))
      yield* TestClock.adjust("1 second")
      expect((yield* Fiber.join(slow)).results).toEqual([{ radius: 1 }])
      expect(yield* Effect.flip(places.nearby({ ...query, radiusMetres: 2 }))).toMatchObject({
        reason: "Quota",
        status: "OVER_QUERY_LIMIT"
      })
      expect((yield* places.nearby({ ...query, radiusMetres: 3 })).results).toEqual([{ radius: 3 }])
    }).pipe(Effect.provide(Fixtures.layer((asked) => {
      const body: PlacesClient.PlacesBody = { html_attributions: [], results: [{ radius: asked.radiusMetres }], status: "OK" }
      switch (asked.radiusMetres) {
        case 1:
          return Effect.delay(Effect.succeed(body), "1 second")
        case 2:
          return Effect.fail(new PlacesClient.PlacesError({ reason: "Quota", status: "OVER_QUERY_LIMIT", message: "fixture quota" }))
        default:
          return body
      }
    }, { provider: "slow-and-flaky" }))))
})
