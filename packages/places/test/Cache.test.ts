import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Ref, Scope, TestClock } from "effect"
import { Cache, PlacesClient } from "../src/index.ts"

const ucla: PlacesClient.NearbyQuery = { latitude: 34.06893, longitude: -118.445127, radiusMetres: 10_000, limit: 5 }

const bodyFor = (call: number): PlacesClient.PlacesBody => ({ html_attributions: [], results: [{ call }], status: "OK" })

/**
 * An upstream that takes one (test) second per request and counts them.
 * `answer` decides each call's outcome.
 */
const countingUpstream = (answer: (call: number) => Effect.Effect<PlacesClient.PlacesBody, PlacesClient.PlacesError> = (call) =>
  Effect.succeed(bodyFor(call))) =>
  Effect.map(Ref.make(0), (calls) => ({
    calls,
    upstream: (_query: PlacesClient.NearbyQuery) =>
      Ref.updateAndGet(calls, (n) => n + 1).pipe(
        Effect.flatMap((call) => Effect.zipRight(Effect.sleep("1 second"), answer(call)))
      )
  }))

/** Asks and lets the test clock run the upstream's second. */
const ask = (nearby: (query: PlacesClient.NearbyQuery) => Effect.Effect<PlacesClient.PlacesBody, PlacesClient.PlacesError>, query: PlacesClient.NearbyQuery) =>
  Effect.gen(function*() {
    const fiber = yield* Effect.fork(nearby(query))
    yield* TestClock.adjust("1 second")
    return yield* Fiber.join(fiber)
  })

