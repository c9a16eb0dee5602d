/**
 * One line of the wire into a typed command (PROTOCOL.md sections 2 to 6).
 *
 * This runs once per line received, so it is a hand-written scanner over char
 * codes: no regular expressions (nothing can backtrack on a hostile line), no
 * number parsing of fields whose value only needs a range check (a time may
 * have thousands of digits), and no splitting past the seventh field, which
 * is enough to know that a line has too many.
 *
 * The line is read as latin1, one char per byte, so a field keeps the exact
 * bytes the client sent and is echoed back unchanged whatever its encoding.
 */
import type { At, Blank, Command, Iamat, Invalid, Peer, Whatsat } from "./Command.ts"

/**
 * Reads one line, given without its LF. A CR just before the LF is dropped
 * first; only that one CR, so a CR anywhere else stays part of a field (and
 * makes it invalid, as a control byte).
 */
export const parseLine = (line: Uint8Array): Command => {
  const length = line.length > 0 && line[line.length - 1] === CARRIAGE_RETURN ? line.length - 1 : line.length
  const fields = splitFields(latin1Of(line, length))
  if (fields.length === 0) return blank
  const parsed = parseFields(fields)
  return typeof parsed === "string" ? refused(line.subarray(0, length), parsed) : parsed
}

/**
 * One char per byte. A Buffer (what a socket gives) decodes in place; any other
 * Uint8Array first gets a Buffer view over its bytes, which costs as much again.
 */
const latin1Of = (line: Uint8Array, length: number): string =>
  Buffer.isBuffer(line)
    ? line.toString("latin1", 0, length)
    : Buffer.from(line.buffer, line.byteOffset, length).toString("latin1")

/**
 * Why a line is refused, naming the field, for the log. A plain string so that
 * the scanners below can answer either a command or a reason without wrapping.
 */
type Reason = string

/** Shared: a blank line carries nothing, so every one can be the same value. */
const blank: Blank = { _tag: "Blank" }

const refused = (line: Uint8Array, reason: Reason): Invalid => ({ _tag: "Invalid", line, reason })

const parseFields = (fields: ReadonlyArray<string>): Iamat | Whatsat | At | Peer | Reason => {
  switch (fields[0]) {
    case "IAMAT":
      return fields.length === 4 ? parseIamat(fields) : "IAMAT: expected 4 fields"
    case "WHATSAT":
      return fields.length === 4 ? parseWhatsat(fields) : "WHATSAT: expected 4 fields"
    case "AT":
      return fields.length === 6 ? parseAt(fields) : "AT: expected 6 fields"
    case "PEER":
      return fields.length === 2 ? parsePeer(fields) : "PEER: expected 2 fields"
    default:
      return "unknown command"
  }
}

const parseIamat = (fields: ReadonlyArray<string>): Iamat | Reason => {
  const [, client = "", location = "", time = ""] = fields
  const wrong = checkName("client", client) ?? checkLocation(location) ?? checkTime(time)
  return wrong ?? { _tag: "Iamat", client, location, time }
}

const parseWhatsat = (fields: ReadonlyArray<string>): Whatsat | Reason => {
  const [, client = "", radius = "", bound = ""] = fields
  const wrong = checkName("client", client) ?? checkRadius(radius) ?? checkBound(bound)
  // A bound is at most 20 here, so Number reads it exactly, leading zeros and all.
  return wrong ?? { _tag: "Whatsat", client, radius, radiusMetres: metresOf(radius), bound: Number(bound) }
}

const parseAt = (fields: ReadonlyArray<string>): At | Reason => {
  const [, origin = "", skew = "", client = "", location = "", time = ""] = fields
  const wrong = checkName("origin", origin) ?? checkSkew(skew) ?? checkName("client", client) ??
    checkLocation(location) ?? checkTime(time)
  return wrong ?? { _tag: "At", record: { origin, skew, client, location, time } }
}

const parsePeer = (fields: ReadonlyArray<string>): Peer | Reason => {
  const [, name = ""] = fields
  return checkName("name", name) ?? { _tag: "Peer", name }
}

// Fields ----------------------------------------------------------------------

/** The longest command, AT, has six fields; a seventh is enough to know a line has too many. */
const FIELDS_WORTH_READING = 7

/** Only space and tab separate fields: a vertical tab, NBSP or U+2003 is part of one. */
const isSeparator = (code: number): boolean => code === SPACE || code === TAB

