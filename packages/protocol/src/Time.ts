/**
 * Exact arithmetic on the client times of the wire (PROTOCOL.md section 3).
 *
 * A client time is decimal text of any length with up to nine fraction digits,
 * so it is exact in integer nanoseconds but not as a float: `1621464827.959498503`
 * has more significant digits than a double holds. Everything here works on the
 * digits, with plain Numbers when the values are small enough to stay exact and
 * BigInt when they are not.
 */

/**
 * The skew of an AT line: `receivedNs` minus the client `time` (valid time
 * text), in seconds with a sign (`+` for zero) and exactly nine decimals, e.g.
 * `+0.263873386` or `-0.000001500`. Exact for client times of any length.
 */
export const skewOf = (received: bigint | ReceiveTime, time: string): string => {
  const at = typeof received === "bigint" ? receiveTime(received) : received
  const integerEnd = integerEndOf(time)
  const integerStart = significantStart(time, integerEnd)
  return integerEnd - integerStart <= FAST_INTEGER_DIGITS && at.isSmall
    ? smallSkew(at, time, integerStart, integerEnd)
    : largeSkew(at.ns, time, integerStart, integerEnd)
}

/**
 * A receive time (POSIX ns), split once for the skews of every line it is
 * the receive time of (all the lines of one read): its seconds and
 * nanoseconds as Numbers when both are exact.
 */
export interface ReceiveTime {
  readonly ns: bigint
  readonly isSmall: boolean
  readonly seconds: number
  readonly nanos: number
}

export const receiveTime = (ns: bigint, previous?: ReceiveTime): ReceiveTime => {
  // A connection's reads come in order, mostly within a second of the one
  // before: their seconds are the previous read's, with no BigInt division.
  if (previous !== undefined && previous.isSmall) {
    const nanos = previous.nanos + Number(ns - previous.ns)
    if (nanos >= 0 && nanos < NANOS_PER_SECOND) return { ns, isSmall: true, seconds: previous.seconds, nanos }
  }
  const isSmall = ns >= 0n && ns <= FAST_RECEIVED_NS
  return {
    ns,
    isSmall,
    seconds: isSmall ? Number(ns / NANOS_PER_SECOND_BIG) : 0,
    nanos: isSmall ? Number(ns % NANOS_PER_SECOND_BIG) : 0
  }
}

/**
 * Compares two valid time texts by value: negative when `a` is earlier, zero
 * when equal (`1.5` equals `01.50`), positive when later. No BigInt and no
 * allocation: it runs for every record offered to a store.
 */
export const compareTimes = (a: string, b: string): number => {
  const aDot = integerEndOf(a)
  const bDot = integerEndOf(b)
  // The common case, two times written alike (same number of integer and of
  // fraction digits): their byte order is their order, leading zeros and all.
  if (aDot === bDot && a.length === b.length) return a < b ? -1 : a > b ? 1 : 0
  const aStart = significantStart(a, aDot)
  const bStart = significantStart(b, bDot)
  const integerDigits = aDot - aStart
  // Without leading zeros, a longer integer part is a larger number.
  if (integerDigits !== bDot - bStart) return integerDigits < bDot - bStart ? -1 : 1
  for (let offset = 0; offset < integerDigits; offset++) {
    const difference = a.charCodeAt(aStart + offset) - b.charCodeAt(bStart + offset)
    if (difference !== 0) return difference < 0 ? -1 : 1
  }
  const fractionDigits = Math.max(a.length - aDot, b.length - bDot) - 1
  for (let offset = 1; offset <= fractionDigits; offset++) {
    const difference = fractionDigitAt(a, aDot + offset) - fractionDigitAt(b, bDot + offset)
    if (difference !== 0) return difference < 0 ? -1 : 1
  }
  return 0
}

/**
 * Whether the valid time text `time` is later than `limitNs` (POSIX ns), the
 * client-time bound of PROTOCOL.md section 3. Decided on the digits, in one
 * pass over the text and with no BigInt work on it: a time of thousands of
 * digits (which the bound refuses) costs what its length costs to scan.
 */
export const isLaterThan = (time: string, bound: bigint | TimeLimit): boolean => {
  const limit = typeof bound === "bigint" ? timeLimit(bound) : bound
  if (limit.ns < 0n) return true
  const integerEnd = integerEndOf(time)
  const integerStart = significantStart(time, integerEnd)
  const integerDigits = integerEnd - integerStart
  if (integerDigits !== limit.seconds.length) return integerDigits > limit.seconds.length
  for (let offset = 0; offset < integerDigits; offset++) {
    const difference = time.charCodeAt(integerStart + offset) - limit.seconds.charCodeAt(offset)
    if (difference !== 0) return difference > 0
  }
  return fractionNanos(time, integerEnd) > limit.nanos
}

