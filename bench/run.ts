/**
 * `npm run bench`: starts the servers it measures, measures, prints a table.
 *
 *   IAMAT and WHATSAT (offline provider) throughput and latency, 50
 *   connections at depth 1 and 16, each next to the baseline (bench/baseline.ts,
 *   the Node loop's own ceiling) measured in the same minute with the same
 *   client (bench/client.ts); 3-hop propagation in the default herd; RSS per
 *   stored client after 1,000,000 distinct IAMATs; the gazetteer's load time
 *   and memory. IAMAT at 50 connections and depth 16 beside the hand-tuned
 *   raw herd (../shared/tools/raw-herd, or HERD_RAW_HERD), with the event
 *   log's wire lines off and in full, in turn in the same minutes (issue 19:
 *   wire "off" at least 0.8x the raw herd), driven by loadgen (built as its
 *   README says, into /tmp/loadgen, or HERD_LOADGEN) with its default 2
 *   threads and with 1, or by the bench's client if it is not built.
 *
 *   npm run bench -- [--duration 5] [--warmup 1] [--conns 50] [--threads 2]
 *                    [--clients 1000000] [--samples 200]
 *
 * (or BENCH_DURATION, BENCH_WARMUP, BENCH_CONNS, BENCH_THREADS, BENCH_CLIENTS,
 * BENCH_SAMPLES). Progress goes to stderr, the table to stdout. Every server
 * runs in its own process, logs to a temporary directory (logging is part of
 * what is measured), and is stopped with SIGINT at the end, whatever happens.
 */
import { execFile, execFileSync, spawn } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs"
import { createConnection, createServer } from "node:net"
import type { AddressInfo, Socket } from "node:net"
import { cpus, loadavg, tmpdir } from "node:os"
import { join } from "node:path"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import defaultHerd from "../herd.config.ts"
import { measureAdminCost } from "./admin.ts"
import { LoadClient } from "./client.ts"
import { cpuSecondsOf, grouped, median, memoryOf, mib, sleep } from "./figures.ts"
import { measureCatchUp } from "./catchup.ts"
import { runDurableBench } from "./durable.ts"
import type { LoadOptions, LoadResult, Target } from "./client.ts"

const root = fileURLToPath(new URL("..", import.meta.url))
const herdBin = join(root, "packages/cli/bin/herd.mjs")
const baselineScript = join(root, "bench/baseline.ts")
const gazetteerScript = join(root, "packages/places/scripts/measure-gazetteer.ts")
const hotpathScript = join(root, "packages/server/scripts/hotpath.ts")
/** The hand-tuned herd of ../shared/tools, the ceiling a Node herd is measured against. */
const rawHerdScript = process.env["HERD_RAW_HERD"] ?? join(root, "../shared/tools/raw-herd/raw-herd.mjs")
/** loadgen, built where its README builds it (or HERD_LOADGEN): the raw-herd comparison's measure when present. */
const loadgenBinary = process.env["HERD_LOADGEN"] ?? "/tmp/loadgen/release/loadgen"

// ---------------------------------------------------------------------------
// Options

interface Options {
  readonly durationS: number
  readonly warmupS: number
  readonly conns: number
  readonly threads: number
  readonly clients: number
  readonly samples: number
}

const usage = "usage: npm run bench -- [--duration S] [--warmup S] [--conns N] [--threads N] [--clients N] [--samples N]"

const parseOptions = (argv: ReadonlyArray<string>): Options => {
  const values = new Map<string, string>()
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? ""
    if (arg === "--help" || arg === "-h") {
      console.log(usage)
      process.exit(0)
    }
    const match = /^--([a-z]+)(?:=(.*))?$/.exec(arg)
    const value = match?.[2] ?? argv[++i]
    if (match === null || value === undefined) throw new Error(`bad argument ${JSON.stringify(arg)}\n${usage}`)
    values.set(match[1] ?? "", value)
  }
  const number = (name: string, fallback: number, min: number): number => {
    const text = values.get(name) ?? process.env[`BENCH_${name.toUpperCase()}`]
    values.delete(name)
    const value = text === undefined ? fallback : Number(text)
    if (!Number.isFinite(value) || value < min) throw new Error(`--${name} must be a number >= ${min}\n${usage}`)
    return value
  }
  const options = {
    durationS: number("duration", 5, 0.1),
    warmupS: number("warmup", 1, 0),
    conns: Math.floor(number("conns", 50, 1)),
    threads: Math.floor(number("threads", 2, 1)),
    clients: Math.floor(number("clients", 1_000_000, 1)),
    samples: Math.floor(number("samples", 200, 1))
  }
  const unknown = [...values.keys()]
  if (unknown.length > 0) throw new Error(`unknown option --${unknown[0]}\n${usage}`)
  return options
}

// ---------------------------------------------------------------------------
// Child processes and the temporary directory, cleaned up whatever happens

const benchStarted = performance.now()
const progress = (message: string): void => {
  process.stderr.write(`bench [${((performance.now() - benchStarted) / 1000).toFixed(1)} s]: ${message}\n`)
}

const children = new Set<Child>()

class Child {
  readonly process: ChildProcess
  readonly lines: Array<string> = []
  private stderr = ""
  private exitCode: number | null | undefined
  private readonly exited: Promise<number | null>
  private listeners: Array<() => void> = []
  private stopping = false
  private signal: NodeJS.Signals | null = null