const splitFields = (text: string): Array<string> => {
  const fields: Array<string> = []
  let index = 0
  while (fields.length < FIELDS_WORTH_READING) {
    while (index < text.length && isSeparator(text.charCodeAt(index))) index++
    if (index === text.length) break
    const start = index
    while (index < text.length && !isSeparator(text.charCodeAt(index))) index++
    fields.push(text.slice(start, index))
  }
  return fields
}

/**
 * A client id or a server name: 1 to 255 bytes, no control byte, and if not
 * plain ASCII then clean UTF-8 text, so that no id can look like whitespace or
 * carry a terminal control sequence once decoded by someone else.
 */
const checkName = (what: string, field: string): Reason | undefined => {
  if (field.length === 0 || field.length > 255) return `${what}: must be 1 to 255 bytes`
  let isPlainAscii = true
  for (let index = 0; index < field.length; index++) {
    const code = field.charCodeAt(index)
    if (code < 0x20 || code === 0x7f) return `${what}: control byte`
    if (code > 0x7e) isPlainAscii = false
  }
  if (isPlainAscii) return undefined
  const wrong = checkUtf8Text(field)
  return wrong === undefined ? undefined : `${what}: ${wrong}`
}

/** ISO 6709 `±latitude±longitude`, each `digits(.digits)?`, ranges checked on the digits. */
const checkLocation = (field: string): Reason | undefined => {
  if (!isSign(codeAt(field, 0))) return "location: expected a sign before the latitude"
  const latitudeEnd = decimalEnd(field, 1)
  if (latitudeEnd < 0) return "location: malformed latitude"
  if (!isSign(codeAt(field, latitudeEnd))) return "location: expected a sign before the longitude"
  if (decimalEnd(field, latitudeEnd + 1) !== field.length) return "location: malformed longitude"
  if (!isAtMost(field, 1, latitudeEnd, 90)) return "location: latitude out of range"
  if (!isAtMost(field, latitudeEnd + 1, field.length, 180)) return "location: longitude out of range"
  return undefined
}

/** POSIX seconds: any number of digits, then an optional fraction of 1 to 9 digits. */
const checkTime = (field: string): Reason | undefined => {
  if (decimalEnd(field, 0) !== field.length) return "time: expected digits with an optional fraction"
  const dot = field.indexOf(".")
  if (dot >= 0 && field.length - dot - 1 > 9) return "time: more than 9 fraction digits"
  return undefined
}

/** Kilometres, `digits(.digits)?`, greater than 0 and at most 50. */
const checkRadius = (field: string): Reason | undefined => {
  if (decimalEnd(field, 0) !== field.length) return "radius: expected digits with an optional fraction"
  if (isZero(field)) return "radius: must be greater than 0"
  if (!isAtMost(field, 0, field.length, 50)) return "radius: more than 50"
  return undefined
}

/** An integer from 1 to 20, digits only. */
const checkBound = (field: string): Reason | undefined => {
  for (let index = 0; index < field.length; index++) {
    if (!isDigit(field.charCodeAt(index))) return "bound: expected digits"
  }
  if (isZero(field)) return "bound: must be at least 1"
  if (!isAtMost(field, 0, field.length, 20)) return "bound: more than 20"
  return undefined
}

/** As the skew of an AT line is printed: a sign, digits, `.`, exactly nine digits. */
const checkSkew = (field: string): Reason | undefined => {
  const dot = field.indexOf(".")
  const wellFormed = isSign(codeAt(field, 0)) && dot > 1 && field.length - dot - 1 === 9 &&
    decimalEnd(field, 1) === field.length
  return wellFormed ? undefined : "skew: expected a sign, digits and nine decimals"
}

/**
 * The radius in metres, exact to the digits sent: the decimal point moves three
 * places in the text before Number reads it, so "1.1" is 1100, not 1100.0000000000002.
 */
const metresOf = (kilometres: string): number => {
  const dot = kilometres.indexOf(".")
  if (dot < 0) return Number(kilometres + "000")
  const fraction = kilometres.slice(dot + 1)
  const wholeMetres = kilometres.slice(0, dot) + fraction.slice(0, 3).padEnd(3, "0")
  return Number(fraction.length > 3 ? wholeMetres + "." + fraction.slice(3) : wholeMetres)
}

// Scanning helpers ----------------------------------------------------------------

const TAB = 0x09
const CARRIAGE_RETURN = 0x0d
const SPACE = 0x20
const PLUS = 0x2b
const MINUS = 0x2d
const DOT = 0x2e
const ZERO = 0x30
const NINE = 0x39

