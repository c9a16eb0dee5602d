/**
 * The `google` provider: Places API (New), `POST {baseUrl}/v1/places:searchNearby`.
 * Its `places` are mapped into the legacy Nearby Search shape by the table in
 * this package's README.md, so a client never depends on the provider.
 */
import { HttpClient, HttpClientRequest } from "@effect/platform"
import { Effect, Either, Layer, Redacted, Schema } from "effect"
import type { Context, Scope } from "effect"
import { defaultGoogleBaseUrl } from "./internal/defaults.ts"
import {
  decodeJson,
  decodeShape,
  excerpt,
  isSuccessful,
  makeHttpProvider,
  placesError,
  wholeMetres
} from "./internal/upstream.ts"
import type { Answer, HttpProviderOptions, Upstream } from "./internal/upstream.ts"
import { PlacesClient } from "./PlacesClient.ts"
import type { NearbyQuery, PlacesBody, PlacesError } from "./PlacesClient.ts"

/** The options of every HTTP provider; `baseUrl` defaults to "https://places.googleapis.com". */
export interface GoogleOptions extends HttpProviderOptions {}

/**
 * The fields asked for: those the legacy shape has a place for (README.md).
 * The mask also sets the price: Google bills a request at the highest SKU of
 * the fields it names, and rating, userRatingCount and priceLevel are
 * Enterprise fields; drop them here to be billed at Pro.
 */
export const googleFieldMask: string = [
  "places.id",
  "places.displayName",
  "places.formattedAddress",
  "places.shortFormattedAddress",
  "places.location",
  "places.types",
  "places.rating",
  "places.userRatingCount",
  "places.businessStatus",
  "places.priceLevel",
  "places.iconMaskBaseUri",
  "places.iconBackgroundColor",
  "places.plusCode",
  "places.photos"
].join(",")

/** Places API (New) answers with at most 20 places. */
const maxResultCount = 20

export const make = (
  options: GoogleOptions
): Effect.Effect<Context.Tag.Service<PlacesClient>, never, HttpClient.HttpClient | Scope.Scope> =>
  makeHttpProvider(
    { name: "google", label: "Google Places (New)", defaultBaseUrl: defaultGoogleBaseUrl },
    options,
    nearbyRequest,
    interpret
  )

export const layer = (options: GoogleOptions): Layer.Layer<PlacesClient, never, HttpClient.HttpClient> =>
  Layer.scoped(PlacesClient, make(options))

const nearbyRequest = (upstream: Upstream, query: NearbyQuery): HttpClientRequest.HttpClientRequest =>
  HttpClientRequest.post(`${upstream.baseUrl}/v1/places:searchNearby`).pipe(
    HttpClientRequest.setHeaders({
      "X-Goog-Api-Key": Redacted.value(upstream.apiKey),
      "X-Goog-FieldMask": googleFieldMask
    }),
    HttpClientRequest.acceptJson,
    HttpClientRequest.bodyUnsafeJson({
      locationRestriction: {
        circle: {
          center: { latitude: query.latitude, longitude: query.longitude },
          radius: wholeMetres(query.radiusMetres)
        }
      },
      maxResultCount: Math.min(maxResultCount, Math.max(1, Math.floor(query.limit)))
    })
  )

// The answer, as far as the mapping reads it. Other fields are ignored. The
// API speaks proto3 JSON, which leaves out zero values: a place on the equator
// has no `latitude`, hence the defaults.
const LocalizedText = Schema.Struct({ text: Schema.String })

const AuthorAttribution = Schema.Struct({
  displayName: Schema.optionalWith(Schema.String, { exact: true }),
  uri: Schema.optionalWith(Schema.String, { exact: true })
})

const Photo = Schema.Struct({
  name: Schema.String,
  widthPx: Schema.optionalWith(Schema.Number, { exact: true }),
  heightPx: Schema.optionalWith(Schema.Number, { exact: true }),
  authorAttributions: Schema.optionalWith(Schema.Array(AuthorAttribution), { default: () => [], exact: true })
})

const Place = Schema.Struct({
  id: Schema.String,
  displayName: Schema.optionalWith(LocalizedText, { exact: true }),
  formattedAddress: Schema.optionalWith(Schema.String, { exact: true }),
  shortFormattedAddress: Schema.optionalWith(Schema.String, { exact: true }),
  location: Schema.optionalWith(
    Schema.Struct({
      latitude: Schema.optionalWith(Schema.Number, { default: () => 0, exact: true }),
      longitude: Schema.optionalWith(Schema.Number, { default: () => 0, exact: true })
    }),
    { exact: true }
  ),
  types: Schema.optionalWith(Schema.Array(Schema.String), { exact: true }),
  rating: Schema.optionalWith(Schema.Number, { exact: true }),
  userRatingCount: Schema.optionalWith(Schema.Number, { exact: true }),
  businessStatus: Schema.optionalWith(Schema.String, { exact: true }),
  priceLevel: Schema.optionalWith(Schema.String, { exact: true }),
  iconMaskBaseUri: Schema.optionalWith(Schema.String, { exact: true }),
  iconBackgroundColor: Schema.optionalWith(Schema.String, { exact: true }),
  plusCode: Schema.optionalWith(
    Schema.Struct({
      globalCode: Schema.optionalWith(Schema.String, { exact: true }),
      compoundCode: Schema.optionalWith(Schema.String, { exact: true })
    }),
    { exact: true }
  ),
  photos: Schema.optionalWith(Schema.Array(Photo), { exact: true })
})
type Place = typeof Place.Type

/** No place found is `{}`. */
const SearchNearbyAnswer = Schema.Struct({
  places: Schema.optionalWith(Schema.Array(Place), { default: () => [], exact: true })
})

