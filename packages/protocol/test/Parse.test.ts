import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { LocationRecord, Parse } from "../src/index.ts"
import type { Command } from "../src/index.ts"
import {
  asWire,
  digitString,
  latin1,
  utf8,
  validLocation,
  validSkew,
  validTime,
  wireName
} from "./arbitraries.ts"

/** The parser reads latin1 text: bytes as a socket gives them, one char per byte. */
const parseBytes = (bytes: Uint8Array): Command.Command => Parse.parseLine(Buffer.from(bytes).toString("latin1"))

const parse = (text: string): Command.Command => parseBytes(latin1(text))

/** Asserts that `bytes` is refused, echoed minus a final CR, for a reason naming `field`. */
const expectRefused = (bytes: Uint8Array, field: string): void => {
  const command = parseBytes(bytes)
  const withoutCarriageReturn = bytes.at(-1) === 0x0d ? bytes.subarray(0, -1) : bytes
  expect(command._tag).toBe("Invalid")
  if (command._tag !== "Invalid") return
  expect(Buffer.from(command.line, "latin1")).toEqual(Buffer.from(withoutCarriageReturn))
  expect(command.reason).toContain(field)
}

describe("parseLine", () => {
  describe("commands", () => {
    it("reads an IAMAT", () => {
      expect(parse("IAMAT kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503")).toEqual({
        _tag: "Iamat",
        client: "kiwi.cs.ucla.edu",
        location: "+34.068930-118.445127",
        time: "1621464827.959498503"
      })
    })

    it("reads a WHATSAT with its radius in metres", () => {
      expect(parse("WHATSAT kiwi.cs.ucla.edu 10 5")).toEqual({
        _tag: "Whatsat",
        client: "kiwi.cs.ucla.edu",
        radius: "10",
        radiusMetres: 10000,
        bound: 5
      })
    })

    it("reads an AT line as a record", () => {
      expect(parse("AT Alford +0.263873386 kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503")).toEqual({
        _tag: "At",
        record: {
          origin: "Alford",
          skew: "+0.263873386",
          client: "kiwi.cs.ucla.edu",
          location: "+34.068930-118.445127",
          time: "1621464827.959498503"
        }
      })
    })

    it("reads a PEER line", () => {
      expect(parse("PEER Parker")).toEqual({ _tag: "Peer", name: "Parker" })
    })

    it("keeps a UTF-8 client id as its bytes, one latin1 char each", () => {
      const command = parseBytes(utf8("IAMAT café-ü北京 +1+1 1"))
      expect(command).toEqual({ _tag: "Iamat", client: asWire("café-ü北京"), location: "+1+1", time: "1" })
    })
  })

  describe("framing", () => {
    it("treats empty and whitespace-only lines as blank", () => {
      for (const line of ["", " ", "\t", " \t  \t", "\r", "  \t\r"]) {
        expect(parse(line)).toEqual({ _tag: "Blank" })
      }
    })

    it("drops one CR before the LF, and only that one", () => {
      expect(parse("PEER Parker\r")).toEqual({ _tag: "Peer", name: "Parker" })
      expectRefused(latin1("PEER Parker\r\r"), "name: control byte")
      expectRefused(latin1("PEER Par\rker"), "name: control byte")
    })

    it("splits on tabs and runs of spaces, ignoring them at both ends", () => {
      expect(parse(" \t IAMAT\tk  \t -33.86+151.2    1621464827 \t")).toEqual({
        _tag: "Iamat",
        client: "k",
        location: "-33.86+151.2",
        time: "1621464827"
      })
    })

    it("reads a command from a slice of a longer text", () => {
      expect(Parse.parseLine("xxPEER Welsh\ryy".slice(2, 13))).toEqual({ _tag: "Peer", name: "Welsh" })
    })

    it("echoes a refused line from a slice without its CR", () => {
      const command = Parse.parseLine("xxPEER\ryy".slice(2, 7))
      expect(command._tag === "Invalid" && command.line).toBe("PEER")
    })
  })

  describe("field boundaries", () => {
    it("accepts latitudes of ±90 and longitudes of ±180 with zero fractions", () => {
      for (const location of ["+90+180", "-90-180", "+90.0000-180.000", "+0090.0+0180", "+89.999999999+179.9999999"]) {
        expect(parse(`IAMAT k ${location} 1`)).toEqual({ _tag: "Iamat", client: "k", location, time: "1" })
      }
    })

    it("refuses coordinates just past the range, decided on the digits", () => {
      expectRefused(latin1("IAMAT k +90.0000001+0 1"), "location: latitude out of range")
      expectRefused(latin1("IAMAT k -90.0000000000000000000001+0 1"), "location: latitude out of range")
      expectRefused(latin1("IAMAT k +91+0 1"), "location: latitude out of range")
      expectRefused(latin1("IAMAT k +0+180.1 1"), "location: longitude out of range")
      expectRefused(latin1("IAMAT k +0-181 1"), "location: longitude out of range")
      expectRefused(latin1("IAMAT k +0+1000000000000000000000 1"), "location: longitude out of range")
    })

    it("accepts -0 and leading zeros in coordinates", () => {
      expect(parse("IAMAT k -0-0 1")).toMatchObject({ _tag: "Iamat", location: "-0-0" })
      expect(parse("IAMAT k -0.000+0 0")).toMatchObject({ _tag: "Iamat", location: "-0.000+0", time: "0" })
      expect(parse("IAMAT k +034.5-0000118 1")).toMatchObject({ _tag: "Iamat", location: "+034.5-0000118" })
    })

    it("takes radii above 0 up to 50, in metres exact to the digits", () => {
      const metres = (radius: string) => {
        const command = parse(`WHATSAT k ${radius} 5`)
        return command._tag === "Whatsat" ? command.radiusMetres : command._tag
      }
      expect(metres("50")).toBe(50000)
      expect(metres("50.0")).toBe(50000)
      expect(metres("050.000000")).toBe(50000)
      expect(metres("1.5")).toBe(1500)
      expect(metres("10")).toBe(10000)
      expect(metres("0.0001")).toBe(0.1)
      expect(metres("1.1")).toBe(1100)
      expect(metres("0.001")).toBe(1)
      expect(metres("49.9999")).toBe(49999.9)
      expect(metres("50.0001")).toBe("Invalid")
      expect(metres("0")).toBe("Invalid")
      expect(metres("0.0")).toBe("Invalid")
      expect(metres("000")).toBe("Invalid")
      expectRefused(latin1("WHATSAT k 50.0001 5"), "radius: more than 50")
      expectRefused(latin1("WHATSAT k 0.0 5"), "radius: must be greater than 0")
    })

    it("takes bounds from 1 to 20, leading zeros allowed", () => {
      const bound = (text: string) => {
        const command = parse(`WHATSAT k 10 ${text}`)
        return command._tag === "Whatsat" ? command.bound : command._tag
      }
      expect(bound("1")).toBe(1)
      expect(bound("20")).toBe(20)
      expect(bound("0005")).toBe(5)
      expect(bound("00000000000000000000000020")).toBe(20)
      expect(bound("0")).toBe("Invalid")
      expect(bound("21")).toBe("Invalid")
      expect(bound("5.0")).toBe("Invalid")
      expectRefused(latin1("WHATSAT k 10 0"), "bound: must be at least 1")
      expectRefused(latin1("WHATSAT k 10 21"), "bound: more than 20")
    })

    it("takes client ids of 255 bytes but not 256", () => {
      const id255 = "x".repeat(255)
      expect(parse(`IAMAT ${id255} +1+1 1`)).toMatchObject({ _tag: "Iamat", client: id255 })
      expectRefused(latin1(`IAMAT ${"x".repeat(256)} +1+1 1`), "client: must be 1 to 255 bytes")
      // 85 three-byte characters are 255 bytes; one more ASCII byte is too many.
      expect(parseBytes(utf8(`IAMAT ${"北".repeat(85)} +1+1 1`))._tag).toBe("Iamat")
      expectRefused(utf8(`IAMAT ${"北".repeat(85)}x +1+1 1`), "client: must be 1 to 255 bytes")
    })

    it("takes 9 fraction digits in a time but not 10, and no empty fraction", () => {
      expect(parse("IAMAT k +1+1 1621464827.123456789")).toMatchObject({ time: "1621464827.123456789" })
      expectRefused(latin1("IAMAT k +1+1 1621464827.1234567890"), "time: more than 9 fraction digits")
      expectRefused(latin1("IAMAT k +1+1 1621464827."), "time:")
      expectRefused(latin1("IAMAT k +1+1 .5"), "time:")
    })

    it("takes times of thousands of digits", () => {
      const time = "9".repeat(5000) + ".5"
      expect(parse(`IAMAT k +1+1 ${time}`)).toMatchObject({ _tag: "Iamat", time })
    })

    it("checks the skew of an AT line", () => {
      expect(parse("AT A -12.000001500 k +1+1 1")).toMatchObject({ _tag: "At" })
      expect(parse("AT A +0.000000000 k +1+1 1")).toMatchObject({ _tag: "At" })
      for (const skew of ["0.000000000", "+0.00000000", "+0.0000000000", "+.000000000", "+0", "+1e3.000000000", "±0.000000000"]) {
        expectRefused(latin1(`AT A ${skew} k +1+1 1`), "skew:")
      }
    })
  })

  describe("refused lines are echoed as received (PROTOCOL.md section 6)", () => {
    const refusals: ReadonlyArray<readonly [string, Uint8Array, string]> = [
      ["unknown word", latin1("HELLO k +1+1 1"), "unknown command"],
      ["wrong case", latin1("iamat k +1+1 1"), "unknown command"],
      ["wrong case, WHATSAT", latin1("Whatsat k 10 5"), "unknown command"],
      ["IAMAT with too few fields", latin1("IAMAT k +1+1"), "IAMAT: expected 4 fields"],
      ["IAMAT with too many fields", latin1("IAMAT k +1+1 1 extra"), "IAMAT: expected 4 fields"],
      ["two commands on one line", latin1("IAMAT k +1+1 1 IAMAT k +1+1 1"), "IAMAT: expected 4 fields"],
      ["hundreds of fields", latin1("WHATSAT" + " k".repeat(300)), "WHATSAT: expected 4 fields"],
      ["WHATSAT with too few fields", latin1("WHATSAT k 10"), "WHATSAT: expected 4 fields"],
      ["AT with too few fields", latin1("AT A +0.000000000 k +1+1"), "AT: expected 6 fields"],
      ["PEER without a name", latin1("PEER"), "PEER: expected 2 fields"],
      ["PEER with two names", latin1("PEER A B"), "PEER: expected 2 fields"],
      ["location without a sign", latin1("IAMAT k 34.5-118 1"), "location: expected a sign before the latitude"],
      ["location without a longitude", latin1("IAMAT k +34.5 1"), "location: expected a sign before the longitude"],
      ["location with an empty fraction", latin1("IAMAT k +34.-118 1"), "location: malformed latitude"],
      ["location with a trailing sign", latin1("IAMAT k +34.5-118+ 1"), "location: malformed longitude"],
      ["location with a double sign", latin1("IAMAT k ++34-118 1"), "location: malformed latitude"],
      ["location with an exponent", latin1("IAMAT k +1e1-118 1"), "location:"],
      ["latitude out of range", latin1("IAMAT k +90.5-118 1"), "location: latitude out of range"],
      ["longitude out of range", latin1("IAMAT k +34-180.000001 1"), "location: longitude out of range"],
      ["negative time", latin1("IAMAT k +1+1 -1"), "time:"],
      ["time 1e999", latin1("IAMAT k +1+1 1e999"), "time:"],
      ["time NaN", latin1("IAMAT k +1+1 NaN"), "time:"],
      ["time Infinity", latin1("IAMAT k +1+1 Infinity"), "time:"],
      ["time 0x10", latin1("IAMAT k +1+1 0x10"), "time:"],
      ["time in fullwidth digits", utf8("IAMAT k +1+1 １６２１"), "time:"],
      ["time in Arabic-Indic digits", utf8("IAMAT k +1+1 ١٦٢١"), "time:"],
      ["location in fullwidth digits", utf8("IAMAT k +３４-１１８ 1"), "location:"],
      ["radius 1e999", latin1("WHATSAT k 1e999 5"), "radius:"],
      ["radius NaN", latin1("WHATSAT k NaN 5"), "radius:"],
      ["radius 0x10", latin1("WHATSAT k 0x10 5"), "radius:"],
      ["negative radius", latin1("WHATSAT k -1 5"), "radius:"],
      ["radius out of range", latin1("WHATSAT kiwi.cs.ucla.edu 51 5"), "radius: more than 50"],
      ["bound 0x10", latin1("WHATSAT k 10 0x10"), "bound: expected digits"],
      ["bound with a sign", latin1("WHATSAT k 10 +5"), "bound: expected digits"],
      ["bound in fullwidth digits", utf8("WHATSAT k 10 ５"), "bound: expected digits"],
      ["bound out of range", latin1("WHATSAT k 10 21"), "bound: more than 20"],
      ["NUL in a client id", latin1("IAMAT k\x00x +1+1 1"), "client: control byte"],
      ["NUL as a whole field", latin1("IAMAT \x00 +1+1 1"), "client: control byte"],
      ["escape in a client id", latin1("IAMAT k\x1b[2J +1+1 1"), "client: control byte"],
      ["DEL in a client id", latin1("IAMAT k\x7f +1+1 1"), "client: control byte"],
      ["vertical tab as a separator", latin1("IAMAT k\x0b+1+1 1"), "IAMAT: expected 4 fields"],
      ["form feed in a field", latin1("IAMAT k\x0c +1+1 1"), "client: control byte"],
      ["NUL in a time", latin1("IAMAT k +1+1 1\x00"), "time:"],
      ["control byte in an origin", latin1("AT A\x01 +0.000000000 k +1+1 1"), "origin: control byte"],
      ["control byte in a peer name", latin1("PEER A\x07"), "name: control byte"],
      ["invalid UTF-8 in a client id", latin1("IAMAT k\xff\xfe +1+1 1"), "client: invalid UTF-8"],
      ["truncated UTF-8 in a client id", latin1("IAMAT caf\xc3 +1+1 1"), "client: invalid UTF-8"],
      ["overlong UTF-8 in a client id", latin1("IAMAT k\xc0\xaf +1+1 1"), "client: invalid UTF-8"],
      ["overlong three-byte UTF-8 in a client id", latin1("IAMAT k\xe0\x80\xaf +1+1 1"), "client: invalid UTF-8"],
      ["overlong four-byte UTF-8 in a client id", latin1("IAMAT k\xf0\x82\x82\xac +1+1 1"), "client: invalid UTF-8"],
      ["lone continuation byte in a client id", latin1("IAMAT k\x80 +1+1 1"), "client: invalid UTF-8"],
      ["UTF-8 surrogate in a client id", latin1("IAMAT k\xed\xa0\x80 +1+1 1"), "client: invalid UTF-8"],
      ["code point past U+10FFFF", latin1("IAMAT k\xf4\x90\x80\x80 +1+1 1"), "client: invalid UTF-8"],
      ["invalid UTF-8 in an unknown word", latin1("\xff\xfe k +1+1 1"), "unknown command"],
      ["invalid UTF-8 in a location", latin1("IAMAT k +1\xff+1 1"), "location:"],
      ["256-byte client id", latin1(`IAMAT ${"k".repeat(256)} +1+1 1`), "client: must be 1 to 255 bytes"],
      ["6000-byte client id", latin1(`IAMAT ${"k".repeat(6000)} +1+1 1`), "client: must be 1 to 255 bytes"],
      ["NBSP as a separator", utf8("IAMAT k\u00a0+1+1 1"), "IAMAT: expected 4 fields"],
      ["latin1 NBSP as a separator", latin1("IAMAT k\xa0+1+1 1"), "IAMAT: expected 4 fields"],
      ["U+2003 as a separator", utf8("IAMAT k\u2003+1+1 1"), "IAMAT: expected 4 fields"],
      ["U+3000 as a separator", utf8("IAMAT k\u3000+1+1 1"), "IAMAT: expected 4 fields"],
      ["NBSP inside a client id", utf8("IAMAT k\u00a0x +1+1 1"), "client: Unicode whitespace or control"],
      ["U+2003 inside a client id", utf8("IAMAT k\u2003x +1+1 1"), "client: Unicode whitespace or control"],
      ["C1 control inside a client id", utf8("IAMAT k\u0085x +1+1 1"), "client: Unicode whitespace or control"],
      ["line separator inside a peer name", utf8("PEER A\u2028B"), "name: Unicode whitespace or control"],
      ["CRLF kept out of the echo", latin1("iamat k +1+1 1\r"), "unknown command"]
    ]
    for (const [name, bytes, reason] of refusals) {
      it(name, () => expectRefused(bytes, reason))
    }

    it("echoes the exact bytes of a refused line", () => {
      const command = parseBytes(latin1("WHATSAT kiwi.cs.ucla.edu 51 5\r"))
      expect(command._tag === "Invalid" && command.line)
        .toBe("WHATSAT kiwi.cs.ucla.edu 51 5")
    })
  })

  describe("properties", () => {
    it.prop(
      "reads back every AT line it formats",
      { origin: wireName, skew: validSkew, client: wireName, location: validLocation, time: validTime },
      (record) => {
        expect(parseBytes(latin1(LocationRecord.formatAtLine(record)))).toEqual({ _tag: "At", record })
      },
      { fastCheck: { numRuns: 500 } }
    )

    it.prop(
      "reads back every IAMAT, whatever the separators and line ending",
      {
        client: wireName,
        location: validLocation,
        time: validTime,
        separators: fc.array(fc.constantFrom(" ", "\t", "  ", " \t "), { minLength: 5, maxLength: 5 }),
        ending: fc.constantFrom("", "\r")
      },
      ({ client, ending, location, separators: [before = "", afterWord = " ", afterClient = " ", afterLocation = " ", after = ""], time }) => {
        const line = before + "IAMAT" + afterWord + client + afterClient + location + afterLocation + time + after + ending
        expect(parseBytes(latin1(line))).toEqual({ _tag: "Iamat", client, location, time })
      },
      { fastCheck: { numRuns: 300 } }
    )

    it.prop(
      "checks names as a strict UTF-8 decoder and Unicode's White_Space and Cc classes do",
      { name: fc.array(fc.oneof(nameByte, encodedCodePoint), { minLength: 1, maxLength: 12 }).map((parts) => parts.join("")) },
      ({ name }) => {
        expect(parse(`PEER ${name}`)._tag).toBe(isName(name) ? "Peer" : "Invalid")
      },
      { fastCheck: { numRuns: 5000 } }
    )

    it.prop(
      "agrees with an independent reading of the protocol on arbitrary lines",
      { line: arbitraryLine },
      ({ line }) => {
        const command = parseBytes(line)
        expect(command._tag).toBe(oracle(line))
        if (command._tag === "Invalid") {
          const withoutCarriageReturn = line.at(-1) === 0x0d ? line.subarray(0, -1) : line
          expect(Buffer.from(command.line, "latin1")).toEqual(Buffer.from(withoutCarriageReturn))
        }
      },
      { fastCheck: { numRuns: 3000 } }
    )
  })
})

