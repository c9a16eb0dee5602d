import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { Time } from "../src/index.ts"
import { digitString, nanosOfTime, validTime } from "./arbitraries.ts"

describe("skewOf", () => {
  it("prints the examples of PROTOCOL.md section 3", () => {
    expect(Time.skewOf(1_621_464_828_223_371_889n, "1621464827.959498503")).toBe("+0.263873386")
    expect(Time.skewOf(1_621_464_827_000_000_000n, "1621464827.0000015")).toBe("-0.000001500")
    expect(Time.skewOf(1_621_464_827_000_000_000n, "1621464827")).toBe("+0.000000000")
  })

  it("borrows across the point in both directions", () => {
    expect(Time.skewOf(5_000_000_001n, "3.000000002")).toBe("+1.999999999")
    expect(Time.skewOf(3_000_000_002n, "5.000000001")).toBe("-1.999999999")
    expect(Time.skewOf(0n, "1")).toBe("-1.000000000")
    expect(Time.skewOf(0n, "0.000000001")).toBe("-0.000000001")
    expect(Time.skewOf(999_999_999n, "0")).toBe("+0.999999999")
    expect(Time.skewOf(0n, "0000.0")).toBe("+0.000000000")
  })

  it("reads fractions of 1 to 9 digits as the nanoseconds they stand for", () => {
    expect(Time.skewOf(2_000_000_000n, "1.5")).toBe("+0.500000000")
    expect(Time.skewOf(2_000_000_000n, "1.05")).toBe("+0.950000000")
    expect(Time.skewOf(2_000_000_000n, "1.000000007")).toBe("+0.999999993")
  })

  it("ignores leading zeros, however many", () => {
    expect(Time.skewOf(1_621_464_828_000_000_000n, "0".repeat(1000) + "1621464827.5")).toBe("+0.500000000")
  })

  it("stays exact on both sides of the 15-digit fast path", () => {
    expect(Time.skewOf(0n, "999999999999999.999999999")).toBe("-999999999999999.999999999")
    expect(Time.skewOf(0n, "1000000000000000.000000001")).toBe("-1000000000000000.000000001")
    expect(Time.skewOf(9_007_199_254_740_993_000_000_001n, "1.000000002")).toBe("+9007199254740991.999999999")
  })

  it("gives a 500-digit negative skew for a 500-digit client time", () => {
    const time = "9".repeat(500)
    const skew = Time.skewOf(1_621_464_828_000_000_000n, time)
    // 10^500 - 1 - 1621464828 seconds before the receive time.
    const expected = "-" + "9".repeat(490) + (9_999_999_999n - 1_621_464_828n).toString() + ".000000000"
    expect(skew).toBe(expected)
    expect(skew.length).toBe(1 + 500 + 1 + 9)
  })

  it("handles a receive time before the epoch", () => {
    expect(Time.skewOf(-1n, "0")).toBe("-0.000000001")
    expect(Time.skewOf(-1_500_000_000n, "1.5")).toBe("-3.000000000")
  })

  it.prop(
    "equals an exact decimal subtraction on the digit strings",
    {
      time: validTime,
      received: fc.oneof(
        fc.bigInt({ min: 0n, max: 10n ** 19n }),
        fc.tuple(digitString(1, 25), digitString(9, 9)).map(([seconds, nanos]) => BigInt(seconds + nanos))
      ),
      closeBy: fc.option(fc.bigInt({ min: -(10n ** 12n), max: 10n ** 12n }))
    },
    ({ closeBy, received, time }) => {
      // Half the cases sit near the client time, where borrows and signs flip.
      const receivedNs = closeBy === null ? received : nanosOfTime(time) + closeBy
      expect(Time.skewOf(receivedNs, time)).toBe(decimalSkew(receivedNs.toString(), time))
    },
    { fastCheck: { numRuns: 2000 } }
  )
})

describe("isLaterThan", () => {
  const limit = 1_764_633_600_500_000_000n // 1764633600.5

  it("compares by value, to the nanosecond, leading zeros and all", () => {
    expect(Time.isLaterThan("1764633600.5", limit)).toBe(false)
    expect(Time.isLaterThan("1764633600.500000001", limit)).toBe(true)
    expect(Time.isLaterThan("1764633600.499999999", limit)).toBe(false)
    expect(Time.isLaterThan("0001764633600.50", limit)).toBe(false)
    expect(Time.isLaterThan("1764633601", limit)).toBe(true)
    expect(Time.isLaterThan("999999999", limit)).toBe(false)
    expect(Time.isLaterThan("0", 0n)).toBe(false)
    expect(Time.isLaterThan("0.000000001", 0n)).toBe(true)
    expect(Time.isLaterThan("0", -1n)).toBe(true)
  })

  it("refuses a time of thousands of digits, and takes one of thousands of leading zeros", () => {
    expect(Time.isLaterThan("9".repeat(8000), limit)).toBe(true)
    expect(Time.isLaterThan("1" + "0".repeat(30), limit)).toBe(true)
    expect(Time.isLaterThan("0".repeat(8000) + "1621464827.959498503", limit)).toBe(false)
  })

  it.prop(
    "agrees with BigInt nanoseconds",
    { time: validTime, zeros: fc.nat({ max: 3 }), limitTime: validTime, near: fc.integer({ min: -2, max: 2 }), same: fc.boolean() },
    ({ limitTime, near, same, time, zeros }) => {
      const text = "0".repeat(zeros) + time
      const limitNs = (same ? nanosOfTime(time) : nanosOfTime(limitTime)) + BigInt(near)
      expect(Time.isLaterThan(text, limitNs)).toBe(nanosOfTime(text) > limitNs)
    },
    { fastCheck: { numRuns: 1000 } }
  )
})