/**
 * The char code at `index`, or -1 past the end (neither a digit nor a sign),
 * so the scanners below can look one char ahead. (`charCodeAt` past the end
 * gives NaN, which V8 handles on a slow path.)
 */
const codeAt = (text: string, index: number): number => index < text.length ? text.charCodeAt(index) : -1

const isDigit = (code: number): boolean => code >= ZERO && code <= NINE

const isSign = (code: number): boolean => code === PLUS || code === MINUS

/**
 * Where `digits(.digits)?` starting at `start` ends, or -1 when there is none
 * there. A fraction needs a digit: `34.` is not a number on this wire.
 */
const decimalEnd = (text: string, start: number): number => {
  let index = start
  while (isDigit(codeAt(text, index))) index++
  if (index === start) return -1
  if (codeAt(text, index) !== DOT) return index
  const fractionStart = ++index
  while (isDigit(codeAt(text, index))) index++
  return index === fractionStart ? -1 : index
}

/**
 * Whether the decimal `text[start, end)` is at most `limit`, decided on the
 * digits: any number of leading zeros, any number of fraction digits, and
 * `90.0000000001` is still more than 90.
 */
const isAtMost = (text: string, start: number, end: number, limit: number): boolean => {
  let index = start
  let integer = 0
  for (; index < end && text.charCodeAt(index) !== DOT; index++) {
    integer = integer * 10 + text.charCodeAt(index) - ZERO
    // Stopping here keeps `integer` small whatever the number of digits.
    if (integer > limit) return false
  }
  if (integer < limit) return true
  for (index++; index < end; index++) {
    if (text.charCodeAt(index) !== ZERO) return false
  }
  return true
}

/** Whether a well-formed decimal is zero: only zeros around its point. */
const isZero = (decimal: string): boolean => {
  for (let index = 0; index < decimal.length; index++) {
    const code = decimal.charCodeAt(index)
    if (code !== ZERO && code !== DOT) return false
  }
  return true
}

/**
 * Decodes the UTF-8 held in a latin1 string (one char per byte) and answers
 * what is wrong with it as the text of a name: malformed UTF-8 (overlong forms,
 * surrogates and code points past U+10FFFF included), or a code point that is
 * Unicode whitespace or a C1 control. Bytes 0x00-0x7F are checked by the caller.
 */
const checkUtf8Text = (bytes: string): string | undefined => {
  let index = 0
  while (index < bytes.length) {
    const lead = bytes.charCodeAt(index)
    if (lead < 0x80) {
      index++
      continue
    }
    let continuationBytes: number
    let codePoint: number
    let smallest: number
    if (lead >= 0xc2 && lead <= 0xdf) {
      continuationBytes = 1
      codePoint = lead & 0x1f
      smallest = 0x80
    } else if (lead >= 0xe0 && lead <= 0xef) {
      continuationBytes = 2
      codePoint = lead & 0x0f
      smallest = 0x800
    } else if (lead >= 0xf0 && lead <= 0xf4) {
      continuationBytes = 3
      codePoint = lead & 0x07
      smallest = 0x10000
    } else {
      return "invalid UTF-8"
    }
    if (index + continuationBytes >= bytes.length) return "invalid UTF-8"
    for (let offset = 1; offset <= continuationBytes; offset++) {
      const continuation = bytes.charCodeAt(index + offset)
      if ((continuation & 0xc0) !== 0x80) return "invalid UTF-8"
      codePoint = (codePoint << 6) | (continuation & 0x3f)
    }
    if (codePoint < smallest || codePoint > 0x10ffff || (codePoint >= 0xd800 && codePoint <= 0xdfff)) {
      return "invalid UTF-8"
    }
    if (isUnicodeSpaceOrControl(codePoint)) return "Unicode whitespace or control"
    index += continuationBytes + 1
  }
  return undefined
}

/** C1 controls and the non-ASCII code points of the Unicode White_Space property. */
const isUnicodeSpaceOrControl = (codePoint: number): boolean =>
  (codePoint >= 0x80 && codePoint <= 0xa0) ||
  codePoint === 0x1680 ||
  (codePoint >= 0x2000 && codePoint <= 0x200a) ||
  codePoint === 0x2028 ||
  codePoint === 0x2029 ||
  codePoint === 0x202f ||
  codePoint === 0x205f ||
  codePoint === 0x3000