  constructor(
    readonly label: string,
    args: ReadonlyArray<string>,
    env: NodeJS.ProcessEnv = process.env,
    private readonly oneShot = false
  ) {
    this.process = spawn(process.execPath, args, { cwd: root, env, stdio: ["ignore", "pipe", "pipe"] })
    children.add(this)
    this.exited = new Promise((resolve) => {
      this.process.on("exit", (code, signal) => {
        this.exitCode = code ?? (signal === null ? null : -1)
        this.signal = signal
        children.delete(this)
        if (!this.stopping && !this.oneShot) progress(`${label} exited unexpectedly (${code ?? signal}):\n${this.output()}`)
        resolve(this.exitCode)
        this.notify()
      })
      this.process.on("error", (error) => {
        this.stderr += String(error)
        this.exitCode = -1
        children.delete(this)
        resolve(-1)
        this.notify()
      })
    })
    if (this.process.stdout !== null) {
      createInterface({ input: this.process.stdout }).on("line", (line) => {
        this.lines.push(line)
        this.notify()
      })
    }
    this.process.stderr?.on("data", (chunk: Buffer) => {
      this.stderr = (this.stderr + chunk.toString()).slice(-4000)
    })
  }

  /** Fails if the process is gone (it should not be, until `stop`). */
  assertRunning(): void {
    if (this.exitCode !== undefined) {
      throw new Error(`${this.label} is not running any more (exit ${this.exitCode ?? "?"}${this.signal === null ? "" : `, ${this.signal}`})`)
    }
  }

  get pid(): number {
    return this.process.pid ?? -1
  }

  private notify(): void {
    for (const listener of this.listeners) listener()
  }

  /** Waits until `count` stdout lines match `pattern`; fails if the process exits or time runs out. */
  waitFor(pattern: RegExp, count = 1, timeoutMs = 30_000): Promise<Array<RegExpMatchArray>> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const matches = this.lines.map((line) => pattern.exec(line)).filter((m): m is RegExpExecArray => m !== null)
        if (matches.length >= count) done(() => resolve(matches))
        else if (this.exitCode !== undefined) {
          done(() => reject(new Error(`${this.label} exited (${this.exitCode}) before ${pattern}:\n${this.output()}`)))
        }
      }
      const timer = setTimeout(
        () => done(() => reject(new Error(`${this.label}: no ${pattern} within ${timeoutMs} ms:\n${this.output()}`))),
        timeoutMs
      )
      const done = (settle: () => void): void => {
        clearTimeout(timer)
        this.listeners = this.listeners.filter((listener) => listener !== check)
        settle()
      }
      this.listeners.push(check)
      check()
    })
  }

  output(): string {
    return [...this.lines.slice(-20), this.stderr.trim()].filter((s) => s !== "").join("\n")
  }

  /** Runs to its end (for a one-shot script). */
  async finished(timeoutMs: number): Promise<number | null> {
    const timer = setTimeout(() => this.process.kill("SIGKILL"), timeoutMs)
    const code = await this.exited
    clearTimeout(timer)
    return code
  }

  /** SIGINT (the servers stop cleanly and exit 0), then SIGKILL if it takes too long. */
  async stop(timeoutMs = 30_000): Promise<number | null> {
    this.stopping = true
    if (this.exitCode === undefined) this.process.kill("SIGINT")
    const timer = setTimeout(() => this.process.kill("SIGKILL"), timeoutMs)
    const code = await this.exited
    clearTimeout(timer)
    if (code !== 0) progress(`${this.label} exited with ${code ?? "?"}${this.signal === null ? "" : ` (${this.signal})`}:\n${this.output()}`)
    return code
  }
}

const tmp = mkdtempSync(join(tmpdir(), "herd-bench-"))
let cleaning: Promise<void> | undefined
/** Stops every server still running and removes the temporary directory (once, however often called). */
const cleanup = (): Promise<void> =>
  cleaning ??= Promise.all([...children].map((child) => child.stop(10_000))).then(() => {
    rmSync(tmp, { recursive: true, force: true })
  })
let interrupted = false
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    interrupted = true
    progress(`${signal}: stopping the servers`)
    void cleanup().finally(() => process.exit(130))
  })
}

/** Free loopback ports, for a herd whose links need every port in advance. */
const freePorts = async (count: number): Promise<Array<number>> => {
  const servers = Array.from({ length: count }, () => createServer())
  const ports = await Promise.all(servers.map((server) =>
    new Promise<number>((resolve, reject) => {
      server.once("error", reject)
      server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port))
    })
  ))
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))))
  return ports
}

/** The children's environment: the offline provider, whatever the caller's shell says. */
const childEnv = (): NodeJS.ProcessEnv => {
  const env = { ...process.env }
  delete env["HERD_PLACES_API_KEY"]
  delete env["HERD_PLACES_PROVIDER"]
  return env
}

interface Herd {
  readonly child: Child
  readonly logDir: string
  readonly address: (name: string) => Target
}

/**
 * Runs `herd serve <name>` (one server) or `herd up` (all of them) on a config
 * written into the temporary directory, and waits until every server listens.
 */
