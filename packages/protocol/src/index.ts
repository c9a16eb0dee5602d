/**
 * @herd/protocol: the herd wire format: lines into typed commands, records
 * into AT lines, the ordering of records, and exact skew arithmetic.
 */

/** The typed commands a line parses into: `Iamat`, `Whatsat`, `At`, `Peer`, `Invalid`, `Blank`. */
export * as Command from "./Command.ts"

/** A client's location record: made from an IAMAT, printed as an AT line, and the winner rule. */
export * as LocationRecord from "./LocationRecord.ts"

/** Reading a line into a `Command`, by PROTOCOL.md's rules. */
export * as Parse from "./Parse.ts"

/** The `Protocol` service: the part of the dialect a server may swap (how a line is parsed). */
export * as Protocol from "./Protocol.ts"

/** The replies a server writes: `?` for an invalid line, the WHATSAT answer and its JSON body. */
export * as Reply from "./Reply.ts"

/** Exact time arithmetic on the wire's decimal text: skews, comparisons, the limit on client times. */
export * as Time from "./Time.ts"
