/**
 * `herd client <name|host:port>` as a real process, against plain loopback
 * servers of the test: stdin to the server and its replies to stdout, by a
 * server name of the config or by address (IPv6 too); one line and exit 1
 * at once for a server that cannot be reached; `closed the connection` and
 * exit 1 when the server closes first; a quiet end when stdout's reader
 * goes; `connected to` first when stdin is a terminal; exit 2 with the
 * config's names for an unknown one.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { writeFileSync } from "node:fs"
import type * as Net from "node:net"
import { join } from "node:path"
import { freePort, listen, runHerd, spawn, spawnInTerminal, tempDir, until } from "./support.ts"

/** Answers each line with `ok <line>`; once the client has sent everything, ends its side too. */
const echoing = (socket: Net.Socket) => {
  let pending = ""
  socket.on("data", (chunk: Buffer) => {
    pending += chunk.toString("latin1")
    const lines = pending.split("\n")
    pending = lines.pop() ?? ""
    for (const line of lines) socket.write(`ok ${line}\n`)
  })
  socket.on("end", () => socket.end())
}

describe("herd client", () => {
  it.scopedLive("sends stdin to a server of the config, its replies to stdout, and exits 0 when both are done", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const server = yield* listen({ allowHalfOpen: true, onConnection: echoing })
      const config = join(dir, "herd.json")
      writeFileSync(config, JSON.stringify({ servers: { Alford: { port: server.port } } }))
      const session = yield* runHerd(["client", "Alford", "--config", config], { input: "one\ntwo\n" })
      expect(session).toMatchObject({ code: 0, stdout: "ok one\nok two\n", stderr: "" })
    }), 30_000)

  it.scopedLive("takes host:port and [::1]:port, with no config at all", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const v4 = yield* listen({ allowHalfOpen: true, onConnection: echoing })
      const v6 = yield* listen({ host: "::1", allowHalfOpen: true, onConnection: echoing })
      // A config that cannot be read is not in the way of an address.
      writeFileSync(join(dir, "herd.config.ts"), "export default {")
      const [byV4, byV6] = yield* Effect.all([
        runHerd(["client", `127.0.0.1:${v4.port}`], { cwd: dir, input: "four\n" }),
        runHerd(["client", `[::1]:${v6.port}`], { cwd: dir, input: "six\n" })
      ], { concurrency: 2 })
      expect(byV4).toMatchObject({ code: 0, stdout: "ok four\n", stderr: "" })
      expect(byV6).toMatchObject({ code: 0, stdout: "ok six\n", stderr: "" })
    }), 30_000)

  it.scopedLive("says at once, in one line naming the address, that a server cannot be reached: exit 1", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const port = yield* freePort
      const config = join(dir, "herd.json")
      writeFileSync(config, JSON.stringify({ servers: { Alford: { port } } }))
      const [byName, byAddress] = yield* Effect.all([
        // stdin left open: the failure must not wait for it.
        Effect.scoped(Effect.gen(function*() {
          const started = Date.now()
          const herd = yield* spawn(["client", "Alford", "--config", config])
          const exit = yield* herd.exited(5000)
          return { ...exit, ms: exit.at - started, stdout: herd.stdout(), stderr: herd.stderr() }
        })),
        runHerd(["client", `127.0.0.1:${port}`])
      ], { concurrency: 2 })
      expect(byName).toMatchObject({
        code: 1,
        stdout: "",
        stderr: `herd: cannot reach Alford at 127.0.0.1:${port}: connect ECONNREFUSED 127.0.0.1:${port}\n`
      })
      expect(byAddress).toMatchObject({
        code: 1,
        stdout: "",
        stderr: `herd: cannot reach 127.0.0.1:${port}: connect ECONNREFUSED 127.0.0.1:${port}\n`
      })
      expect(byName.ms).toBeLessThan(4000)
    }), 30_000)

  it.scopedLive("says so when the server closes the connection first: exit 1", () =>
    Effect.gen(function*() {
      const server = yield* listen({
        onConnection: (socket) => {
          socket.once("data", () => socket.end("bye\n"))
        }
      })
      const herd = yield* spawn(["client", `127.0.0.1:${server.port}`])
      // stdin stays open: only the server can end this session.
      herd.child.stdin.write("hello\n")
      const exit = yield* herd.exited(5000)
      expect(exit.code).toBe(1)
      expect(herd.stdout()).toBe("bye\n")
      expect(herd.stderr()).toBe(`herd: 127.0.0.1:${server.port} closed the connection\n`)
    }), 30_000)

  it.scopedLive("ends quietly, at once, when the reader of its stdout goes away (| head)", () =>
    Effect.gen(function*() {
      const server = yield* listen({
        onConnection: (socket) => {
          const flood = setInterval(() => {
            if (socket.destroyed) clearInterval(flood)
            else socket.write("a line of the flood\n".repeat(100))
          }, 1)
        }
      })
      const herd = yield* spawn(["client", `127.0.0.1:${server.port}`])
      yield* until(() => herd.stdout().length > 0, "replies to come")
      // stdin stays open: only the closed stdout can end this session.
      herd.child.stdout.destroy()
      const exit = yield* herd.exited(5000)
      expect(exit).toMatchObject({ code: 0, signal: null })
      expect(herd.stderr()).toBe("")
    }), 30_000)

  it.scopedLive("with a terminal on stdin, says where it connected first", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const server = yield* listen({
        onConnection: (socket) => {
          socket.once("data", () => socket.end("bye\n"))
        }
      })
      const config = join(dir, "herd.json")
      writeFileSync(config, JSON.stringify({ servers: { Alford: { port: server.port } } }))
      const herd = yield* spawnInTerminal(["client", "Alford", "--config", config])
      yield* until(() => herd.stdout().includes("herd: connected to"), "the client to say it connected")
      herd.child.stdin.write("hello\n")
      const exit = yield* herd.exited(5000)
      // What the terminal showed: the banner, the line typed (echoed), the reply, the close.
      const shown = herd.stdout().replaceAll("\r", "")
      expect(shown.indexOf(`herd: connected to Alford at 127.0.0.1:${server.port}\n`)).toBe(0)
      expect(shown).toContain("bye\n")
      expect(shown).toContain(`herd: Alford at 127.0.0.1:${server.port} closed the connection\n`)
      expect(exit.code).toBe(1)
    }), 30_000)

  it.scopedLive("names the servers it knows for a name it does not: exit 2", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const config = join(dir, "herd.json")
      writeFileSync(config, JSON.stringify({ servers: { Alford: { port: 1 }, Bolden: { port: 2 } } }))
      const session = yield* runHerd(["client", "Nope", "--config", config])
      expect(session).toMatchObject({
        code: 2,
        stdout: "",
        stderr: `herd: no server "Nope" in ${config} (its servers: Alford, Bolden)\n`
      })
    }), 30_000)
})
