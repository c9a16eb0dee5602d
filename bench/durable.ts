/**
 * The durable store's figures for `npm run bench` (issue 16), also runnable
 * alone:
 *
 *   node --conditions=@herd/source --import tsx bench/durable.ts [--duration 5] [--warmup 1] [--rounds 3] [--clients 1000000]
 *
 * 1. IAMAT throughput at 50 connections x depth 16 of one `herd serve` with
 *    `store.kind: "memory"`, `"durable"` with `sync: "batch"` and with
 *    `sync: "always"`, the three servers running side by side and measured
 *    in turn, `rounds` times, so that the ratios compare the same minutes.
 * 2. The digest's cost per accepted record (FNV-1a 64 of the AT line), beside
 *    the time an IAMAT took in (1).
 * 3. A store of `clients` distinct clients, filled through the store's own
 *    API (packages/store/scripts/measure-durable.ts fill); then, each in a
 *    fresh process, open + load (the startup target) and the RSS per client
 *    of the loaded store; then a `herd serve` on that data: the time from
 *    spawn to its first answer, and its RSS per client against an empty one.
 */
import { spawn } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs"
import { createConnection } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { fnv1a64Into } from "../packages/store/src/internal/digest.ts"
import { LoadClient } from "./client.ts"
import type { LoadResult, Target } from "./client.ts"
import { cpuSecondsOf, grouped, median, memoryOf, mib, sleep } from "./figures.ts"

const root = fileURLToPath(new URL("..", import.meta.url))
const herdBin = join(root, "packages/cli/bin/herd.mjs")
const measureScript = join(root, "packages/store/scripts/measure-durable.ts")

export interface DurableBenchOptions {
  readonly durationS: number
  readonly warmupS: number
  readonly conns: number
  readonly rounds: number
  readonly clients: number
}

export interface DurableBenchResult {
  readonly lines: ReadonlyArray<string>
  readonly failures: ReadonlyArray<string>
}

type StoreKind = "memory" | "batch" | "always"
const kinds: ReadonlyArray<StoreKind> = ["memory", "batch", "always"]

/** A `herd serve` process: its stdout lines, its exit, and a stop that always ends it. */
class Server {
  readonly lines: Array<string> = []
  readonly exited: Promise<void>
  private stderr = ""

  private constructor(readonly label: string, readonly child: ChildProcess) {
    this.exited = new Promise((resolve) => child.once("exit", () => resolve()))
    let buffered = ""
    child.stdout?.on("data", (chunk: Buffer) => {
      buffered += chunk.toString()
      const parts = buffered.split("\n")
      buffered = parts.pop() ?? ""
      this.lines.push(...parts)
    })
    child.stderr?.on("data", (chunk: Buffer) => {
      this.stderr = (this.stderr + chunk.toString()).slice(-2000)
    })
  }

  /** `herd serve Alford` on a config of its own in `dir`, with the store `kind`. */
  static start(label: string, dir: string, kind: StoreKind): Server {
    mkdirSync(dir, { recursive: true })
    const config = {
      servers: { Alford: { host: "127.0.0.1", port: 0 } },
      links: [],
      places: { provider: "offline" },
      logDir: join(dir, "logs"),
      dataDir: join(dir, "data"),
      store: kind === "memory" ? { kind: "memory" } : { kind: "durable", sync: kind }
    }
    const configPath = join(dir, "herd.config.json")
    writeFileSync(configPath, JSON.stringify(config))
    const env = { ...process.env }
    delete env["HERD_PLACES_API_KEY"]
    delete env["HERD_PLACES_PROVIDER"]
    const child = spawn(process.execPath, [herdBin, "serve", "Alford", "--config", configPath], {
      cwd: root,
      env,
      stdio: ["ignore", "pipe", "pipe"]
    })
    return new Server(label, child)
  }