// An independent reading of PROTOCOL.md sections 2 to 6 -----------------------
// Written with regular expressions, BigInt and TextDecoder, nothing the parser
// uses, so that the two can only agree by both being right.

const oracle = (bytes: Uint8Array): Command.Command["_tag"] => {
  const text = Buffer.from(bytes).toString("latin1").replace(/\r$/, "")
  const fields = text.split(/[ \t]+/).filter((field) => field.length > 0)
  const [word, ...rest] = fields
  if (word === undefined) return "Blank"
  const [a = "", b = "", c = "", d = "", e = ""] = rest
  switch (word) {
    case "IAMAT":
      return rest.length === 3 && isName(a) && isLocation(b) && isTime(c) ? "Iamat" : "Invalid"
    case "WHATSAT":
      return rest.length === 3 && isName(a) && isRadius(b) && isBound(c) ? "Whatsat" : "Invalid"
    case "AT":
      return rest.length === 5 && isName(a) && /^[+-]\d+\.\d{9}$/.test(b) && isName(c) && isLocation(d) &&
          isTime(e)
        ? "At"
        : "Invalid"
    case "PEER":
      return rest.length === 1 && isName(a) ? "Peer" : "Invalid"
    default:
      return "Invalid"
  }
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true })

const isName = (field: string): boolean => {
  if (field.length < 1 || field.length > 255) return false
  try {
    return !/[\p{White_Space}\p{Cc}]/u.test(strictUtf8.decode(Buffer.from(field, "latin1")))
  } catch {
    return false
  }
}

