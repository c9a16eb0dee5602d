import { describe, expect, it } from "@effect/vitest"
import { Effect, FastCheck as fc } from "effect"
import { EntryWriter, formatEntry } from "../src/EventLog.ts"

describe("EventLog entries", () => {
  it("writes one JSON object per line with the time, server, event and fields", () => {
    const line = formatEntry("Alford", "in", { conn: 3, line: Buffer.from("IAMAT a +1+1 1") })
    expect(line).toMatch(
      /^\{"time":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z","server":"Alford","event":"in","conn":3,"line":"IAMAT a \+1\+1 1"\}\n$/
    )
  })

  it("keeps bytes that are not UTF-8 in base64 beside their text", () => {
    const entry = JSON.parse(formatEntry("A", "in", { line: Buffer.from([0x41, 0xff, 0x00]) }))
    expect(entry).toMatchObject({ line: "A\ufffd\u0000", lineBase64: "Qf8A" })
  })

  it("grows its buffer past the initial size and hands over every entry", () => {
    const writer = new EntryWriter("S", 16)
    for (let i = 0; i < 1000; i++) writer.lines(i, "127.0.0.1:5000").sent(Buffer.from(`AT S +0.000000000 c${i} +1+1 1\n`))
    const lines = writer.take().toString("utf8").trimEnd().split("\n")
    expect(lines.length).toBe(1000)
    expect(JSON.parse(lines[999] ?? "")).toMatchObject({
      event: "out",
      conn: 999,
      remote: "127.0.0.1:5000",
      line: "AT S +0.000000000 c999 +1+1 1\n"
    })
    expect(writer.size).toBe(0)
  })

  it("fills a recycled buffer again, and never one whose bytes were taken and not given back", () => {
    const writer = new EntryWriter("S", 4096)
    const log = writer.lines(1, "127.0.0.1:5000")
    log.sent(Buffer.from("first"))
    const first = writer.take()
    const firstText = first.toString("utf8")
    log.sent(Buffer.from("second"))
    const second = writer.take()
    log.sent(Buffer.from("third"))
    // Neither batch was given back: both are intact.
    expect(first.toString("utf8")).toBe(firstText)
    expect(second.toString("utf8")).toContain(`"line":"second"`)
    writer.recycle(first) // not the last taken: ignored
    writer.recycle(second)
    writer.take()
    log.sent(Buffer.from("fourth"))
    const fourth = writer.take()
    expect(fourth.buffer).toBe(second.buffer)
    expect(fourth.byteOffset).toBe(second.byteOffset)
    expect(fourth.toString("utf8")).toContain(`"line":"fourth"`)
    expect(first.toString("utf8")).toBe(firstText)
  })

  it("logs the given part of the bytes, with the connection's id and remote address", () => {
    const writer = new EntryWriter("S", 8)
    const lines = writer.lines(7, "[::1]:4000")
    lines.received(Buffer.from("xxIAMAT a +1+1 1yy"), 2, 16)
    lines.sent(Buffer.from("AT S +0 a +1+1 1"))
    const [received, sent] = writer.take().toString("utf8").trimEnd().split("\n").map((entry) => JSON.parse(entry))
    expect(received).toMatchObject({ server: "S", event: "in", conn: 7, remote: "[::1]:4000", line: "IAMAT a +1+1 1" })
    expect(sent).toMatchObject({ server: "S", event: "out", conn: 7, remote: "[::1]:4000", line: "AT S +0 a +1+1 1" })
  })

  it.effect.prop(
    "the quick path and the general one agree with JSON on any wire line, as bytes or as latin1 text",
    [fc.uint8Array({ maxLength: 40 })],
    ([bytes]) =>
      Effect.sync(() => {
        const writer = new EntryWriter("S", 8)
        const framed = Buffer.concat([Buffer.from("<"), bytes, Buffer.from(">")])
        writer.lines(1, "r").sent(framed, 1, framed.length - 1)
        writer.lines(1, "r").received(Buffer.from(bytes))
        writer.record("out", { conn: 1, line: Buffer.from(bytes) })
        writer.record("out", { conn: 1, line: Buffer.from(bytes).toString("latin1") })
        for (const text of writer.take().toString("utf8").trimEnd().split("\n")) {
          const entry = JSON.parse(text)
          expect(entry.line).toBe(Buffer.from(bytes).toString("utf8"))
          if (entry.lineBase64 !== undefined) expect(Buffer.from(entry.lineBase64, "base64")).toEqual(Buffer.from(bytes))
          else expect(Buffer.from(entry.line, "utf8")).toEqual(Buffer.from(bytes))
        }
      })
  )

  it.effect.prop(
    "a WHATSAT answer logged with its body's kept escaping is the same entry as the plain one",
    [fc.uint8Array({ maxLength: 30 }), fc.string({ unit: "grapheme", maxLength: 40 })],
    ([atPart, bodyText]) =>
      Effect.sync(() => {
        const body = Buffer.from(`{\n   "name": ${JSON.stringify(bodyText)}\n}`, "utf8").toString("latin1")
        const answer = Buffer.concat([Buffer.from("<"), atPart, Buffer.from("\n" + body + "\n\n", "latin1")])
        const writer = new EntryWriter("S", 8)
        const lines = writer.lines(1, "r")
        for (let i = 0; i < 2; i++) {
          lines.sentAnswer(answer, 1, answer.length - 1, body)
          lines.sent(answer, 1, answer.length - 1)
        }
        const entries = writer.take().toString("utf8").trimEnd().split("\n").map((entry) => JSON.parse(entry))
        expect(entries).toHaveLength(4)
        for (const entry of entries) {
          expect({ ...entry, time: undefined }).toEqual({ ...entries[1], time: undefined })
        }
        const logged = entries[0].lineBase64 === undefined
          ? Buffer.from(entries[0].line, "utf8")
          : Buffer.from(entries[0].lineBase64, "base64")
        expect(logged).toEqual(answer.subarray(1, answer.length - 1))
      })
  )
})

