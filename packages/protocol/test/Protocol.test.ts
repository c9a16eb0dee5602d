import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { LocationRecord, Protocol } from "../src/index.ts"

describe("Protocol", () => {
  it.effect("serves the herd's parser from its layer; records, AT lines and the winner rule are the protocol's own", () =>
    Effect.gen(function*() {
      const protocol = yield* Protocol.Protocol
      const command = protocol.parse("IAMAT kiwi +34.068930-118.445127 1621464827.959498503\r")
      expect(command).toEqual({
        _tag: "Iamat",
        client: "kiwi",
        location: "+34.068930-118.445127",
        time: "1621464827.959498503"
      })
      if (command._tag !== "Iamat") return
      const record = LocationRecord.recordOf(command, "Alford", 1_621_464_828_223_371_889n)
      expect(LocationRecord.formatAtLine(record)).toBe("AT Alford +0.263873386 kiwi +34.068930-118.445127 1621464827.959498503")
      expect(LocationRecord.isNewer({ ...record, time: "1621464828" }, record)).toBe(true)
      expect(LocationRecord.isNewer(record, record)).toBe(false)
    }).pipe(Effect.provide(Protocol.layer)))

  it.effect("gives each layer built a parser of its own, which reads lines in any order alike", () =>
    Effect.gen(function*() {
      const first = yield* Effect.provide(Protocol.Protocol, Protocol.layer)
      const second = yield* Effect.provide(Protocol.Protocol, Protocol.layer)
      expect(first.parse).not.toBe(second.parse)
      const at = "AT Bolden +0.5 kiwi +1+1 1600000000"
      const iamat = "IAMAT kiwi +1+1 1600000000"
      const interleaved = [first.parse(at), second.parse(iamat), first.parse(iamat), second.parse(at)]
      expect(interleaved[0]).toEqual(interleaved[3])
      expect(interleaved[1]).toEqual(interleaved[2])
    }))
})