/** Google's error body: `{ "error": { "code": 429, "message": "...", "status": "RESOURCE_EXHAUSTED" } }`. */
const GoogleErrorAnswer = Schema.Struct({
  error: Schema.Struct({
    message: Schema.optionalWith(Schema.String, { exact: true }),
    status: Schema.optionalWith(Schema.String, { exact: true }),
    details: Schema.optionalWith(
      Schema.Array(Schema.Struct({ reason: Schema.optionalWith(Schema.String, { exact: true }) })),
      { default: () => [], exact: true }
    )
  })
})

const interpret = (upstream: Upstream, query: NearbyQuery, answer: Answer): Effect.Effect<PlacesBody, PlacesError> => {
  if (!isSuccessful(answer.httpStatus)) return Effect.fail(failure(upstream, answer))
  // An Either is an Effect: a Left fails it.
  return Either.flatMap(decodeJson(upstream, answer.text), (json) => decodeShape(upstream, SearchNearbyAnswer, json)).pipe(
    Either.map(({ places }): PlacesBody => ({
      html_attributions: [],
      results: places.slice(0, Math.max(0, query.limit)).map(legacyResult),
      status: places.length === 0 ? "ZERO_RESULTS" : "OK"
    }))
  )

}

/**
 * A non-2xx answer, in the legacy vocabulary of statuses: RESOURCE_EXHAUSTED
 * (429) is OVER_QUERY_LIMIT; a refused or invalid key (401, 403,
 * API_KEY_INVALID) is REQUEST_DENIED; INVALID_ARGUMENT (400) is
 * INVALID_REQUEST; anything else has no status (UNKNOWN_ERROR on the wire).
 */
const failure = (upstream: Upstream, answer: Answer): PlacesError => {
  const error = Either.getOrUndefined(
    Either.flatMap(decodeJson(upstream, answer.text), (json) => decodeShape(upstream, GoogleErrorAnswer, json))
  )?.error
  const said = error === undefined
    ? excerpt(answer.text)
    : [error.status, error.message].filter((part) => part !== undefined).join(": ")
  const message = `${upstream.label} answered HTTP ${answer.httpStatus}${said === "" ? "" : `: ${excerpt(said)}`}`
  if (answer.httpStatus === 429 || error?.status === "RESOURCE_EXHAUSTED") {
    return placesError(upstream, { reason: "Quota", status: "OVER_QUERY_LIMIT", message })
  }
  if (
    answer.httpStatus === 401 || answer.httpStatus === 403 ||
    error?.status === "PERMISSION_DENIED" || error?.status === "UNAUTHENTICATED" ||
    error?.details.some((detail) => detail.reason === "API_KEY_INVALID") === true
  ) {
    return placesError(upstream, { reason: "Denied", status: "REQUEST_DENIED", message })
  }
  const invalid = answer.httpStatus === 400 || error?.status === "INVALID_ARGUMENT"
  return placesError(upstream, { reason: "Http", status: invalid ? "INVALID_REQUEST" : undefined, message })
}

/** One place of the New API as a legacy Nearby Search result (README.md, "Field mapping"). */
export const legacyResult = (place: Place): Record<string, unknown> => {
  const vicinity = place.shortFormattedAddress ?? place.formattedAddress
  const priceLevel = place.priceLevel === undefined ? undefined : legacyPriceLevel.get(place.priceLevel)
  return {
    name: place.displayName?.text ?? "",
    place_id: place.id,
    ...(place.location === undefined
      ? {}
      : { geometry: { location: { lat: place.location.latitude, lng: place.location.longitude } } }),
    ...(vicinity === undefined ? {} : { vicinity }),
    types: place.types ?? [],
    ...(place.rating === undefined ? {} : { rating: place.rating }),
    ...(place.userRatingCount === undefined ? {} : { user_ratings_total: place.userRatingCount }),
    ...(place.businessStatus === undefined ? {} : { business_status: place.businessStatus }),
    ...(priceLevel === undefined ? {} : { price_level: priceLevel }),
    ...(place.iconMaskBaseUri === undefined ? {} : { icon_mask_base_uri: place.iconMaskBaseUri }),
    ...(place.iconBackgroundColor === undefined ? {} : { icon_background_color: place.iconBackgroundColor }),
    ...(place.plusCode === undefined ? {} : {
      plus_code: {
        ...(place.plusCode.globalCode === undefined ? {} : { global_code: place.plusCode.globalCode }),
        ...(place.plusCode.compoundCode === undefined ? {} : { compound_code: place.plusCode.compoundCode })
      }
    }),
    ...(place.photos === undefined ? {} : {
      photos: place.photos.map((photo) => ({
        photo_reference: photo.name,
        ...(photo.heightPx === undefined ? {} : { height: photo.heightPx }),
        ...(photo.widthPx === undefined ? {} : { width: photo.widthPx }),
        html_attributions: photo.authorAttributions.map(attributionHtml)
      }))
    })
  }
}

/** The legacy API's 0 to 4; PRICE_LEVEL_UNSPECIFIED has no counterpart and is left out. */
const legacyPriceLevel: ReadonlyMap<string, number> = new Map([
  ["PRICE_LEVEL_FREE", 0],
  ["PRICE_LEVEL_INEXPENSIVE", 1],
  ["PRICE_LEVEL_MODERATE", 2],
  ["PRICE_LEVEL_EXPENSIVE", 3],
  ["PRICE_LEVEL_VERY_EXPENSIVE", 4]
])

/** The legacy API credits a photo's author as an HTML link. */
const attributionHtml = (author: typeof AuthorAttribution.Type): string => {
  const name = escapeHtml(author.displayName ?? "")
  return author.uri === undefined ? name : `<a href="${escapeHtml(author.uri)}">${name}</a>`
}

const escapeHtml = (text: string): string =>
  text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;")
