import { describe, expect, it } from "@effect/vitest"
import { Effect, FastCheck as fc } from "effect"
import { EntryFormatter, formatEntry } from "../src/EventLog.ts"

describe("EventLog entries", () => {
  it("writes one JSON object per line with the time, server, event and fields", () => {
    const line = formatEntry("Alford", { timeMs: 0, event: "in", fields: { conn: 3, line: Buffer.from("IAMAT a +1+1 1") } })
    expect(line).toBe(`{"time":"1970-01-01T00:00:00.000Z","server":"Alford","event":"in","conn":3,"line":"IAMAT a +1+1 1"}\n`)
  })

  it("keeps bytes that are not UTF-8 in base64 beside their text", () => {
    const entry = JSON.parse(formatEntry("A", { timeMs: 0, event: "in", fields: { line: Buffer.from([0x41, 0xff, 0x00]) } }))
    expect(entry).toMatchObject({ line: "A\ufffd\u0000", lineBase64: "Qf8A" })
  })

  it.effect.prop(
    "the quick path and JSON.stringify agree on any wire line, as bytes or as latin1 text",
    [fc.uint8Array({ maxLength: 40 })],
    ([bytes]) =>
      Effect.sync(() => {
        const formatter = new EntryFormatter("S")
        for (const line of [Buffer.from(bytes), Buffer.from(bytes).toString("latin1")]) {
          const entry = JSON.parse(formatter.format({ timeMs: 1, event: "out", fields: { line } }))
          expect(entry.line).toBe(Buffer.from(bytes).toString("utf8"))
          if (entry.lineBase64 !== undefined) expect(Buffer.from(entry.lineBase64, "base64")).toEqual(Buffer.from(bytes))
          else expect(Buffer.from(entry.line, "utf8")).toEqual(Buffer.from(bytes))
        }
      })
  )
})