const startHerd = async (
  label: string,
  servers: Record<string, number>,
  links: ReadonlyArray<readonly [string, string]>,
  serve?: string,
  extra: Record<string, unknown> = {}
): Promise<Herd> => {
  const dir = join(tmp, label)
  mkdirSync(dir, { recursive: true })
  const logDir = join(dir, "logs")
  const config = {
    servers: Object.fromEntries(Object.entries(servers).map(([name, port]) => [name, { host: "127.0.0.1", port }])),
    links,
    places: { provider: "offline" },
    logDir,
    dataDir: join(dir, "data"),
    ...extra
  }
  const configPath = join(dir, "herd.config.json")
  writeFileSync(configPath, JSON.stringify(config, null, 2))
  const command = serve === undefined ? ["up"] : ["serve", serve]
  const child = new Child(label, [herdBin, ...command, "--config", configPath], childEnv())
  const names = serve === undefined ? Object.keys(servers) : [serve]
  const matches = await child.waitFor(/^(\S+) listening on (\S+):(\d+)$/, names.length)
  const addresses = new Map(matches.map((m) => [m[1] ?? "", { host: m[2] ?? "", port: Number(m[3]) }]))
  return {
    child,
    logDir,
    address: (name) => {
      const address = addresses.get(name)
      if (address === undefined) throw new Error(`${label}: ${name} is not listening`)
      return address
    }
  }
}

const startBaseline = async (): Promise<{ child: Child; address: Target }> => {
  const child = new Child("baseline", ["--import", "tsx", baselineScript])
  const [match] = await child.waitFor(/^Baseline listening on (\S+):(\d+)$/)
  return { child, address: { host: match?.[1] ?? "127.0.0.1", port: Number(match?.[2]) } }
}

const startRawHerd = async (): Promise<{ child: Child; address: Target }> => {
  const child = new Child("raw-herd", [rawHerdScript, "--name", "Alford", "--port", "0"], childEnv())
  const [match] = await child.waitFor(/^raw-herd \S+ listening on (\S+):(\d+) /)
  return { child, address: { host: match?.[1] ?? "127.0.0.1", port: Number(match?.[2]) } }
}

// ---------------------------------------------------------------------------
// A line client with one request in flight, for the propagation probe

class LineClient {
  private buffer = ""
  private waiting: (() => void) | undefined
  private closed = false

  private constructor(private readonly socket: Socket) {
    socket.setEncoding("latin1")
    socket.on("data", (chunk: string) => {
      this.buffer += chunk
      this.waiting?.()
    })
    socket.on("close", () => {
      this.closed = true
      this.waiting?.()
    })
    socket.on("error", () => {})
  }

  static connect(target: Target): Promise<LineClient> {
    return new Promise((resolve, reject) => {
      const socket = createConnection(target, () => {
        socket.off("error", reject)
        socket.setNoDelay(true)
        resolve(new LineClient(socket))
      })
      socket.once("error", reject)
    })
  }

  /** Sends one line and reads its reply: one line, or for WHATSAT an AT line and a body up to an empty line. */
  request(line: string, timeoutMs = 5000): Promise<string> {
    const whatsat = line.startsWith("WHATSAT ")
    this.socket.write(`${line}\n`, "latin1")
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => finish(new Error(`no reply to ${JSON.stringify(line)} within ${timeoutMs} ms`)), timeoutMs)
      const finish = (result: string | Error): void => {
        clearTimeout(timer)
        this.waiting = undefined
        if (typeof result === "string") resolve(result)
        else reject(result)
      }
      const check = (): void => {
        const nl = this.buffer.indexOf("\n")
        if (nl >= 0) {
          const end = !whatsat || this.buffer.startsWith("? ") ? nl : this.buffer.indexOf("\n\n", nl)
          if (end >= 0) {
            const reply = this.buffer.slice(0, end)
            this.buffer = this.buffer.slice(end + (end === nl ? 1 : 2))
            return finish(reply)
          }
        }
        if (this.closed) finish(new Error(`connection closed before the reply to ${JSON.stringify(line)}`))
      }
      this.waiting = check
      check()
    })
  }

  close(): void {
    this.socket.destroy()
  }
}

// ---------------------------------------------------------------------------
// Measurements

const nonce = Math.random().toString(36).slice(2, 8)
const clientTime = (): string => {
  const ms = performance.timeOrigin + performance.now()
  const seconds = Math.floor(ms / 1000)
  return `${seconds}.${String(Math.floor((ms - seconds * 1000) * 1e6)).padStart(9, "0")}`
}

interface Propagation {
  readonly samples: number
  readonly found: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly maxMs: number
  readonly meanPolls: number
  readonly errors: Array<string>
}

/**
 * For each sample, a fresh client id: poll `to` with `WHATSAT <id> 1 1`, one
 * request in flight; once the first `?` came back, send the IAMAT to `from`
 * (the clock starts just before that write) and keep polling until the reply
 * is not `? ...`. Includes up to one poll round trip of detection lag.
 * `pass` names the run in the ids, so that two runs never share a client.
 */
