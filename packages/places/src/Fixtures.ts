/**
 * A PlacesClient that answers from fixtures, for tests of the server and of
 * anything built on it: no data to load, no network.
 */
import { Effect, Layer } from "effect"
import { PlacesClient } from "./PlacesClient.ts"
import type { NearbyQuery, PlacesBody, PlacesError } from "./PlacesClient.ts"

/**
 * A fixed body, or a function of the query. The function may return an
 * Effect, to answer slowly (`Effect.delay`), never (`Effect.never`), or with
 * a PlacesError.
 */
export type FixtureAnswers =
  | PlacesBody
  | ((query: NearbyQuery) => PlacesBody | Effect.Effect<PlacesBody, PlacesError>)

/**
 * Answers with `answers`, results cut to the query's limit as every provider
 * does. It has no cache: a test sees every query reach its fixture.
 */
export const layer = (
  answers: FixtureAnswers,
  options: { readonly provider?: string } = {}
): Layer.Layer<PlacesClient> =>
  Layer.succeed(
    PlacesClient,
    PlacesClient.of({
      provider: options.provider ?? "fixtures",
      nearby: (query) =>
        Effect.suspend(() => {
          const answer = typeof answers === "function" ? answers(query) : answers
          return Effect.isEffect(answer) ? answer : Effect.succeed(answer)
        }).pipe(
          Effect.map((body): PlacesBody => ({ ...body, results: body.results.slice(0, Math.max(0, query.limit)) }))
        )
    })
  )
