/**
 * What the two Google providers share: one HTTP exchange under a time-out,
 * and the turning of everything that can go wrong into a PlacesError whose
 * message never holds the API key.
 *
 * The key travels in the legacy URL's query string and in the New API's
 * header, and `@effect/platform`'s HttpClientError messages print the request
 * URL; so no HttpClientError, nor any text that came from the network, is
 * passed on without being rewritten or scrubbed here.
 */
import { HttpClient } from "@effect/platform"
import type { HttpClientError, HttpClientRequest } from "@effect/platform"
import { Duration, Effect, Either, ParseResult, Predicate, Redacted, Schema } from "effect"
import type { Context, Scope } from "effect"
import { cachedPlaces } from "../Cache.ts"
import { PlacesClient, PlacesError } from "../PlacesClient.ts"
import type { NearbyQuery, PlacesBody } from "../PlacesClient.ts"
import { defaultTimeoutMs } from "./defaults.ts"

export interface Upstream {
  /** The provider as messages name it: "Google Places (New)". */
  readonly label: string
  /** The base URL without a trailing slash. */
  readonly baseUrl: string
  readonly apiKey: Redacted.Redacted<string>
  readonly timeoutMs: number
}

/** What came back: the HTTP status and the body as text. */
export interface Answer {
  readonly httpStatus: number
  readonly text: string
}

/**
 * The radius in whole metres, at least 1: 1.1 km computed in floating point is
 * 1100.0000000000002 m, which has no place in a URL or a request body.
 */
export const wholeMetres = (radiusMetres: number): number => Math.max(1, Math.round(radiusMetres))

export const trimBaseUrl = (baseUrl: string): string => baseUrl.replace(/\/+$/, "")

/**
 * The HttpClient for a provider. Tracing is off for these requests because a
 * span records the full URL and the request headers, that is, the key; and no
 * trace context is sent to a third party.
 */
export const providerClient = (client: HttpClient.HttpClient): HttpClient.HttpClient =>
  client.pipe(
    HttpClient.withTracerDisabledWhen(() => true),
    HttpClient.withTracerPropagation(false)
  )

/**
 * Sends `request` and reads the whole body, then lets `interpret` judge it;
 * all of it within the upstream's time-out. The request's fiber is
 * interrupted on time-out, which aborts the HTTP request.
 */
export const exchange = (
  upstream: Upstream,
  client: HttpClient.HttpClient,
  request: HttpClientRequest.HttpClientRequest,
  interpret: (answer: Answer) => Effect.Effect<PlacesBody, PlacesError>
): Effect.Effect<PlacesBody, PlacesError> =>
  client.execute(request).pipe(
    Effect.flatMap((response) => Effect.map(response.text, (text): Answer => ({ httpStatus: response.status, text }))),
    Effect.mapError((error) => unreachable(upstream, error)),
    Effect.flatMap(interpret),
    Effect.timeoutFail({
      duration: Duration.millis(upstream.timeoutMs),
      onTimeout: () =>
        placesError(upstream, {
          reason: "Timeout",
          message: `${upstream.label} gave no answer within ${upstream.timeoutMs} ms`
        })
    })
  )

/** What a Google provider is given, besides its own request and reading of the answer. */
export interface HttpProviderOptions {
  readonly apiKey: Redacted.Redacted<string>
  /** Default: the provider's own (Google's). */
  readonly baseUrl?: string
  /** Default 5000. */
  readonly timeoutMs?: number
  /** Default 30000. */
  readonly cacheTtlMs?: number
  /** Default 10000. */
  readonly cacheCapacity?: number
}

/**
 * A PlacesClient over HTTP: `request` says what to send for a query,
 * `interpret` what the answer means; the cache, the time-out and the
 * scrubbing of the key are the same for every provider.
 */
export const makeHttpProvider = (
  provider: { readonly name: string; readonly label: string; readonly defaultBaseUrl: string },
  options: HttpProviderOptions,
  request: (upstream: Upstream, query: NearbyQuery) => HttpClientRequest.HttpClientRequest,
  interpret: (upstream: Upstream, query: NearbyQuery, answer: Answer) => Effect.Effect<PlacesBody, PlacesError>
): Effect.Effect<Context.Tag.Service<PlacesClient>, never, HttpClient.HttpClient | Scope.Scope> =>
  Effect.gen(function*() {
    const client = providerClient(yield* HttpClient.HttpClient)
    const upstream: Upstream = {
      label: provider.label,
      baseUrl: trimBaseUrl(options.baseUrl ?? provider.defaultBaseUrl),
      apiKey: options.apiKey,
      timeoutMs: options.timeoutMs ?? defaultTimeoutMs
    }
    const { nearby, peek } = yield* cachedPlaces(
      (query) => exchange(upstream, client, request(upstream, query), (answer) => interpret(upstream, query, answer)),
      {
        ...(options.cacheTtlMs === undefined ? {} : { ttlMs: options.cacheTtlMs }),
        ...(options.cacheCapacity === undefined ? {} : { capacity: options.cacheCapacity })
      }
    )
    return PlacesClient.of({ provider: provider.name, nearby, immediate: peek })
  })