const measurePropagation = async (
  from: Target,
  to: Target,
  origin: string,
  samples: number,
  warmup: number,
  pass: string
): Promise<Propagation> => {
  const source = await LineClient.connect(from)
  const poller = await LineClient.connect(to)
  const latencies: Array<number> = []
  const errors: Array<string> = []
  let polls = 0
  try {
    for (let i = -warmup; i < samples; i++) {
      const id = `prop-${nonce}-${pass}-${i + warmup}`
      const fields = `${id} +34.068930-118.445127 ${clientTime()}`
      let started: number | undefined
      let originReply: Promise<string> | undefined
      let samplePolls = 0
      const deadline = performance.now() + 5000
      for (;;) {
        const reply = await poller.request(`WHATSAT ${id} 1 1`)
        samplePolls++
        if (!reply.startsWith("? ")) {
          if (started === undefined) errors.push(`known before its IAMAT: ${reply.slice(0, 80)}`)
          else if (i >= 0) latencies.push(performance.now() - started)
          if (!reply.startsWith(`AT ${origin} `) || !reply.includes(` ${id} `)) errors.push(`unexpected WHATSAT reply: ${reply.slice(0, 120)}`)
          break
        }
        if (started === undefined) {
          started = performance.now()
          originReply = source.request(`IAMAT ${fields}`)
        }
        if (performance.now() > deadline) {
          errors.push(`${id}: not visible after 5 s`)
          break
        }
      }
      const at = await originReply
      if (at !== undefined && !(at.startsWith(`AT ${origin} `) && at.endsWith(` ${fields}`))) errors.push(`bad IAMAT reply: ${at}`)
      if (i >= 0) polls += samplePolls
      await sleep(20)
    }
  } finally {
    source.close()
    poller.close()
  }
  const sorted = [...latencies].sort((a, b) => a - b)
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? NaN
  return {
    samples,
    found: sorted.length,
    p50Ms: at(0.5),
    p99Ms: at(0.99),
    maxMs: sorted[sorted.length - 1] ?? NaN,
    meanPolls: polls / samples,
    errors
  }
}

const directoryBytes = (dir: string): number =>
  existsSync(dir) ? readdirSync(dir).reduce((sum, name) => sum + statSync(join(dir, name)).size, 0) : 0

interface MemoryResult {
  readonly clients: number
  readonly emptyRss: number
  readonly fullRss: number
  readonly fullPeak: number
  readonly fill: LoadResult
  readonly logBytes: number
}

/** One server's runs of the raw-herd comparison: req/s, and its CPU µs per request, by round. */
interface RawHerdRuns {
  readonly label: string
  readonly rps: Array<number>
  readonly cpuUsPerRequest: Array<number>
}

/** One IAMAT run at depth 16 of the raw-herd comparison: req/s in the window, replies in all (warm-up too), what went wrong. */
interface DriverRun {
  readonly rps: number
  readonly replies: number
  readonly errors: ReadonlyArray<string>
}

/** What puts the load on the servers of the raw-herd comparison. */
interface IamatDriver {
  readonly label: string
  readonly run: (target: Target, warmupMs: number, durationMs: number) => Promise<DriverRun>
}

/** The bench's own client (bench/client.ts): the comparison's driver when loadgen is not built. */
const benchClientDriver = (client: LoadClient, options: Options): IamatDriver => ({
  label: `the bench's client, ${options.threads} worker threads`,
  run: async (target, warmupMs, durationMs) => {
    const result = await client.run({ mode: "iamat", target, conns: options.conns, depth: 16, warmupMs, durationMs })
    return { rps: result.rps, replies: result.ok, errors: result.errors.total > 0 ? result.errors.examples.slice(0, 3) : [] }
  }
})

/**
 * `loadgen iamat` (../shared/tools/loadgen), the measure the raw herd's
 * README names: with its default 2 threads, the client shares the two cores
 * with the server (BASELINE.md names no thread count, so presumably as in
 * its figures); with 1, the server under test has a core to itself, and the
 * ratio is that of the two servers' own costs.
 */
const loadgenDriver = (binary: string, options: Options, threads: number): IamatDriver => ({
  label: `loadgen, ${threads} thread${threads === 1 ? "" : "s"}`,
  run: (target, warmupMs, durationMs) =>
    new Promise((resolve) => {
      const args = [
        "iamat", "--target", `${target.host}:${target.port}`, "--conns", String(options.conns), "--threads", String(threads),
        "--depth", "16", "--warmup", String(warmupMs / 1000), "--duration", String(durationMs / 1000)
      ]
      execFile(binary, args, { timeout: warmupMs + durationMs + 30_000 }, (error, stdout, stderr) => {
        // Its last line is one JSON object; exit 1 means errors were seen, and they are in it too.
        const json = stdout.split("\n").filter((line) => line.startsWith("{")).at(-1)
        if (json === undefined) {
          resolve({ rps: NaN, replies: 0, errors: [`loadgen: ${error?.message ?? "no summary"} ${stderr.trim()}`] })
          return
        }
        const summary = JSON.parse(json) as {
          readonly throughput_rps: number
          readonly ok: number
          readonly errors: { readonly total: number; readonly examples: ReadonlyArray<string> }
        }
        resolve({
          rps: summary.throughput_rps,
          replies: summary.ok,
          errors: summary.errors.total > 0 ? summary.errors.examples.slice(0, 3) : []
        })
      })
    })
})

/**
 * IAMAT at `conns` connections and depth 16 against the raw herd, a herd
 * server whose event log keeps no wire line (`log.wire: "off"`) and one
 * that keeps them all (`"full"`, the default), `rounds` times in turn for
 * each driver, the order rotating so that a drift of the machine's load
 * falls on each; the memory store in both herd servers, as the raw herd
 * keeps a Map. Throughput swings on a shared machine; each server's CPU time
 * per request (from /proc, over each run, warm-up included) swings less,
 * and is given beside it.
 */
