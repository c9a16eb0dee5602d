// A testkit test in a project of your own, as README's "Use it from your own project" shows it.
import { describe, expect, it } from "@effect/vitest"
import { Eventually, LineClient, TestHerd } from "@herd/testkit"
import { Effect } from "effect"

describe("a herd of three", () => {
  it.scopedLive("floods a report from one end to the other", () =>
    Effect.gen(function*() {
      const herd = yield* TestHerd.startHerd({ servers: ["A", "B", "C"], links: [["A", "B"], ["B", "C"]] })
      const client = yield* LineClient.connect(herd.address("A"))
      yield* client.write("IAMAT kiwi +34.068930-118.445127 1621464827.959498503\n")
      expect(yield* client.nextReply()).toMatch(/^AT A \S+ kiwi /)
      const record = yield* Eventually.eventually(Effect.sync(() => herd.store("C").get("kiwi")))
      expect(record.origin).toBe("A")
    }))
})
