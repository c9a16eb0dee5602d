import { FetchHttpClient } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Redacted, Schema } from "effect"
import { Google, PlacesClient } from "../src/index.ts"
import { fakeHttpServer, json } from "./support/FakeHttpServer.ts"
import type { FakeReply, SeenRequest } from "./support/FakeHttpServer.ts"

const key = "TEST-KEY-9f8e7d"
const query: PlacesClient.NearbyQuery = { latitude: 34.06893, longitude: -118.445127, radiusMetres: 1500, limit: 3 }

/** A place as Places API (New) sends it, every masked field present. */
const fullPlace = {
  id: "ChIJ-full",
  displayName: { text: "Café & Bar \"Westwood\"", languageCode: "en" },
  formattedAddress: "1 Westwood Blvd, Los Angeles, CA 90024, USA",
  shortFormattedAddress: "1 Westwood Blvd, Los Angeles",
  location: { latitude: 34.0689, longitude: -118.4452 },
  types: ["cafe", "food", "point_of_interest", "establishment"],
  rating: 4.5,
  userRatingCount: 120,
  businessStatus: "OPERATIONAL",
  priceLevel: "PRICE_LEVEL_MODERATE",
  iconMaskBaseUri: "https://maps.gstatic.com/mapfiles/place_api/icons/v2/cafe_pinlet",
  iconBackgroundColor: "#FF9E67",
  plusCode: { globalCode: "8553XHCF+H3", compoundCode: "XHCF+H3 Los Angeles, CA, USA" },
  photos: [{
    name: "places/ChIJ-full/photos/PHOTO1",
    widthPx: 4032,
    heightPx: 3024,
    authorAttributions: [{ displayName: "A <Photographer>", uri: "https://maps.google.com/maps/contrib/1", photoUri: "//x" }]
  }],
  someNewField: "ignored"
}

/** The same place in the legacy shape, by the README's table. */
const fullPlaceLegacy = {
  name: "Café & Bar \"Westwood\"",
  place_id: "ChIJ-full",
  geometry: { location: { lat: 34.0689, lng: -118.4452 } },
  vicinity: "1 Westwood Blvd, Los Angeles",
  types: ["cafe", "food", "point_of_interest", "establishment"],
  rating: 4.5,
  user_ratings_total: 120,
  business_status: "OPERATIONAL",
  price_level: 2,
  icon_mask_base_uri: "https://maps.gstatic.com/mapfiles/place_api/icons/v2/cafe_pinlet",
  icon_background_color: "#FF9E67",
  plus_code: { global_code: "8553XHCF+H3", compound_code: "XHCF+H3 Los Angeles, CA, USA" },
  photos: [{
    photo_reference: "places/ChIJ-full/photos/PHOTO1",
    height: 3024,
    width: 4032,
    html_attributions: ["<a href=\"https://maps.google.com/maps/contrib/1\">A &lt;Photographer&gt;</a>"]
  }]
}

const smallPlace = (n: number) => ({
  id: `id-${n}`,
  displayName: { text: `Place ${n}` },
  formattedAddress: `${n} Main St, Los Angeles, CA, USA`,
  location: { latitude: 34 + n / 1000 },
  types: ["store"]
})

/** The radius a request asked for, read through a schema of the body sent. */
const sentRadius = (request: SeenRequest): string =>
  String(
    Schema.decodeUnknownSync(
      Schema.parseJson(Schema.Struct({ locationRestriction: Schema.Struct({ circle: Schema.Struct({ radius: Schema.Number }) }) }))
    )(request.body).locationRestriction.circle.radius
  )

const googleAgainst = (reply: (request: SeenRequest) => Effect.Effect<FakeReply>, options: Partial<Google.GoogleOptions> = {}) =>
  Effect.gen(function*() {
    const server = yield* fakeHttpServer(reply)
    const client = yield* Google.make({ apiKey: Redacted.make(key), baseUrl: `${server.baseUrl}/`, ...options })
    return { server, client }
  }).pipe(Effect.provide(FetchHttpClient.layer))