const measureAgainstRawHerd = async (
  drivers: ReadonlyArray<IamatDriver>,
  options: Options,
  rounds: number
): Promise<{ readonly byDriver: ReadonlyArray<{ readonly driver: string; readonly runs: ReadonlyArray<RawHerdRuns> }>; readonly notes: ReadonlyArray<string> }> => {
  const notes: Array<string> = []
  const raw = await startRawHerd()
  const wireOff = await startHerd("wire-off", { Alford: 0 }, [], "Alford", { store: { kind: "memory" }, log: { wire: "off" } })
  const wireFull = await startHerd("wire-full", { Alford: 0 }, [], "Alford", { store: { kind: "memory" }, log: { wire: "full" } })
  const servers = [
    { label: "raw-herd", child: raw.child, target: raw.address },
    { label: "herd, wire off", child: wireOff.child, target: wireOff.address("Alford") },
    { label: "herd, wire full", child: wireFull.child, target: wireFull.address("Alford") }
  ]
  const byDriver: Array<{ driver: string; runs: Array<RawHerdRuns> }> = []
  try {
    for (const driver of drivers) {
      const runs = servers.map((server): RawHerdRuns => ({ label: server.label, rps: [], cpuUsPerRequest: [] }))
      byDriver.push({ driver: driver.label, runs })
      // Each warmed up first (the JIT, and a herd server's gazetteer loading after it listens): not counted.
      for (const server of servers) await driver.run(server.target, 0, 1000)
      for (let round = 0; round < rounds; round++) {
        for (let turn = 0; turn < servers.length; turn++) {
          const index = (round + turn) % servers.length
          const server = servers[index]
          const serverRuns = runs[index]
          if (server === undefined || serverRuns === undefined) continue
          progress(`IAMAT depth 16 beside the raw herd (${driver.label}), round ${round + 1} of ${rounds}: ${server.label}`)
          const cpuBefore = cpuSecondsOf(server.child.pid)
          const result = await driver.run(server.target, options.warmupS * 1000, options.durationS * 1000)
          const cpuSeconds = cpuSecondsOf(server.child.pid) - cpuBefore
          server.child.assertRunning()
          serverRuns.rps.push(result.rps)
          serverRuns.cpuUsPerRequest.push(result.replies > 0 ? (cpuSeconds * 1e6) / result.replies : NaN)
          if (result.errors.length > 0) notes.push(`beside the raw herd (${driver.label}), ${server.label}: ${result.errors.join("; ")}`)
        }
      }
    }
  } finally {
    await Promise.all(servers.map((server) => server.child.stop()))
  }
  return { byDriver, notes }
}

/** The raw-herd comparison's lines for one driver: medians, and each herd server's ratio to the raw herd. */
const rawHerdTable = (driver: string, runs: ReadonlyArray<RawHerdRuns>, rounds: number): Array<string> => {
  const rawRps = median(runs[0]?.rps ?? [])
  const rawCpu = median(runs[0]?.cpuUsPerRequest ?? [])
  const lines = [
    `IAMAT, ${rounds} rounds in turn at depth 16 driven by ${driver}, beside the hand-tuned raw herd`,
    "  (../shared/tools/raw-herd; memory store; medians; issue 19: wire off at least 0.8× the raw herd):"
  ]
  for (const { cpuUsPerRequest, label, rps } of runs) {
    const ratio = label === "raw-herd" ? "" : ` (${(median(rps) / rawRps).toFixed(2)}× the raw herd)`
    const cpuRatio = label === "raw-herd" ? "" : ` (${(median(cpuUsPerRequest) / rawCpu).toFixed(2)}×)`
    lines.push(
      `  ${label.padEnd(16)}${grouped(median(rps)).padStart(10)} req/s${ratio.padEnd(22)}` +
        `server CPU ${median(cpuUsPerRequest).toFixed(1)} µs a request${cpuRatio}; ` +
        `rounds ${rps.map((value) => grouped(value)).join(", ")}`
    )
  }
  return lines
}

interface Gazetteer {
  readonly fields: Map<string, string>
  readonly error?: string
}

/** The gazetteer's own script, in a fresh process (the module loads once per process). */
const measureGazetteer = async (): Promise<Gazetteer> => {
  if (!existsSync(gazetteerScript)) return { fields: new Map(), error: `${gazetteerScript} not found` }
  const child = new Child("measure-gazetteer", ["--expose-gc", "--conditions=@herd/source", "--import", "tsx", gazetteerScript], childEnv(), true)
  const code = await child.finished(60_000)
  const fields = new Map<string, string>()
  for (const line of child.lines) {
    const match = /^([^:]+):\s+(.*)$/.exec(line)
    if (match !== null) fields.set((match[1] ?? "").trim(), (match[2] ?? "").trim())
  }
  return code === 0 ? { fields } : { fields, error: `exit ${code}: ${child.output()}` }
}

/**
 * What a byte costs in lines of about 8,000 bytes of hostile shapes, beside a
 * normal report, fed to a connection in-process (hotpath.ts --shapes): the
 * table as that script prints it.
 */
const measureLineShapes = async (): Promise<{ lines: ReadonlyArray<string>; error?: string }> => {
  const child = new Child("line shapes", ["--conditions=@herd/source", "--import", "tsx", hotpathScript, "--shapes", "--passes", "10"], childEnv(), true)
  const code = await child.finished(120_000)
  return code === 0 ? { lines: child.lines } : { lines: [], error: `exit ${code}: ${child.output()}` }
}

