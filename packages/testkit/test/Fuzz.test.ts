/**
 * Random byte streams against a server, checking the invariants of
 * PROTOCOL.md sections 2 and 6 whatever the bytes and however they are
 * split: one reply per non-blank line, in order; `? ` and the exact bytes for
 * an invalid line; nothing for an unfinished fragment; a line over the limit
 * closes the connection after the replies before it; the server answers
 * afterwards. The parser's own rules are tested in @herd/protocol; here the
 * parser is the oracle of which lines are valid, with the two rules that
 * need the server's clock and name added: a client time more than ten
 * minutes ahead, and an AT reply longer than the line limit, are refused.
 */
import { describe, expect, it } from "@effect/vitest"
import { Parse, Time } from "@herd/protocol"
import { LineClient, SingleServer } from "../src/index.ts"
import { Effect, FastCheck as fc } from "effect"

const lineLimit = 200
const maxClientAheadNs = 600_000_000_000n

interface Case {
  readonly lines: ReadonlyArray<Buffer>
  readonly overLimit: boolean
  readonly fragment: Buffer
  readonly cuts: ReadonlyArray<number>
}

const byteLine = fc.uint8Array({ maxLength: 60 }).map((bytes) => Buffer.from(bytes.filter((b) => b !== 10)))
const client = fc.constantFrom("kiwi", "k\u00e9a", "x", "a.b.c")
const location = fc.constantFrom(
  "+34.068930-118.445127",
  "-33.86+151.2",
  "+90-180",
  "+91+0",
  "34-118",
  "+1.+1",
  "+" + "0".repeat(60) + "34-118"
)
const nowSeconds = Math.floor(Date.now() / 1000)
/** Times a minute or more from the ten-minute bound, so the oracle cannot disagree with the server over a few ms. */
const time = fc.constantFrom(
  "1621464827.959498503",
  "1",
  "0.5",
  "1e9",
  "1.0123456789",
  "9".repeat(40),
  "9".repeat(150),
  "1" + "0".repeat(30),
  "0".repeat(120) + "1621464827.5",
  `${nowSeconds + 540}.999999999`,
  `${nowSeconds + 660}`
)
const sep = fc.constantFrom(" ", "\t", "  ", " \t ")

const commandLine = fc.oneof(
  fc.tuple(client, location, time, sep).map(([c, l, t, s]) => `IAMAT${s}${c}${s}${l}${s}${t}`),
  fc.tuple(client, fc.constantFrom("10", "0", "51", "1.5"), fc.constantFrom("5", "0", "21", "05")).map(
    ([c, r, b]) => `WHATSAT ${c} ${r} ${b}`
  ),
  fc.constantFrom("", " ", "\t \t", "iamat kiwi +1+1 1", "IAMAT", "AT", "PEER")
).map((text) => Buffer.from(text, "utf8"))

const line = fc.tuple(fc.oneof(commandLine, byteLine), fc.boolean()).map(([bytes, crlf]) =>
  crlf ? Buffer.concat([bytes, Buffer.from("\r")]) : bytes
)

const arbitraryCase: fc.Arbitrary<Case> = fc.record({
  lines: fc.array(line, { maxLength: 40 }),
  overLimit: fc.boolean(),
  fragment: byteLine,
  cuts: fc.array(fc.nat(), { maxLength: 12 })
})

/** What the server must answer to one line, by the parser: a reply, or nothing. */
const expectationOf = (line: Buffer, known: Set<string>): ((reply: Buffer) => boolean) | undefined => {
  const command = Parse.parseLine(line.toString("latin1"))
  const echo = Buffer.concat([Buffer.from("? "), line.at(-1) === 13 ? line.subarray(0, -1) : line])
  switch (command._tag) {
    case "Blank":
    case "At":
    case "Peer":
      return undefined
    case "Invalid":
      return (reply) => reply.equals(echo)
    case "Iamat": {
      const tail = ` ${command.client} ${command.location} ${command.time}`
      const receivedNs = BigInt(Date.now()) * 1_000_000n
      if (Time.isLaterThan(command.time, receivedNs + maxClientAheadNs)) return (reply) => reply.equals(echo)
      // The times above are far from a power of ten away from now, so the
      // skew's width here is the server's.
      if (`AT Alford ${Time.skewOf(receivedNs, command.time)}${tail}`.length > lineLimit) {
        return (reply) => reply.equals(echo)
      }
      known.add(command.client)
      return (reply) => {
        const text = reply.toString("latin1")
        return /^AT Alford [+-]\d+\.\d{9} /.test(text) && text.endsWith(tail)
      }
    }
    case "Whatsat":
      if (!known.has(command.client)) return (reply) => reply.equals(echo)
      return (reply) => {
        const text = reply.toString("latin1")
        return text.startsWith("AT Alford ") && text.includes(`\n{`) && text.endsWith("}\n")
      }
  }
}

describe("a server fed random byte streams", () => {
  it.scopedLive("keeps every invariant of sections 2 and 6, and stays up", () =>
    Effect.gen(function*() {
      const cases = fc.sample(arbitraryCase, { seed: 20261125, numRuns: 60 })
      for (const [index, testCase] of cases.entries()) {
        // A server of its own per case, so that what it knows is what this case told it.
        const server = yield* SingleServer.startServer({ config: { lineLimit } })
        // Lines over the limit are refused by the framer, not answered: keep the rest under it.
        const lines = testCase.lines.filter((l) => l.length <= lineLimit)
        const tail = testCase.overLimit ? Buffer.alloc(lineLimit + 1, 0x41) : testCase.fragment.subarray(0, lineLimit)
        const stream = Buffer.concat([...lines.flatMap((l) => [l, Buffer.from("\n")]), tail])
        const known = new Set<string>()
        const expected = lines.flatMap((l) => {
          const expectation = expectationOf(l, known)
          return expectation === undefined ? [] : [{ line: l, expectation }]
        })
        const connection = yield* LineClient.connect(server.address)
        const points = [...new Set(testCase.cuts.map((cut) => cut % (stream.length + 1)))].sort((a, b) => a - b)
        let at = 0
        for (const point of [...points, stream.length]) {
          if (point > at) yield* connection.write(stream.subarray(at, point))
          at = point
        }
        yield* connection.end
        yield* connection.closed()
        const replies = LineClient.splitReplies(connection.received())
        const context = () => `case ${index}: ${JSON.stringify(stream.toString("latin1"))}`
        expect(replies.length, context()).toBe(expected.length)
        replies.forEach((reply, i) => {
          expect(expected[i]?.expectation(reply), `${context()}\nreply ${i} to ${JSON.stringify(expected[i]?.line.toString("latin1"))}: ${JSON.stringify(reply.toString("latin1"))}`).toBe(true)
        })
        connection.socket.destroy()
        const after = yield* LineClient.connect(server.address)
        yield* after.write("IAMAT alive +1+1 1\n")
        expect(yield* after.nextReply(), context()).toMatch(/^AT Alford \S+ alive \+1\+1 1$/)
      }
    }), 60_000)
})