describe("cachedNearby", () => {
  it.scoped("sends ten concurrent identical queries upstream once", () =>
    Effect.gen(function*() {
      const { calls, upstream } = yield* countingUpstream()
      const nearby = yield* Cache.cachedNearby(upstream, { ttlMs: 0 })
      const all = yield* Effect.fork(Effect.all(Array.from({ length: 10 }, () => nearby(ucla)), { concurrency: "unbounded" }))
      yield* TestClock.adjust("1 second")
      const bodies = yield* Fiber.join(all)
      expect(bodies).toHaveLength(10)
      expect(bodies.every((body) => body === bodies[0])).toBe(true)
      expect(yield* Ref.get(calls)).toBe(1)
    }))

  it.scoped("asks again for a different radius or limit", () =>
    Effect.gen(function*() {
      const { calls, upstream } = yield* countingUpstream()
      const nearby = yield* Cache.cachedNearby(upstream)
      const all = yield* Effect.fork(
        Effect.all([nearby(ucla), nearby({ ...ucla, limit: 4 }), nearby({ ...ucla, radiusMetres: 9000 }), nearby(ucla)], {
          concurrency: "unbounded"
        })
      )
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(all)
      expect(yield* Ref.get(calls)).toBe(3)
    }))

  it.scoped("shares an entry between queries with the same key, and keeps keyed and unkeyed apart", () =>
    Effect.gen(function*() {
      const { calls, upstream } = yield* countingUpstream()
      const nearby = yield* Cache.cachedNearby(upstream, { ttlMs: 30_000 })
      const keyed = { ...ucla, key: "+34.068930-118.445127 10 5" }
      expect(yield* ask(nearby, keyed)).toEqual(bodyFor(1))
      expect(yield* ask(nearby, { ...keyed })).toEqual(bodyFor(1))
      expect(yield* ask(nearby, { ...ucla, key: "+34.06893-118.445127 10 5" })).toEqual(bodyFor(2))
      expect(yield* ask(nearby, ucla)).toEqual(bodyFor(3))
      expect(yield* ask(nearby, ucla)).toEqual(bodyFor(3))
      expect(yield* Ref.get(calls)).toBe(3)
    }))

  it.scoped("serves an answer for cacheTtlMs, then asks again", () =>
    Effect.gen(function*() {
      const { calls, upstream } = yield* countingUpstream()
      const nearby = yield* Cache.cachedNearby(upstream, { ttlMs: 30_000 })
      expect(yield* ask(nearby, ucla)).toEqual(bodyFor(1))
      yield* TestClock.adjust(30_000 - 1)
      expect(yield* nearby(ucla)).toEqual(bodyFor(1))
      yield* TestClock.adjust(1)
      expect(yield* ask(nearby, ucla)).toEqual(bodyFor(2))
      expect(yield* Ref.get(calls)).toBe(2)
    }))

  it.scoped("does not cache failures, but callers waiting together share one", () =>
    Effect.gen(function*() {
      const down = new PlacesClient.PlacesError({ reason: "Http", message: "down" })
      const { calls, upstream } = yield* countingUpstream((call) => call <= 1 ? Effect.fail(down) : Effect.succeed(bodyFor(call)))
      const nearby = yield* Cache.cachedNearby(upstream)
      const together = yield* Effect.fork(
        Effect.all(Array.from({ length: 5 }, () => Effect.flip(nearby(ucla))), { concurrency: "unbounded" })
      )
      yield* TestClock.adjust("1 second")
      expect(yield* Fiber.join(together)).toEqual(Array.from({ length: 5 }, () => down))
      expect(yield* Ref.get(calls)).toBe(1)
      expect(yield* ask(nearby, ucla)).toEqual(bodyFor(2))
      expect(yield* Ref.get(calls)).toBe(2)
    }))

  it.scoped("keeps answering the others when the caller that asked first goes away", () =>
    Effect.gen(function*() {
      const { calls, upstream } = yield* countingUpstream()
      const nearby = yield* Cache.cachedNearby(upstream)
      const first = yield* Effect.fork(nearby(ucla))
      const second = yield* Effect.fork(nearby(ucla))
      yield* TestClock.adjust("500 millis")
      yield* Fiber.interrupt(first)
      yield* TestClock.adjust("500 millis")
      expect(yield* Fiber.join(second)).toEqual(bodyFor(1))
      expect(yield* Ref.get(calls)).toBe(1)
    }))

  it.scoped("forgets the oldest query past its capacity", () =>
    Effect.gen(function*() {
      const { calls, upstream } = yield* countingUpstream()
      const nearby = yield* Cache.cachedNearby(upstream, { capacity: 2 })
      const [a, b, c] = [ucla, { ...ucla, limit: 1 }, { ...ucla, limit: 2 }]
      for (const query of [a, b, c]) yield* ask(nearby, query)
      expect(yield* Ref.get(calls)).toBe(3)
      yield* nearby(c) // still cached
      expect(yield* Ref.get(calls)).toBe(3)
      yield* ask(nearby, a) // evicted
      expect(yield* Ref.get(calls)).toBe(4)
    }))

  it.effect("fails the callers still waiting when its scope closes", () =>
    Effect.gen(function*() {
      const { upstream } = yield* countingUpstream()
      const scope = yield* Scope.make()
      const nearby = yield* Scope.extend(Cache.cachedNearby(upstream), scope)
      const waiting = yield* Effect.fork(nearby(ucla))
      yield* TestClock.adjust("100 millis")
      yield* Scope.close(scope, Exit.void)
      const error = yield* Effect.flip(Fiber.join(waiting))
      expect(error).toBeInstanceOf(PlacesClient.PlacesError)
      expect(error.message).toBe("the Places client has shut down")
      expect((yield* Effect.flip(nearby(ucla))).message).toBe("the Places client has shut down")
    }))

  it.scoped("peek answers only a fresh answer already at hand", () =>
    Effect.gen(function*() {
      const { calls, upstream } = yield* countingUpstream()
      const { nearby, peek } = yield* Cache.cachedPlaces(upstream, { ttlMs: 30_000 })
      expect(peek(ucla)).toBeUndefined()
      const fiber = yield* Effect.fork(nearby(ucla))
      yield* TestClock.adjust("100 millis")
      expect(peek(ucla)).toBeUndefined() // in flight
      yield* TestClock.adjust("900 millis")
      const body = yield* Fiber.join(fiber)
      expect(peek(ucla)).toBe(body)
      yield* TestClock.adjust("30 seconds")
      expect(peek(ucla)).toBeUndefined()
      expect(yield* Ref.get(calls)).toBe(1)
    }))

  it.scoped("peek gives the provider's immediate answer on a miss and keeps it for nearby", () =>
    Effect.gen(function*() {
      const { calls, upstream } = yield* countingUpstream()
      let immediateCalls = 0
      const { nearby, peek } = yield* Cache.cachedPlaces(upstream, {
        ttlMs: 30_000,
        immediate: () => bodyFor(++immediateCalls * 100)
      })
      const body = peek(ucla)
      expect(body).toEqual(bodyFor(100))
      expect(peek(ucla)).toBe(body)
      expect(yield* nearby(ucla)).toBe(body)
      expect(immediateCalls).toBe(1)
      expect(yield* Ref.get(calls)).toBe(0)
      yield* TestClock.adjust("30 seconds")
      expect(peek(ucla)).toEqual(bodyFor(200))
    }))

  it.scoped("peek leaves a query in flight to its request", () =>
    Effect.gen(function*() {
      const { calls, upstream } = yield* countingUpstream()
      const { nearby, peek } = yield* Cache.cachedPlaces(upstream, { immediate: () => bodyFor(100) })
      const fiber = yield* Effect.fork(nearby(ucla))
      yield* TestClock.adjust("100 millis")
      expect(peek(ucla)).toEqual(bodyFor(100))
      yield* TestClock.adjust("900 millis")
      expect(yield* Fiber.join(fiber)).toEqual(bodyFor(1))
      expect(peek(ucla)).toEqual(bodyFor(1))
      expect(yield* Ref.get(calls)).toBe(1)
    }))
})