// ---------------------------------------------------------------------------
// The table

const ms = (us: number): string => (us < 10_000 ? (us / 1000).toFixed(2) : (us / 1000).toFixed(1))
const pad = (cells: ReadonlyArray<string>, widths: ReadonlyArray<number>): string =>
  cells.map((cell, i) => (i < 2 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join("  ").trimEnd()

const errorText = (result: LoadResult): string =>
  result.errors.total === 0 ? "0" : `${result.errors.total} (${Object.entries(result.errors.byKind).map(([k, n]) => `${k} ${n}`).join(", ")})`

interface Case {
  readonly label: string
  readonly herd: LoadResult
  readonly baseline: LoadResult
}

const throughputTable = (cases: ReadonlyArray<Case>): Array<string> => {
  const header = ["case", "server", "req/s", "p50 ms", "p99 ms", "errors", "client cores", "client µs/req", "vs baseline"]
  const rows: Array<Array<string>> = []
  for (const { label, herd, baseline } of cases) {
    for (const [name, result] of [["herd", herd], ["baseline", baseline]] as const) {
      rows.push([
        name === "herd" ? label : "",
        name,
        grouped(result.rps),
        ms(result.latency.p50Us),
        ms(result.latency.p99Us),
        errorText(result),
        result.clientCores.toFixed(2),
        result.clientUsPerRequest.toFixed(1),
        name === "herd" ? `${(herd.rps / baseline.rps).toFixed(3)}×` : ""
      ])
    }
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? "").length)))
  return [pad(header, widths), ...rows.map((row) => pad(row, widths))]
}

// ---------------------------------------------------------------------------
// The run

