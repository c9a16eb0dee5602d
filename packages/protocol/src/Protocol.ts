/**
 * The wire dialect as a service, so that a test or a user can swap it (other
 * limits, another strictness) without touching the server that uses it.
 *
 * Its methods are plain synchronous functions on purpose: they run once per
 * line on the hot path, where wrapping each call in an Effect buys nothing.
 */
import { Context, Layer } from "effect"
import type { Command, Iamat } from "./Command.ts"
import type { LocationRecord } from "./LocationRecord.ts"
import { parseLine } from "./Parse.ts"
import { formatAtLine, isNewer, recordOf } from "./Record.ts"

export class Protocol extends Context.Tag("@herd/protocol/Protocol")<
  Protocol,
  {
    /** One line, without its LF, into a command; the line is latin1 text (one char per byte). */
    readonly parse: (line: string) => Command
    /** The record a server named `origin` makes of an IAMAT received at `receivedNs`. */
    readonly record: (iamat: Iamat, origin: string, receivedNs: bigint) => LocationRecord
    /** A record's AT line, without the LF. */
    readonly formatAt: (record: LocationRecord) => string
    /** Whether `a` wins over `b` for the same client (PROTOCOL.md section 5). */
    readonly isNewer: (a: LocationRecord, b: LocationRecord) => boolean
  }
>() {}

/** The herd protocol as PROTOCOL.md writes it. */
export const layer: Layer.Layer<Protocol> = Layer.succeed(
  Protocol,
  Protocol.of({ parse: parseLine, record: recordOf, formatAt: formatAtLine, isNewer })
)
