import { FetchHttpClient } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Either, Exit, Redacted, Schema } from "effect"
import { PlacesClient, PlacesConfig } from "../src/index.ts"
import { fakeHttpServer, json } from "./support/FakeHttpServer.ts"

const key = "TEST-KEY-9f8e7d"
const decode = Schema.decodeUnknownSync(PlacesConfig.PlacesConfig)

const settingsOf = (input: PlacesConfig.PlacesConfigInput, env = {}): PlacesConfig.PlacesSettings | PlacesConfig.PlacesConfigError =>
  Either.merge(PlacesConfig.resolvePlaces(decode(input), env))

describe("PlacesConfig", () => {
  it("takes {} as a complete config and keeps the key redacted", () => {
    expect(decode({})).toEqual({})
    const config = decode({ provider: "google", apiKey: key, timeoutMs: 2000 })
    expect(config.apiKey && Redacted.value(config.apiKey)).toBe(key)
    expect(String(config.apiKey)).not.toContain(key)
    expect(JSON.stringify(config)).not.toContain(key)
  })

  it("rejects a bad value, naming the field", () => {
    for (const input of [{ timeoutMs: 0 }, { provider: "bing" }, { google: { baseUrl: "ftp://x" } }, { cacheTtlMs: -1 }]) {
      expect(Either.isLeft(Schema.decodeUnknownEither(PlacesConfig.PlacesConfig)(input))).toBe(true)
    }
  })
})

describe("resolvePlaces", () => {
  it("is offline with no key, Google (New) with one", () => {
    expect(settingsOf({})).toEqual({ provider: "offline", cacheTtlMs: 30000 })
    expect(settingsOf({}, { HERD_PLACES_API_KEY: key })).toEqual({
      provider: "google",
      apiKey: Redacted.make(key),
      baseUrl: "https://places.googleapis.com",
      timeoutMs: 5000,
      cacheTtlMs: 30000
    })
    expect(settingsOf({ apiKey: key, provider: "google-legacy", googleLegacy: { baseUrl: "http://127.0.0.1:9" } }))
      .toMatchObject({ provider: "google-legacy", baseUrl: "http://127.0.0.1:9" })
  })

  it("takes the provider from HERD_PLACES_PROVIDER first, then the config", () => {
    expect(settingsOf({ provider: "google", apiKey: key }, { HERD_PLACES_PROVIDER: "offline" })).toMatchObject({
      provider: "offline"
    })
    expect(settingsOf({ apiKey: key, provider: "offline" })).toMatchObject({ provider: "offline" })
    expect(settingsOf({ apiKey: key }, { HERD_PLACES_PROVIDER: "google-legacy" })).toMatchObject({
      provider: "google-legacy",
      baseUrl: "https://maps.googleapis.com"
    })
  })

  it("takes the key from HERD_PLACES_API_KEY first, then the config; empty means unset", () => {
    const chosen = settingsOf({ apiKey: "from-config" }, { HERD_PLACES_API_KEY: key })
    expect("apiKey" in chosen && Redacted.value(chosen.apiKey)).toBe(key)
    const fromConfig = settingsOf({ apiKey: "from-config" }, { HERD_PLACES_API_KEY: "", HERD_PLACES_PROVIDER: "" })
    expect("apiKey" in fromConfig && Redacted.value(fromConfig.apiKey)).toBe("from-config")
    expect(settingsOf({ apiKey: "" })).toMatchObject({ provider: "offline" })
  })

  it("fails a Google provider with no key, naming places.apiKey", () => {
    for (const [input, env] of [[{ provider: "google" }, {}], [{}, { HERD_PLACES_PROVIDER: "google-legacy" }]] as const) {
      const error = settingsOf(input, env)
      expect(error).toBeInstanceOf(PlacesConfig.PlacesConfigError)
      expect(error).toMatchObject({ field: "places.apiKey" })
      expect(error instanceof PlacesConfig.PlacesConfigError && error.message).toMatch(/^places\.apiKey: .*HERD_PLACES_API_KEY/)
    }
  })

  it("fails an unknown HERD_PLACES_PROVIDER, naming it", () => {
    expect(settingsOf({}, { HERD_PLACES_PROVIDER: "bing" })).toMatchObject({
      field: "HERD_PLACES_PROVIDER",
      message: "HERD_PLACES_PROVIDER: \"bing\" is not a provider: use \"offline\", \"google\" or \"google-legacy\""
    })
  })

  it("reads process.env as it is", () => {
    const env: NodeJS.ProcessEnv = { HERD_PLACES_PROVIDER: "offline", PATH: "/bin" }
    expect(Either.merge(PlacesConfig.resolvePlaces({}, env))).toMatchObject({ provider: "offline" })
  })

  it("fails an invalid config value given as a value, naming the field", () => {
    expect(Either.merge(PlacesConfig.resolvePlaces({ timeoutMs: -5 }))).toMatchObject({
      field: "places.timeoutMs",
      message: "places.timeoutMs: must be a positive integer"
    })
  })
})

