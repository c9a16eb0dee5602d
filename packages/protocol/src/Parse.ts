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
 * A parser: `parse(line)` reads one line, given without its LF as latin1
 * text (one char per byte: `bytes.toString("latin1")`). Each parser has the
 * scratch space it scans fields into, so nothing is shared between parsers;
 * a hot path makes one and keeps it.
 */
export const makeParser = (): ((line: string) => Command) => {
  /**
   * Reads one line, given without its LF as latin1 text (one char per byte:
   * `bytes.toString("latin1")`). A CR just before the LF is dropped first; only
   * that one CR, so a CR anywhere else stays part of a field (and makes it
   * invalid, as a control byte).
   */
  const parseLine = (line: string): Command => {
    const end = contentEnd(line)
    const fieldCount = findFields(line, end)
    if (fieldCount === 0) return blank
    const parsed = parseFields(line, fieldCount)
    return typeof parsed === "string" ? refused(end === line.length ? line : line.slice(0, end), parsed) : parsed
  }


  /**
   * Why a line is refused, naming the field, for the log. A plain string so that
   * the scanners below can answer either a command or a reason without wrapping.
   */
  type Reason = string

  /** Shared: a blank line carries nothing, so every one can be the same value. */
  const blank: Blank = { _tag: "Blank" }

  const refused = (line: string, reason: Reason): Invalid => ({ _tag: "Invalid", line, reason })

  const parseFields = (text: string, fieldCount: number): Iamat | Whatsat | At | Peer | Reason => {
    if (fieldIs(text, 0, "IAMAT")) return fieldCount === 4 ? parseIamat(text) : "IAMAT: expected 4 fields"
    if (fieldIs(text, 0, "WHATSAT")) return fieldCount === 4 ? parseWhatsat(text) : "WHATSAT: expected 4 fields"
    if (fieldIs(text, 0, "AT")) return fieldCount === 6 ? parseAt(text) : "AT: expected 6 fields"
    if (fieldIs(text, 0, "PEER")) return fieldCount === 2 ? parsePeer(text) : "PEER: expected 2 fields"
    return "unknown command"
  }

  const parseIamat = (text: string): Iamat | Reason =>
    checkName("client", text, 1) ?? checkLocation(text, 2) ?? checkTime(text, 3) ??
      { _tag: "Iamat", client: field(text, 1), location: field(text, 2), time: field(text, 3) }

  const parseWhatsat = (text: string): Whatsat | Reason => {
    const wrong = checkName("client", text, 1) ?? checkRadius(text, 2) ?? checkBound(text, 3)
    if (wrong !== undefined) return wrong
    const radius = field(text, 2)
    // A bound is at most 20 here, so Number reads it exactly, leading zeros and all.
    const bound = Number(field(text, 3))
    return { _tag: "Whatsat", client: field(text, 1), radius, radiusMetres: metresOf(radius), bound }
  }

  const parseAt = (text: string): At | Reason =>
    checkName("origin", text, 1) ?? checkSkew(text, 2) ?? checkName("client", text, 3) ??
      checkLocation(text, 4) ?? checkTime(text, 5) ?? {
        _tag: "At",
        record: {
          origin: field(text, 1),
          skew: field(text, 2),
          client: field(text, 3),
          location: field(text, 4),
          time: field(text, 5)
        }
      }

  const parsePeer = (text: string): Peer | Reason => checkName("name", text, 1) ?? { _tag: "Peer", name: field(text, 1) }

  // Fields ----------------------------------------------------------------------

  /** The longest command, AT, has six fields; a seventh is enough to know a line has too many. */
  const FIELDS_WORTH_READING = 7

  /**
   * Where the fields of the line being parsed start and end: `[start0, end0,
   * start1, end1, ...]`. Parsing is synchronous and runs to completion, so one
   * scratch array serves every line of this parser. The fields are checked in place in the
   * line's text, and only those a command keeps become strings (scanning the
   * one flat string is also faster than scanning a slice of it per field).
   */
  const fieldBounds = new Int32Array(2 * FIELDS_WORTH_READING)

  /** Only space and tab separate fields: a vertical tab, NBSP or U+2003 is part of one. */
  const isSeparator = (code: number): boolean => code === SPACE || code === TAB

  /** Records the bounds of the first fields of `text[0, end)` in `fieldBounds`; answers how many it found. */
  const findFields = (text: string, end: number): number => {
    // Fields are almost always one space apart, and the builtin search finds
    // the next space several times faster than a loop over char codes; a line
    // with a tab in it takes the loop.
    const spaceOnly = text.indexOf("\t") === -1
    let count = 0
    let index = 0
    while (count < FIELDS_WORTH_READING) {
      while (index < end && isSeparator(text.charCodeAt(index))) index++
      if (index === end) break
      fieldBounds[2 * count] = index
      if (spaceOnly) {
        index = text.indexOf(" ", index)
        if (index === -1 || index > end) index = end
      } else {
        while (index < end && !isSeparator(text.charCodeAt(index))) index++
      }
      fieldBounds[2 * count + 1] = index
      count++
    }
    return count
  }

  const startOf = (field: number): number => fieldBounds[2 * field] ?? 0
  const endOf = (field: number): number => fieldBounds[2 * field + 1] ?? 0

  const field = (text: string, index: number): string => text.slice(startOf(index), endOf(index))

  /** Whether field `index` is exactly `expected`, without making a string of it. */
  const fieldIs = (text: string, index: number, expected: string): boolean => {
    const start = startOf(index)
    if (endOf(index) - start !== expected.length) return false
    for (let offset = 0; offset < expected.length; offset++) {
      if (text.charCodeAt(start + offset) !== expected.charCodeAt(offset)) return false
    }
    return true
  }

  /**
   * A client id or a server name: 1 to 255 bytes, no control byte, and if not
   * plain ASCII then clean UTF-8 text, so that no id can look like whitespace or
   * carry a terminal control sequence once decoded by someone else.
   */
  const checkName = (what: string, text: string, field: number): Reason | undefined => {
    const start = startOf(field)
    const end = endOf(field)
    if (end - start > 255) return `${what}: must be 1 to 255 bytes`
    let isPlainAscii = true
    for (let index = start; index < end; index++) {
      const code = text.charCodeAt(index)
      if (code < 0x20 || code === 0x7f) return `${what}: control byte`
      if (code > 0x7e) isPlainAscii = false
    }
    if (isPlainAscii) return undefined
    const wrong = checkUtf8Text(text, start, end)
    return wrong === undefined ? undefined : `${what}: ${wrong}`
  }

  /** ISO 6709 `±latitude±longitude`, each `digits(.digits)?`, ranges checked on the digits. */
  const checkLocation = (text: string, field: number): Reason | undefined => {
    const start = startOf(field)
    const end = endOf(field)
    if (!isSign(codeAt(text, start, end))) return "location: expected a sign before the latitude"
    const latitudeEnd = decimalEnd(text, start + 1, end)
    if (latitudeEnd < 0) return "location: malformed latitude"
    if (!isSign(codeAt(text, latitudeEnd, end))) return "location: expected a sign before the longitude"
    if (decimalEnd(text, latitudeEnd + 1, end) !== end) return "location: malformed longitude"
    if (!isAtMost(text, start + 1, latitudeEnd, 90)) return "location: latitude out of range"
    if (!isAtMost(text, latitudeEnd + 1, end, 180)) return "location: longitude out of range"
    return undefined
  }

  /** POSIX seconds: any number of digits, then an optional fraction of 1 to 9 digits. */
  const checkTime = (text: string, field: number): Reason | undefined => {
    const start = startOf(field)
    const end = endOf(field)
    const integerEnd = digitsEnd(text, start, end)
    const wellFormed = integerEnd > start &&
      (integerEnd === end || (text.charCodeAt(integerEnd) === DOT && digitsEnd(text, integerEnd + 1, end) === end))
    if (!wellFormed || end === integerEnd + 1) return "time: expected digits with an optional fraction"
    if (end - integerEnd - 1 > 9) return "time: more than 9 fraction digits"
    return undefined
  }

  /** Kilometres, `digits(.digits)?`, greater than 0 and at most 50. */
  const checkRadius = (text: string, field: number): Reason | undefined => {
    const start = startOf(field)
    const end = endOf(field)
    if (decimalEnd(text, start, end) !== end) return "radius: expected digits with an optional fraction"
    if (isZero(text, start, end)) return "radius: must be greater than 0"
    if (!isAtMost(text, start, end, 50)) return "radius: more than 50"
    return undefined
  }

  /** An integer from 1 to 20, digits only. */
  const checkBound = (text: string, field: number): Reason | undefined => {
    const start = startOf(field)
    const end = endOf(field)
    for (let index = start; index < end; index++) {
      if (!isDigit(text.charCodeAt(index))) return "bound: expected digits"
    }
    if (isZero(text, start, end)) return "bound: must be at least 1"
    if (!isAtMost(text, start, end, 20)) return "bound: more than 20"
    return undefined
  }

  /** As the skew of an AT line is printed: a sign, digits, `.`, exactly nine digits. */
  const checkSkew = (text: string, field: number): Reason | undefined => {
    const start = startOf(field)
    const end = endOf(field)
    const dot = dotOf(text, start, end)
    const wellFormed = isSign(codeAt(text, start, end)) && dot > start + 1 && end - dot - 1 === 9 &&
      decimalEnd(text, start + 1, end) === end
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
  const SPACE = 0x20
  const PLUS = 0x2b
  const MINUS = 0x2d
  const DOT = 0x2e
  const ZERO = 0x30
  const NINE = 0x39

  /**
   * The char code at `index`, or -1 at or past `end` (neither a digit nor a sign),
   * so the scanners below can look one char ahead. (`charCodeAt` past the end
   * gives NaN, which V8 handles on a slow path.)
   */
  const codeAt = (text: string, index: number, end: number): number => index < end ? text.charCodeAt(index) : -1

  const isDigit = (code: number): boolean => code >= ZERO && code <= NINE

  const isSign = (code: number): boolean => code === PLUS || code === MINUS

  /**
   * Where `digits(.digits)?` starting at `start` ends (at most `end`), or -1
   * when there is none there. A fraction needs a digit: `34.` is not a number
   * on this wire.
   */
  const decimalEnd = (text: string, start: number, end: number): number => {
    const integerEnd = digitsEnd(text, start, end)
    if (integerEnd === start) return -1
    if (codeAt(text, integerEnd, end) !== DOT) return integerEnd
    const fractionEnd = digitsEnd(text, integerEnd + 1, end)
    return fractionEnd === integerEnd + 1 ? -1 : fractionEnd
  }

  /** Where the run of digits starting at `start` ends (at most `end`). */
  const digitsEnd = (text: string, start: number, end: number): number => {
    let index = start
    while (index < end && isDigit(text.charCodeAt(index))) index++
    return index
  }

  /** Where the first `.` of `text[start, end)` is, or `end` if it has none. */
  const dotOf = (text: string, start: number, end: number): number => {
    let index = start
    while (index < end && text.charCodeAt(index) !== DOT) index++
    return index
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

  /** Whether the well-formed decimal `text[start, end)` is zero: only zeros around its point. */
  const isZero = (text: string, start: number, end: number): boolean => {
    for (let index = start; index < end; index++) {
      const code = text.charCodeAt(index)
      if (code !== ZERO && code !== DOT) return false
    }
    return true
  }

  /**
   * Decodes the UTF-8 held in `bytes[start, end)`, a latin1 string (one char
   * per byte), and answers what is wrong with it as the text of a name:
   * malformed UTF-8 (overlong forms, surrogates and code points past U+10FFFF
   * included), or a code point that is Unicode whitespace or a C1 control.
   * Bytes 0x00-0x7F are checked by the caller.
   */
  const checkUtf8Text = (bytes: string, start: number, end: number): string | undefined => {
    let index = start
    while (index < end) {
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
      if (index + continuationBytes >= end) return "invalid UTF-8"
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

  return parseLine
}

/** One line read by a parser of its own: for a line now and then (a hot path keeps one from `makeParser`). */
export const parseLine = (line: string): Command => makeParser()(line)

/**
 * Where a line's content ends, given without its LF: before one final CR,
 * which framing drops (PROTOCOL.md section 2). A `?` reply echoes the line
 * up to here.
 */
export const contentEnd = (line: string): number =>
  line.length > 0 && line.charCodeAt(line.length - 1) === CARRIAGE_RETURN ? line.length - 1 : line.length

const CARRIAGE_RETURN = 0x0d