/** A PlacesError whose message is scrubbed of the key, whatever went into it. */
export const placesError = (
  upstream: Upstream,
  fields: {
    readonly reason: PlacesError["reason"]
    readonly status?: string | undefined
    readonly message: string
  }
): PlacesError =>
  new PlacesError({
    reason: fields.reason,
    ...(fields.status === undefined ? {} : { status: fields.status }),
    message: scrub(upstream.apiKey, fields.message)
  })

const scrub = (apiKey: Redacted.Redacted<string>, text: string): string => {
  const key = Redacted.value(apiKey)
  if (key === "") return text
  return [key, encodeURIComponent(key)].reduce((scrubbed, form) => scrubbed.split(form).join("[redacted]"), text)
}

/**
 * Our own words for a transport failure: the provider's origin (scheme, host,
 * port: never the query) and the system error code when there is one.
 */
const unreachable = (upstream: Upstream, error: HttpClientError.HttpClientError): PlacesError => {
  const where = originOf(upstream.baseUrl)
  const code = systemErrorCode(error.cause)
  const detail = code === undefined ? "" : ` (${code})`
  if (error._tag === "ResponseError") {
    return placesError(upstream, {
      reason: "Transport",
      message: `the connection to ${upstream.label} at ${where} broke while reading its answer${detail}`
    })
  }
  return placesError(upstream, {
    reason: "Transport",
    message: error.reason === "Transport"
      ? `could not reach ${upstream.label} at ${where}${detail}`
      : `could not make a request to ${upstream.label} at ${where}: check its baseUrl`
  })
}

const originOf = (baseUrl: string): string => URL.canParse(baseUrl) ? new URL(baseUrl).origin : "an invalid URL"

/** `ECONNREFUSED` and the like, from wherever fetch or node:http put it in the cause chain. */
const systemErrorCode = (cause: unknown): string | undefined => {
  let current = cause
  for (let depth = 0; depth < 5 && Predicate.isObject(current); depth++) {
    if (Predicate.hasProperty(current, "code") && typeof current.code === "string") return current.code
    current = Predicate.hasProperty(current, "cause") ? current.cause : undefined
  }
  return undefined
}

const parseJson = Schema.decodeEither(Schema.parseJson())

/** The body as JSON, or a BadBody error. */
export const decodeJson = (upstream: Upstream, text: string): Either.Either<unknown, PlacesError> =>
  Either.mapLeft(parseJson(text), () =>
    placesError(upstream, {
      reason: "BadBody",
      message: `${upstream.label} answered with a body that is not JSON: ${excerpt(text)}`
    }))

/** The JSON checked against `schema`, or a BadBody error naming the first problem. */
export const decodeShape = <A, I>(
  upstream: Upstream,
  schema: Schema.Schema<A, I>,
  json: unknown
): Either.Either<A, PlacesError> =>
  Either.mapLeft(Schema.decodeUnknownEither(schema)(json), (error) =>
    placesError(upstream, {
      reason: "BadBody",
      message: `${upstream.label} answered with an unexpected body: ${firstIssue(error)}`
    }))

const firstIssue = (error: ParseResult.ParseError): string => {
  const [issue] = ParseResult.ArrayFormatter.formatErrorSync(error)
  if (issue === undefined) return "unknown shape"
  const path = issue.path.length === 0 ? "body" : issue.path.map(String).join(".")
  return excerpt(`${path}: ${issue.message}`)
}

/** Provider text in a message is cut short: a body may be megabytes of HTML. */
export const excerpt = (text: string, max = 200): string => {
  const oneLine = text.replace(/\s+/g, " ").trim()
  return oneLine.length <= max ? oneLine : `${oneLine.slice(0, max)}…`
}

/**
 * A non-2xx answer. 429 is a quota refusal and 401/403 a refused key, as the
 * legacy API would say in its `status`; anything else is an HTTP error with
 * the `status` the caller read from the body, if any. `detail` is what the
 * provider said, for the message.
 */
export const httpFailure = (
  upstream: Upstream,
  httpStatus: number,
  said: { readonly status?: string | undefined; readonly detail?: string | undefined }
): PlacesError => {
  const detail = said.detail === undefined || said.detail === "" ? "" : `: ${excerpt(said.detail)}`
  const message = `${upstream.label} answered HTTP ${httpStatus}${detail}`
  if (httpStatus === 429) return placesError(upstream, { reason: "Quota", status: "OVER_QUERY_LIMIT", message })
  if (httpStatus === 401 || httpStatus === 403) {
    return placesError(upstream, { reason: "Denied", status: "REQUEST_DENIED", message })
  }
  return placesError(upstream, { reason: "Http", status: said.status, message })
}

export const isSuccessful = (httpStatus: number): boolean => httpStatus >= 200 && httpStatus < 300