const main = async (): Promise<void> => {
  const options = parseOptions(process.argv.slice(2))
  const client = LoadClient.start(options.threads)
  const durationMs = options.durationS * 1000
  const warmupMs = options.warmupS * 1000
  const out: Array<string> = []
  const notes: Array<string> = []
  // The machine may be shared: a high load average before the run makes every figure suspect.
  const loadBefore = loadavg()[0] ?? 0
  let failed = false
  try {
    // 1. Throughput: one herd server (`herd serve`, no neighbours) and the baseline, each in its own process.
    progress("starting one herd server and the baseline")
    const single = await startHerd("single", { Alford: 0 }, [], "Alford")
    const baseline = await startBaseline()
    const herdTarget = single.address("Alford")
    // The gazetteer loads in the background after listening: a WHATSAT waits for it.
    await client.run({ mode: "whatsat", target: herdTarget, conns: 1, depth: 1, warmupMs: 0, durationMs: 500, ids: 1 })

    const cases: Array<Case> = []
    for (const mode of ["iamat", "whatsat"] as const) {
      for (const depth of [1, 16]) {
        const label = `${mode.toUpperCase()} depth ${depth}`
        const load = (target: Target): LoadOptions => ({ mode, target, conns: options.conns, depth, warmupMs, durationMs })
        progress(`${label}: herd`)
        const herd = await client.run(load(herdTarget))
        progress(`${label}: baseline`)
        const base = await client.run(load(baseline.address))
        single.child.assertRunning()
        baseline.child.assertRunning()
        cases.push({ label, herd, baseline: base })
        for (const [name, result] of [["herd", herd], ["baseline", base]] as const) {
          failed ||= result.errors.total > 0
          if (result.errors.total > 0) notes.push(`${label} ${name}: ${result.errors.examples.slice(0, 3).join("; ")}`)
          if (result.connected < result.conns) notes.push(`${label} ${name}: only ${result.connected} of ${result.conns} connected`)
        }
      }
    }
    await Promise.all([single.child.stop(), baseline.child.stop()])

    // 1b. IAMAT depth 16 beside the hand-tuned raw herd: the herd with its wire log off and in full.
    const rawHerdRounds = 5
    const rawHerdDrivers = existsSync(loadgenBinary)
      ? [loadgenDriver(loadgenBinary, options, 2), loadgenDriver(loadgenBinary, options, 1)]
      : [benchClientDriver(client, options)]
    const againstRawHerd = existsSync(rawHerdScript) ? await measureAgainstRawHerd(rawHerdDrivers, options, rawHerdRounds) : undefined
    if (againstRawHerd !== undefined) {
      failed ||= againstRawHerd.notes.length > 0
      notes.push(...againstRawHerd.notes)
    }

    // 2. Propagation across three hops of the default herd.
    progress(`propagation: the default herd (herd up), ${options.samples} samples`)
    const names = Object.keys(defaultHerd.servers)
    const ports = await freePorts(names.length)
    const links = defaultHerd.links ?? []
    const herd = await startHerd("herd", Object.fromEntries(names.map((name, i) => [name, ports[i] ?? 0])), links)
    await herd.child.waitFor(/^\S+ -> \S+ up /, links.length * 2, 15_000)
    // Twice in the same process: the first pass meets code the JIT has not
    // optimised yet (a fresh herd is measurably slower), the second does not.
    const propagation = await measurePropagation(herd.address("Alford"), herd.address("Hamilton"), "Alford", options.samples, 5, "a")
    const warmPropagation = await measurePropagation(herd.address("Alford"), herd.address("Hamilton"), "Alford", options.samples, 0, "b")
    for (const pass of [propagation, warmPropagation]) {
      failed ||= pass.errors.length > 0
      for (const error of pass.errors.slice(0, 5)) notes.push(`propagation: ${error}`)
    }
    herd.child.assertRunning()
    await herd.child.stop()

    // 2b. The same over mutual TLS links (certificates by `herd certs`); clients stay plain.
    progress(`propagation over TLS links: the default herd with tls, ${options.samples} samples`)
    const tlsPorts = await freePorts(names.length)
    const tlsServers = Object.fromEntries(names.map((name, i) => [name, tlsPorts[i] ?? 0]))
    const certsDir = join(tmp, "certs")
    const certsConfig = join(tmp, "certs.json")
    writeFileSync(certsConfig, JSON.stringify({ servers: Object.fromEntries(names.map((name) => [name, { host: "127.0.0.1", port: 0 }])) }))
    execFileSync(process.execPath, [herdBin, "certs", "--config", certsConfig, "--out", certsDir], { env: childEnv(), stdio: "ignore" })
    const tlsHerd = await startHerd("herd-tls", tlsServers, links, undefined, { tls: { dir: certsDir } })
    await tlsHerd.child.waitFor(/^\S+ -> \S+ up /, links.length * 2, 15_000)
    const tlsPropagation = await measurePropagation(tlsHerd.address("Alford"), tlsHerd.address("Hamilton"), "Alford", options.samples, 5, "c")
    const warmTlsPropagation = await measurePropagation(tlsHerd.address("Alford"), tlsHerd.address("Hamilton"), "Alford", options.samples, 0, "d")
    for (const pass of [tlsPropagation, warmTlsPropagation]) {
      failed ||= pass.errors.length > 0
      for (const error of pass.errors.slice(0, 5)) notes.push(`propagation over TLS: ${error}`)
    }
    tlsHerd.child.assertRunning()
    await tlsHerd.child.stop()

    // 2c. IAMAT at Alford, which floods every record to Bolden: over a plain link, then over a TLS link
    // (plain clients both times: with tls, each client connection is sniffed once).
    const pairThroughput: Array<{ readonly label: string; readonly result: LoadResult }> = []
    for (const [label, extra] of [["plain link", {}], ["TLS link", { tls: { dir: certsDir } }]] as const) {
      progress(`IAMAT depth 16 at Alford flooding to Bolden over a ${label}`)
      const pairPorts = await freePorts(2)
      const pair = await startHerd(`pair-${label.split(" ")[0]}`, { Alford: pairPorts[0] ?? 0, Bolden: pairPorts[1] ?? 0 }, [["Alford", "Bolden"]], undefined, extra)
      await pair.child.waitFor(/^\S+ -> \S+ up /, 2, 15_000)
      const result = await client.run({ mode: "iamat", target: pair.address("Alford"), conns: options.conns, depth: 16, warmupMs, durationMs })
      failed ||= result.errors.total > 0
      if (result.errors.total > 0) notes.push(`flood over a ${label}: ${result.errors.examples.slice(0, 3).join("; ")}`)
      pair.child.assertRunning()
      await pair.child.stop()
      pairThroughput.push({ label, result })
    }

    // 3. Memory per stored client: a fresh server, warmed up (IAMAT, WHATSAT, gazetteer), then filled.
    progress(`memory: filling a fresh server with ${grouped(options.clients)} distinct clients`)
    const filled = await startHerd("memory", { Alford: 0 }, [], "Alford")
    const fillTarget = filled.address("Alford")
    const warm = { target: fillTarget, conns: options.conns, depth: 16, warmupMs: 0, durationMs: 1000, ids: options.conns } as const
    await client.run({ ...warm, mode: "iamat" })
    await client.run({ ...warm, mode: "whatsat" })
    await sleep(1000)
    filled.child.assertRunning()
    const empty = memoryOf(filled.child.pid)
    const fill = await client.run({
      mode: "iamat",
      target: fillTarget,
      conns: options.conns,
      depth: 16,
      warmupMs: 0,
      durationMs: 600_000,
      unique: true,
      requests: options.clients
    })
    await sleep(1000)
    filled.child.assertRunning()
    const full = memoryOf(filled.child.pid)
    const memory: MemoryResult = {
      clients: options.clients,
      emptyRss: empty.rss,
      fullRss: full.rss,
      fullPeak: full.peak,
      fill,
      logBytes: directoryBytes(filled.logDir)
    }
    failed ||= fill.ok !== options.clients || fill.errors.total > 0
    if (fill.ok !== options.clients) notes.push(`memory fill: ${fill.ok} of ${options.clients} IAMATs answered correctly`)
    if (fill.errors.total > 0) notes.push(`memory fill: ${fill.errors.examples.slice(0, 3).join("; ")}`)
    await filled.child.stop()

    // 4. The gazetteer, in a process of its own.
    progress("gazetteer: measure-gazetteer.ts")
    const gazetteer = await measureGazetteer()

    // 5. The cost of a line by its shape, in-process.
    progress("line shapes: hotpath.ts --shapes")
    const shapes = await measureLineShapes()

    // The durable store: memory vs durable throughput, startup and memory at `clients` (bench/durable.ts).
    const durable = await runDurableBench(client, { ...options, rounds: 3 }, progress)
    failed ||= durable.failures.length > 0
    notes.push(...durable.failures)

    // A link's catch-up at `clients`, full and by checkpoint (bench/catchup.ts).
    progress(`catch-up: ${grouped(options.clients)} clients, full then 100 changed`)
    const catchUp = await measureCatchUp(options.clients, 100)

    // 6. What the admin endpoint (metrics) costs IAMAT throughput: bench/admin.ts.
    const adminCost = await measureAdminCost({ client, conns: options.conns, warmupMs, durationMs, dir: tmp, progress })
    failed ||= adminCost.failed
    notes.push(...adminCost.notes)

    // The table.
    const cores = cpus().length
    out.push("")
    out.push(
      `herd bench: node ${process.version}, ${cores} cores, ${options.conns} connections, ${options.threads} client threads, ` +
        `${options.warmupS} s warm-up + ${options.durationS} s per measurement, load average before ${loadBefore.toFixed(2)}`
    )
    out.push("one `herd serve` process (no neighbours, offline places, logging on) vs bench/baseline.ts, same client, same minute")
    out.push("")
    out.push(...throughputTable(cases))
    out.push("")
    out.push(
      "client cores = the load client's CPU / wall time (it shares the 2 cores with the server under test); " +
        "past about 1 core the client, not the server, sets the pace"
    )
    out.push("")
    out.push(
      ...(againstRawHerd === undefined
        ? [`IAMAT beside the hand-tuned raw herd: not measured (${rawHerdScript} not found; set HERD_RAW_HERD)`]
        : againstRawHerd.byDriver.flatMap(({ driver, runs }) => rawHerdTable(driver, runs, rawHerdRounds)))
    )
    out.push("")
    out.push("3-hop propagation (herd up, default topology; IAMAT at Alford, poll WHATSAT <id> 1 1 at Hamilton):")
    for (const [when, pass] of [["fresh herd", propagation], ["then again", warmPropagation]] as const) {
      out.push(
        `  ${when}: p50 ${pass.p50Ms.toFixed(2)} ms, p99 ${pass.p99Ms.toFixed(2)} ms, max ${pass.maxMs.toFixed(2)} ms ` +
          `(${pass.found}/${pass.samples} samples, ${pass.meanPolls.toFixed(1)} polls per sample)`
      )
    }
    out.push("3-hop propagation over mutual TLS links (the same, with tls: herd certs; clients plain):")
    for (const [when, pass, plain] of [["fresh herd", tlsPropagation, propagation], ["then again", warmTlsPropagation, warmPropagation]] as const) {
      out.push(
        `  ${when}: p50 ${pass.p50Ms.toFixed(2)} ms (${(pass.p50Ms / plain.p50Ms).toFixed(2)}× plain), p99 ${pass.p99Ms.toFixed(2)} ms, ` +
          `max ${pass.maxMs.toFixed(2)} ms (${pass.found}/${pass.samples} samples)`
      )
    }
    const plainPair = pairThroughput[0]?.result.rps ?? NaN
    out.push("IAMAT depth 16 at Alford, each record flooded to Bolden (herd up of two; clients plain):")
    for (const { label, result } of pairThroughput) {
      out.push(`  over a ${label}: ${grouped(result.rps)} req/s (${(result.rps / plainPair).toFixed(2)}× the plain link)`)
    }
    const iamat16Baseline = cases.find((c) => c.label === "IAMAT depth 16")?.baseline.rps ?? NaN
    out.push(`memory per stored client (a fresh herd serve, ${grouped(memory.clients)} distinct IAMATs):`)
    out.push(
      `  ${grouped((memory.fullRss - memory.emptyRss) / memory.clients)} B per client: VmRSS ${mib(memory.emptyRss)} empty after warm-up, ` +
        `${mib(memory.fullRss)} full (peak ${mib(memory.fullPeak)})`
    )
    out.push(
      `  fill: ${grouped(fill.rps)} IAMAT/s (${(fill.rps / iamat16Baseline).toFixed(3)}× the IAMAT depth 16 baseline), ` +
        `errors ${errorText(fill)}, log ${mib(memory.logBytes)}`
    )
    const g = gazetteer.fields
    out.push("gazetteer (packages/places/scripts/measure-gazetteer.ts, in its own process):")
    out.push(
      gazetteer.error === undefined
        ? `  ${grouped(Number(g.get("places")))} places, read + index ${g.get("read + index") ?? "?"}, ` +
          `heap +${g.get("heap used delta") ?? "?"}, RSS +${g.get("RSS delta") ?? "?"}, peak RSS ${g.get("peak RSS") ?? "?"}; ` +
          `query ${g.get("query, UCLA") ?? "?"} (UCLA), ${g.get("query, anywhere") ?? "?"} (anywhere)`
        : `  not measured (${gazetteer.error})`
    )
    out.push("the cost of a line by its shape (packages/server/scripts/hotpath.ts --shapes, in-process, fastest of 10 passes):")
    out.push(...(shapes.error === undefined ? shapes.lines.map((line) => `  ${line}`) : [`  not measured (${shapes.error})`]))
    out.push(...adminCost.lines)
    out.push(...durable.lines)
    out.push(...catchUp)
    if (notes.length > 0) out.push("", "notes:", ...notes.map((note) => `  ${note}`))
  } finally {
    await client.close()
    await cleanup()
  }
  console.log(out.join("\n"))
  if (failed) process.exitCode = 1
}

main().catch(async (error: unknown) => {
  if (!interrupted) console.error(`bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`)
  await cleanup()
  process.exit(interrupted ? 130 : 1)
})