/** Single bytes that matter to a UTF-8 decoder: ASCII, continuations, every kind of lead, never-valid bytes. */
const nameByte = fc.constantFrom(
  0x41, 0x7e, 0x01, 0x7f, 0x80, 0x85, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xc3, 0xdf, 0xe0, 0xe1, 0xe2,
  0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf4, 0xf5, 0xf8, 0xfe, 0xff
).map((byte) => String.fromCharCode(byte))

/** Whole encodings of code points near the edges the parser must tell apart. */
const encodedCodePoint = fc.constantFrom(
  0x7f, 0x80, 0x85, 0x9f, 0xa0, 0xa1, 0x7ff, 0x800, 0x1680, 0x1fff, 0x2000, 0x200a, 0x200b, 0x2028, 0x2029, 0x202f,
  0x205f, 0x3000, 0xd7ff, 0xe000, 0xfeff, 0xffff, 0x10000, 0x10ffff
).map((codePoint) => asWire(String.fromCodePoint(codePoint)))

const atMost = (decimal: string, limit: bigint): boolean => {
  const [integer = "", fraction = ""] = decimal.split(".")
  const value = BigInt(integer)
  return value < limit || (value === limit && /^0*$/.test(fraction))
}

const isLocation = (field: string): boolean => {
  const match = /^[+-](\d+(?:\.\d+)?)[+-](\d+(?:\.\d+)?)$/.exec(field)
  return match !== null && atMost(match[1] ?? "", 90n) && atMost(match[2] ?? "", 180n)
}

