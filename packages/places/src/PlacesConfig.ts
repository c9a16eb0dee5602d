/**
 * The `places` part of the herd's config, and the choice of provider layer
 * from it and the environment (PROTOCOL.md section 8, ARCHITECTURE.md
 * "Configuration").
 */
import type { HttpClient } from "@effect/platform"
import { Config, Effect, Either, Layer, Option, ParseResult, Redacted, Schema } from "effect"
import { defaultCacheTtlMs } from "./Cache.ts"
import * as Google from "./Google.ts"
import * as GoogleLegacy from "./GoogleLegacy.ts"
import { defaultGoogleBaseUrl, defaultGoogleLegacyBaseUrl, defaultTimeoutMs } from "./internal/defaults.ts"
import * as Offline from "./Offline.ts"
import { PlacesClient } from "./PlacesClient.ts"

export const PlacesProvider = Schema.Literal("offline", "google", "google-legacy")
export type PlacesProvider = typeof PlacesProvider.Type

const PositiveInt = Schema.Int.pipe(Schema.positive({ message: () => "must be a positive integer" }))
const NonNegativeInt = Schema.Int.pipe(Schema.nonNegative({ message: () => "must be an integer, 0 or more" }))
const HttpUrl = Schema.String.pipe(
  Schema.filter((text) => URL.canParse(text) && ["http:", "https:"].includes(new URL(text).protocol), {
    message: () => "must be an http or https URL"
  })
)

/**
 * Every field is optional and stays optional once decoded: the defaults
 * (`placesDefaults`) are applied by `resolvePlaces`, so `{}` is a complete
 * config. The key decodes to a `Redacted`, which prints as `<redacted>`.
 */
export const PlacesConfig = Schema.Struct({
  /** Default: `google` when there is a key, else `offline`. */
  provider: Schema.optionalWith(PlacesProvider, { exact: true }),
  /** Better in HERD_PLACES_API_KEY than in a file. */
  apiKey: Schema.optionalWith(Schema.Redacted(Schema.String), { exact: true }),
  timeoutMs: Schema.optionalWith(PositiveInt, { exact: true }),
  /** 0 caches no answer (identical queries in flight are still shared). */
  cacheTtlMs: Schema.optionalWith(NonNegativeInt, { exact: true }),
  google: Schema.optionalWith(Schema.Struct({ baseUrl: Schema.optionalWith(HttpUrl, { exact: true }) }), { exact: true }),
  googleLegacy: Schema.optionalWith(Schema.Struct({ baseUrl: Schema.optionalWith(HttpUrl, { exact: true }) }), {
    exact: true
  })
})
export type PlacesConfig = typeof PlacesConfig.Type
/** The config as written in a file: `apiKey` a plain string. */
export type PlacesConfigInput = typeof PlacesConfig.Encoded

export const placesDefaults = {
  timeoutMs: defaultTimeoutMs,
  cacheTtlMs: defaultCacheTtlMs,
  googleBaseUrl: defaultGoogleBaseUrl,
  googleLegacyBaseUrl: defaultGoogleLegacyBaseUrl
} as const

/** The environment variables read (`process.env` fits). An empty value counts as unset, in the config too. */
export interface PlacesEnv {
  readonly HERD_PLACES_API_KEY?: string | undefined
  readonly HERD_PLACES_PROVIDER?: string | undefined
  /** Other variables are ignored; the signature lets `process.env` in. */
  readonly [name: string]: string | undefined
}

export class PlacesConfigError extends Schema.TaggedError<PlacesConfigError>()("PlacesConfigError", {
  /** The field at fault: `places.apiKey`, `HERD_PLACES_PROVIDER`, ... */
  field: Schema.String,
  /** `field: what is wrong`. */
  message: Schema.String,
  /** The `ConfigError` or `ParseError` it was made from, when there is one. */
  cause: Schema.optional(Schema.Defect)
}) {}

/** The provider chosen and everything it needs, defaults applied. */
export type PlacesSettings =
  | { readonly provider: "offline"; readonly cacheTtlMs: number }
  | {
    readonly provider: "google" | "google-legacy"
    readonly apiKey: Redacted.Redacted<string>
    readonly baseUrl: string
    readonly timeoutMs: number
    readonly cacheTtlMs: number
  }

/**
 * The provider: HERD_PLACES_PROVIDER, else `config.provider`, else `google`
 * when there is a key and `offline` when there is none. The key:
 * HERD_PLACES_API_KEY, else `config.apiKey`. A Google provider with no key is
 * an error naming `places.apiKey`.
 */