describe("layerFromConfig", () => {
  it.scopedLive("builds the provider the config calls for", () =>
    Effect.gen(function*() {
      const server = yield* fakeHttpServer(() => Effect.succeed(json({})))
      const providerOf = (config: PlacesConfig.PlacesConfigInput, env = {}) =>
        Effect.provide(PlacesClient.PlacesClient, PlacesConfig.layerFromConfig(decode(config), env)).pipe(Effect.provide(FetchHttpClient.layer))
      expect((yield* providerOf({})).provider).toBe("offline")
      const google = yield* providerOf({ google: { baseUrl: server.baseUrl } }, { HERD_PLACES_API_KEY: key })
      expect(google.provider).toBe("google")
      const legacy = yield* providerOf({ provider: "google-legacy", apiKey: key, googleLegacy: { baseUrl: server.baseUrl } })
      expect(legacy.provider).toBe("google-legacy")
    }))

  it.scopedLive("sends the Google provider's requests to the configured base URL with the key", () =>
    Effect.gen(function*() {
      const server = yield* fakeHttpServer(() => Effect.succeed(json({})))
      const body = yield* Effect.flatMap(PlacesClient.PlacesClient, (places) =>
        places.nearby({ latitude: 1, longitude: 2, radiusMetres: 1000, limit: 1 })).pipe(
          Effect.provide(PlacesConfig.layerFromConfig(decode({ google: { baseUrl: server.baseUrl } }), { HERD_PLACES_API_KEY: key })),
          Effect.provide(FetchHttpClient.layer)
        )
      expect(body.status).toBe("ZERO_RESULTS")
      expect(server.seen.map((request) => [request.path, request.headers["x-goog-api-key"]])).toEqual([
        ["/v1/places:searchNearby", key]
      ])
    }))

  it.effect("fails to build without a key for Google", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(
        Effect.provide(PlacesClient.PlacesClient, PlacesConfig.layerFromConfig(decode({ provider: "google" }))).pipe(
          Effect.provide(FetchHttpClient.layer),
          Effect.withConfigProvider(ConfigProvider.fromMap(new Map()))
        )
      )
      expect(exit).toEqual(Exit.fail(new PlacesConfig.PlacesConfigError({
        field: "places.apiKey",
        message: "places.apiKey: the \"google\" provider needs an API key: set HERD_PLACES_API_KEY or places.apiKey"
      })))
    }))

  it.scopedLive("reads the key and the provider through Config, from whatever ConfigProvider is current", () =>
    Effect.gen(function*() {
      const server = yield* fakeHttpServer(() => Effect.succeed(json({})))
      const providerWith = (environment: ReadonlyArray<readonly [string, string]>) =>
        Effect.provide(PlacesClient.PlacesClient, PlacesConfig.layerFromConfig(decode({ google: { baseUrl: server.baseUrl } }))).pipe(
          Effect.provide(FetchHttpClient.layer),
          Effect.withConfigProvider(ConfigProvider.fromMap(new Map(environment)))
        )
      expect((yield* providerWith([])).provider).toBe("offline")
      expect((yield* providerWith([["HERD_PLACES_API_KEY", key]])).provider).toBe("google")
      expect((yield* providerWith([["HERD_PLACES_API_KEY", key], ["HERD_PLACES_PROVIDER", "offline"]])).provider).toBe(
        "offline"
      )
      const wrong = yield* Effect.flip(providerWith([["HERD_PLACES_PROVIDER", "bing"]]))
      expect(wrong.field).toBe("HERD_PLACES_PROVIDER")
    }))
})
