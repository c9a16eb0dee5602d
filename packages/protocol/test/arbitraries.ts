/**
 * Generators of wire fields shared by the property tests, and a small
 * independent reading of the field rules to check the parser against.
 */
import { FastCheck as fc } from "effect"

/** The bytes of a line as a test writes it: one byte per char. */
export const latin1 = (text: string): Uint8Array => Buffer.from(text, "latin1")

/** The bytes of a line written as Unicode text. */
export const utf8 = (text: string): Uint8Array => Buffer.from(text, "utf8")

/** A UTF-8 string seen as the parser sees it: one latin1 char per byte. */
export const asWire = (text: string): string => Buffer.from(text, "utf8").toString("latin1")

export const digitString = (minLength: number, maxLength: number): fc.Arbitrary<string> =>
  fc.array(fc.constantFrom("0", "1", "2", "3", "4", "5", "6", "7", "8", "9"), { minLength, maxLength })
    .map((digits) => digits.join(""))

const leadingZeros = fc.nat({ max: 3 }).map((count) => "0".repeat(count))

const optionalFraction = (maxDigits: number): fc.Arbitrary<string> =>
  fc.oneof(fc.constant(""), digitString(1, maxDigits).map((digits) => "." + digits))

/** A code point that a name may hold: not whitespace, not a control, not a surrogate. */
const nameCodePoint = fc.oneof(
  fc.integer({ min: 0x21, max: 0x7e }),
  fc.integer({ min: 0xa1, max: 0x10ffff })
).filter((codePoint) =>
  (codePoint < 0xd800 || codePoint > 0xdfff) && !/[\p{White_Space}\p{Cc}]/u.test(String.fromCodePoint(codePoint))
)

/** A client id or server name as a latin1 wire string: clean UTF-8, 1 to 255 bytes. */
export const wireName: fc.Arbitrary<string> = fc.oneof(
  fc.array(fc.integer({ min: 0x21, max: 0x7e }), { minLength: 1, maxLength: 255 })
    .map((codes) => String.fromCharCode(...codes)),
  // At most four bytes per code point: 63 of them always fit in 255 bytes.
  fc.array(nameCodePoint, { minLength: 1, maxLength: 63 })
    .map((codePoints) => asWire(String.fromCodePoint(...codePoints)))
)

/** A decimal strictly below `limit` or exactly `limit` with a zero fraction, leading zeros and all. */
const coordinate = (limit: number): fc.Arbitrary<string> =>
  fc.oneof(
    fc.tuple(leadingZeros, fc.nat({ max: limit - 1 }), optionalFraction(12))
      .map(([zeros, integer, fraction]) => zeros + integer + fraction),
    fc.tuple(leadingZeros, fc.nat({ max: 4 }))
      .map(([zeros, fractionZeros]) => zeros + limit + (fractionZeros > 0 ? "." + "0".repeat(fractionZeros) : ""))
  )

const sign = fc.constantFrom("+", "-")

export const validLocation: fc.Arbitrary<string> = fc.tuple(sign, coordinate(90), sign, coordinate(180))
  .map((parts) => parts.join(""))

/** Client times: digits of any length (hundreds included), 0 to 9 fraction digits. */
export const validTime: fc.Arbitrary<string> = fc.tuple(
  fc.oneof({ weight: 3, arbitrary: digitString(1, 18) }, { weight: 1, arbitrary: digitString(16, 600) }),
  optionalFraction(9)
).map(([integer, fraction]) => integer + fraction)

export const validSkew: fc.Arbitrary<string> = fc.tuple(sign, digitString(1, 40), digitString(9, 9))
  .map(([skewSign, seconds, nanos]) => skewSign + seconds + "." + nanos)

/** Nanoseconds in a time text, by BigInt on its digits: for generating inputs only. */
export const nanosOfTime = (time: string): bigint => {
  const [integer = "", fraction = ""] = time.split(".")
  return BigInt(integer + fraction.padEnd(9, "0"))
}