const failureOf = (nearby: Effect.Effect<PlacesClient.PlacesBody, PlacesClient.PlacesError>) =>
  Effect.gen(function*() {
    const error = yield* Effect.flip(nearby)
    expect(error).toBeInstanceOf(PlacesClient.PlacesError)
    for (const printed of [error.message, String(error), JSON.stringify(error), JSON.stringify(PlacesClient.failureBody(error))]) {
      expect(printed).not.toContain(key)
    }
    return error
  })

const googleError = (code: number, status: string, message: string, reason?: string) =>
  json({
    error: {
      code,
      message,
      status,
      ...(reason === undefined ? {} : { details: [{ "@type": "type.googleapis.com/google.rpc.ErrorInfo", reason }] })
    }
  }, code)

describe("google provider (Places API New)", () => {
  it.scopedLive("POSTs searchNearby with the key and field mask in headers and a circle in metres", () =>
    Effect.gen(function*() {
      const { client, server } = yield* googleAgainst(() => Effect.succeed(json({ places: [fullPlace] })))
      expect(client.provider).toBe("google")
      yield* client.nearby(query)
      const [request] = server.seen
      expect(request?.method).toBe("POST")
      expect(request?.path).toBe("/v1/places:searchNearby")
      expect([...(request?.query ?? [])]).toEqual([])
      expect(request?.headers["x-goog-api-key"]).toBe(key)
      expect(request?.headers["x-goog-fieldmask"]).toBe(Google.googleFieldMask)
      expect(request?.headers["content-type"]).toBe("application/json")
      expect(JSON.parse(request?.body ?? "")).toEqual({
        locationRestriction: {
          circle: { center: { latitude: 34.06893, longitude: -118.445127 }, radius: 1500 }
        },
        maxResultCount: 3
      })
      expect(Google.googleFieldMask).toBe(
        "places.id,places.displayName,places.formattedAddress,places.shortFormattedAddress,places.location," +
          "places.types,places.rating,places.userRatingCount,places.businessStatus,places.priceLevel," +
          "places.iconMaskBaseUri,places.iconBackgroundColor,places.plusCode,places.photos"
      )
    }))

  it.scopedLive("asks for at most 20 places", () =>
    Effect.gen(function*() {
      const { client, server } = yield* googleAgainst(() => Effect.succeed(json({})))
      yield* client.nearby({ ...query, limit: 50 })
      expect(JSON.parse(server.seen[0]?.body ?? "")).toMatchObject({ maxResultCount: 20 })
    }))

  it.scopedLive("maps places into the legacy shape, by the README's table", () =>
    Effect.gen(function*() {
      const places = [fullPlace, 1, 2, 3, 4].map((place) => typeof place === "number" ? smallPlace(place) : place)
      const { client } = yield* googleAgainst(() => Effect.succeed(json({ places })))
      const body = yield* client.nearby(query)
      expect(body).toEqual({
        html_attributions: [],
        results: [
          fullPlaceLegacy,
          ...[1, 2].map((n) => ({
            name: `Place ${n}`,
            place_id: `id-${n}`,
            // proto3 JSON leaves a zero longitude out.
            geometry: { location: { lat: 34 + n / 1000, lng: 0 } },
            vicinity: `${n} Main St, Los Angeles, CA, USA`,
            types: ["store"]
          }))
        ],
        status: "OK"
      })
    }))

  it.scopedLive("answers ZERO_RESULTS to an empty answer", () =>
    Effect.gen(function*() {
      const { client } = yield* googleAgainst(() => Effect.succeed(json({})))
      expect(yield* client.nearby(query)).toEqual({ html_attributions: [], results: [], status: "ZERO_RESULTS" })
    }))

  it.scopedLive("reads JSON with blank lines in it", () =>
    Effect.gen(function*() {
      const spaced = JSON.stringify({ places: [fullPlace] }, null, 2).replace(/\n/g, "\n\n")
      const { client } = yield* googleAgainst(() => Effect.succeed({ body: spaced }))
      expect((yield* client.nearby(query)).results).toEqual([fullPlaceLegacy])
    }))

  it.scopedLive("maps Google's errors to legacy statuses", () =>
    Effect.gen(function*() {
      const replies: Record<string, FakeReply> = {
        "1": googleError(429, "RESOURCE_EXHAUSTED", "Quota exceeded for quota metric 'SearchNearby requests'."),
        "2": googleError(403, "PERMISSION_DENIED", "Places API (New) has not been used in project 123."),
        "3": googleError(400, "INVALID_ARGUMENT", `API key not valid: ${key}`, "API_KEY_INVALID"),
        "4": googleError(400, "INVALID_ARGUMENT", "Invalid radius."),
        "5": { status: 500, body: "<html>oops</html>" },
        "6": { status: 429, body: "" }
      }
      const { client } = yield* googleAgainst((request) => Effect.succeed(replies[sentRadius(request)] ?? json({})))
      const errorFor = (radiusMetres: number) => failureOf(client.nearby({ ...query, radiusMetres }))
      const quota = yield* errorFor(1)
      expect(quota).toMatchObject({ reason: "Quota", status: "OVER_QUERY_LIMIT" })
      expect(quota.message).toBe(
        "Google Places (New) answered HTTP 429: RESOURCE_EXHAUSTED: Quota exceeded for quota metric 'SearchNearby requests'."
      )
      expect(yield* errorFor(2)).toMatchObject({ reason: "Denied", status: "REQUEST_DENIED" })
      const invalidKey = yield* errorFor(3)
      expect(invalidKey).toMatchObject({ reason: "Denied", status: "REQUEST_DENIED" })
      expect(invalidKey.message).toContain("API key not valid: [redacted]")
      expect(yield* errorFor(4)).toMatchObject({ reason: "Http", status: "INVALID_REQUEST" })
      const http = yield* errorFor(5)
      expect(http).toMatchObject({ reason: "Http", message: "Google Places (New) answered HTTP 500: <html>oops</html>" })
      expect(PlacesClient.failureBody(http).status).toBe("UNKNOWN_ERROR")
      expect(yield* errorFor(6)).toMatchObject({ reason: "Quota", status: "OVER_QUERY_LIMIT" })
    }))

  it.scopedLive("turns garbage and wrongly shaped bodies into BadBody", () =>
    Effect.gen(function*() {
      const bodies: Record<string, string> = {
        "1": "<!doctype html><title>Hi</title>",
        "2": JSON.stringify({ places: {} }),
        "3": JSON.stringify({ places: [{ displayName: { text: "no id" } }] }),
        "4": JSON.stringify({ places: [{ id: "x", location: { latitude: "north" } }] }),
        "5": "null"
      }
      const { client } = yield* googleAgainst((request) => Effect.succeed({ body: bodies[sentRadius(request)] ?? "{}" }))
      for (const radiusMetres of [1, 2, 3, 4, 5]) {
        expect((yield* failureOf(client.nearby({ ...query, radiusMetres }))).reason).toBe("BadBody")
      }
      expect((yield* failureOf(client.nearby({ ...query, radiusMetres: 3 }))).message).toBe(
        "Google Places (New) answered with an unexpected body: places.0.id: is missing"
      )
    }))

  it.scopedLive("times out a provider that answers too slowly", () =>
    Effect.gen(function*() {
      const { client } = yield* googleAgainst(() => Effect.as(Effect.sleep("10 seconds"), json({})), { timeoutMs: 200 })
      const started = Date.now()
      const error = yield* failureOf(client.nearby(query))
      expect(error).toMatchObject({ reason: "Timeout", message: "Google Places (New) gave no answer within 200 ms" })
      expect(Date.now() - started).toBeLessThan(2000)
    }))

  it.scopedLive("sends ten concurrent identical queries upstream once", () =>
    Effect.gen(function*() {
      const firstArrived = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      const { client, server } = yield* googleAgainst(
        () =>
          Deferred.succeed(firstArrived, undefined).pipe(
            Effect.zipRight(Deferred.await(release)),
            Effect.as(json({ places: [fullPlace] }))
          ),
        { cacheTtlMs: 0 }
      )
      const all = yield* Effect.fork(Effect.all(Array.from({ length: 10 }, () => client.nearby(query)), { concurrency: "unbounded" }))
      yield* Deferred.await(firstArrived)
      yield* Deferred.succeed(release, undefined)
      const bodies = yield* Fiber.join(all)
      bodies.forEach((body) => expect(body.results).toEqual([fullPlaceLegacy]))
      expect(server.seen).toHaveLength(1)
    }))
})
