/**
 * `herd serve` as a real process, stopped while clients are pipelining:
 *
 * - with SIGTERM: the listener closes, every request already read gets its
 *   reply, the link to the neighbour closes, the log is flushed with nothing
 *   lost, and the process exits 0 within 2 s;
 * - with SIGINT twice, the second in the middle of the stop (as a Ctrl-C
 *   reaches a herd both from the terminal and through npm): the stop is not
 *   cut short, and the log still ends with `stopped`.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { readFileSync, writeFileSync } from "node:fs"
import * as Net from "node:net"
import { join } from "node:path"
import { freePort, listen, spawn, tempDir, until } from "./support.ts"

/** A client pipelining IAMATs as fast as it can, until the server closes. */
const pipelining = (port: number, name: string) => {
  const client = Net.connect({ host: "127.0.0.1", port })
  client.on("error", () => {})
  let received = ""
  let serverClosed = false
  client.on("data", (chunk: Buffer) => {
    received += chunk.toString("latin1")
  })
  // The server's FIN ('end') is what a clean close looks like; 'close' covers the rest.
  client.on("end", () => {
    serverClosed = true
  })
  client.on("close", () => {
    serverClosed = true
  })
  let sent = 0
  const pump = setInterval(() => {
    if (serverClosed || client.destroyed) return clearInterval(pump)
    let batch = ""
    for (let i = 0; i < 200; i++) batch += `IAMAT ${name}${sent++} +34.068930-118.445127 1621464827.959498503\n`
    client.write(batch)
  }, 1)
  return {
    received: () => received,
    serverClosed: () => serverClosed,
    stop: () => {
      clearInterval(pump)
      client.destroy()
    }
  }
}

const logOf = (dir: string, name: string) =>
  readFileSync(join(dir, "logs", `${name}.log`), "utf8").trimEnd().split("\n")
    .map((line) => JSON.parse(line) as Record<string, unknown>)

describe("herd serve", () => {
  it.scopedLive("shuts down cleanly on SIGTERM under pipelined load", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const neighbour = yield* listen()
      const port = yield* freePort
      const config = join(dir, "herd.json")
      writeFileSync(config, JSON.stringify({
        servers: { Alford: { port }, Parker: { port: neighbour.port } },
        links: [["Alford", "Parker"]],
        logDir: join(dir, "logs"),
        dataDir: join(dir, "data")
      }))
      const herd = yield* spawn(["serve", "Alford", "--config", config])
      yield* until(() => herd.stdout().includes("Alford listening"), "the server to listen")
      yield* until(() => neighbour.received().startsWith("PEER Alford\n"), "the link to Parker")

      const client = pipelining(port, "c")
      yield* until(() => client.received().length > 100_000, "replies to flow")

      herd.child.kill("SIGTERM")
      const signalledAt = Date.now()
      const exit = yield* herd.exited()
      client.stop()
      expect(exit.code).toBe(0)
      expect(exit.at - signalledAt).toBeLessThan(2000)
      yield* until(() => client.serverClosed(), "the client's connection to close")
      yield* until(() => neighbour.closed(), "the link to close")

      // Every reply complete, in request order.
      const received = client.received()
      expect(received.endsWith("\n")).toBe(true)
      const replies = received.slice(0, -1).split("\n")
      expect(replies.length).toBeGreaterThan(1000)
      replies.forEach((reply, i) => {
        if (!reply.startsWith("AT Alford ") || !reply.includes(` c${i} `)) expect.fail(`reply ${i}: ${reply}`)
      })
      // The log: all flushed, every line read answered, and the stop recorded last.
      const log = logOf(dir, "Alford")
      const count = (event: string) => log.filter((entry) => entry["event"] === event).length
      expect(count("in")).toBe(replies.length)
      expect(count("out")).toBe(replies.length)
      expect(log.at(-1)?.["event"]).toBe("stopped")
    }), 30_000)

  it.scopedLive("a second SIGINT in the middle of the stop does not cut it short", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const port = yield* freePort
      const config = join(dir, "herd.json")
      writeFileSync(config, JSON.stringify({ servers: { Alford: { port } }, logDir: join(dir, "logs"), dataDir: join(dir, "data") }))
      const herd = yield* spawn(["serve", "Alford", "--config", config])
      yield* until(() => herd.stdout().includes("Alford listening"), "the server to listen")
      const clients = Array.from({ length: 20 }, (_, i) => pipelining(port, `c${i}-`))
      yield* until(() => clients.every((client) => client.received().length > 10_000), "replies to flow")

      herd.child.kill("SIGINT")
      // The repeat a moment later, as a terminal's Ctrl-C and npm's pass-on arrive: within
      // the second in which a repeat is ignored, whatever the machine's load (waiting for a
      // sign of the stop first could take longer than that, and a later repeat is meant to
      // end the process at once).
      yield* Effect.sleep("20 millis")
      herd.child.kill("SIGINT")
      const exit = yield* herd.exited()
      clients.forEach((client) => client.stop())
      expect(exit).toMatchObject({ code: 0, signal: null })
      expect(logOf(dir, "Alford").at(-1)?.["event"]).toBe("stopped")
    }), 30_000)
})
