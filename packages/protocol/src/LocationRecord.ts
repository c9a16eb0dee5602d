/**
 * A client's location as a server recorded it, and what every server of a
 * herd does alike with one: make it from an IAMAT, print it as an AT line,
 * and order two of them by the rule that lets every server keep the same
 * one (PROTOCOL.md sections 3, 5 and 7).
 */
import type { Iamat } from "./Command.ts"
import { compareTimes, skewOf } from "./Time.ts"
import type { ReceiveTime } from "./Time.ts"

/** The parts of a record's AT line. All text fields are latin1 strings (one char per wire byte). */
export interface LocationRecord {
  /** The server that received the IAMAT. */
  readonly origin: string
  /** Its receive time minus the client time: sign, digits, `.`, nine digits. */
  readonly skew: string
  readonly client: string
  /** ISO 6709 text as the client sent it, e.g. `+34.068930-118.445127`. */
  readonly location: string
  /** The client's POSIX time as sent, e.g. `1621464827.959498503`. */
  readonly time: string
}

/** The record the server `origin` makes of an IAMAT it received at `received` (POSIX ns, or split by `receiveTime`). */
export const recordOf = (iamat: Iamat, origin: string, received: bigint | ReceiveTime): LocationRecord => ({
  origin,
  skew: skewOf(received, iamat.time),
  client: iamat.client,
  location: iamat.location,
  time: iamat.time
})

/** `AT origin skew client location time`, single spaces, without the LF. */
export const formatAtLine = (record: LocationRecord): string =>
  "AT " + record.origin + " " + record.skew + " " + record.client + " " + record.location + " " + record.time

/**
 * Whether `a` wins over `b` for the same client: the later client time, then
 * the origin name that sorts later, then the location text that sorts later
 * (PROTOCOL.md section 5). Fields are latin1 strings, so `<` on them is byte
 * order. A record is not newer than itself, which is what stops a flood from
 * bouncing forever.
 *
 * Section 5 alone leaves two different records tied when they differ only in
 * how the time is written (`1.5` and `01.50`) or only in their skew (the same
 * IAMAT sent twice to one server); the winner would then depend on arrival
 * order and the herd could disagree. The time text, then the skew text, in
 * byte order, break those ties so that the order is total.
 */
export const isNewer = (a: LocationRecord, b: LocationRecord): boolean => {
  const byTime = compareTimes(a.time, b.time)
  if (byTime !== 0) return byTime > 0
  if (a.origin !== b.origin) return a.origin > b.origin
  if (a.location !== b.location) return a.location > b.location
  if (a.time !== b.time) return a.time > b.time
  return a.skew > b.skew
}

/**
 * The latitude and longitude of a valid ISO 6709 location text in degrees,
 * e.g. `+34.068930-118.445127` is 34.06893 and -118.445127. The text is
 * already range-checked; a double is plenty for a nearby search.
 */
export const coordinatesOf = (location: string): { readonly latitude: number; readonly longitude: number } => {
  const longitudeStart = longitudeSignIndex(location)
  return {
    latitude: Number(location.slice(0, longitudeStart)),
    longitude: Number(location.slice(longitudeStart))
  }
}

/** The second sign of the text: the first `+` or `-` after the latitude's own. */
const longitudeSignIndex = (location: string): number => {
  for (let index = 1; index < location.length; index++) {
    const code = location.charCodeAt(index)
    if (code === 0x2b || code === 0x2d) return index
  }
  return location.length
}
