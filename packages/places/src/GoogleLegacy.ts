/**
 * The `google-legacy` provider: Google Places Nearby Search (legacy),
 * `GET {baseUrl}/maps/api/place/nearbysearch/json?location=LAT,LNG&radius=METRES&key=KEY`.
 * Its body already has the shape WHATSAT answers with: it is checked and
 * passed on, results cut to the limit.
 */
import { HttpClient, HttpClientRequest } from "@effect/platform"
import { Effect, Either, Layer, Redacted, Schema } from "effect"
import type { Context, Scope } from "effect"
import { defaultGoogleLegacyBaseUrl } from "./internal/defaults.ts"
import {
  decodeJson,
  decodeShape,
  excerpt,
  httpFailure,
  isSuccessful,
  makeHttpProvider,
  placesError,
  wholeMetres
} from "./internal/upstream.ts"
import type { Answer, HttpProviderOptions, Upstream } from "./internal/upstream.ts"
import { PlacesClient } from "./PlacesClient.ts"
import type { NearbyQuery, PlacesBody, PlacesError } from "./PlacesClient.ts"

/** The options of every HTTP provider; `baseUrl` defaults to "https://maps.googleapis.com". */
export interface GoogleLegacyOptions extends HttpProviderOptions {}

export const make = (
  options: GoogleLegacyOptions
): Effect.Effect<Context.Tag.Service<PlacesClient>, never, HttpClient.HttpClient | Scope.Scope> =>
  makeHttpProvider(
    { name: "google-legacy", label: "Google Places (legacy)", defaultBaseUrl: defaultGoogleLegacyBaseUrl },
    options,
    nearbyRequest,
    interpret
  )

export const layer = (
  options: GoogleLegacyOptions
): Layer.Layer<PlacesClient, never, HttpClient.HttpClient> => Layer.scoped(PlacesClient, make(options))

const nearbyRequest = (upstream: Upstream, query: NearbyQuery): HttpClientRequest.HttpClientRequest =>
  HttpClientRequest.get(`${upstream.baseUrl}/maps/api/place/nearbysearch/json`).pipe(
    HttpClientRequest.setUrlParams({
      location: `${query.latitude},${query.longitude}`,
      radius: String(wholeMetres(query.radiusMetres)),
      key: Redacted.value(upstream.apiKey)
    }),
    HttpClientRequest.acceptJson
  )

/**
 * The legacy body. Unknown fields are kept and passed on; `results` must be
 * objects. Error answers sometimes omit `results` and `html_attributions`.
 */
const LegacyBody = Schema.Struct(
  {
    html_attributions: Schema.optionalWith(Schema.Array(Schema.Unknown), { default: () => [], exact: true }),
    results: Schema.optionalWith(Schema.Array(Schema.Record({ key: Schema.String, value: Schema.Unknown })), {
      default: () => [],
      exact: true
    }),
    status: Schema.String,
    next_page_token: Schema.optionalWith(Schema.String, { exact: true }),
    error_message: Schema.optionalWith(Schema.String, { exact: true })
  },
  Schema.Record({ key: Schema.String, value: Schema.Unknown })
)

const interpret = (upstream: Upstream, query: NearbyQuery, answer: Answer): Effect.Effect<PlacesBody, PlacesError> => {
  if (!isSuccessful(answer.httpStatus)) {
    // Read what the body says, if it says anything in the legacy shape.
    const body = Either.getOrUndefined(
      Either.flatMap(decodeJson(upstream, answer.text), (json) => decodeShape(upstream, LegacyBody, json))
    )
    return Effect.fail(httpFailure(upstream, answer.httpStatus, {
      status: body?.status,
      detail: body === undefined ? excerpt(answer.text) : [body.status, body.error_message].join(": ")
    }))
  }
  // An Either is an Effect: a Left fails it.
  return Either.flatMap(decodeJson(upstream, answer.text), (json) => decodeShape(upstream, LegacyBody, json)).pipe(
    Either.flatMap((body) => judgeStatus(upstream, body)),
    Either.map((body): PlacesBody => ({ ...body, results: body.results.slice(0, Math.max(0, query.limit)) }))
  )

}

/** OK and ZERO_RESULTS are answers; every other status is a failure. */
const judgeStatus = (
  upstream: Upstream,
  body: typeof LegacyBody.Type
): Either.Either<typeof LegacyBody.Type, PlacesError> => {
  const message = `${upstream.label} answered ${body.status}${
    body.error_message === undefined ? "" : `: ${excerpt(body.error_message)}`
  }`
  switch (body.status) {
    case "OK":
    case "ZERO_RESULTS":
      return Either.right(body)
    case "OVER_QUERY_LIMIT":
    case "OVER_DAILY_LIMIT":
      return Either.left(placesError(upstream, { reason: "Quota", status: body.status, message }))
    case "REQUEST_DENIED":
      return Either.left(placesError(upstream, { reason: "Denied", status: body.status, message }))
    default:
      // INVALID_REQUEST, UNKNOWN_ERROR and anything newer.
      return Either.left(placesError(upstream, { reason: "Http", status: body.status, message }))
  }
}
