import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { layer, Protocol } from "../src/index.ts"

describe("Protocol", () => {
  it.effect("serves the herd dialect from its layer", () =>
    Effect.gen(function*() {
      const protocol = yield* Protocol
      const command = protocol.parse("IAMAT kiwi +34.068930-118.445127 1621464827.959498503\r")
      expect(command).toEqual({
        _tag: "Iamat",
        client: "kiwi",
        location: "+34.068930-118.445127",
        time: "1621464827.959498503"
      })
      if (command._tag !== "Iamat") return
      const record = protocol.record(command, "Alford", 1_621_464_828_223_371_889n)
      expect(protocol.formatAt(record)).toBe("AT Alford +0.263873386 kiwi +34.068930-118.445127 1621464827.959498503")
      expect(protocol.isNewer({ ...record, time: "1621464828" }, record)).toBe(true)
      expect(protocol.isNewer(record, record)).toBe(false)
    }).pipe(Effect.provide(layer)))
})
