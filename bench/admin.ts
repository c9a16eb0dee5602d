/**
 * What the admin endpoint costs IAMAT throughput (issue 19: at most 5%).
 *
 * Two `herd serve` processes with the same config but for `httpPort`: "off"
 * has no admin endpoint, "on" has one and is scraped (`/metrics`, which
 * publishes the server's counts into Effect's metrics and prints them) once
 * a second while it is measured, five times what a Prometheus scraping every
 * 15 s asks. IAMAT at depth 16 against each in turn, `rounds` times, a
 * fresh pair of processes each round (off then on, then on then off, so
 * that a drift of the machine's load falls on both), the memory store and
 * no wire log in both, the same client: the ratio of the sums says what metrics cost, and
 * the median of the rounds' ratios how steady that is. On a machine shared
 * with other work throughput swings; the server's CPU time per request
 * (from /proc, over each whole run) swings much less, and its ratio on/off
 * is given too. Then, with no load,
 * how long a scrape takes end to end: the most it can cost the server's
 * main thread a second. And in this process, what publishing costs per
 * observation of a histogram (the one part of the endpoint's work that grows
 * with the load): with the scrape's CPU, an estimate of the cost from its
 * parts that the machine's other load moves little.
 * Both count into their `ServerStats` alike: counting is not what is
 * switched (it is part of the hot path either way), serving and publishing
 * it is.
 *
 * `npm run bench` runs it as one section; alone:
 *   node --conditions=@herd/source --import tsx bench/admin.ts [--duration S] [--rounds N]
 */
import { spawn } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import { Metrics } from "@herd/server"
import { LoadClient } from "./client.ts"
import type { LoadResult, Target } from "./client.ts"
import { cpuSecondsOf, grouped, median } from "./figures.ts"

const root = fileURLToPath(new URL("..", import.meta.url))
const herdBin = join(root, "packages/cli/bin/herd.mjs")

export interface AdminCostOptions {
  readonly client: LoadClient
  readonly conns: number
  readonly warmupMs: number
  readonly durationMs: number
  /** Pairs of measurements, off and on (default 4). */
  readonly rounds?: number
  /** A folder for the servers' configs, logs and data. */
  readonly dir: string
  readonly progress: (message: string) => void
}

export interface AdminCost {
  readonly lines: ReadonlyArray<string>
  readonly notes: ReadonlyArray<string>
  readonly failed: boolean
}

interface Server {
  readonly child: ChildProcess
  readonly target: Target
  readonly metricsUrl: string | undefined
  readonly stop: () => Promise<void>
}

/** `herd serve Alford` on port 0 (and HTTP port 0 when `admin`), until it says where it listens. */
const startServer = async (label: string, dir: string, admin: boolean): Promise<Server> => {
  const home = join(dir, label)
  mkdirSync(home, { recursive: true })
  const configPath = join(home, "herd.config.json")
  writeFileSync(configPath, JSON.stringify({
    servers: { Alford: admin ? { host: "127.0.0.1", port: 0, httpPort: 0 } : { host: "127.0.0.1", port: 0 } },
    places: { provider: "offline" },
    // The memory store and no wire log: what metrics cost is then the
    // largest share of a request it can be, and neither the disk nor the
    // store's writer adds its noise to the two servers' throughput.
    store: { kind: "memory" },
    log: { wire: "off" },
    logDir: join(home, "logs"),
    dataDir: join(home, "data")
  }))
  const child = spawn(process.execPath, [herdBin, "serve", "Alford", "--config", configPath], {
    cwd: root,
    stdio: ["ignore", "pipe", "pipe"]
  })
  let stderr = ""
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-2000)
  })
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return
    child.kill("SIGINT")
    const timer = setTimeout(() => child.kill("SIGKILL"), 20_000)
    await exited
    clearTimeout(timer)
  }
  const found = await new Promise<{ target: Target; metricsUrl: string | undefined }>((resolve, reject) => {
    let target: Target | undefined
    const timer = setTimeout(() => reject(new Error(`${label}: not listening within 60 s: ${stderr}`)), 60_000)
    child.once("exit", (code) => reject(new Error(`${label} exited (${code}) before listening: ${stderr}`)))
    createInterface({ input: child.stdout ?? process.stdin }).on("line", (line) => {
      const listening = /^Alford listening on (\S+):(\d+)$/.exec(line)
      if (listening !== null) target = { host: listening[1] ?? "127.0.0.1", port: Number(listening[2]) }
      const http = /^Alford admin on (http:\/\/\S+?)\/? /.exec(line)
      if (target !== undefined && (!admin || http !== null)) {
        clearTimeout(timer)
        resolve({ target, metricsUrl: http === null ? undefined : `${http[1] ?? ""}/metrics` })
      }
    })
  }).catch(async (error: unknown) => {
    await stop()
    throw error
  })
  return { child, ...found, stop }
}

