/**
 * One server over real loopback TCP: PROTOCOL.md sections 2 to 6 and 9 as
 * a client sees them.
 */
import { describe, expect, it } from "@effect/vitest"
import { Protocol } from "@herd/protocol"
import { LineClient, SingleServer } from "../src/index.ts"
import { Effect, Layer, TestClock } from "effect"

const kiwi = "IAMAT kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503"
/**
 * The server's clock for these tests, in ms since the epoch. TestClock turns
 * milliseconds into nanoseconds through a float, exact only when ms × 10^6
 * fits a double's 53 bits: a multiple of 4 does, at this magnitude.
 */
const serverTimeMs = 1621464828224
const kiwiAt = "AT Alford +0.264501497 kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503"

/** The standard dialect, for tests that wrap it. */
const protocolService = Effect.runSync(Effect.provide(Protocol.Protocol, Protocol.layer))

const text = (lines: ReadonlyArray<Buffer>) => lines.map((line) => line.toString("latin1"))

describe("HerdServer over TCP", () => {
  it.scoped("answers an IAMAT with an AT line and an exact skew", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(serverTimeMs)
      const server = yield* SingleServer.startServer()
      const client = yield* LineClient.connect(server.address)
      yield* client.write(kiwi + "\n")
      expect(text(yield* client.readLines(1))).toEqual([kiwiAt])
      expect(server.store.get("kiwi.cs.ucla.edu")?.skew).toBe("+0.264501497")
    }))

  it.scoped("prints a negative skew and a skew of zero with their signs", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(1_000_000)
      const server = yield* SingleServer.startServer()
      const client = yield* LineClient.connect(server.address)
      yield* client.write("IAMAT a +0+0 1000.0000015\nIAMAT b +0+0 1000\nIAMAT c +0+0 999.999999999\n")
      expect(text(yield* client.readLines(3))).toEqual([
        "AT Alford -0.000001500 a +0+0 1000.0000015",
        "AT Alford +0.000000000 b +0+0 1000",
        "AT Alford +0.000000001 c +0+0 999.999999999"
      ])
    }))

  it.scoped("answers 1,000 pipelined mixed lines in one write, in order", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(2_000_000)
      const server = yield* SingleServer.startServer()
      const client = yield* LineClient.connect(server.address)
      const requests: Array<string> = []
      const expected: Array<(reply: string) => boolean> = []
      for (let i = 0; i < 1000; i++) {
        if (i % 3 === 0) {
          requests.push(`IAMAT c${i} +10.5-20.25 1000.${String(i).padStart(3, "0")}`)
          expected.push((reply) => reply === expectedAt(i))
        } else if (i % 3 === 1) {
          requests.push(`WHATSAT c${i - 1} 10 1`)
          expected.push((reply) => reply.startsWith(`AT Alford `) && reply.includes(` c${i - 1} `) && reply.endsWith("\n"))
        } else {
          requests.push(`BOGUS ${i}`)
          expected.push((reply) => reply === `? BOGUS ${i}`)
        }
      }
      yield* client.write(requests.join("\n") + "\n")
      const received = yield* client.readUntil((all) => LineClient.splitReplies(all).length >= 1000)
      const replies = LineClient.splitReplies(received).map((reply) => reply.toString("latin1"))
      expect(replies.length).toBe(1000)
      replies.forEach((reply, i) => {
        if (!expected[i]!(reply)) expect.fail(`reply ${i} to ${JSON.stringify(requests[i])}: ${JSON.stringify(reply)}`)
      })
    }))

  it.scoped("answers a line sent one byte per write exactly once", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(serverTimeMs)
      const server = yield* SingleServer.startServer()
      const client = yield* LineClient.connect(server.address)
      yield* client.writeBytewise(kiwi + "\r\n")
      expect(text(yield* client.readLines(1))).toEqual([kiwiAt])
      yield* client.write("IAMAT x +1+1 1\n")
      const lines = text(yield* client.readLines(2))
      expect(lines[1]).toMatch(/^AT Alford \+1621464827\.224000000 x \+1\+1 1$/)
    }))

  it.scoped("closes a connection whose line passes the limit, and keeps serving others", () =>
    Effect.gen(function*() {
      const server = yield* SingleServer.startServer()
      const abuser = yield* LineClient.connect(server.address)
      const bystander = yield* LineClient.connect(server.address)
      yield* abuser.write("IAMAT first +1+1 1\n")
      yield* abuser.write(Buffer.alloc(100 * 1024, "x"))
      yield* abuser.closed()
      expect(text(yield* abuser.readLines(1))[0]).toMatch(/^AT Alford \S+ first \+1\+1 1$/)
      yield* bystander.write("IAMAT still +1+1 1\n")
      expect(text(yield* bystander.readLines(1))[0]).toMatch(/^AT Alford \S+ still \+1\+1 1$/)
      expect(server.logLines().some((line) => line.includes(`"event":"violation"`) && line.includes("longer than 8192"))).toBe(true)
    }))

  it.scoped("accepts a line of exactly the limit and refuses one byte more", () =>
    Effect.gen(function*() {
      const server = yield* SingleServer.startServer({ config: { lineLimit: 64 } })
      const client = yield* LineClient.connect(server.address)
      const atLimit = "X".repeat(64)
      yield* client.write(atLimit + "\n")
      expect(text(yield* client.readLines(1))).toEqual([`? ${atLimit}`])
      yield* client.write("Y".repeat(65) + "\n")
      yield* client.closed()
      expect(text(yield* client.readLines(1))).toEqual([`? ${atLimit}`])
    }))

  it.scoped("echoes every kind of invalid line byte for byte", () =>
    Effect.gen(function*() {
      const server = yield* SingleServer.startServer()
      const client = yield* LineClient.connect(server.address)
      const invalid: Array<Buffer> = [
        "iamat kiwi +34-118 1",
        "HELLO",
        "IAMAT kiwi +34-118",
        "IAMAT kiwi +34-118 1 extra",
        "IAMAT kiwi 34-118 1",
        "IAMAT kiwi +91-118 1",
        "IAMAT kiwi +34-181 1",
        "IAMAT kiwi +34-118 1.",
        "IAMAT kiwi +34-118 1.0123456789",
        "IAMAT kiwi +34-118 1e9",
        "WHATSAT nobody 10 5",
        "WHATSAT kiwi 51 5",
        "WHATSAT kiwi 0 5",
        "WHATSAT kiwi 10 21",
        "WHATSAT kiwi 10 0",
        "WHATSAT kiwi 10 2.5",
        "IAMAT ki\u0000wi +34-118 1",
        "IAMAT ki\u0007wi +34-118 1",
        "IAMAT " + "k".repeat(256) + " +34-118 1"
      ].map((line) => Buffer.from(line, "utf8"))
      invalid.push(Buffer.from([0x49, 0x41, 0x4d, 0x41, 0x54, 0x20, 0xff, 0xfe, 0x20, 0x2b, 0x31, 0x2b, 0x31, 0x20, 0x31]))
      invalid.push(Buffer.from([0xc3, 0x28, 0x00, 0x80]))
      yield* client.write(Buffer.concat(invalid.flatMap((line) => [line, Buffer.from("\r\n")])))
      const replies = yield* client.readLines(invalid.length)
      replies.forEach((reply, i) => {
        expect(reply.equals(Buffer.concat([Buffer.from("? "), invalid[i]!]))).toBe(true)
      })
    }))

  it.scoped("ignores blank lines", () =>
    Effect.gen(function*() {
      const server = yield* SingleServer.startServer()
      const client = yield* LineClient.connect(server.address)
      yield* client.write("\n \t \n\r\nHELLO\n")
      expect(text(yield* client.readLines(1))).toEqual(["? HELLO"])
    }))

  it.scoped("answers WHATSAT with the stored AT line byte for byte, the Places JSON and two LFs", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(serverTimeMs)
      const server = yield* SingleServer.startServer()
      const client = yield* LineClient.connect(server.address)
      yield* client.write(kiwi + "\n")
      yield* client.readLines(1)
      yield* client.write("WHATSAT kiwi.cs.ucla.edu 10 1\n")
      const reply = (yield* client.readUntil((all) => all.includes("\n\n"))).toString("latin1")
      expect(reply).toBe(
        kiwiAt + "\n" +
          kiwiAt + "\n" +
          "{\n" +
          "   \"html_attributions\": [],\n" +
          "   \"results\": [\n" +
          "      {\n" +
          "         \"name\": \"Royce Hall\"\n" +
          "      }\n" +
          "   ],\n" +
          "   \"status\": \"OK\"\n" +
          "}\n\n"
      )
    }))

  it.scoped("keeps the newer record and still answers an older IAMAT", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(serverTimeMs)
      const server = yield* SingleServer.startServer()
      const client = yield* LineClient.connect(server.address)
      yield* client.write("IAMAT k +1+1 1621464827.5\nIAMAT k +2+2 1621464827.4\nWHATSAT k 1 1\n")
      const received = yield* client.readUntil((all) => all.includes("\n\n"))
      const lines = received.toString("latin1").split("\n")
      expect(lines[0]).toBe("AT Alford +0.724000000 k +1+1 1621464827.5")
      expect(lines[1]).toBe("AT Alford +0.824000000 k +2+2 1621464827.4")
      expect(lines[2]).toBe("AT Alford +0.724000000 k +1+1 1621464827.5")
    }))

  it.scoped("answers lines sent before a half-close, and not the unfinished fragment", () =>
    Effect.gen(function*() {
      const server = yield* SingleServer.startServer()
      const client = yield* LineClient.connect(server.address)
      yield* client.write("IAMAT half +1+1 1\nWHATSAT half 5 1\nIAMAT fragment +1+1 1")
      yield* client.end
      yield* client.closed()
      const all = client.received().toString("latin1")
      expect(all).toMatch(/^AT Alford \S+ half \+1\+1 1\nAT Alford \S+ half \+1\+1 1\n\{[^]*\}\n\n$/)
      expect(all).not.toContain("fragment")
    }))

  it.scoped("logs each line in and out and each connection opened and closed, as JSON lines", () =>
    Effect.gen(function*() {
      const server = yield* SingleServer.startServer()
      const client = yield* LineClient.connect(server.address)
      yield* client.write(Buffer.from([0x48, 0x49, 0xff, 0x0a]))
      yield* client.readLines(1)
      yield* client.end
      yield* client.closed()
      const entries = server.logLines().map((line) => JSON.parse(line) as Record<string, unknown>)
      const events = entries.map((entry) => entry["event"])
      expect(events).toEqual(expect.arrayContaining(["listening", "open", "in", "out", "close"]))
      const lineIn = entries.find((entry) => entry["event"] === "in")
      expect(lineIn?.["line"]).toBe("HI\ufffd")
      expect(lineIn?.["lineBase64"]).toBe(Buffer.from([0x48, 0x49, 0xff]).toString("base64"))
      for (const entry of entries) {
        expect(entry["server"]).toBe("Alford")
        expect(typeof entry["time"]).toBe("string")
      }
    }))

  it.scoped("closes a connection whose line meets a bug in the server, logs it, and keeps serving", () =>
    Effect.gen(function*() {
      const brittle = Layer.succeed(Protocol.Protocol, {
        ...protocolService,
        parse: (line) => {
          if (Buffer.from(line).toString("latin1") === "BOOM") throw new Error("a bug in the parser")
          return protocolService.parse(line)
        }
      })
      const server = yield* SingleServer.startServer({ protocol: brittle })
      const victim = yield* LineClient.connect(server.address)
      yield* victim.write("IAMAT before +1+1 1\nBOOM\nIAMAT after +1+1 1\n")
      yield* victim.closed()
      expect(victim.received().toString("latin1")).toMatch(/^AT Alford \S+ before \+1\+1 1\n$/)
      const other = yield* LineClient.connect(server.address)
      yield* other.write("IAMAT other +1+1 1\n")
      expect(yield* other.nextReply()).toMatch(/^AT Alford \S+ other \+1\+1 1$/)
      const defects = server.logLines().filter((line) => line.includes(`"event":"defect"`))
      expect(defects.length).toBe(1)
      expect(defects[0]).toContain("a bug in the parser")
    }))
})

/** The AT line for `c<i>`, sent at client time 1000.<i> s to a server at 2000 s. */
function expectedAt(i: number): string {
  const clientMs = 1000 * 1000 + i
  const skewMs = 2_000_000 - clientMs
  const skew = `+${Math.floor(skewMs / 1000)}.${String(skewMs % 1000).padStart(3, "0")}000000`
  return `AT Alford ${skew} c${i} +10.5-20.25 1000.${String(i).padStart(3, "0")}`
}
