import { LocationRecord } from "@herd/protocol"
import { LocationStore } from "../src/index.ts"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, FastCheck as fc } from "effect"
import { fnv1a64Into } from "../src/internal/digest.ts"
import { LatestRecords, LOST } from "../src/internal/LatestRecords.ts"
import { lost, memoryStore, won } from "../src/internal/offer.ts"
import { record } from "./support/records.ts"

/** Any latin1 text (one char per wire byte, spaces and all). */
const latin1Text = (minLength: number, maxLength: number) =>
  fc.string({ unit: fc.integer({ min: 0, max: 255 }).map((code) => String.fromCharCode(code)), minLength, maxLength })


describe("LocationStore (memory)", () => {
  it.effect("keeps the record with the greater client time", () =>
    Effect.gen(function*() {
      const store = yield* LocationStore.makeMemory
      expect(store.unsafeOffer(record("kiwi", "1621464827.5"))).toBe(won)
      expect(store.unsafeOffer(record("kiwi", "1621464827.4"))).toBe(lost)
      expect(store.unsafeOffer(record("kiwi", "1621464827.500000001"))).toBe(won)
      expect(store.get("kiwi")?.time).toBe("1621464827.500000001")
      expect(store.size()).toBe(1)
    }))

  it.effect("breaks a tie of client times by origin, then by location (byte order)", () =>
    Effect.gen(function*() {
      const store = yield* LocationStore.makeMemory
      expect(store.unsafeOffer(record("kiwi", "10", "Bolden", "+1+1"))).toBe(won)
      expect(store.unsafeOffer(record("kiwi", "10", "Alford", "+9+9"))).toBe(lost)
      expect(store.unsafeOffer(record("kiwi", "10", "Welsh", "+1+1"))).toBe(won)
      expect(store.unsafeOffer(record("kiwi", "10", "Welsh", "+2+1"))).toBe(won)
      expect(store.unsafeOffer(record("kiwi", "10", "Welsh", "+2+1"))).toBe(lost)
      const stored = store.get("kiwi")
      expect(stored && LocationRecord.formatAtLine(stored)).toBe("AT Welsh +0.000000000 kiwi +2+1 10")
    }))

  it.effect("keeps the AT line its caller made, as the line it would make", () =>
    Effect.gen(function*() {
      const store = yield* LocationStore.makeMemory
      const first = record("kiwi", "1621464827.5")
      const later = record("kiwi", "1621464827.6", "Bolden")
      expect(store.unsafeOffer(first, LocationRecord.formatAtLine(first))).toBe(won)
      expect(store.unsafeOffer(later, LocationRecord.formatAtLine(later))).toBe(won)
      expect(store.get("kiwi")).toStrictEqual(later)
      // A line of another length than the record's is not taken: the store makes its own.
      const latest = record("kiwi", "1621464827.75")
      expect(store.unsafeOffer(latest, LocationRecord.formatAtLine(later))).toBe(won)
      expect(store.get("kiwi")).toStrictEqual(latest)
      // Handed to `map`, the offer gets an index where the line would be: it makes the line itself.
      const records = [record("lime", "1"), record("plum", "2")]
      expect(records.map(store.unsafeOffer as (record: LocationRecord.LocationRecord) => unknown)).toStrictEqual([won, won])
      expect(store.get("plum")).toStrictEqual(records[1])
      expect(store.get("lime")).toStrictEqual(records[0])
    }))

  it.effect.prop(
    "gives back the record it kept, field for field, as a plain record",
    [fc.record({
      origin: latin1Text(1, 20),
      skew: latin1Text(1, 20),
      client: latin1Text(1, 300),
      location: latin1Text(1, 20),
      time: latin1Text(1, 20)
    })],
    ([offered]) =>
      Effect.gen(function*() {
        const store = yield* LocationStore.makeMemory
        expect(store.unsafeOffer(offered)).toBe(won)
        expect(store.get(offered.client)).toStrictEqual(offered)
        expect(store.snapshot()).toStrictEqual([offered])
      }),
    // A hundred stores made and checked: seconds on a loaded machine.
    30_000
  )

  it.effect("refuses a record whose text is not latin1 with a typed failure, keeping what it had", () =>
    Effect.gen(function*() {
      const store = yield* LocationStore.makeMemory
      store.unsafeOffer(record("kiwi", "1"))
      const digest = store.digest()
      const replacing = store.unsafeOffer(record("kiwi", "2", "Alford", "+1+1\u65e5"))
      const adding = store.unsafeOffer(record("\u65e5", "2"))
      for (const [refused, client] of [[replacing, "kiwi"], [adding, "\u65e5"]] as const) {
        if (Either.isRight(refused)) expect.fail(`a record of ${client} with a char past U+00FF was stored`)
        expect(refused.left).toBeInstanceOf(LocationStore.UnstorableRecordError)
        expect(refused.left).toMatchObject({ _tag: "UnstorableRecordError", reason: "NotLatin1", client })
        expect(refused.left.message).toContain("latin1")
      }
      expect(store.get("kiwi")).toStrictEqual(record("kiwi", "1"))
      expect(store.get("\u65e5")).toBeUndefined()
      expect(store.size()).toBe(1)
      expect(store.snapshot()).toStrictEqual([record("kiwi", "1")])
      expect(store.digest()).toStrictEqual(digest)
    }))

  it("refuses a record once its lines fill the store, keeping what it had and taking records that fit", () => {
    // 64 bytes of lines: room for one slot of 48 and one of 16, so a second
    // client of a full AT line finds none, nor does a replacement that
    // outgrows its slot; one that fits its slot is still taken.
    const store = memoryStore(new LatestRecords(64))
    expect(store.unsafeOffer(record("kiwi", "1"))).toBe(won)
    const digest = store.digest()
    const cases = [record("lime", "1"), record("kiwi", "2", "Alford", "+34.068930-118.445127000000000000000000")]
    for (const refused of cases.map((record) => store.unsafeOffer(record))) {
      if (Either.isRight(refused)) expect.fail("a record was stored past the store's room")
      expect(refused.left).toMatchObject({ _tag: "UnstorableRecordError", reason: "StoreFull" })
      expect(refused.left.cause).toBeUndefined()
    }
    expect(store.snapshot()).toStrictEqual([record("kiwi", "1")])
    expect(store.digest()).toStrictEqual(digest)
    expect(store.unsafeOffer(record("kiwi", "3"))).toBe(won)
    expect(store.unsafeOffer(record("kiwi", "2"))).toBe(lost)
    expect(store.get("kiwi")).toStrictEqual(record("kiwi", "3"))
  })

  it.effect("answers none for an unknown client", () =>
    Effect.gen(function*() {
      const store = yield* LocationStore.makeMemory
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
        const winners = (order: ReadonlyArray<LocationRecord.LocationRecord>) =>
          Effect.gen(function*() {
            const store = yield* LocationStore.makeMemory
            for (const r of order) store.unsafeOffer(r)
            return store.snapshot().map(LocationRecord.formatAtLine).sort()
          })
        expect(yield* winners(shuffled)).toEqual(yield* winners(records))
        expect(yield* winners([...records].reverse())).toEqual(yield* winners(records))
      })
  )

  // The store keeps lines as bytes in slots it reuses: lines that grow past
  // their slot and shrink again, over many clients, must come back intact.
  it.effect.prop(
    "keeps what a plain map of winners keeps, whatever the lines' lengths",
    [fc.array(
      fc.record({
        client: fc.constantFrom("a", "b", "c"),
        time: fc.integer({ min: 0, max: 5 }).map(String),
        location: latin1Text(1, 600)
      }),
      { maxLength: 60 }
    )],
    ([offers]) =>
      Effect.gen(function*() {
        const store = yield* LocationStore.makeMemory
        const model = new Map<string, LocationRecord.LocationRecord>()
        for (const { client, location, time } of offers) {
          const offered = record(client, time, "Alford", location)
          const known = model.get(client)
          const wins = known === undefined || LocationRecord.isNewer(offered, known)
          if (wins) model.set(client, offered)
          expect(store.unsafeOffer(offered)).toBe(wins ? won : lost)
        }
        for (const [client, kept] of model) expect(store.get(client)).toStrictEqual(kept)
        expect(store.size()).toBe(model.size)
      })
  )

  it.effect("keeps every record of many clients as their lines grow", () =>
    Effect.gen(function*() {
      const store = yield* LocationStore.makeMemory
      const clients = Array.from({ length: 5000 }, (_, i) => `client-${i}`)
      for (const client of clients) store.unsafeOffer(record(client, "1"))
      for (const client of clients) store.unsafeOffer(record(client, "2", "Alford", `+1.${client.length}${"0".repeat(300)}+1`))
      for (const client of clients) {
        expect(store.get(client)).toStrictEqual(record(client, "2", "Alford", `+1.${client.length}${"0".repeat(300)}+1`))
      }
      expect(store.snapshot()).toHaveLength(clients.length)
    }))

  /** FNV-1a 64 as its definition reads, on BigInt: what the 32-bit halves must equal. */
  const fnv1a64Reference = (bytes: Uint8Array): bigint => {
    let hash = 0xcbf29ce484222325n
    for (const byte of bytes) hash = ((hash ^ BigInt(byte)) * 0x100000001b3n) & 0xffffffffffffffffn
    return hash
  }

  it.prop("hashes as FNV-1a 64 does", [fc.uint8Array({ maxLength: 300 })], ([bytes]) => {
    const out = new Uint32Array(2)
    fnv1a64Into(bytes, 0, bytes.length, out, 0)
    expect((BigInt(out[0] ?? 0) << 32n) | BigInt(out[1] ?? 0)).toBe(fnv1a64Reference(bytes))
  })

  it("hashes the published FNV-1a 64 test vectors", () => {
    const hashOf = (text: string) => {
      const out = new Uint32Array(2)
      const bytes = Buffer.from(text, "latin1")
      fnv1a64Into(bytes, 0, bytes.length, out, 0)
      return (out[0] ?? 0).toString(16).padStart(8, "0") + (out[1] ?? 0).toString(16).padStart(8, "0")
    }
    expect(hashOf("")).toBe("cbf29ce484222325")
    expect(hashOf("a")).toBe("af63dc4c8601ec8c")
    expect(hashOf("foobar")).toBe("85944171f73967e8")
  })

  it.effect("digests an empty store as zero records and a zero sum, and one record as its line's hash", () =>
    Effect.gen(function*() {
      const store = yield* LocationStore.makeMemory
      expect(store.digest()).toStrictEqual({ count: 0, digest: "0000000000000000" })
      store.unsafeOffer(record("kiwi", "1"))
      const line = Buffer.from(LocationRecord.formatAtLine(record("kiwi", "1")), "latin1")
      expect(store.digest()).toStrictEqual({
        count: 1,
        digest: fnv1a64Reference(line).toString(16).padStart(16, "0")
      })
    }))

  it.effect.prop(
    "digests the same winners the same, whatever the arrival order, and as computed from scratch",
    [fc.array(arbitraryRecord, { maxLength: 60 }).chain((records) =>
      fc.tuple(fc.constant(records), fc.shuffledSubarray(records, { minLength: records.length }))
    )],
    ([[records, shuffled]]) =>
      Effect.gen(function*() {
        const digestAfter = (order: ReadonlyArray<LocationRecord.LocationRecord>) =>
          Effect.gen(function*() {
            const store = yield* LocationStore.makeMemory
            for (const r of order) store.unsafeOffer(r)
            expect(store.digest()).toStrictEqual(LocationStore.digestOf(store.snapshot()))
            return store.digest()
          })
        const digest = yield* digestAfter(records)
        expect(yield* digestAfter(shuffled)).toStrictEqual(digest)
        expect(yield* digestAfter([...records].reverse())).toStrictEqual(digest)
        expect(digest.count).toBe(new Set(records.map(({ client }) => client)).size)
      })
  )

  // The client index is an open-addressing table that moves entries back as
  // others leave: offers and removals over many clients (collisions, growth)
  // must keep exactly what a Map keeps.
  it.prop(
    "finds, adds and removes clients as a Map does",
    [fc.array(
      fc.record({ remove: fc.boolean(), client: fc.integer({ min: 0, max: 3000 }), time: fc.integer({ min: 0, max: 3 }) }),
      { maxLength: 3000 }
    )],
    ([steps]) => {
      const latest = new LatestRecords()
      const model = new Map<string, LocationRecord.LocationRecord>()
      for (const step of steps) {
        const client = `c${step.client}`
        if (step.remove) {
          expect(latest.remove(client)).toBe(model.delete(client))
        } else {
          const offered = record(client, String(step.time))
          const known = model.get(client)
          const wins = known === undefined || LocationRecord.isNewer(offered, known)
          if (wins) model.set(client, offered)
          expect(latest.offer(offered) !== LOST).toBe(wins)
        }
      }
      expect(latest.size()).toBe(model.size)
      for (const [client, kept] of model) expect(latest.get(client)).toStrictEqual(kept)
      expect(latest.get("c-none")).toBeUndefined()
      expect(latest.snapshot().map(LocationRecord.formatAtLine).sort()).toStrictEqual([...model.values()].map(LocationRecord.formatAtLine).sort())
      expect(latest.digest()).toStrictEqual(LocationStore.digestOf(model.values()))
    },
    { fastCheck: { numRuns: 30 }, timeout: 30_000 }
  )
})