/** Scrapes `url` once a second until stopped; answers how many scrapes, and the failures. */
const scrapeEverySecond = (url: string) => {
  let scrapes = 0
  const failures: Array<string> = []
  let bytes = 0
  const scrape = async (): Promise<void> => {
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(5000) })
      const text = await response.text()
      if (response.status !== 200 || !text.includes("herd_requests_total")) failures.push(`HTTP ${response.status}`)
      bytes = text.length
      scrapes++
    } catch (error) {
      failures.push(error instanceof Error ? error.message : String(error))
    }
  }
  void scrape()
  const timer = setInterval(() => void scrape(), 1000)
  return {
    stop: () => {
      clearInterval(timer)
      return { scrapes, failures, bytes }
    }
  }
}

/** Nanoseconds to publish one reply-latency observation, the fastest of a few passes of 200,000. */
const publishNsPerObservation = (): number => {
  const stats = new Metrics.ServerStats("bench-publish", 0)
  const publisher = new Metrics.Publisher(stats)
  let best = Infinity
  for (let pass = 0; pass < 5; pass++) {
    for (let i = 0; i < 200_000; i++) stats.replyLatency.observe(0.00002 + (i % 7) * 0.00001)
    const started = performance.now()
    publisher.unsafePublish({ records: 0 }, 0)
    best = Math.min(best, ((performance.now() - started) * 1e6) / 200_000)
  }
  return best
}

interface NoLoadScrapes {
  readonly scrapeCount: number
  /** Each scrape's time end to end, sorted. */
  readonly scrapeMs: ReadonlyArray<number>
  readonly cpuPerScrapeMs: number
}

/**
 * With no load: a scrape end to end, and the server's CPU time per scrape
 * over many (from /proc: what a scrape takes from the server, whatever else
 * the machine runs).
 */
const scrapesWithNoLoad = async (on: Server): Promise<NoLoadScrapes> => {
  const scrapeMs: Array<number> = []
  const scrapeCount = 300
  const onPid = on.child.pid ?? 0
  const cpuBefore = cpuSecondsOf(onPid)
  for (let i = 0; i < scrapeCount; i++) {
    const started = performance.now()
    const response = await fetch(on.metricsUrl ?? "", { signal: AbortSignal.timeout(5000) })
    await response.text()
    scrapeMs.push(performance.now() - started)
  }
  const cpuPerScrapeMs = ((cpuSecondsOf(onPid) - cpuBefore) / scrapeCount) * 1000
  return { scrapeCount, scrapeMs: scrapeMs.sort((a, b) => a - b), cpuPerScrapeMs }
}

