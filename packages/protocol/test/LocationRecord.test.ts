import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { LocationRecord } from "../src/index.ts"
import { validLocation, validTime, wireName } from "./arbitraries.ts"

const kiwi: LocationRecord.LocationRecord = {
  origin: "Alford",
  skew: "+0.263873386",
  client: "kiwi.cs.ucla.edu",
  location: "+34.068930-118.445127",
  time: "1621464827.959498503"
}

describe("recordOf", () => {
  it("keeps the client's fields as sent and adds the origin and skew", () => {
    const iamat = {
      _tag: "Iamat",
      client: "kiwi.cs.ucla.edu",
      location: "+34.068930-118.445127",
      time: "1621464827.959498503"
    } as const
    expect(LocationRecord.recordOf(iamat, "Alford", 1_621_464_828_223_371_889n)).toEqual(kiwi)
  })
})

describe("formatAtLine", () => {
  it("prints the AT line of PROTOCOL.md section 3", () => {
    expect(LocationRecord.formatAtLine(kiwi)).toBe(
      "AT Alford +0.263873386 kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503"
    )
  })

  it.prop(
    "prints a copy with a field changed as the copy, right after printing the original",
    { time: validTime, location: validLocation },
    ({ location, time }) => {
      const original = { ...kiwi }
      LocationRecord.formatAtLine(original)
      const copy = { ...original, location, time }
      expect(LocationRecord.formatAtLine(copy)).toBe(`AT Alford +0.263873386 kiwi.cs.ucla.edu ${location} ${time}`)
      expect(LocationRecord.formatAtLine(original)).toBe(
        "AT Alford +0.263873386 kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503"
      )
    }
  )
})

describe("isNewer", () => {
  it("prefers the later client time, by value", () => {
    expect(LocationRecord.isNewer({ ...kiwi, time: "10" }, { ...kiwi, time: "9.999999999" })).toBe(true)
    expect(LocationRecord.isNewer({ ...kiwi, time: "9.999999999" }, { ...kiwi, time: "10" })).toBe(false)
    // A later time wins even from an origin and location that sort earlier.
    expect(LocationRecord.isNewer({ ...kiwi, time: "2", origin: "A", location: "+0+0" }, { ...kiwi, time: "1", origin: "Z" }))
      .toBe(true)
  })

  it("breaks a tie on time by the origin that sorts later, in byte order", () => {
    expect(LocationRecord.isNewer({ ...kiwi, origin: "Welsh" }, { ...kiwi, origin: "Bolden" })).toBe(true)
    expect(LocationRecord.isNewer({ ...kiwi, origin: "Bolden" }, { ...kiwi, origin: "Welsh" })).toBe(false)
    // Byte order: lower case sorts after upper case, UTF-8 after ASCII.
    expect(LocationRecord.isNewer({ ...kiwi, origin: "alford" }, { ...kiwi, origin: "Zed" })).toBe(true)
    expect(LocationRecord.isNewer({ ...kiwi, origin: "\xc3\xa9" }, { ...kiwi, origin: "z" })).toBe(true)
  })

  it("then by the location that sorts later", () => {
    expect(LocationRecord.isNewer({ ...kiwi, location: "-1+1" }, { ...kiwi, location: "+1+1" })).toBe(true)
    expect(LocationRecord.isNewer({ ...kiwi, location: "+1+1" }, { ...kiwi, location: "-1+1" })).toBe(false)
  })

  it("treats equal times written differently as equal for the origin rule", () => {
    expect(LocationRecord.isNewer({ ...kiwi, time: "1.5", origin: "A" }, { ...kiwi, time: "01.50", origin: "B" })).toBe(false)
    expect(LocationRecord.isNewer({ ...kiwi, time: "01.50", origin: "B" }, { ...kiwi, time: "1.5", origin: "A" })).toBe(true)
  })

  it("breaks the ties section 5 leaves by the time text, then the skew text", () => {
    expect(LocationRecord.isNewer({ ...kiwi, time: "1.5" }, { ...kiwi, time: "01.50" })).toBe(true)
    expect(LocationRecord.isNewer({ ...kiwi, time: "01.50" }, { ...kiwi, time: "1.5" })).toBe(false)
    expect(LocationRecord.isNewer({ ...kiwi, skew: "+0.000000002" }, { ...kiwi, skew: "+0.000000001" })).toBe(true)
    expect(LocationRecord.isNewer({ ...kiwi, skew: "+0.000000001" }, { ...kiwi, skew: "+0.000000002" })).toBe(false)
  })

  it("never finds a record newer than itself", () => {
    expect(LocationRecord.isNewer(kiwi, { ...kiwi })).toBe(false)
  })

  const record = fc.record({
    origin: fc.constantFrom("Alford", "Bolden", "Hamilton"),
    skew: fc.constantFrom("+0.000000000", "-1.000000000"),
    client: fc.constant("k"),
    location: fc.constantFrom("+1+1", "-1+1", "+1-1"),
    time: fc.constantFrom("1", "1.0", "2", "01.5", "1.5")
  })

  it.prop("is a strict total order: of two different records exactly one wins", { a: record, b: record }, ({ a, b }) => {
    const same = LocationRecord.formatAtLine(a) === LocationRecord.formatAtLine(b)
    expect(LocationRecord.isNewer(a, b) || LocationRecord.isNewer(b, a)).toBe(!same)
    expect(LocationRecord.isNewer(a, b) && LocationRecord.isNewer(b, a)).toBe(false)
  })

  it.prop("picks the same winner whatever the order records arrive in", { records: fc.array(record, { minLength: 1 }) }, ({ records }) => {
    const winnerOf = (list: ReadonlyArray<LocationRecord.LocationRecord>) =>
      list.reduce((kept, candidate) => (LocationRecord.isNewer(candidate, kept) ? candidate : kept))
    expect(LocationRecord.formatAtLine(winnerOf(records))).toBe(LocationRecord.formatAtLine(winnerOf([...records].reverse())))
  })
})

describe("coordinatesOf", () => {
  it("reads the latitude and longitude in degrees", () => {
    expect(LocationRecord.coordinatesOf("+34.068930-118.445127")).toEqual({ latitude: 34.06893, longitude: -118.445127 })
    expect(LocationRecord.coordinatesOf("-33.86+151.2")).toEqual({ latitude: -33.86, longitude: 151.2 })
    expect(LocationRecord.coordinatesOf("+90-180")).toEqual({ latitude: 90, longitude: -180 })
    expect(LocationRecord.coordinatesOf("+034.5+0000118")).toEqual({ latitude: 34.5, longitude: 118 })
    expect(Object.is(LocationRecord.coordinatesOf("-0+0").latitude, -0)).toBe(true)
  })

  it.prop("stays within the ranges for every valid location", { location: validLocation }, ({ location }) => {
    const { latitude, longitude } = LocationRecord.coordinatesOf(location)
    expect(Math.abs(latitude)).toBeLessThanOrEqual(90)
    expect(Math.abs(longitude)).toBeLessThanOrEqual(180)
  })
})

describe("record round trip", () => {
  it.prop(
    "recordOf then formatAtLine keeps the client's fields byte for byte",
    { client: wireName, location: validLocation, time: validTime },
    ({ client, location, time }) => {
      const line = LocationRecord.formatAtLine(LocationRecord.recordOf({ _tag: "Iamat", client, location, time }, "Parker", 0n))
      expect(line.endsWith(` ${client} ${location} ${time}`)).toBe(true)
      expect(line.startsWith("AT Parker ")).toBe(true)
    }
  )
})