/**
 * A bound on client times (POSIX ns), made once for every line it bounds
 * (all the lines of one read): its seconds as digits without leading zeros
 * ("" for zero), and its nanoseconds.
 */
export interface TimeLimit {
  readonly ns: bigint
  readonly seconds: string
  readonly nanos: number
}

export const timeLimit = (ns: bigint, previous?: TimeLimit): TimeLimit => {
  if (ns < 0n) return { ns, seconds: "", nanos: 0 }
  // Within the second of the previous bound (the reads of a connection come
  // in order): its seconds' digits again, and no BigInt division.
  if (previous !== undefined && previous.ns >= 0n) {
    const nanos = previous.nanos + Number(ns - previous.ns)
    if (nanos >= 0 && nanos < NANOS_PER_SECOND) return { ns, seconds: previous.seconds, nanos }
  }
  const seconds = ns / NANOS_PER_SECOND_BIG
  return { ns, seconds: seconds === 0n ? "" : seconds.toString(), nanos: Number(ns % NANOS_PER_SECOND_BIG) }
}

const NANOS_PER_SECOND = 1_000_000_000
const NANOS_PER_SECOND_BIG = 1_000_000_000n
const ZERO = 0x30

/**
 * Up to 15 integer digits, a client time's seconds are below 10^15 < 2^53, and
 * a difference of two such second counts is still an exact double.
 */
const FAST_INTEGER_DIGITS = 15
/** The receive time's seconds must be exact as a Number too. */
const FAST_RECEIVED_NS = BigInt(Number.MAX_SAFE_INTEGER) * NANOS_PER_SECOND_BIG

/**
 * Seconds and nanoseconds apart (the receive time's are in `at`), as
 * integers in Numbers: one borrow from the seconds when the nanoseconds go
 * negative, and the sum is exact.
 */
const smallSkew = (at: ReceiveTime, time: string, integerStart: number, integerEnd: number): string => {
  let clientSeconds = 0
  for (let index = integerStart; index < integerEnd; index++) {
    clientSeconds = clientSeconds * 10 + time.charCodeAt(index) - ZERO
  }
  const clientNanos = fractionNanos(time, integerEnd)
  let seconds = at.seconds - clientSeconds
  let nanos = at.nanos - clientNanos
  if (nanos < 0) {
    nanos += NANOS_PER_SECOND
    seconds -= 1
  }
  // The skew is seconds + nanos / 10^9 with 0 <= nanos < 10^9; a negative skew
  // is printed as its magnitude, which borrows the other way.
  if (seconds >= 0) return "+" + seconds + "." + nineDigits(nanos)
  if (nanos === 0) return "-" + -seconds + ".000000000"
  return "-" + (-seconds - 1) + "." + nineDigits(NANOS_PER_SECOND - nanos)
}

/** The general case: the client time as one BigInt of nanoseconds. */
const largeSkew = (receivedNs: bigint, time: string, integerStart: number, integerEnd: number): string => {
  const fraction = integerEnd < time.length ? time.slice(integerEnd + 1) : ""
  const clientNs = BigInt(time.slice(integerStart, integerEnd) + fraction.padEnd(9, "0"))
  const skewNs = receivedNs - clientNs
  const isNegative = skewNs < 0n
  const digits = (isNegative ? -skewNs : skewNs).toString().padStart(10, "0")
  return (isNegative ? "-" : "+") + digits.slice(0, -9) + "." + digits.slice(-9)
}

const nineDigits = (nanos: number): string => String(nanos).padStart(9, "0")

const integerEndOf = (time: string): number => {
  const dot = time.indexOf(".")
  return dot < 0 ? time.length : dot
}

/** Where the integer digits start once leading zeros are skipped (`end` if all are zeros). */
const significantStart = (time: string, integerEnd: number): number => {
  let index = 0
  while (index < integerEnd && time.charCodeAt(index) === ZERO) index++
  return index
}

/** The fraction of a time text whose integer part ends at `integerEnd`, in nanoseconds (its first nine digits). */
const fractionNanos = (time: string, integerEnd: number): number => {
  let nanos = 0
  for (let offset = 1; offset <= 9; offset++) nanos = nanos * 10 + fractionDigitAt(time, integerEnd + offset)
  return nanos
}

/** The digit at `index` of a fraction, reading past its end as the zeros it stands for. */
const fractionDigitAt = (time: string, index: number): number =>
  index < time.length ? time.charCodeAt(index) - ZERO : 0