const isTime = (field: string): boolean => /^\d+(?:\.\d{1,9})?$/.test(field)

const isRadius = (field: string): boolean =>
  /^\d+(?:\.\d+)?$/.test(field) && !/^[0.]+$/.test(field) && atMost(field, 50n)

const isBound = (field: string): boolean => /^\d+$/.test(field) && BigInt(field) >= 1n && BigInt(field) <= 20n

// Lines shaped like each command, most fields drawn from near their valid
// range and some from a pool of odd values and junk, joined by separators that
// are and are not field separators.

const oddValue = fc.constantFrom(
  "1e999", "NaN", "Infinity", "-0", "+0", "0x10", "0", "00", "0.0", "1.", ".5", "50", "50.0", "50.0001", "20", "21",
  "0005", "-1", "+5", asWire("１６"), asWire("٣"), "+90+180", "-90.0-180.0", "+90.1+0", "+0+180.01", "+34.-118",
  "+34", "+0.000000000", "-1.000000001", "+1.00000000", asWire("k\u00a0x"), asWire("\u2003"), "k\x00", "\x7f",
  "k".repeat(255), "k".repeat(256), "\xc3\xa9", "\xc3", "\xe2\x80\x83"
)

const junkField = fc.uint8Array({ minLength: 1, maxLength: 6 })
  .map((bytes) => Buffer.from(bytes.filter((byte) => byte !== 0x20 && byte !== 0x09)).toString("latin1"))
  .filter((field) => field.length > 0)

