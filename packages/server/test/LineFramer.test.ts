import { describe, expect, it } from "@effect/vitest"
import { Effect, FastCheck as fc } from "effect"
import { LineFramer, tooLong } from "../src/internal/LineFramer.ts"

const frame = (limit: number, chunks: ReadonlyArray<Buffer>, skipTooLong = false) => {
  const framer = new LineFramer(limit)
  const lines: Array<string> = []
  let skipped = 0
  if (skipTooLong) framer.skipTooLongLines(() => skipped++)
  let ok = true
  for (const chunk of chunks) {
    const taken = framer.push(chunk, { onLine: (bytes, start, end) => lines.push(bytes.toString("latin1", start, end)) > 0 })
    ok = taken !== tooLong
    if (!ok) break
    expect(taken).toBe(chunk.length)
  }
  return { lines, ok, pending: framer.pendingBytes, skipped }
}

describe("LineFramer", () => {
  it("splits lines at LF and keeps the unfinished tail", () => {
    const result = frame(100, [Buffer.from("ab\ncd\r\n\nef")])
    expect(result).toEqual({ lines: ["ab", "cd\r", ""], ok: true, pending: 2, skipped: 0 })
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
      ok = framer.push(Buffer.alloc(300, 0x41), { onLine: () => true }) !== tooLong
      chunks++
      expect(framer.pendingBytes).toBeLessThanOrEqual(1200)
    }
    expect(ok).toBe(false)
    expect(chunks).toBe(4)
  })

  it("stops right after the line whose handler says so, and takes the rest when fed again", () => {
    const framer = new LineFramer(100)
    const lines: Array<string> = []
    const chunk = Buffer.from("one\ntwo\nthree\nfo")
    const collect = {
      onLine: (bytes: Buffer, start: number, end: number) => {
        lines.push(bytes.toString("latin1", start, end))
        return lines.length !== 2
      }
    }
    const taken = framer.push(chunk, collect)
    expect(lines).toEqual(["one", "two"])
    expect(taken).toBe("one\ntwo\n".length)
    expect(framer.push(chunk.subarray(taken), collect)).toBe(chunk.length - taken)
    expect(lines).toEqual(["one", "two", "three"])
    expect(framer.pendingBytes).toBe(2)
  })

  it("on a neighbour's link, skips a too-long line to its LF, holding none of it, and goes on", () => {
    const framer = new LineFramer(4)
    const lines: Array<string> = []
    let skipped = 0
    framer.skipTooLongLines(() => skipped++)
    const collect = { onLine: (bytes: Buffer, start: number, end: number) => lines.push(bytes.toString("latin1", start, end)) > 0 }
    expect(framer.push(Buffer.from("ab\nabcdefgh\ncd\nxy"), collect)).toBe(17)
    expect(framer.push(Buffer.from("zzz"), collect)).toBe(3)
    expect(framer.pendingBytes).toBe(0)
    for (let i = 0; i < 100; i++) {
      framer.push(Buffer.alloc(1000, 0x41), collect)
      expect(framer.pendingBytes).toBe(0)
    }
    framer.push(Buffer.from("A\nok\n"), collect)
    expect(lines).toEqual(["ab", "cd", "ok"])
    expect(skipped).toBe(2)
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
        // Skipping lines over a small limit drops exactly those, however the stream is split.
        const expected = stream.toString("latin1").split("\n").slice(0, -1).filter((line) => line.length <= 3)
        expect(frame(3, chunks, true).lines).toEqual(expected)
        expect(frame(3, [stream], true).lines).toEqual(expected)
      }),
    // A hundred runs take about a second alone, several on a loaded machine.
    20_000
  )
})