  /** Where it listens, once it says so. */
  async listening(timeoutMs = 60_000): Promise<Target> {
    const deadline = performance.now() + timeoutMs
    for (;;) {
      for (const line of this.lines) {
        const match = /^Alford listening on (\S+):(\d+)$/.exec(line)
        if (match !== null) return { host: match[1] ?? "127.0.0.1", port: Number(match[2]) }
      }
      if (this.child.exitCode !== null || this.child.signalCode !== null) {
        throw new Error(`${this.label} exited before listening: ${this.stderr}`)
      }
      if (performance.now() > deadline) throw new Error(`${this.label} did not listen within ${timeoutMs} ms: ${this.stderr}`)
      await sleep(20)
    }
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return
    this.child.kill("SIGINT")
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 20_000)
    await this.exited
    clearTimeout(timer)
  }
}

/** Sends one line and resolves with the first reply line, retrying the connection until `deadline`. */
const firstReply = (target: Target, line: string, deadline: number): Promise<string> =>
  new Promise((resolve, reject) => {
    const attempt = (): void => {
      const socket = createConnection(target)
      let text = ""
      socket.setEncoding("latin1")
      socket.on("connect", () => socket.write(`${line}\n`))
      socket.on("data", (chunk: string) => {
        text += chunk
        const nl = text.indexOf("\n")
        if (nl >= 0) {
          socket.destroy()
          resolve(text.slice(0, nl))
        }
      })
      socket.on("error", () => {
        socket.destroy()
        if (performance.now() > deadline) reject(new Error(`no reply from ${target.host}:${target.port}`))
        else setTimeout(attempt, 5)
      })
    }
    attempt()
  })

/** Runs measure-durable.ts with `args` in a fresh process; resolves with its stdout. */
const measure = (args: ReadonlyArray<string>, timeoutMs: number): Promise<string> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--conditions=@herd/source", "--import", "tsx", measureScript, ...args], {
      cwd: root,
      stdio: ["ignore", "pipe", "pipe"]
    })
    let out = ""
    let err = ""
    child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()))
    child.stderr.on("data", (chunk: Buffer) => (err += chunk.toString()))
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs)
    child.once("exit", (code) => {
      clearTimeout(timer)
      if (code === 0) resolve(out)
      else reject(new Error(`measure-durable.ts ${args.join(" ")} exited ${code}: ${err.slice(-1000)}`))
    })
  })

const field = (text: string, name: string): number => Number(new RegExp(`^${name}: (\\S+)`, "m").exec(text)?.[1] ?? NaN)

/** The digest's hash of a typical AT line, timed in this process: ns per record. */
const digestCostNs = (): number => {
  const line = Buffer.from("AT Alford +0.263873386 client-0000abcd.cs.ucla.edu +34.068930-118.445127 1621464827.959498503", "latin1")
  const out = new Uint32Array(2)
  let best = Infinity
  for (let pass = 0; pass < 5; pass++) {
    const n = 200_000
    const started = performance.now()
    for (let i = 0; i < n; i++) fnv1a64Into(line, 0, line.length, out, 0)
    best = Math.min(best, ((performance.now() - started) * 1e6) / n)
  }
  return best
}