const nearLocation = fc.tuple(
  fc.constantFrom("+", "-", "", "x"),
  fc.oneof(digitString(1, 2), fc.constantFrom("90", "090", "91", "89")),
  fc.constantFrom("", ".", ".0", ".00000001", ".999"),
  fc.constantFrom("+", "-", "", "+", "-"),
  fc.oneof(digitString(1, 3), fc.constantFrom("180", "0180", "181", "179")),
  fc.constantFrom("", ".", ".0", ".5", ".0000000000001")
).map((parts) => parts.join(""))

const nearTime = fc.tuple(digitString(1, 30), fc.oneof(fc.constant(""), digitString(0, 11).map((d) => "." + d)))
  .map(([integer, fraction]) => integer + fraction)

const nearRadius = fc.tuple(
  fc.oneof(digitString(1, 2), fc.constantFrom("50", "050", "51", "0", "49")),
  fc.oneof(fc.constant(""), digitString(0, 6).map((d) => "." + d))
).map(([integer, fraction]) => integer + fraction)

const nearBound = fc.oneof(
  fc.tuple(fc.constantFrom("", "0", "000"), fc.nat({ max: 25 })).map(([zeros, bound]) => zeros + bound),
  fc.constantFrom("5.0", "+5", "-1", "")
)

const nearSkew = fc.tuple(fc.constantFrom("+", "-", ""), digitString(0, 3), fc.constantFrom(".", ""), digitString(8, 10))
  .map((parts) => parts.join(""))

