/**
 * A second `herd serve` on the port of a running one, with the same logDir
 * and name (so the same log file), and a neighbour of its own: it exits 1
 * with one line saying it cannot listen, leaves the running server's log
 * byte for byte as it was, and dials no one. The running server goes on.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { freePort, listen, runHerd, spawn, tempDir, until } from "./support.ts"

describe("herd serve on a port in use", () => {
  it.scopedLive("fails in one line before it writes to the log or dials", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const port = yield* freePort
      const logDir = join(dir, "logs")
      const logFile = join(logDir, "Alford.log")
      const first = join(dir, "first.json")
      const dataDir = join(dir, "data")
      writeFileSync(first, JSON.stringify({ servers: { Alford: { port } }, logDir, dataDir }))
      const running = yield* spawn(["serve", "Alford", "--config", first])
      yield* until(() => running.stdout().includes("Alford listening"), "the first server to listen")
      yield* until(() => {
        try {
          return readFileSync(logFile, "utf8").includes(`"listening"`)
        } catch {
          return false
        }
      }, "the first server's log to say it listens")
      const before = readFileSync(logFile)

      const neighbour = yield* listen()
      const second = join(dir, "second.json")
      writeFileSync(second, JSON.stringify({
        servers: { Alford: { port }, Parker: { port: neighbour.port } },
        links: [["Alford", "Parker"]],
        // Were the links started before the listener, the first dial would go at once.
        reconnect: { initialMs: 1, capMs: 1 },
        logDir,
        dataDir
      }))
      const failed = yield* runHerd(["serve", "Alford", "--config", second])
      expect(failed.code).toBe(1)
      expect(failed.stderr).toMatch(new RegExp(`^herd: Alford cannot listen on 127\\.0\\.0\\.1:${port}: .*EADDRINUSE.*\\n$`))

      // Nothing new in the log (an entry would have been flushed before the exit).
      expect(readFileSync(logFile).equals(before)).toBe(true)
      yield* neighbour.settle
      expect(neighbour.connections()).toBe(0)

      // The first server was not disturbed, and stops as usual.
      running.child.kill("SIGTERM")
      expect((yield* running.exited()).code).toBe(0)
      const entries = readFileSync(logFile, "utf8").trimEnd().split("\n")
        .map((line) => (JSON.parse(line) as { event: string }).event)
      expect(entries).toEqual(["listening", "stopped"])
    }), 30_000)
})
