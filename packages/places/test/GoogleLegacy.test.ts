import { FetchHttpClient } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Redacted } from "effect"
import { GoogleLegacy, PlacesClient } from "../src/index.ts"
import { fakeHttpServer, json } from "./support/FakeHttpServer.ts"
import type { FakeReply, SeenRequest } from "./support/FakeHttpServer.ts"

const key = "TEST-KEY-9f8e7d"
const query: PlacesClient.NearbyQuery = { latitude: 34.06893, longitude: -118.445127, radiusMetres: 1500, limit: 3 }

const result = (n: number) => ({
  name: `Place ${n}`,
  place_id: `id-${n}`,
  geometry: { location: { lat: 34 + n / 1000, lng: -118 } },
  vicinity: `${n} Main St`,
  types: ["cafe"]
})

const okBody = {
  html_attributions: ["<a>someone</a>"],
  next_page_token: "NEXT",
  results: [1, 2, 3, 4, 5].map(result),
  status: "OK"
}

/** A google-legacy client against a fake server that answers with `reply`. */
const legacyAgainst = (
  reply: (request: SeenRequest) => Effect.Effect<FakeReply>,
  options: Partial<GoogleLegacy.GoogleLegacyOptions> = {}
) =>
  Effect.gen(function*() {
    const server = yield* fakeHttpServer(reply)
    const client = yield* GoogleLegacy.make({ apiKey: Redacted.make(key), baseUrl: server.baseUrl, ...options })
    return { server, client }
  }).pipe(Effect.provide(FetchHttpClient.layer))

/** The error of one query, checked to be a PlacesError free of the key in every printed form. */
const failureOf = (nearby: Effect.Effect<PlacesClient.PlacesBody, PlacesClient.PlacesError>) =>
  Effect.gen(function*() {
    const error = yield* Effect.flip(nearby)
    expect(error).toBeInstanceOf(PlacesClient.PlacesError)
    for (const printed of [error.message, String(error), JSON.stringify(error), JSON.stringify(PlacesClient.failureBody(error))]) {
      expect(printed).not.toContain(key)
    }
    return error
  })

