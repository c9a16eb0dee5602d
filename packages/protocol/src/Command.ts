/**
 * The typed commands a line can be. Text fields are kept as latin1 strings: one
 * char per byte of the wire, so that a field is echoed back exactly as received,
 * whatever its encoding (`Buffer.from(text, "latin1")` gives the bytes back).
 */
import type { LocationRecord } from "./LocationRecord.ts"

/** `IAMAT <client> <location> <time>`: a client reports where it is. */
export interface Iamat {
  readonly _tag: "Iamat"
  readonly client: string
  readonly location: string
  readonly time: string
}

/** `WHATSAT <client> <radius km> <bound>`: what is near a client. */
export interface Whatsat {
  readonly _tag: "Whatsat"
  readonly client: string
  /** The radius as sent, in kilometres. */
  readonly radius: string
  /** The radius in metres, exact to the digits sent (1.5 km is 1500). */
  readonly radiusMetres: number
  /** The most results to answer with, 1 to 20. */
  readonly bound: number
}

/** `AT <origin> <skew> <client> <location> <time>`: a record flooded by a peer. */
export interface At {
  readonly _tag: "At"
  readonly record: LocationRecord
}

/** `PEER <name>`: the first line of a neighbour's outbound link. */
export interface Peer {
  readonly _tag: "Peer"
  readonly name: string
}

/** `IAMAT kiwi` or `iamat`: anything else. The reply is `? ` + `line`. */
export interface Invalid {
  readonly _tag: "Invalid"
  /** The line as received (latin1), without its LF and a CR before it. */
  readonly line: string
  /** Why the line was refused, for the log (never sent on the wire). */
  readonly reason: string
}

/** A blank line (empty or only spaces and tabs): it gets no reply. */
export interface Blank {
  readonly _tag: "Blank"
}

export type Command = Iamat | Whatsat | At | Peer | Invalid | Blank