export const runDurableBench = async (
  client: LoadClient,
  options: DurableBenchOptions,
  progress: (message: string) => void
): Promise<DurableBenchResult> => {
  const tmp = mkdtempSync(join(tmpdir(), "herd-bench-durable-"))
  const lines: Array<string> = []
  const failures: Array<string> = []
  const servers: Array<Server> = []
  try {
    // 1. Throughput, the three stores side by side.
    progress("durable store: three herd serve processes (memory, durable batch, durable always)")
    const started = new Map(kinds.map((kind) => {
      const server = Server.start(`herd serve (${kind})`, join(tmp, kind), kind)
      servers.push(server)
      return [kind, server] as const
    }))
    const targets = new Map<StoreKind, Target>()
    for (const [kind, server] of started) targets.set(kind, await server.listening())
    // Warmed up first, as npm run bench's own servers are: the JIT, and the gazetteer a WHATSAT waits for.
    for (const target of targets.values()) {
      const warm = { target, conns: options.conns, depth: 16, warmupMs: 0, durationMs: 1000 } as const
      await client.run({ ...warm, mode: "whatsat" })
      await client.run({ ...warm, mode: "iamat" })
    }
    const results = new Map<StoreKind, Array<LoadResult>>(kinds.map((kind) => [kind, []]))
    const cpuPerRequest = new Map<StoreKind, Array<number>>(kinds.map((kind) => [kind, []]))
    for (let round = 0; round < options.rounds; round++) {
      // Each round in another order, so that no store is always measured right after the same one.
      for (const kind of [...kinds.slice(round % kinds.length), ...kinds.slice(0, round % kinds.length)]) {
        const target = targets.get(kind)
        if (target === undefined) continue
        progress(`durable store: IAMAT ${options.conns} x 16, ${kind}, round ${round + 1} of ${options.rounds}`)
        const pid = started.get(kind)?.child.pid ?? 0
        const cpuBefore = cpuSecondsOf(pid)
        const result = await client.run({
          mode: "iamat",
          target,
          conns: options.conns,
          depth: 16,
          warmupMs: options.warmupS * 1000,
          durationMs: options.durationS * 1000
        })
        results.get(kind)?.push(result)
        // The server's CPU per request, its writer thread included: what a request costs, however busy the machine.
        cpuPerRequest.get(kind)?.push(((cpuSecondsOf(pid) - cpuBefore) * 1e6) / Math.max(1, result.completed))
        if (result.errors.total > 0) failures.push(`IAMAT ${kind}: ${result.errors.examples.slice(0, 3).join("; ")}`)
      }
    }
    await Promise.all(servers.splice(0).map((server) => server.stop()))
    const rps = (kind: StoreKind) => median((results.get(kind) ?? []).map((result) => result.rps))
    const memoryRps = rps("memory")
    lines.push(`durable store: IAMAT ${options.conns} connections x depth 16, one herd serve each, measured in turn, ` +
      `${options.rounds} rounds of ${options.warmupS} s + ${options.durationS} s (median req/s):`)
    for (const kind of kinds) {
      const each = (results.get(kind) ?? []).map((result) => grouped(result.rps)).join(", ")
      const p99 = median((results.get(kind) ?? []).map((result) => result.latency.p99Us)) / 1000
      const label = kind === "memory" ? "memory        " : `durable ${kind.padEnd(6)}`
      const cpuUs = median(cpuPerRequest.get(kind) ?? [])
      lines.push(`  ${label} ${grouped(rps(kind)).padStart(9)} req/s (${each}), p99 ${p99.toFixed(2)} ms` +
        (kind === "memory" ? "" : `, ${(rps(kind) / memoryRps).toFixed(3)}x memory`) +
        `; server CPU ${cpuUs.toFixed(1)} µs per IAMAT` +
        (kind === "memory" ? "" : ` (memory's / this: ${(median(cpuPerRequest.get("memory") ?? []) / cpuUs).toFixed(3)})`))
    }
    const batchRatio = rps("batch") / memoryRps
    if (!(batchRatio >= 0.9)) failures.push(`durable batch / memory IAMAT throughput ${batchRatio.toFixed(3)} < 0.9`)

    // 2. The digest's cost.
    const hashNs = digestCostNs()
    const perRequestNs = 1e9 / memoryRps
    lines.push(`  the digest's hash (FNV-1a 64 of a 93-byte AT line): ${hashNs.toFixed(0)} ns per accepted record, ` +
      `${((100 * hashNs) / perRequestNs).toFixed(1)}% of an IAMAT's ${grouped(perRequestNs)} ns at the memory store's rate`)

    // 3. A store of `clients`: fill, then open + load and memory in fresh processes, then a herd serve on it.
    progress(`durable store: filling a store of ${grouped(options.clients)} clients`)
    const dataDir = join(tmp, "loaded", "data")
    const path = join(dataDir, "Alford.db")
    const filled = await measure(["fill", String(options.clients), path], 600_000)
    const loads: Array<{ seconds: number; cpuSeconds: number; rssPerClient: number }> = []
    for (let i = 0; i < 3; i++) {
      progress(`durable store: open and load ${grouped(options.clients)} clients, ${i + 1} of 3`)
      const loaded = await measure(["load", path], 120_000)
      loads.push({
        seconds: field(loaded, "load seconds"),
        cpuSeconds: field(loaded, "load cpu seconds"),
        rssPerClient: field(loaded, "rss per client")
      })
      if (field(loaded, "clients") !== options.clients) failures.push(`load: ${field(loaded, "clients")} clients of ${options.clients}`)
    }
    const loadSeconds = median(loads.map((load) => load.seconds))
    lines.push(`durable store of ${grouped(options.clients)} clients (filled through offer + commits of 5,000: ` +
      `${grouped(field(filled, "fill records per second"))} records/s; file ${mib(statSync(path).size)}):`)
    lines.push(`  startup, open + load in a fresh process: ${loads.map((load) => load.seconds.toFixed(2)).join(", ")} s (median ${loadSeconds.toFixed(2)} s); ` +
      `CPU ${loads.map((load) => load.cpuSeconds.toFixed(2)).join(", ")} s`)
    lines.push(`  memory once loaded: ${grouped(median(loads.map((load) => load.rssPerClient)))} B of RSS per client (the process's RSS growth while loading)`)
    if (!(loadSeconds < 3)) failures.push(`startup at ${options.clients} clients: ${loadSeconds.toFixed(2)} s >= 3 s`)

    progress("durable store: herd serve on the loaded store, and on an empty one")
    const empty = Server.start("herd serve (empty)", join(tmp, "empty"), "batch")
    servers.push(empty)
    await empty.listening()
    await sleep(1000)
    const emptyRss = memoryOf(empty.child.pid ?? 0).rss
    await empty.stop()
    mkdirSync(join(tmp, "loaded"), { recursive: true })
    const spawnedAt = performance.now()
    const loaded = Server.start("herd serve (loaded)", join(tmp, "loaded"), "batch")
    servers.push(loaded)
    const target = await loaded.listening()
    const reply = await firstReply(target, "WHATSAT client-00000000.cs.ucla.edu 10 1", performance.now() + 60_000)
    const answeredS = (performance.now() - spawnedAt) / 1000
    if (!reply.startsWith("AT ")) failures.push(`herd serve on the loaded store answered ${reply.slice(0, 100)}`)
    await sleep(1000)
    const loadedRss = memoryOf(loaded.child.pid ?? 0).rss
    const perClient = (loadedRss - emptyRss) / options.clients
    lines.push(`  herd serve on it: first answer ${answeredS.toFixed(2)} s after spawn (node start, bundle, open + load); ` +
      `RSS ${mib(loadedRss)} vs ${mib(emptyRss)} empty: ${grouped(perClient)} B per client`)
    if (!(perClient <= 400)) failures.push(`herd serve RSS per stored client ${perClient.toFixed(0)} B > 400 B`)
  } catch (error) {
    failures.push(`durable bench: ${error instanceof Error ? error.message : String(error)}`)
  } finally {
    await Promise.all(servers.map((server) => server.stop()))
    rmSync(tmp, { recursive: true, force: true })
  }
  return { lines, failures }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const values = new Map<string, number>()
  const argv = process.argv.slice(2)
  for (let i = 0; i + 1 < argv.length; i += 2) values.set((argv[i] ?? "").replace(/^--/, ""), Number(argv[i + 1]))
  const client = LoadClient.start(2)
  const progress = (message: string) => process.stderr.write(`${message}\n`)
  runDurableBench(client, {
    durationS: values.get("duration") ?? 5,
    warmupS: values.get("warmup") ?? 1,
    conns: values.get("conns") ?? 50,
    rounds: values.get("rounds") ?? 3,
    clients: values.get("clients") ?? 1_000_000
  }, progress).then(async ({ failures, lines }) => {
    await client.close()
    console.log(lines.join("\n"))
    if (failures.length > 0) {
      console.log(["failed:", ...failures.map((failure) => `  ${failure}`)].join("\n"))
      process.exitCode = 1
    }
  }, async (error: unknown) => {
    await client.close()
    console.error(error)
    process.exitCode = 1
  })
}
