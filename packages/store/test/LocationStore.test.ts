import { formatAtLine } from "@herd/protocol"
import type { LocationRecord } from "@herd/protocol"
import { describe, expect, it } from "@effect/vitest"
import { Effect, FastCheck as fc } from "effect"
import { makeMemory } from "../src/index.ts"

const record = (client: string, time: string, origin = "Alford", location = "+34.068930-118.445127"): LocationRecord => ({
  origin,
  skew: "+0.000000000",
  client,
  location,
  time
})

describe("LocationStore (memory)", () => {
  it.effect("keeps the record with the greater client time", () =>
    Effect.gen(function*() {
      const store = yield* makeMemory
      expect(store.offer(record("kiwi", "1621464827.5"))).toBe(true)
      expect(store.offer(record("kiwi", "1621464827.4"))).toBe(false)
      expect(store.offer(record("kiwi", "1621464827.500000001"))).toBe(true)
      expect(store.get("kiwi")?.time).toBe("1621464827.500000001")
      expect(store.size()).toBe(1)
    }))

  it.effect("breaks a tie of client times by origin, then by location (byte order)", () =>
    Effect.gen(function*() {
      const store = yield* makeMemory
      expect(store.offer(record("kiwi", "10", "Bolden", "+1+1"))).toBe(true)
      expect(store.offer(record("kiwi", "10", "Alford", "+9+9"))).toBe(false)
      expect(store.offer(record("kiwi", "10", "Welsh", "+1+1"))).toBe(true)
      expect(store.offer(record("kiwi", "10", "Welsh", "+2+1"))).toBe(true)
      expect(store.offer(record("kiwi", "10", "Welsh", "+2+1"))).toBe(false)
      const stored = store.get("kiwi")
      expect(stored && formatAtLine(stored)).toBe("AT Welsh +0.000000000 kiwi +2+1 10")
    }))

  it.effect.prop(
    "gives back the record it kept, field for field, as a plain record",
    [fc.record({
      origin: fc.string({ minLength: 1 }),
      skew: fc.string({ minLength: 1 }),
      client: fc.string({ minLength: 1 }),
      location: fc.string({ minLength: 1 }),
      time: fc.string({ minLength: 1 })
    })],
    ([offered]) =>
      Effect.gen(function*() {
        const store = yield* makeMemory
        expect(store.offer(offered)).toBe(true)
        expect(store.get(offered.client)).toStrictEqual(offered)
        expect(store.snapshot()).toStrictEqual([offered])
      })
  )

  it.effect("answers none for an unknown client", () =>
    Effect.gen(function*() {
      const store = yield* makeMemory
      expect(store.get("nobody")).toBeUndefined()
    }))

  const arbitraryRecord = fc.record({
    client: fc.constantFrom("a", "b", "c", "d"),
    time: fc.tuple(fc.integer({ min: 0, max: 3 }), fc.constantFrom("", ".5", ".50", ".000000001")).map(
      ([seconds, fraction]) => `${seconds}${fraction}`
    ),
    origin: fc.constantFrom("Alford", "Bolden", "Hamilton", "Parker", "Welsh"),
    location: fc.constantFrom("+1+1", "+1+2", "-1+1", "+01+1")
  }).map(({ client, location, origin, time }) => record(client, time, origin, location))

  it.effect.prop(
    "any arrival order of the same records leaves the same winner for every client",
    [fc.array(arbitraryRecord, { maxLength: 40 }).chain((records) =>
      fc.tuple(fc.constant(records), fc.shuffledSubarray(records, { minLength: records.length }))
    )],
    ([[records, shuffled]]) =>
      Effect.gen(function*() {
        const winners = (order: ReadonlyArray<LocationRecord>) =>
          Effect.gen(function*() {
            const store = yield* makeMemory
            for (const r of order) store.offer(r)
            return store.snapshot().map(formatAtLine).sort()
          })
        expect(yield* winners(shuffled)).toEqual(yield* winners(records))
        expect(yield* winners([...records].reverse())).toEqual(yield* winners(records))
      })
  )
})

