/**
 * `herd status` as a real process against real servers (`herd serve`, one
 * process each, with their admin endpoints): in sync after a report has
 * flooded; not in sync, naming the servers that differ, once the middle of
 * a chain is stopped and one end gets a new report; `--json`; usage errors.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { writeFileSync } from "node:fs"
import * as Net from "node:net"
import { join } from "node:path"
import { freePort, runHerd, spawn, tempDir, until } from "./support.ts"

/**
 * A port free now below the kernel's ephemeral range (32768 and up here):
 * these servers start seconds after their ports are chosen, and a port from
 * the ephemeral range can meanwhile become the local end of any outgoing
 * connection of the other tests running beside this one.
 */
const quietPort = Effect.async<number, Error>((resume) => {
  const attempt = (left: number) => {
    const port = 20_000 + Math.floor(Math.random() * 12_000)
    const probe = Net.createServer()
    probe.once("error", () => (left > 0 ? attempt(left - 1) : resume(Effect.fail(new Error("no free port below 32000")))))
    probe.listen(port, "127.0.0.1", () => probe.close(() => resume(Effect.succeed(port))))
  }
  attempt(50)
})

/**
 * Sends one line to a server and waits (bounded) for its first reply line:
 * 15 s, as a server just started may still be loading its gazetteer while
 * the rest of the suite loads the machine.
 */
const ask = (port: number, line: string) =>
  Effect.async<string, Error>((resume) => {
    const socket = Net.connect({ host: "127.0.0.1", port }, () => socket.write(`${line}\n`))
    let text = ""
    const timer = setTimeout(() => {
      socket.destroy()
      resume(Effect.fail(new Error(`no reply to ${line}`)))
    }, 15_000)
    socket.on("data", (chunk: Buffer) => {
      text += chunk.toString("latin1")
      if (text.includes("\n")) {
        clearTimeout(timer)
        socket.destroy()
        resume(Effect.succeed(text.split("\n")[0] ?? ""))
      }
    })
    socket.on("error", (error) => {
      clearTimeout(timer)
      resume(Effect.fail(error))
    })
    return Effect.sync(() => {
      clearTimeout(timer)
      socket.destroy()
    })
  })

/** A chain Alpha - Beta - Gamma, each `herd serve` in its own process, with memory stores. */
const startChain = Effect.gen(function*() {
  const dir = yield* tempDir
  const names = ["Alpha", "Beta", "Gamma"] as const
  const servers: Record<string, { host: string; port: number; httpPort: number }> = {}
  for (const name of names) servers[name] = { host: "127.0.0.1", port: yield* quietPort, httpPort: yield* quietPort }
  const configPath = join(dir, "herd.json")
  writeFileSync(configPath, JSON.stringify({
    servers,
    links: [["Alpha", "Beta"], ["Beta", "Gamma"]],
    logDir: join(dir, "logs"),
    store: { kind: "memory" },
    reconnect: { initialMs: 20, capMs: 200 }
  }))
  const processes = yield* Effect.forEach(names, (name) => spawn(["serve", name, "--config", configPath], { cwd: dir }))
  for (const [i, name] of names.entries()) {
    const herd = processes[i]
    if (herd === undefined) continue
    yield* until(() => herd.stdout().includes(`${name} admin on http://`), `${name}'s admin endpoint: ${herd.stderr()}`, 20_000)
  }
  const status = (...args: ReadonlyArray<string>) => runHerd(["status", "--config", configPath, ...args], { cwd: dir })
  return { dir, configPath, servers, processes, status }
})

describe("herd status", () => {
  it.scopedLive("in sync after a report floods; the servers that differ once the chain is cut", () =>
    Effect.gen(function*() {
      const chain = yield* startChain
      const alpha = chain.servers["Alpha"]?.port ?? 0
      expect(yield* ask(alpha, "IAMAT kiwi +34.068930-118.445127 1621464827.959498503")).toMatch(/^AT Alpha /)

      // Until the record has flooded to Gamma (links come up on their own schedule): bounded.
      let inSync = yield* chain.status()
      for (let tries = 0; tries < 30 && !(inSync.code === 0 && inSync.stdout.includes("1 record")); tries++) {
        inSync = yield* chain.status()
      }
      expect(inSync).toMatchObject({ code: 0, stderr: "" })
      const lines = inSync.stdout.trimEnd().split("\n")
      expect(lines.at(-1)).toMatch(/^in sync: 3 running, 1 record, digest [0-9a-f]{16}$/)
      expect(inSync.stdout).toMatch(/^Alpha +up +127\.0\.0\.1:\d+ +records 1 +digest [0-9a-f]{16} +uptime \d+s +ready$/m)
      expect(inSync.stdout).toMatch(/^ {2}-> Beta +up +sent \d+ +received \d+ +catch-ups 1 /m)

      // Beta stops: Alpha and Gamma can no longer agree on what they learn.
      const beta = chain.processes[1]
      beta?.child.kill("SIGTERM")
      yield* (beta?.exited() ?? Effect.void)
      expect(yield* ask(alpha, "IAMAT kiwi +35.0-118.0 1621464900")).toMatch(/^AT Alpha /)
      const cut = yield* chain.status()
      expect(cut.code).toBe(1)
      expect(cut.stderr).toBe("")
      expect(cut.stdout).toMatch(/^Beta +down +http:\/\/127\.0\.0\.1:\d+\/status: .+$/m)
      expect(cut.stdout.trimEnd().split("\n").at(-1)).toMatch(
        /^not in sync: Alpha \(1 record, digest [0-9a-f]{16}\) \/ Gamma \(1 record, digest [0-9a-f]{16}\); 1 of 3 down$/
      )

      const json = yield* chain.status("--json")
      expect(json.code).toBe(1)
      const report = JSON.parse(json.stdout) as {
        servers: ReadonlyArray<{ name: string; up: boolean }>
        verdict: { inSync: boolean; differing: ReadonlyArray<string> }
      }
      expect(report.servers.map(({ name, up }) => [name, up])).toEqual([["Alpha", true], ["Beta", false], ["Gamma", true]])
      expect(report.verdict).toMatchObject({ inSync: false, differing: ["Alpha", "Gamma"] })
    }), 60_000)

  it.scopedLive("usage errors exit 2 in one line; a herd with no server up is not in sync", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const configPath = join(dir, "herd.json")
      writeFileSync(configPath, JSON.stringify({ servers: { Lone: { port: yield* freePort, httpPort: yield* freePort } } }))
      const [flag, nobody] = yield* Effect.all([
        runHerd(["status", "--jsn"], { cwd: dir }),
        runHerd(["status", "--config", configPath], { cwd: dir })
      ], { concurrency: 2 })
      expect(flag.code).toBe(2)
      expect(flag.stdout).toBe("")
      expect(flag.stderr.trimEnd().split("\n")).toHaveLength(1)
      expect(nobody.code).toBe(1)
      expect(nobody.stdout).toMatch(/^Lone +down +http:\/\/127\.0\.0\.1:\d+\/status: .+\nnot in sync: no server answered\n$/)
    }), 30_000)
})
