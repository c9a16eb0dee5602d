/**
 * The Places provider behind WHATSAT: what is near a point, as a body in the
 * shape of Google's Nearby Search (legacy) answer, whatever the provider.
 */
import { Context, Schema } from "effect"
import type { Effect } from "effect"

export interface NearbyQuery {
  readonly latitude: number
  readonly longitude: number
  readonly radiusMetres: number
  /** The most results to keep (the WHATSAT bound). */
  readonly limit: number
  /**
   * What names this question for a cache, if the caller has it at hand:
   * queries with the same key must ask the same question, and a key holds
   * no comma (the cache's own keys are the four numbers joined by commas).
   * A server passes the text of the location, radius and bound it already
   * holds; without a key the cache prints the numbers, which costs about
   * 1.3 µs a query on a small machine.
   */
  readonly key?: string
}

/** A Nearby Search (legacy) response body. */
export interface PlacesBody {
  readonly html_attributions: ReadonlyArray<unknown>
  readonly results: ReadonlyArray<unknown>
  readonly status: string
  readonly next_page_token?: string
  readonly error_message?: string
  readonly [field: string]: unknown
}

/**
 * Why a provider gave no answer. `status` is the provider's own status where
 * it gave one (`OVER_QUERY_LIMIT`, `REQUEST_DENIED`, ...). The message never
 * holds the API key.
 */
export class PlacesError extends Schema.TaggedError<PlacesError>()("PlacesError", {
  reason: Schema.Literal("Timeout", "Http", "BadBody", "Quota", "Denied", "Transport", "Defect"),
  status: Schema.optional(Schema.String),
  message: Schema.String,
  /**
   * What failed underneath, where it holds no secret: the offline
   * gazetteer's load failure, a provider's defect. An HTTP provider's
   * errors keep none on purpose: they print the request URL, which holds
   * the legacy API key (the message says what happened, scrubbed).
   */
  cause: Schema.optional(Schema.Defect)
}) {}

export class PlacesClient extends Context.Tag("@herd/places/PlacesClient")<
  PlacesClient,
  {
    /** The provider's name, as `herd serve` prints it: `offline`, `google`, ... */
    readonly provider: string
    readonly nearby: (query: NearbyQuery) => Effect.Effect<PlacesBody, PlacesError>
    /**
     * Loads what the provider needs before its first answer (the offline
     * gazetteer); run after a server is listening, so start-up stays fast.
     */
    readonly warmUp?: Effect.Effect<void, PlacesError>
    /**
     * An answer available at once, synchronously: a fresh cache entry, or
     * the provider's own answer when it needs no I/O (the offline gazetteer
     * once loaded). The server answers such a WHATSAT without a fiber;
     * `undefined` sends it to `nearby`.
     */
    readonly immediate?: (query: NearbyQuery) => PlacesBody | undefined
  }
>() {}

/** The body WHATSAT answers with when the provider failed (PROTOCOL.md section 4). */
export const failureBody = (error: PlacesError): PlacesBody => ({
  html_attributions: [],
  results: [],
  status: error.status ?? "UNKNOWN_ERROR",
  error_message: error.message
})
