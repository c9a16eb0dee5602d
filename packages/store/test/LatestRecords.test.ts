/**
 * The digest is brought up to date lazily (the records changed since it was
 * last asked for are hashed then): asked for at any step, it must be the
 * digest of what is held, as `digestOf` computes it from scratch.
 */
import { describe, expect, it } from "@effect/vitest"
import { LocationRecord } from "@herd/protocol"
import { FastCheck as fc } from "effect"
import { LatestRecords, LOST } from "../src/internal/LatestRecords.ts"
import { LocationStore } from "../src/index.ts"

const record = (client: string, time: string, location = "+1+1"): LocationRecord.LocationRecord => ({
  origin: "Alford",
  skew: "+0.000000000",
  client,
  location,
  time
})

describe("LatestRecords' digest", () => {
  it.prop(
    "asked for at any step, is the digest of what is held",
    [fc.array(
      fc.record({
        op: fc.constantFrom("offer", "offer", "remove", "digest"),
        client: fc.integer({ min: 0, max: 300 }),
        time: fc.integer({ min: 0, max: 5 }),
        // Locations of other lengths, so a newer record may outgrow its slot.
        location: fc.constantFrom("+1+1", "+1+1000000000000", "+2+2")
      }),
      { minLength: 1000, maxLength: 3000 }
    )],
    ([steps]) => {
      const latest = new LatestRecords()
      const model = new Map<string, LocationRecord.LocationRecord>()
      for (const step of steps) {
        const client = `c${step.client}`
        if (step.op === "remove") expect(latest.remove(client)).toBe(model.delete(client))
        else if (step.op === "digest") expect(latest.digest()).toStrictEqual(LocationStore.digestOf(model.values()))
        else {
          const offered = record(client, String(step.time), step.location)
          const known = model.get(client)
          const wins = known === undefined || LocationRecord.isNewer(offered, known)
          if (wins) model.set(client, offered)
          expect(latest.offer(offered) !== LOST).toBe(wins)
        }
      }
      expect(latest.digest()).toStrictEqual(LocationStore.digestOf(model.values()))
      // Asked twice with nothing changed: the same.
      expect(latest.digest()).toStrictEqual(LocationStore.digestOf(model.values()))
    },
    { fastCheck: { numRuns: 60 }, timeout: 60_000 }
  )

  it("is left right by a newer record the store refuses (not latin1)", () => {
    const latest = new LatestRecords()
    latest.offer(record("a", "1"))
    const before = latest.digest()
    expect(latest.offer(record("a", "2", "+1+1\u65e5"))).toBeLessThan(LOST)
    expect(latest.digest()).toStrictEqual(before)
    latest.offer(record("a", "3"))
    latest.digest()
    expect(latest.offer(record("a", "4", "+1+1\u65e5"))).toBeLessThan(LOST)
    expect(latest.digest()).toStrictEqual(LocationStore.digestOf([record("a", "3")]))
  })
})

/** Time texts as clients write them, leading zeros and fractions of any length, and latin1 text that is no time. */
const timeText = fc.oneof(
  fc.tuple(
    fc.stringMatching(/^[0-9]{1,12}$/),
    fc.option(fc.stringMatching(/^[0-9]{1,9}$/), { nil: undefined })
  ).map(([integer, fraction]) => fraction === undefined ? integer : `${integer}.${fraction}`),
  fc.string({ unit: fc.constantFrom("0", "1", "9", ".", " ", "\u00ff"), minLength: 1, maxLength: 12 })
)

describe("LatestRecords' offer", () => {
  it.prop(
    "keeps the record that LocationRecord.isNewer says wins, whatever the two times' writing",
    [timeText, timeText, fc.constantFrom("Alford", "Welsh"), fc.constantFrom("Alford", "Welsh")],
    ([storedTime, offeredTime, storedOrigin, offeredOrigin]) => {
      const latest = new LatestRecords()
      const stored = { ...record("kiwi", storedTime), origin: storedOrigin }
      const offered = { ...record("kiwi", offeredTime), origin: offeredOrigin }
      latest.offer(stored)
      const wins = LocationRecord.isNewer(offered, stored)
      // With its AT line, as a server offers an IAMAT's record.
      expect(latest.offer(offered, LocationRecord.formatAtLine(offered)) !== LOST).toBe(wins)
      expect(latest.get("kiwi")).toStrictEqual(wins ? offered : stored)
    },
    { fastCheck: { numRuns: 2000 } }
  )
})
