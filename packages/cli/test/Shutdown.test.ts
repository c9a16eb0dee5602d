/**
 * `herd serve` as a real process, stopped with SIGTERM while a client is
 * pipelining: the listener closes, every request already read gets its reply,
 * the link to the neighbour closes, the log is flushed with nothing lost, and
 * the process exits 0 within 2 s.
 */
import { describe, expect, it } from "@effect/vitest"
import { eventually } from "@herd/testkit"
import { Effect } from "effect"
import * as ChildProcess from "node:child_process"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import * as Net from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"

const bin = fileURLToPath(new URL("../bin/herd.mjs", import.meta.url))

/** Real-time polling (the server is another process) for up to 10 s. */
const until = (check: () => boolean, what: string) =>
  eventually(Effect.sync(() => check() || undefined), { timeoutMs: 10_000, describe: () => what })

const listen = Effect.acquireRelease(
  Effect.async<{ server: Net.Server; port: number; received: () => string; closed: () => boolean }>((resume) => {
    let text = ""
    let closed = false
    const server = Net.createServer((socket) => {
      socket.on("data", (chunk) => {
        text += chunk.toString("latin1")
      })
      socket.on("error", () => {})
      socket.on("close", () => {
        closed = true
      })
    })
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      resume(Effect.succeed({ server, port, received: () => text, closed: () => closed }))
    })
  }),
  ({ server }) =>
    Effect.async<void>((resume) => {
      server.close(() => resume(Effect.void))
    })
)

const freePort = Effect.scoped(Effect.map(listen, ({ port }) => port))

describe("herd serve", () => {
  it.scopedLive("shuts down cleanly on SIGTERM under pipelined load", () =>
    Effect.gen(function*() {
      const dir = yield* Effect.acquireRelease(
        Effect.sync(() => mkdtempSync(join(tmpdir(), "herd-shutdown-"))),
        (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
      )
      const neighbour = yield* listen
      const port = yield* freePort
      const config = join(dir, "herd.json")
      writeFileSync(config, JSON.stringify({
        servers: { Alford: { port }, Parker: { port: neighbour.port } },
        links: [["Alford", "Parker"]],
        logDir: join(dir, "logs")
      }))
      let output = ""
      const child = yield* Effect.acquireRelease(
        Effect.sync(() => ChildProcess.spawn(process.execPath, [bin, "serve", "Alford", "--config", config])),
        (child) => Effect.sync(() => child.kill("SIGKILL"))
      )
      child.stdout.on("data", (chunk: Buffer) => {
        output += chunk.toString()
      })
      child.stderr.on("data", (chunk: Buffer) => {
        output += chunk.toString()
      })
      const exited = Effect.async<{ code: number | null; at: number }>((resume) => {
        child.once("exit", (code) => resume(Effect.succeed({ code, at: Date.now() })))
      })
      yield* until(() => output.includes("Alford listening"), "the server to listen")
      yield* until(() => neighbour.received().startsWith("PEER Alford\n"), "the link to Parker")

      // A client pipelining IAMATs as fast as it can, until the server closes.
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
        for (let i = 0; i < 200; i++) batch += `IAMAT c${sent++} +34.068930-118.445127 1621464827.959498503\n`
        client.write(batch)
      }, 1)
      yield* until(() => received.length > 100_000, "replies to flow")

      child.kill("SIGTERM")
      const signalledAt = Date.now()
      const exit = yield* exited
      clearInterval(pump)
      expect(exit.code).toBe(0)
      expect(exit.at - signalledAt).toBeLessThan(2000)
      yield* until(() => serverClosed, "the client's connection to close")
      yield* until(() => neighbour.closed(), "the link to close")

      // Every reply complete, in request order.
      expect(received.endsWith("\n")).toBe(true)
      const replies = received.slice(0, -1).split("\n")
      expect(replies.length).toBeGreaterThan(1000)
      replies.forEach((reply, i) => {
        if (!reply.startsWith("AT Alford ") || !reply.includes(` c${i} `)) expect.fail(`reply ${i}: ${reply}`)
      })
      // The log: all flushed, every line read answered, and the stop recorded last.
      const log = readFileSync(join(dir, "logs", "Alford.log"), "utf8").trimEnd().split("\n")
        .map((line) => JSON.parse(line) as Record<string, unknown>)
      const count = (event: string) => log.filter((entry) => entry["event"] === event).length
      expect(count("in")).toBe(replies.length)
      expect(count("out")).toBe(replies.length)
      expect(log.at(-1)?.["event"]).toBe("stopped")
      client.destroy()
    }), 30_000)
})