export const measureAdminCost = async (options: AdminCostOptions): Promise<AdminCost> => {
  const rounds = options.rounds ?? 4
  const notes: Array<string> = []
  let failed = false
  const load = (target: Target) =>
    options.client.run({
      mode: "iamat",
      target,
      conns: options.conns,
      depth: 16,
      warmupMs: options.warmupMs,
      durationMs: options.durationMs
    })
  const offRuns: Array<LoadResult> = []
  const onRuns: Array<LoadResult> = []
  const cpu = { off: { seconds: 0, requests: 0 }, on: { seconds: 0, requests: 0 } }
  const measured = async (which: "off" | "on", server: Server): Promise<LoadResult> => {
    const pid = server.child.pid ?? 0
    const before = cpuSecondsOf(pid)
    const result = await load(server.target)
    cpu[which].seconds += cpuSecondsOf(pid) - before
    cpu[which].requests += result.completed
    return result
  }
  let scrapes = 0
  let scrapeBytes = 0
  const measureOff = async (round: number, off: Server) => {
    options.progress(`admin: IAMAT depth 16, round ${round} of ${rounds}: metrics off`)
    offRuns.push(await measured("off", off))
  }
  const measureOn = async (round: number, on: Server) => {
    options.progress(`admin: IAMAT depth 16, round ${round} of ${rounds}: metrics on, scraped every second`)
    const scraper = scrapeEverySecond(on.metricsUrl ?? "")
    onRuns.push(await measured("on", on))
    const scraped = scraper.stop()
    scrapes += scraped.scrapes
    scrapeBytes = scraped.bytes
    if (scraped.failures.length > 0) {
      failed = true
      notes.push(`admin: ${scraped.failures.length} scrapes failed: ${scraped.failures.slice(0, 3).join("; ")}`)
    }
  }
  // A fresh pair of servers each round: two processes of one build can
  // differ by a few percent for as long as they run (what the JIT made of
  // them, where their memory lies), which more rounds of the same pair do
  // not average out. The last round's "on" server also answers the scrapes
  // with no load.
  let noLoad: NoLoadScrapes | undefined
  for (let round = 1; round <= rounds; round++) {
    options.progress(`admin: round ${round} of ${rounds}: starting herd serve without and with its admin endpoint`)
    const off = await startServer(`admin-off-${round}`, options.dir, false)
    const on = await startServer(`admin-on-${round}`, options.dir, true).catch(async (error: unknown) => {
      await off.stop()
      throw error
    })
    try {
      if (round % 2 === 1) {
        await measureOff(round, off)
        await measureOn(round, on)
      } else {
        await measureOn(round, on)
        await measureOff(round, off)
      }
      if (round === rounds) noLoad = await scrapesWithNoLoad(on)
    } finally {
      await Promise.all([off.stop(), on.stop()])
    }
  }
  if (noLoad === undefined) throw new Error("admin: no rounds measured")
  const { scrapeCount, scrapeMs, cpuPerScrapeMs } = noLoad
  for (const [name, runs] of [["off", offRuns], ["on", onRuns]] as const) {
    for (const run of runs) {
      if (run.errors.total > 0) {
        failed = true
        notes.push(`admin ${name}: ${run.errors.examples.slice(0, 3).join("; ")}`)
      }
    }
  }
  const sum = (runs: ReadonlyArray<LoadResult>) => runs.reduce((total, run) => total + run.rps, 0)
  const ratio = sum(onRuns) / sum(offRuns)
  const ratios = onRuns.map((run, i) => run.rps / (offRuns[i]?.rps ?? NaN)).sort((a, b) => a - b)
  const usPerRequest = (which: "off" | "on") => (cpu[which].seconds / cpu[which].requests) * 1e6
  const publishNs = publishNsPerObservation()
  // One observation a reply; a scrape a second; against the server's own CPU per request.
  const estimated = (publishNs / 1000) / usPerRequest("off") + cpuPerScrapeMs / 1000 / (sum(onRuns) / onRuns.length * usPerRequest("off") / 1e6)
  return {
    lines: [
      `metrics cost (bench/admin.ts: herd serve without and with its admin endpoint, memory store, no wire log, a fresh pair each round; /metrics scraped every second; ` +
      `IAMAT depth 16, ${options.conns} connections, ${rounds} rounds, off and on in turn):`,
      `  off: ${offRuns.map((run) => grouped(run.rps)).join(", ")} req/s`,
      `  on:  ${onRuns.map((run) => grouped(run.rps)).join(", ")} req/s (${scrapes} scrapes of ${grouped(scrapeBytes)} bytes)`,
      `  on / off: ${ratio.toFixed(3)}× (${((1 - ratio) * 100).toFixed(1)}% cost; the bound is 5%); ` +
      `rounds' ratios ${ratios.map((r) => r.toFixed(3)).join(", ")}, median ${median(ratios).toFixed(3)}×`,
      `  server CPU per request (warm-up included): off ${usPerRequest("off").toFixed(2)} µs, on ${usPerRequest("on").toFixed(2)} µs: ` +
      `on / off ${(usPerRequest("on") / usPerRequest("off")).toFixed(3)}×`,
      `  a scrape with no load: ${cpuPerScrapeMs.toFixed(2)} ms of the server's CPU (over ${scrapeCount}), ` +
      `end to end median ${(scrapeMs[scrapeCount / 2] ?? NaN).toFixed(2)} ms, max ${(scrapeMs.at(-1) ?? NaN).toFixed(2)} ms: ` +
      `scraped once a second, ${(cpuPerScrapeMs / 10).toFixed(2)}% of a core; every 15 s, ${(cpuPerScrapeMs / 150).toFixed(3)}%`,
      `  publishing a histogram observation: ${publishNs.toFixed(0)} ns (fastest of 5 passes of 200,000, in-process); ` +
      `from its parts (one a reply, a scrape a second, at the mean rate above and the off server's CPU per request), ` +
      `metrics cost ${(estimated * 100).toFixed(2)}% of the server's CPU`
    ],
    notes,
    failed
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const argument = (name: string, fallback: number) => {
    const at = process.argv.indexOf(`--${name}`)
    const value = at < 0 ? undefined : Number(process.argv[at + 1])
    return value !== undefined && Number.isFinite(value) ? value : fallback
  }
  const dir = mkdtempSync(join(tmpdir(), "herd-bench-admin-"))
  const client = LoadClient.start(2)
  const started = performance.now()
  try {
    const cost = await measureAdminCost({
      client,
      conns: 50,
      warmupMs: 1000,
      durationMs: argument("duration", 5) * 1000,
      rounds: argument("rounds", 3),
      dir,
      progress: (message) =>
        process.stderr.write(`bench [${((performance.now() - started) / 1000).toFixed(1)} s]: ${message}\n`)
    })
    console.log([...cost.lines, ...cost.notes].join("\n"))
    if (cost.failed) process.exitCode = 1
  } finally {
    await client.close()
    rmSync(dir, { recursive: true, force: true })
  }
}
