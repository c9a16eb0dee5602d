/**
 * The cache in front of every provider: identical queries asked at the same
 * time share one upstream request, and answers are kept for a while, so a
 * burst of WHATSATs for one busy client costs one call to the provider.
 */
import { Deferred, Effect, Exit, FiberId, FiberSet } from "effect"
import type { Scope } from "effect"
import { PlacesError } from "./PlacesClient.ts"
import type { NearbyQuery, PlacesBody } from "./PlacesClient.ts"

export interface CacheOptions {
  /** How long an answer is served from the cache, in ms. 0 keeps none (in-flight sharing stays). Default 30000. */
  readonly ttlMs?: number
  /** The most queries remembered, answered or in flight; the oldest go first. Default 10000. */
  readonly capacity?: number
  /**
   * The provider's answer when it can give one at once, without I/O: `peek`
   * then answers a miss with it (and keeps it) instead of `undefined`.
   */
  readonly immediate?: (query: NearbyQuery) => PlacesBody | undefined
}

export const defaultCacheTtlMs = 30_000
export const defaultCacheCapacity = 10_000

type Nearby = (query: NearbyQuery) => Effect.Effect<PlacesBody, PlacesError>

interface Entry {
  readonly answer: Deferred.Deferred<PlacesBody, PlacesError>
  /** The answer once it came, for `peek`. */
  body?: PlacesBody
  /** Clock time (ms) after which the answer is no longer served; +Infinity while in flight. */
  expiresAt: number
}

/**
 * Wraps `upstream` with the in-flight table and the answer cache.
 *
 * - Each upstream request runs in a fiber of its own, owned by the scope, not
 *   by the caller that happened to ask first: a caller that goes away (its
 *   connection closed) never cancels the answer others are waiting for. The
 *   provider's own time-out bounds how long that fiber lives.
 * - Failures are not cached: callers waiting at the time share the failure,
 *   the next caller asks again. A provider that is down is therefore asked
 *   once per distinct query at a time, not once per caller.
 * - Time is read from the Clock, so tests drive the TTL with TestClock.
 * - When the scope closes, every request still in flight fails with a
 *   PlacesError (nobody is left hanging on it).
 */
export const cachedNearby = (
  upstream: Nearby,
  options: CacheOptions = {}
): Effect.Effect<Nearby, never, Scope.Scope> => Effect.map(cachedPlaces(upstream, options), (cache) => cache.nearby)

export interface CachedPlaces {
  readonly nearby: Nearby
  /**
   * A fresh answer to `query` if the cache holds one, or else the provider's
   * `immediate` answer (kept in the cache), synchronously.
   */
  readonly peek: (query: NearbyQuery) => PlacesBody | undefined
}

/** `cachedNearby`, with a synchronous look into the cache besides. */
export const cachedPlaces = (
  upstream: Nearby,
  options: CacheOptions = {}
): Effect.Effect<CachedPlaces, never, Scope.Scope> =>
  Effect.gen(function*() {
    const ttlMs = options.ttlMs ?? defaultCacheTtlMs
    const capacity = Math.max(1, options.capacity ?? defaultCacheCapacity)
    const clock = yield* Effect.clock
    const requests = yield* FiberSet.make<void>()
    // A Map iterates in insertion order, oldest first: that is the eviction order.
    const entries = new Map<string, Entry>()
    const inFlight = new Set<Entry>()
    let closed = false

    // Registered after the FiberSet, so it runs before the FiberSet interrupts
    // the requests: waiters get an error rather than an interruption.
    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => {
        closed = true
        const pending = [...inFlight]
        inFlight.clear()
        entries.clear()
        return Effect.forEach(pending, (entry) => Deferred.fail(entry.answer, shutDown), { discard: true })
      })
    )

    const makeRoom = (now: number): void => {
      for (const [key, entry] of entries) {
        if (entries.size < capacity && entry.expiresAt > now) return
        entries.delete(key)
      }
    }

    const settle = (key: string, entry: Entry, exit: Exit.Exit<PlacesBody, PlacesError>) =>
      Effect.suspend(() => {
        inFlight.delete(entry)
        const stillListed = entries.get(key) === entry
        if (Exit.isSuccess(exit) && ttlMs > 0) {
          entry.expiresAt = clock.unsafeCurrentTimeMillis() + ttlMs
          entry.body = exit.value
        } else if (stillListed) {
          entries.delete(key)
        }
        // An interrupted request only happens when the scope closes.
        return Deferred.done(entry.answer, Exit.isInterrupted(exit) ? Exit.fail(shutDown) : exit)
      })

    const ask = (key: string, entry: Entry, query: NearbyQuery) =>
      upstream(query).pipe(
        Effect.onExit((exit) => settle(key, entry, exit)),
        Effect.ignore
      )

    const peek = (query: NearbyQuery): PlacesBody | undefined => {
      const key = keyOf(query)
      const found = entries.get(key)
      const now = clock.unsafeCurrentTimeMillis()
      if (found?.body !== undefined && now < found.expiresAt) return found.body
      const body = closed ? undefined : options.immediate?.(query)
      // An entry still in flight is left to its request.
      if (body === undefined || ttlMs <= 0 || found?.expiresAt === Number.POSITIVE_INFINITY) return body
      if (found !== undefined) entries.delete(key)
      makeRoom(now)
      const answer = Deferred.unsafeMake<PlacesBody, PlacesError>(FiberId.none)
      Deferred.unsafeDone(answer, Exit.succeed(body))
      entries.set(key, { answer, body, expiresAt: now + ttlMs })
      return body
    }

    const nearby = (query: NearbyQuery) =>
      Effect.uninterruptibleMask((restore) =>
        Effect.fiberIdWith((fiberId) =>
          Effect.suspend(() => {
            // Looking up and inserting happen in one synchronous step, so two
            // fibers can never both start a request for the same query.
            if (closed) return Effect.fail(shutDown)
            const now = clock.unsafeCurrentTimeMillis()
            const key = keyOf(query)
            const found = entries.get(key)
            if (found !== undefined && now < found.expiresAt) return restore(Deferred.await(found.answer))
            if (found !== undefined) entries.delete(key)
            makeRoom(now)
            const entry: Entry = { answer: Deferred.unsafeMake(fiberId), expiresAt: Number.POSITIVE_INFINITY }
            entries.set(key, entry)
            inFlight.add(entry)
            // The request's fiber must be interruptible whatever this caller's
            // region, or the provider's time-out could not cancel it.
            return FiberSet.run(requests, Effect.interruptible(ask(key, entry, query))).pipe(
              Effect.zipRight(restore(Deferred.await(entry.answer)))
            )
          })
        )
      )

    return { nearby, peek }
  })

/** The caller's key (it holds no comma), or the four numbers joined by commas: the two never collide. */
const keyOf = (query: NearbyQuery): string =>
  query.key ?? `${query.latitude},${query.longitude},${query.radiusMetres},${query.limit}`

const shutDown = new PlacesError({ reason: "Transport", message: "the Places client has shut down" })
