/**
 * `npm start` (which runs `herd up`) stopped by a signal: within a few
 * seconds every port is closed, each server's log ends with `stopped`, and
 * no process of the tree is left.
 *
 * - SIGTERM to npm alone, as a process manager or `kill` sends it: npm hands
 *   it to the shell of its script, which dies of it without passing it on;
 *   the herd notices that its parent is gone.
 * - Ctrl-C: SIGINT to the whole process group, as a terminal sends it.
 * - SIGINT to npm alone: the shell waits for the herd, which never hears of
 *   it. Only a start script that `exec`s the herd (no shell left between npm
 *   and the herd) stops then; the test runs once the script does.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { readdirSync, readFileSync, writeFileSync } from "node:fs"
import * as Net from "node:net"
import { join } from "node:path"
import { freePort, repoRoot, spawn, tempDir, until } from "./support.ts"

/** The processes of a process group, from /proc. */
const membersOf = (group: number): Array<number> =>
  readdirSync("/proc").filter((entry) => /^\d+$/.test(entry)).flatMap((pid) => {
    try {
      const stat = readFileSync(join("/proc", pid, "stat"), "utf8")
      // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
      return Number(fields[2]) === group ? [Number(pid)] : []
    } catch {
      return []
    }
  })

const refuses = (port: number) =>
  Effect.async<boolean>((resume) => {
    const socket = Net.connect({ host: "127.0.0.1", port })
    socket.on("connect", () => {
      socket.destroy()
      resume(Effect.succeed(false))
    })
    socket.on("error", () => resume(Effect.succeed(true)))
  })

const stopsOn = (signal: "SIGTERM" | "SIGINT", to: "npm" | "group") =>
  Effect.gen(function*() {
    const dir = yield* tempDir
    const ports = [yield* freePort, yield* freePort]
    const config = join(dir, "herd.json")
    writeFileSync(config, JSON.stringify({
      servers: { North: { port: ports[0] }, South: { port: ports[1] } },
      links: [["North", "South"]],
      logDir: join(dir, "logs"),
        dataDir: join(dir, "data")
    }))
    const npm = yield* spawn(["start", "--", "--config", config], {
      command: "npm",
      cwd: repoRoot,
      // Its own process group: the test can see the whole tree, and kill what is left.
      detached: true
    })
    const group = npm.child.pid ?? 0
    yield* until(() => npm.stdout().includes("North listening") && npm.stdout().includes("South listening"), "the herd to listen")
    // npm, its script's shell, and the herd.
    expect(membersOf(group).length).toBeGreaterThanOrEqual(2)

    process.kill(to === "group" ? -group : group, signal)
    const signalledAt = Date.now()
    yield* until(() => membersOf(group).length === 0, `every process of npm start to exit after ${signal}`, 5000)
    expect(Date.now() - signalledAt).toBeLessThan(5000)
    for (const port of ports) expect(yield* refuses(port)).toBe(true)
    for (const name of ["North", "South"]) {
      const log = readFileSync(join(dir, "logs", `${name}.log`), "utf8").trimEnd().split("\n")
      expect((JSON.parse(log.at(-1) ?? "{}") as { event?: string }).event).toBe("stopped")
    }
  })

describe("npm start", () => {
  it.scopedLive("stops the whole herd on SIGTERM to npm", () => stopsOn("SIGTERM", "npm"), 30_000)
  it.scopedLive("stops the whole herd on Ctrl-C (SIGINT to the process group)", () => stopsOn("SIGINT", "group"), 30_000)
  it.scopedLive("stops the whole herd on SIGINT to npm alone (the start script execs the herd)", () => stopsOn("SIGINT", "npm"), 30_000)
})