describe("google-legacy provider", () => {
  it.scopedLive("sends GET nearbysearch/json with location, radius in metres and key; cuts results to the limit", () =>
    Effect.gen(function*() {
      const { client, server } = yield* legacyAgainst(() => Effect.succeed(json(okBody)))
      expect(client.provider).toBe("google-legacy")
      const body = yield* client.nearby(query)
      expect(body).toEqual({ ...okBody, results: [1, 2, 3].map(result) })
      expect(server.seen).toHaveLength(1)
      const [request] = server.seen
      expect(request?.method).toBe("GET")
      expect(request?.path).toBe("/maps/api/place/nearbysearch/json")
      expect(Object.fromEntries(request?.query ?? [])).toEqual({
        location: "34.06893,-118.445127",
        radius: "1500",
        key
      })
    }))

  it.scopedLive("sends the radius in whole metres", () =>
    Effect.gen(function*() {
      const { client, server } = yield* legacyAgainst(() => Effect.succeed(json({ results: [], status: "ZERO_RESULTS" })))
      yield* client.nearby({ ...query, radiusMetres: 1.1 * 1000 })
      expect(server.seen[0]?.query.get("radius")).toBe("1100")
    }))

  it.scopedLive("passes ZERO_RESULTS on", () =>
    Effect.gen(function*() {
      const zero = { html_attributions: [], results: [], status: "ZERO_RESULTS" }
      const { client } = yield* legacyAgainst(() => Effect.succeed(json(zero)))
      expect(yield* client.nearby(query)).toEqual(zero)
    }))

  it.scopedLive("reads JSON with blank lines in it", () =>
    Effect.gen(function*() {
      const spaced = JSON.stringify(okBody, null, 3).replace(/\n/g, "\n\n\n")
      const { client } = yield* legacyAgainst(() => Effect.succeed({ body: spaced }))
      expect(yield* client.nearby(query)).toEqual({ ...okBody, results: [1, 2, 3].map(result) })
    }))

  it.scopedLive("turns OVER_QUERY_LIMIT, REQUEST_DENIED and INVALID_REQUEST into PlacesErrors with the provider's words", () =>
    Effect.gen(function*() {
      const answers: Record<string, object> = {
        "1": { html_attributions: [], results: [], status: "OVER_QUERY_LIMIT", error_message: "You have exceeded your daily request quota." },
        "2": { html_attributions: [], results: [], status: "REQUEST_DENIED", error_message: `The provided API key ${key} is invalid.` },
        "3": { html_attributions: [], results: [], status: "INVALID_REQUEST" },
        "4": { status: "UNKNOWN_ERROR" }
      }
      const { client } = yield* legacyAgainst((request) => Effect.succeed(json(answers[request.query.get("radius") ?? ""])))
      const quota = yield* failureOf(client.nearby({ ...query, radiusMetres: 1 }))
      expect(quota).toMatchObject({ reason: "Quota", status: "OVER_QUERY_LIMIT" })
      expect(quota.message).toContain("You have exceeded your daily request quota.")
      const denied = yield* failureOf(client.nearby({ ...query, radiusMetres: 2 }))
      expect(denied).toMatchObject({ reason: "Denied", status: "REQUEST_DENIED" })
      expect(denied.message).toContain("The provided API key [redacted] is invalid.")
      expect(yield* failureOf(client.nearby({ ...query, radiusMetres: 3 }))).toMatchObject({
        reason: "Http",
        status: "INVALID_REQUEST"
      })
      expect(yield* failureOf(client.nearby({ ...query, radiusMetres: 4 }))).toMatchObject({
        reason: "Http",
        status: "UNKNOWN_ERROR"
      })
    }))

  it.scopedLive("turns HTTP 429, 403 and 500 into Quota, Denied and Http", () =>
    Effect.gen(function*() {
      const { client } = yield* legacyAgainst((request) => {
        const status = Number(request.query.get("radius"))
        return Effect.succeed({ status, body: status === 500 ? "<html>Internal error</html>" : "{}" })
      })
      expect(yield* failureOf(client.nearby({ ...query, radiusMetres: 429 }))).toMatchObject({
        reason: "Quota",
        status: "OVER_QUERY_LIMIT"
      })
      expect(yield* failureOf(client.nearby({ ...query, radiusMetres: 403 }))).toMatchObject({
        reason: "Denied",
        status: "REQUEST_DENIED"
      })
      const http = yield* failureOf(client.nearby({ ...query, radiusMetres: 500 }))
      expect(http.reason).toBe("Http")
      expect(http.status).toBeUndefined()
      expect(http.message).toBe("Google Places (legacy) answered HTTP 500: <html>Internal error</html>")
      expect(PlacesClient.failureBody(http).status).toBe("UNKNOWN_ERROR")
    }))

  it.scopedLive("turns garbage and wrongly shaped bodies into BadBody", () =>
    Effect.gen(function*() {
      const bodies: Record<string, string> = {
        "1": "this is not JSON",
        "2": JSON.stringify({ results: "none", status: "OK" }),
        "3": JSON.stringify({ results: [] }),
        "4": JSON.stringify([1, 2, 3]),
        "5": ""
      }
      const { client } = yield* legacyAgainst((request) => Effect.succeed({ body: bodies[request.query.get("radius") ?? ""] ?? "" }))
      for (const radiusMetres of [1, 2, 3, 4, 5]) {
        const error = yield* failureOf(client.nearby({ ...query, radiusMetres }))
        expect(error.reason).toBe("BadBody")
      }
      expect((yield* failureOf(client.nearby({ ...query, radiusMetres: 1 }))).message).toBe(
        "Google Places (legacy) answered with a body that is not JSON: this is not JSON"
      )
    }))

  it.scopedLive("times out a provider that does not answer", () =>
    Effect.gen(function*() {
      const { client } = yield* legacyAgainst(() => Effect.never, { timeoutMs: 200 })
      const error = yield* failureOf(client.nearby(query))
      expect(error).toMatchObject({ reason: "Timeout", message: "Google Places (legacy) gave no answer within 200 ms" })
    }))

  it.scopedLive("reports a refused connection without the URL's query", () =>
    Effect.gen(function*() {
      // A port that was just listened on and is closed again.
      const closed = yield* Effect.scoped(fakeHttpServer(() => Effect.never))
      const client = yield* GoogleLegacy.make({ apiKey: Redacted.make(key), baseUrl: closed.baseUrl }).pipe(
        Effect.provide(FetchHttpClient.layer)
      )
      const error = yield* failureOf(client.nearby(query))
      expect(error.reason).toBe("Transport")
      expect(error.message).toBe(`could not reach Google Places (legacy) at ${closed.baseUrl} (ECONNREFUSED)`)
    }))

  it.scopedLive("reports a base URL that is no URL as a Transport error, not a defect", () =>
    Effect.gen(function*() {
      const client = yield* GoogleLegacy.make({ apiKey: Redacted.make(key), baseUrl: "not a url" }).pipe(
        Effect.provide(FetchHttpClient.layer)
      )
      expect(yield* failureOf(client.nearby(query))).toMatchObject({
        reason: "Transport",
        message: "could not make a request to Google Places (legacy) at an invalid URL: check its baseUrl"
      })
    }))

  it.scopedLive("sends ten concurrent identical queries upstream once", () =>
    Effect.gen(function*() {
      const firstArrived = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      const { client, server } = yield* legacyAgainst(
        () => Deferred.succeed(firstArrived, undefined).pipe(Effect.zipRight(Deferred.await(release)), Effect.as(json(okBody))),
        { cacheTtlMs: 0 }
      )
      const all = yield* Effect.fork(Effect.all(Array.from({ length: 10 }, () => client.nearby(query)), { concurrency: "unbounded" }))
      yield* Deferred.await(firstArrived)
      yield* Deferred.succeed(release, undefined)
      const bodies = yield* Fiber.join(all)
      expect(bodies).toHaveLength(10)
      bodies.forEach((body) => expect(body.results).toHaveLength(3))
      expect(server.seen).toHaveLength(1)
      // With no TTL, the next query goes upstream again.
      yield* client.nearby(query)
      expect(server.seen).toHaveLength(2)
    }))

  it.scopedLive("serves a repeated query from the cache within cacheTtlMs", () =>
    Effect.gen(function*() {
      const { client, server } = yield* legacyAgainst(() => Effect.succeed(json(okBody)))
      yield* client.nearby(query)
      yield* client.nearby(query)
      expect(server.seen).toHaveLength(1)
    }))
})
