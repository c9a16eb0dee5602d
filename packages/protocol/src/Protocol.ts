/**
 * The part of the wire dialect a server may vary, as a service: how a line
 * is read into a command (another strictness, other limits), swapped by a
 * test or a user without touching the server that uses it.
 *
 * What every server of a herd must share is not a service: the record an
 * IAMAT makes (`recordOf`), its AT line (`formatAtLine`) and the winner
 * rule (`isNewer`) are the protocol's law (PROTOCOL.md sections 3, 5 and 7).
 * A server with another winner rule or AT format would not converge with its
 * neighbours, so the store, the links and the session all take them from
 * this package directly, and they cannot disagree.
 *
 * `parse` is a plain synchronous function on purpose: it runs once per line
 * on the hot path, where wrapping each call in an Effect buys nothing.
 */
import { Context, Effect, Layer } from "effect"
import type { Command } from "./Command.ts"
import { makeParser } from "./Parse.ts"

export class Protocol extends Context.Tag("@herd/protocol/Protocol")<
  Protocol,
  {
    /** One line, without its LF, into a command; the line is latin1 text (one char per byte). */
    readonly parse: (line: string) => Command
  }
>() {}

/** The herd protocol as PROTOCOL.md writes it; each layer built has a parser of its own. */
export const make: Effect.Effect<Protocol["Type"]> = Effect.sync(() => Protocol.of({ parse: makeParser() }))

export const layer: Layer.Layer<Protocol> = Layer.effect(Protocol, make)