const anyField = fc.oneof(oddValue, junkField, wireName, validLocation, nearTime)

/** A slot of a command: mostly a value near its valid range, sometimes anything. */
const slot = (near: fc.Arbitrary<string>): fc.Arbitrary<string> =>
  fc.oneof({ weight: 9, arbitrary: near }, { weight: 1, arbitrary: anyField })

const shapes: ReadonlyArray<readonly [string, fc.Arbitrary<ReadonlyArray<string>>]> = [
  ["IAMAT", fc.tuple(slot(wireName), slot(fc.oneof(validLocation, nearLocation)), slot(fc.oneof(validTime, nearTime)))],
  ["WHATSAT", fc.tuple(slot(wireName), slot(nearRadius), slot(nearBound))],
  [
    "AT",
    fc.tuple(
      slot(wireName),
      slot(fc.oneof(validSkew, nearSkew)),
      slot(wireName),
      slot(fc.oneof(validLocation, nearLocation)),
      slot(fc.oneof(validTime, nearTime))
    )
  ],
  ["PEER", fc.tuple(slot(wireName))]
]

const commandWord = (word: string): fc.Arbitrary<string> =>
  fc.oneof(
    { weight: 9, arbitrary: fc.constant(word) },
    { weight: 1, arbitrary: fc.constantFrom(word.toLowerCase(), word + "\x00", "HELLO", word.slice(1)) }
  )