describe("compareTimes", () => {
  it("orders by value, not by text", () => {
    expect(Time.compareTimes("2", "10")).toBe(-1)
    expect(Time.compareTimes("10", "2")).toBe(1)
    expect(Time.compareTimes("1.5", "01.500")).toBe(0)
    expect(Time.compareTimes("1.05", "1.5")).toBe(-1)
    expect(Time.compareTimes("1", "1.000000001")).toBe(-1)
    expect(Time.compareTimes("0", "000.0")).toBe(0)
    expect(Time.compareTimes("9".repeat(400), "1" + "0".repeat(400))).toBe(-1)
  })

  it.prop(
    "agrees with BigInt nanoseconds",
    {
      a: validTime,
      b: validTime,
      zerosA: fc.nat({ max: 3 }),
      zerosB: fc.nat({ max: 3 }),
      same: fc.boolean()
    },
    ({ a, b, same, zerosA, zerosB }) => {
      const left = "0".repeat(zerosA) + a
      const right = "0".repeat(zerosB) + (same ? a : b)
      const difference = nanosOfTime(left) - nanosOfTime(right)
      expect(Time.compareTimes(left, right)).toBe(difference < 0n ? -1 : difference > 0n ? 1 : 0)
    },
    { fastCheck: { numRuns: 1000 } }
  )

  it.prop(
    "agrees with BigInt nanoseconds for times written alike (the byte-order path)",
    {
      shape: fc.tuple(fc.integer({ min: 1, max: 25 }), fc.integer({ min: 0, max: 9 })).chain(([integer, fraction]) => {
        const time = fc.tuple(digitString(integer, integer), digitString(fraction, fraction)).map(([whole, part]) =>
          fraction === 0 ? whole : `${whole}.${part}`
        )
        return fc.tuple(time, time)
      })
    },
    ({ shape: [left, right] }) => {
      const difference = nanosOfTime(left) - nanosOfTime(right)
      expect(Time.compareTimes(left, right)).toBe(difference < 0n ? -1 : difference > 0n ? 1 : 0)
    },
    { fastCheck: { numRuns: 1000 } }
  )
})

// Exact decimal arithmetic on digit strings, school style, to check skewOf
// without trusting either of its paths.

/** `received - time` in seconds with nine decimals, from a nanosecond count and a time text. */
const decimalSkew = (receivedNanos: string, time: string): string => {
  const [integer = "", fraction = ""] = time.split(".")
  const client = stripZeros(integer + fraction.padEnd(9, "0"))
  const received = stripZeros(receivedNanos.replace("-", ""))
  const receivedIsNegative = receivedNanos.startsWith("-")
  // received - client, with received's sign: add magnitudes when received is negative.
  const [sign, magnitude] = receivedIsNegative
    ? ["-", addDigits(received, client)]
    : compareDigits(received, client) >= 0
    ? ["+", subtractDigits(received, client)]
    : ["-", subtractDigits(client, received)]
  const digits = magnitude.padStart(10, "0")
  return (magnitude === "0" ? "+" : sign) + digits.slice(0, -9) + "." + digits.slice(-9)
}

const stripZeros = (digits: string): string => digits.replace(/^0+(?=\d)/, "")

const compareDigits = (a: string, b: string): number =>
  a.length !== b.length ? a.length - b.length : a < b ? -1 : a > b ? 1 : 0

const digitAt = (digits: string, fromRight: number): number =>
  fromRight < digits.length ? digits.charCodeAt(digits.length - 1 - fromRight) - 48 : 0

/** a - b for digit strings with a >= b. */
const subtractDigits = (a: string, b: string): string => {
  const out: Array<number> = []
  let borrow = 0
  for (let position = 0; position < a.length; position++) {
    let digit = digitAt(a, position) - digitAt(b, position) - borrow
    borrow = digit < 0 ? 1 : 0
    if (digit < 0) digit += 10
    out.push(digit)
  }
  return stripZeros(out.reverse().join(""))
}

const addDigits = (a: string, b: string): string => {
  const out: Array<number> = []
  let carry = 0
  for (let position = 0; position < Math.max(a.length, b.length); position++) {
    const sum = digitAt(a, position) + digitAt(b, position) + carry
    carry = sum >= 10 ? 1 : 0
    out.push(sum % 10)
  }
  if (carry > 0) out.push(carry)
  return stripZeros(out.reverse().join(""))
}