export const resolvePlaces = (
  config: PlacesConfig,
  env: PlacesEnv = {}
): Either.Either<PlacesSettings, PlacesConfigError> =>
  Either.gen(function*() {
    const valid = yield* Either.mapLeft(
      Schema.validateEither(PlacesConfig)(config, { errors: "all" }),
      describeIssue
    )
    const keyFromEnv = nonEmpty(env.HERD_PLACES_API_KEY)
    const apiKey = keyFromEnv !== undefined
      ? Redacted.make(keyFromEnv)
      : valid.apiKey !== undefined && Redacted.value(valid.apiKey) !== ""
      ? valid.apiKey
      : undefined
    const provider = yield* chooseProvider(valid, env, apiKey)
    const cacheTtlMs = valid.cacheTtlMs ?? placesDefaults.cacheTtlMs
    if (provider === "offline") return { provider, cacheTtlMs }
    if (apiKey === undefined) {
      return yield* Either.left(
        new PlacesConfigError({
          field: "places.apiKey",
          message: `places.apiKey: the "${provider}" provider needs an API key: set HERD_PLACES_API_KEY or places.apiKey`
        })
      )
    }
    return {
      provider,
      apiKey,
      baseUrl: provider === "google"
        ? valid.google?.baseUrl ?? placesDefaults.googleBaseUrl
        : valid.googleLegacy?.baseUrl ?? placesDefaults.googleLegacyBaseUrl,
      timeoutMs: valid.timeoutMs ?? placesDefaults.timeoutMs,
      cacheTtlMs
    }
  })

/**
 * HERD_PLACES_API_KEY and HERD_PLACES_PROVIDER, read through Effect's
 * `Config` from the current `ConfigProvider`: the process environment by
 * default, a map in a test (`ConfigProvider.fromMap`), or whatever provider
 * an application installs. The key is read as a `Redacted`.
 */
export const readPlacesEnv: Effect.Effect<PlacesEnv, PlacesConfigError> = Config.all({
  apiKey: Config.option(Config.redacted("HERD_PLACES_API_KEY")),
  provider: Config.option(Config.string("HERD_PLACES_PROVIDER"))
}).pipe(
  Effect.map(({ apiKey, provider }) => ({
    HERD_PLACES_API_KEY: Option.getOrUndefined(Option.map(apiKey, Redacted.value)),
    HERD_PLACES_PROVIDER: Option.getOrUndefined(provider)
  })),
  Effect.mapError((error) =>
    new PlacesConfigError({
      field: "environment",
      message: `HERD_PLACES_API_KEY or HERD_PLACES_PROVIDER: ${error.message}`,
      cause: error
    })
  )
)

/**
 * The PlacesClient layer the config and the environment call for (see
 * `resolvePlaces`); the environment is read through `Config`
 * (`readPlacesEnv`) unless `env` is given.
 */
export const layerFromConfig = (
  config: PlacesConfig,
  env?: PlacesEnv
): Layer.Layer<PlacesClient, PlacesConfigError, HttpClient.HttpClient> =>
  Layer.scoped(
    PlacesClient,
    Effect.flatMap(env === undefined ? readPlacesEnv : Effect.succeed(env), (values) => resolvePlaces(config, values)).pipe(
      Effect.flatMap((settings) => {
      switch (settings.provider) {
        case "offline":
          return Offline.make({ ttlMs: settings.cacheTtlMs })
        case "google":
          return Google.make(settings)
        case "google-legacy":
          return GoogleLegacy.make(settings)
      }
    }))
  )

const chooseProvider = (
  config: PlacesConfig,
  env: PlacesEnv,
  apiKey: Redacted.Redacted<string> | undefined
): Either.Either<PlacesProvider, PlacesConfigError> => {
  const fromEnv = nonEmpty(env.HERD_PLACES_PROVIDER)
  if (fromEnv !== undefined) {
    return Schema.is(PlacesProvider)(fromEnv) ? Either.right(fromEnv) : Either.left(
      new PlacesConfigError({
        field: "HERD_PLACES_PROVIDER",
        message: `HERD_PLACES_PROVIDER: ${
          JSON.stringify(fromEnv)
        } is not a provider: use "offline", "google" or "google-legacy"`
      })
    )
  }
  if (config.provider !== undefined) return Either.right(config.provider)
  return Either.right(apiKey === undefined ? "offline" : "google")
}

const nonEmpty = (value: string | undefined): string | undefined => value === "" ? undefined : value

const describeIssue = (error: ParseResult.ParseError): PlacesConfigError => {
  const [issue] = ParseResult.ArrayFormatter.formatErrorSync(error)
  const field = ["places", ...(issue?.path ?? []).map(String)].join(".")
  return new PlacesConfigError({ field, message: `${field}: ${issue?.message ?? "is not valid"}`, cause: error })
}