/** Fields with, now and then, one dropped or one extra. */
const fieldsOfShape = fc.oneof(...shapes.map(([word, fields]) =>
  fc.tuple(commandWord(word), fields, fc.constantFrom("keep", "keep", "keep", "keep", "drop", "add"), anyField)
    .map(([command, rest, change, extra]) =>
      change === "drop" ? [command, ...rest.slice(1)] : change === "add" ? [command, ...rest, extra] : [command, ...rest]
    )
))

const separator = fc.oneof(
  { weight: 12, arbitrary: fc.constantFrom(" ", "\t", "   ", " \t ") },
  {
    weight: 1,
    arbitrary: fc.constantFrom("\x0b", "\x0c", "\xa0", asWire("\u00a0"), asWire("\u2003"), asWire("\u3000"), "\r", "\x00")
  }
)

const arbitraryLine: fc.Arbitrary<Uint8Array> = fc.tuple(
  fc.constantFrom("", "", " ", "\t "),
  fieldsOfShape,
  fc.array(separator, { minLength: 6, maxLength: 6 }),
  fc.constantFrom("", "", " ", "\r", " \r", "\r\r")
).map(([leading, fields, gaps, ending]) =>
  latin1(leading + fields.map((text, index) => (index === 0 ? "" : gaps[index - 1] ?? " ") + text).join("") + ending)
)
