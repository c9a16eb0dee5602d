import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { Reply } from "../src/index.ts"

const atLine = "AT Alford +0.263873386 kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503"

describe("formatWhatsatReply", () => {
  it("prints the AT line, the body with three-space indentation, then an empty line", () => {
    const body = { html_attributions: [], results: [{ name: "UCLA" }], status: "OK" }
    expect(Reply.formatWhatsatReply(atLine, body)).toBe(
      atLine + "\n" +
        "{\n" +
        "   \"html_attributions\": [],\n" +
        "   \"results\": [\n" +
        "      {\n" +
        "         \"name\": \"UCLA\"\n" +
        "      }\n" +
        "   ],\n" +
        "   \"status\": \"OK\"\n" +
        "}\n\n"
    )
  })

  it("keeps LFs inside strings escaped, so the only empty line is the last", () => {
    const reply = Reply.formatWhatsatReply(atLine, { note: "a\n\n\nb" })
    expect(reply).toBe(atLine + "\n{\n   \"note\": \"a\\n\\n\\nb\"\n}\n\n")
    expect(reply.indexOf("\n\n")).toBe(reply.length - 2)
  })

  it.prop(
    "has no empty line but the last, and the body reads back from its UTF-8, for any JSON body",
    { body: fc.jsonValue({ stringUnit: "grapheme" }) },
    ({ body }) => {
      const reply = Reply.formatWhatsatReply(atLine, body)
      expect(reply.indexOf("\n\n")).toBe(reply.length - 2)
      expect(reply.startsWith(atLine + "\n")).toBe(true)
      const printedBody = Buffer.from(reply.slice(atLine.length + 1), "latin1").toString("utf8")
      // Through JSON once more, so that -0 compares as the 0 JSON makes of it.
      expect(JSON.parse(printedBody)).toEqual(JSON.parse(JSON.stringify(body)))
    },
    { fastCheck: { numRuns: 300 } }
  )

  it("sends the client's bytes and the body's UTF-8 in one latin1 string", () => {
    const line = "AT Alford +0.000000000 " + Buffer.from("café", "utf8").toString("latin1") + " +1+1 1"
    const reply = Reply.formatWhatsatReply(line, { name: "São Paulo 北京" })
    expect(Buffer.from(reply, "latin1")).toEqual(
      Buffer.from("AT Alford +0.000000000 café +1+1 1\n{\n   \"name\": \"São Paulo 北京\"\n}\n\n", "utf8")
    )
  })

  it("ends in exactly two LFs", () => {
    expect(Reply.formatWhatsatReply(atLine, "x")).toBe(atLine + "\n\"x\"\n\n")
  })
})

describe("formatPlacesJson", () => {
  it("prints the body as Unicode text with three-space indentation", () => {
    expect(Reply.formatPlacesJson({ results: [], status: "ZERO_RESULTS", name: "北京" })).toBe(
      "{\n   \"results\": [],\n   \"status\": \"ZERO_RESULTS\",\n   \"name\": \"北京\"\n}"
    )
  })
})

describe("invalidReply", () => {
  it("echoes the line after `? ` and ends it with LF", () => {
    expect(Reply.invalidReply("WHATSAT kiwi.cs.ucla.edu 51 5"))
      .toBe("? WHATSAT kiwi.cs.ucla.edu 51 5\n")
  })

  it("echoes NULs and invalid UTF-8 byte for byte", () => {
    const line = Buffer.from([0x49, 0x00, 0xff, 0xc3, 0x0d]).toString("latin1")
    expect([...Buffer.from(Reply.invalidReply(line), "latin1")]).toEqual([0x3f, 0x20, 0x49, 0x00, 0xff, 0xc3, 0x0d, 0x0a])
  })

  it("echoes an empty line as `? `", () => {
    expect(Reply.invalidReply("")).toBe("? \n")
  })
})
