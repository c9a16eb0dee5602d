import { describe, expect, it } from "@effect/vitest"
import { Effect, FastCheck as fc } from "effect"
import { LineFramer } from "../src/internal/LineFramer.ts"

const frame = (limit: number, chunks: ReadonlyArray<Buffer>) => {
  const framer = new LineFramer(limit)
  const lines: Array<string> = []
  let ok = true
  for (const chunk of chunks) {
    ok = framer.push(chunk, (bytes, start, end) => lines.push(bytes.toString("latin1", start, end)))
    if (!ok) break
  }
  return { lines, ok, pending: framer.pendingBytes }
}

describe("LineFramer", () => {
  it("splits lines at LF and keeps the unfinished tail", () => {
    const result = frame(100, [Buffer.from("ab\ncd\r\n\nef")])
    expect(result).toEqual({ lines: ["ab", "cd\r", ""], ok: true, pending: 2 })
  })

  it("joins a line split over many chunks", () => {
    const result = frame(100, [...Buffer.from("hello world\n")].map((byte) => Buffer.from([byte])))
    expect(result.lines).toEqual(["hello world"])
  })

  it("accepts a line of exactly the limit and refuses one byte more", () => {
    expect(frame(4, [Buffer.from("abcd\n")]).ok).toBe(true)
    expect(frame(4, [Buffer.from("abcde\n")]).ok).toBe(false)
    expect(frame(4, [Buffer.from("ab"), Buffer.from("cde")]).ok).toBe(false)
    expect(frame(4, [Buffer.from("ab"), Buffer.from("cd")]).ok).toBe(true)
  })

  it("refuses an endless line as soon as it passes the limit, holding no more than the limit", () => {
    const framer = new LineFramer(1000)
    let ok = true
    let chunks = 0
    while (ok && chunks < 100) {
      ok = framer.push(Buffer.alloc(300, 0x41), () => {})
      chunks++
      expect(framer.pendingBytes).toBeLessThanOrEqual(1200)
    }
    expect(ok).toBe(false)
    expect(chunks).toBe(4)
  })

  it.effect.prop(
    "any split of a stream gives the same lines",
    [fc.array(fc.string({ unit: fc.constantFrom("a", "b", " ", "\r", "\n", "\u00ff") }), { maxLength: 20 }), fc.array(fc.nat(), { maxLength: 10 })],
    ([pieces, cuts]) =>
      Effect.sync(() => {
        const stream = Buffer.from(pieces.join(""), "latin1")
        const points = [...new Set(cuts.map((cut) => cut % (stream.length + 1)))].sort((a, b) => a - b)
        const chunks: Array<Buffer> = []
        let start = 0
        for (const point of [...points, stream.length]) {
          chunks.push(stream.subarray(start, point))
          start = point
        }
        const whole = frame(10_000, [stream])
        const split = frame(10_000, chunks)
        expect(split).toEqual(whole)
        expect(whole.lines).toEqual(stream.toString("latin1").split("\n").slice(0, -1))
      })
  )
})
