/**
 * A herd of real `herd serve` processes for the end-to-end checks
 * (scripts/check-catchup.ts, scripts/check-observe.ts): a pinned copy of the
 * bundle, per-server config, data and log directories under one temporary
 * directory, quiet ports below the ephemeral range, readiness by the admin
 * endpoint's `/status`, the link entries of a server's log. Every process
 * and file is removed by the scope's finalizers.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Cause, Clock, Console, Data, Duration, Effect, Exit, Option, Schema } from "effect"
import type { Scope } from "effect"
import { type ChildProcess, spawn, spawnSync } from "node:child_process"
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import * as Net from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { StatusReport } from "../../packages/admin/src/Status.ts"
import { isAlive } from "../netns/Leftovers.ts"

export class CheckError extends Data.TaggedError("CheckError")<{
  readonly message: string
  readonly cause?: unknown
}> {}

export const fail = (message: string, cause?: unknown) => Effect.fail(new CheckError({ message, cause }))

export const repository = fileURLToPath(new URL("../..", import.meta.url))
const dist = join(repository, "packages/cli/dist")

// ---------------------------------------------------------------- ports, files

/**
 * A port free now below the kernel's ephemeral range (32768 and up here):
 * the servers start seconds later, and a port of the ephemeral range could
 * meanwhile become the local end of some other process's connection.
 */
export const quietPort = (taken: Set<number>) =>
  Effect.async<number, CheckError>((resume) => {
    const attempt = (left: number) => {
      const port = 20_000 + Math.floor(Math.random() * 12_000)
      if (taken.has(port)) return attempt(left - 1)
      const probe = Net.createServer()
      probe.once("error", () => left > 0 ? attempt(left - 1) : resume(fail("no free port below 32000")))
      probe.listen(port, "127.0.0.1", () =>
        probe.close(() => {
          taken.add(port)
          resume(Effect.succeed(port))
        }))
    }
    attempt(50)
  })

/**
 * What a run of this check killed outright left (its pinned bundle and its
 * temporary directory, both named by its pid); a live run's are left alone.
 */
export const removeLeftovers = (prefix: string) =>
  Effect.sync(() => {
    const pattern = new RegExp(`^${prefix}-(\\d+)[-.]`)
    const dead = (entry: string) => {
      const pid = Number(pattern.exec(entry)?.[1])
      return Number.isInteger(pid) && pid !== process.pid && !isAlive(pid)
    }
    const list = (dir: string) => {
      try {
        return readdirSync(dir)
      } catch {
        return []
      }
    }
    for (const entry of list(dist)) if (dead(entry)) rmSync(join(dist, entry), { force: true })
    for (const entry of list(tmpdir())) if (dead(entry)) rmSync(join(tmpdir(), entry), { recursive: true, force: true })
  })

/**
 * The bundle, built now and pinned for the run (a copy beside it, where it
 * finds the packages it loads at run time): a rebuild by anyone meanwhile
 * cannot change the code of a server restarted mid-run. Removed with the scope.
 */
export const pinnedBundle = (prefix: string) =>
  Effect.gen(function*() {
    const built = spawnSync(process.execPath, [join(repository, "packages/cli/build.mjs")], {
      cwd: repository,
      timeout: 120_000,
      encoding: "utf8"
    })
    if (built.status !== 0) {
      return yield* fail(`the bundle did not build: ${(built.stderr ?? "").trim().split("\n").slice(-3).join(" | ")}`)
    }
    return yield* Effect.acquireRelease(
      Effect.sync(() => {
        const pinned = join(dist, `${prefix}-${process.pid}.mjs`)
        copyFileSync(join(dist, "herd.mjs"), pinned)
        return pinned
      }),
      (pinned) => Effect.sync(() => rmSync(pinned, { force: true }))
    )
  })

/** A temporary directory of the run, removed with the scope. */
export const tempDirectory = (prefix: string) =>
  Effect.acquireRelease(
    Effect.sync(() => mkdtempSync(join(tmpdir(), `${prefix}-${process.pid}-`))),
    (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
  )

/**
 * A check's `--keep`: each `[from, to]` that `pairs` names (read when the
 * scope closes) copied out, to read a failure by. Added after
 * `tempDirectory`, it runs after the servers are stopped and before the
 * directory goes. A copy that fails is skipped: the cleanup goes on.
 */
export const copyOutOnClose = (pairs: () => ReadonlyArray<readonly [from: string, to: string]>) =>
  Effect.addFinalizer(() =>
    Effect.forEach(
      pairs(),
      ([from, to]) => Effect.ignore(Effect.try(() => cpSync(from, to, { recursive: true, force: true }))),
      { discard: true }
    )
  )

// ---------------------------------------------------------------- the herd

export interface Spec {
  readonly name: string
  readonly port: number
  readonly httpPort: number
  readonly dir: string
  readonly dataDir: string
  readonly logDir: string
  /** This server's config file: the herd's servers and links, its own data and log directories. */
  readonly config: string
}

/**
 * Writes a config per server (each its own data and log directory) on
 * quiet ports: `settings` are the rest of the config (places, log, ...).
 */
export const writeHerd = (
  root: string,
  names: ReadonlyArray<string>,
  links: ReadonlyArray<readonly [string, string]>,
  settings: Readonly<Record<string, unknown>>
) =>
  Effect.gen(function*() {
    const taken = new Set<number>()
    const servers: Record<string, { host: string; port: number; httpPort: number }> = {}
    for (const name of names) {
      servers[name] = { host: "127.0.0.1", port: yield* quietPort(taken), httpPort: yield* quietPort(taken) }
    }
    const specs = new Map<string, Spec>()
    for (const name of names) {
      const dir = join(root, name)
      const dataDir = join(dir, "data")
      const logDir = join(dir, "logs")
      mkdirSync(dataDir, { recursive: true })
      mkdirSync(logDir, { recursive: true })
      const config = join(dir, "herd.config.json")
      writeFileSync(config, JSON.stringify({ servers, links, ...settings, dataDir, logDir }, null, 2))
      const address = servers[name] ?? { port: 0, httpPort: 0 }
      specs.set(name, { name, port: address.port, httpPort: address.httpPort, dir, dataDir, logDir, config })
    }
    return specs
  })

interface Running {
  readonly child: ChildProcess
  readonly output: { text: string }
  readonly exited: Promise<void>
  readonly spawnedAt: number
}

/** GET a JSON document of a server's admin endpoint (2 s at most); its HTTP status and body. */
export const getJson = (httpPort: number, path: string, timeoutMs = 2000) =>
  Effect.tryPromise({
    try: async () => {
      const response = await fetch(`http://127.0.0.1:${httpPort}${path}`, { signal: AbortSignal.timeout(timeoutMs) })
      return { status: response.status, body: (await response.json()) as unknown }
    },
    catch: (cause) => new CheckError({ message: `GET ${path} on port ${httpPort}`, cause })
  })

/** GET a text document of a server's admin endpoint (5 s at most); its HTTP status, content type and body. */
export const getText = (httpPort: number, path: string) =>
  Effect.tryPromise({
    try: async () => {
      const response = await fetch(`http://127.0.0.1:${httpPort}${path}`, { signal: AbortSignal.timeout(5000) })
      return { status: response.status, contentType: response.headers.get("content-type") ?? "", body: await response.text() }
    },
    catch: (cause) => new CheckError({ message: `GET ${path} on port ${httpPort}`, cause })
  })

/** A server's `/status`, decoded; none when it does not answer 200 with one. */
export const statusOf = (spec: Spec) =>
  getJson(spec.httpPort, "/status").pipe(
    Effect.flatMap(({ body, status }) =>
      status === 200
        ? Effect.mapError(Schema.decodeUnknown(StatusReport)(body), (error) => new CheckError({ message: error.message }))
        : fail(`HTTP ${status}`)
    ),
    Effect.option
  )

export const makeHerd = (specs: ReadonlyMap<string, Spec>, bundle: string) =>
  Effect.gen(function*() {
    const running = new Map<string, Running>()
    const spec = (name: string) => {
      const found = specs.get(name)
      return found === undefined ? fail(`no server ${name}`) : Effect.succeed(found)
    }
    const outputOf = (name: string) => (running.get(name)?.output.text ?? "").trim().split("\n").slice(-3).join(" | ")

    /** Signals a server and waits (bounded: 10 s, then SIGKILL, 5 s more) for it to exit. */
    const stop = (name: string, signal: "SIGTERM" | "SIGKILL") =>
      Effect.gen(function*() {
        const server = running.get(name)
        if (server === undefined) return
        running.delete(name)
        server.child.kill(signal)
        const exited = Effect.promise(() => server.exited)
        yield* exited.pipe(
          Effect.timeout(Duration.seconds(10)),
          Effect.catchAll(() =>
            Effect.sync(() => server.child.kill("SIGKILL")).pipe(Effect.zipRight(exited), Effect.timeout(Duration.seconds(5)))
          ),
          Effect.ignore
        )
      })
    yield* Effect.addFinalizer(() =>
      Effect.forEach([...running.keys()], (name) => stop(name, "SIGKILL"), { concurrency: "unbounded", discard: true })
    )

    /** Spawns a server (not waiting for it); when it was spawned (ms). */
    const launch = (name: string) =>
      Effect.gen(function*() {
        const target = yield* spec(name)
        const spawnedAt = yield* Clock.currentTimeMillis
        const child = spawn(process.execPath, [bundle, "serve", name, "--config", target.config], {
          cwd: repository,
          stdio: ["ignore", "pipe", "pipe"]
        })
        const output = { text: "" }
        // Drained so that a full pipe never blocks it; the tail is kept for a failure's line.
        const keep = (chunk: Buffer) => (output.text = (output.text + chunk.toString("utf8")).slice(-4000))
        child.stdout?.on("data", keep)
        child.stderr?.on("data", keep)
        child.on("error", (error) => keep(Buffer.from(`spawn error: ${error.message}\n`)))
        const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
        running.set(name, { child, output, exited, spawnedAt })
        return spawnedAt
      })
    /** Whether the server is still running (spawned and not exited); fails with its output's tail when it exited. */
    const alive = (name: string) =>
      Effect.suspend(() => {
        const server = running.get(name)
        if (server === undefined) return fail(`${name} is not running`)
        if (server.child.exitCode !== null || server.child.signalCode !== null) return fail(`${name} exited: ${outputOf(name)}`)
        return Effect.void
      })
    /** Waits (at most 30 s) until its admin endpoint answers `/status`. */
    const ready = (name: string) =>
      Effect.gen(function*() {
        const target = yield* spec(name)
        const deadline = (yield* Clock.currentTimeMillis) + 30_000
        while (true) {
          const answer = yield* statusOf(target)
          if (Option.isSome(answer)) return answer.value
          yield* alive(name)
          if ((yield* Clock.currentTimeMillis) > deadline) {
            return yield* fail(`${name}'s admin endpoint did not answer within 30 s of its start: ${outputOf(name)}`)
          }
          yield* Effect.sleep(Duration.millis(50))
        }
      })
    const start = (name: string) => Effect.zipRight(launch(name), ready(name))
    return {
      spec,
      launch,
      alive,
      ready,
      start,
      stop,
      outputOf,
      status: (name: string) => Effect.flatMap(spec(name), statusOf)
    }
  })

export type Herd = Effect.Effect.Success<ReturnType<typeof makeHerd>>

/**
 * Polls until every server of `among` answers the same digest with `count`
 * records (at most `boundMs`); the ms from `since` when they did.
 */
export const waitEqual = (
  herd: Herd,
  among: ReadonlyArray<string>,
  count: number,
  since: number,
  what: string,
  options: { readonly intervalMs?: number; readonly boundMs?: number } = {}
) =>
  Effect.gen(function*() {
    const boundMs = options.boundMs ?? 60_000
    while (true) {
      const askedAt = yield* Clock.currentTimeMillis
      const seen = yield* Effect.forEach(among, (name) => herd.status(name), { concurrency: "unbounded" })
      const digests = new Set<string>()
      let equal = true
      for (const status of seen) {
        if (Option.isNone(status) || status.value.store.count !== count || status.value.store.digest === null) equal = false
        else digests.add(status.value.store.digest)
      }
      if (equal && digests.size === 1) return { ms: askedAt - since, digest: [...digests][0] ?? "" }
      if (askedAt - since > boundMs) {
        const described = seen.map((status, i) =>
          `${among[i]} ${
            Option.match(status, { onNone: () => "no answer", onSome: (s) => `${s.store.count}/${s.store.digest}` })
          }`
        )
        return yield* fail(`${what}: not equal at ${count} records within ${boundMs / 1000} s (${described.join(", ")})`)
      }
      yield* Effect.sleep(Duration.millis(options.intervalMs ?? 50))
    }
  })

// ---------------------------------------------------------------- the log

export interface LinkEntry {
  readonly at: number
  readonly server: string
  readonly event: "link-up" | "link-down" | "link-failed"
  readonly peer: string
  readonly catchUp: number
  readonly catchUpMs: number
  readonly handshake: string
  readonly reason: string
}

/** The link entries (up, down, failed) of a server's log, from `fromMs` on (a line cut short is not one). */
export const linkEntries = (spec: Spec, fromMs: number): Array<LinkEntry> => {
  let text = ""
  try {
    text = readFileSync(join(spec.logDir, `${spec.name}.log`), "utf8")
  } catch {
    return []
  }
  return text.split("\n").flatMap((line): Array<LinkEntry> => {
    if (!line.includes("\"link-")) return []
    try {
      const entry = JSON.parse(line) as Record<string, unknown>
      const event = entry["event"]
      const at = typeof entry["time"] === "string" ? Date.parse(entry["time"]) : Number.NaN
      if ((event !== "link-up" && event !== "link-down" && event !== "link-failed") || !(at >= fromMs)) return []
      return [{
        at,
        server: spec.name,
        event,
        peer: String(entry["peer"]),
        catchUp: Number(entry["catchUp"]),
        catchUpMs: Number(entry["catchUpMs"]),
        handshake: String(entry["handshake"] ?? ""),
        reason: String(entry["reason"] ?? "")
      }]
    } catch {
      return []
    }
  })
}

// ---------------------------------------------------------------- clients

/**
 * Client times: one counter for the whole run, a microsecond apart from a
 * minute ago, so each report is newer than every earlier one (a repeated
 * client always changes its record) and never too far ahead.
 */
let tick = 0n
const baseNs = (BigInt(Date.now()) - 60_000n) * 1_000_000n
export const iamat = (client: string, index: number) => {
  const ns = baseNs + (tick += 1000n)
  const time = `${ns / 1_000_000_000n}.${String(ns % 1_000_000_000n).padStart(9, "0")}`
  const sign = (value: number) => (value < 0 ? value.toFixed(6) : `+${value.toFixed(6)}`)
  return `IAMAT ${client} ${sign((index % 170) - 85 + 0.5)}${sign((index % 350) - 175 + 0.25)} ${time}`
}

/**
 * Sends lines over one pipelined connection; succeeds once each is answered
 * (within `timeoutMs`), with how many were answered `? ...` (invalid, too far
 * ahead, an unknown client): an IAMAT by its AT line, a WHATSAT by its AT
 * line and Places body. Fails on any other answer.
 */
export const request = (spec: Spec, lines: ReadonlyArray<string>, timeoutMs = 60_000) =>
  Effect.async<{ readonly refused: number }, CheckError>((resume) => {
    let answered = 0
    let refused = 0
    let inBody = false
    let pending = ""
    let done = false
    const finish = (result: Effect.Effect<{ readonly refused: number }, CheckError>) => {
      if (done) return
      done = true
      clearTimeout(timer)
      socket.destroy()
      resume(result)
    }
    const socket = Net.connect({ host: "127.0.0.1", port: spec.port }, () => socket.write(`${lines.join("\n")}\n`))
    const timer = setTimeout(
      () => finish(fail(`requests at ${spec.name}: ${answered} of ${lines.length} answered within ${timeoutMs / 1000} s`)),
      timeoutMs
    )
    socket.setEncoding("latin1")
    socket.on("data", (chunk: string) => {
      pending += chunk
      const replies = pending.split("\n")
      pending = replies.pop() ?? ""
      for (const reply of replies) {
        // A WHATSAT's answer is its AT line, the JSON, then an empty line.
        if (inBody) {
          if (reply === "") {
            inBody = false
            answered++
          }
          continue
        }
        const asked = lines[answered] ?? ""
        if (reply.startsWith("AT ") && asked.startsWith("WHATSAT ")) inBody = true
        else if (reply.startsWith("AT ")) answered++
        else if (reply === `? ${asked}`) {
          answered++
          refused++
        } else return finish(fail(`requests at ${spec.name}: ${JSON.stringify(asked)} answered ${JSON.stringify(reply.slice(0, 120))}`))
      }
      if (answered === lines.length) finish(Effect.succeed({ refused }))
    })
    socket.on("error", (error) => finish(fail(`requests at ${spec.name}: ${error.message}`, error)))
    socket.on("close", () => finish(fail(`requests at ${spec.name}: closed after ${answered} of ${lines.length} answers`)))
    return Effect.sync(() => {
      done = true
      clearTimeout(timer)
      socket.destroy()
    })
  })

// ---------------------------------------------------------------- other processes

export interface Finished {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
  readonly ms: number
}

/**
 * Runs a command to its end (killed past `timeoutMs`, and when the effect is
 * interrupted); its exit code, output and run time. `detached` puts it in a
 * process group of its own, killed whole: for a command that starts
 * children of its own (cargo's rustc).
 */
export const runProcess = (
  command: string,
  args: ReadonlyArray<string>,
  options: { readonly timeoutMs: number; readonly detached?: boolean; readonly cwd?: string }
) =>
  Effect.async<Finished, CheckError>((resume) => {
    const startedAt = Date.now()
    const child = spawn(command, args, {
      cwd: options.cwd ?? repository,
      stdio: ["ignore", "pipe", "pipe"],
      detached: options.detached ?? false
    })
    const kill = () => {
      if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return
      try {
        if (options.detached === true) process.kill(-child.pid, "SIGKILL")
        else child.kill("SIGKILL")
      } catch {
        // Already gone.
      }
    }
    let stdout = ""
    let stderr = ""
    child.stdout?.on("data", (chunk: Buffer) => (stdout = (stdout + chunk.toString("utf8")).slice(-200_000)))
    child.stderr?.on("data", (chunk: Buffer) => (stderr = (stderr + chunk.toString("utf8")).slice(-20_000)))
    const timer = setTimeout(kill, options.timeoutMs)
    // A command that cannot start emits "error" and may still emit "close": answered once.
    let done = false
    const finish = (result: Effect.Effect<Finished, CheckError>) => {
      if (done) return
      done = true
      clearTimeout(timer)
      resume(result)
    }
    child.once("error", (error) => finish(fail(`${command} did not start: ${error.message}`, error)))
    child.once("close", (code) => finish(Effect.succeed({ code, stdout, stderr, ms: Date.now() - startedAt })))
    return Effect.sync(() => {
      clearTimeout(timer)
      kill()
    })
  })

/** The value after `flag` on the command line, if given. */
export const argument = (flag: string): string | undefined => {
  const index = process.argv.indexOf(flag)
  return index === -1 ? undefined : process.argv[index + 1]
}

/**
 * Runs a check to its end as the process's main program: `<name>: PASS in …`
 * (exit 0), or one `<name>: FAIL: …` line (exit 1), or interrupted (130),
 * every process and temporary file removed by `program`'s scope each time.
 * `program` answers when it started (ms); the whole run is bounded.
 */
export const runCheck = <E>(name: string, program: Effect.Effect<number, E, Scope.Scope>, boundMinutes: number): void => {
  const main = Effect.scoped(program).pipe(
    Effect.flatMap((startedAt) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Console.log(`${name}: PASS in ${((now - startedAt) / 1000).toFixed(2)} s, cleanup included`))
    ),
    Effect.timeoutFail({
      duration: Duration.minutes(boundMinutes),
      onTimeout: () => new CheckError({ message: `the whole check took more than ${boundMinutes} minutes` })
    }),
    Effect.onExit((exit) =>
      Exit.isSuccess(exit)
        ? Effect.void
        : Cause.isInterruptedOnly(exit.cause)
        ? Console.error(`${name}: interrupted; every process and temporary file removed`)
        : Console.error(`${name}: FAIL: ${(() => {
          const error = Cause.squash(exit.cause)
          return error instanceof CheckError ? error.message : String(error)
        })()}`)
    )
  )
  NodeRuntime.runMain(main, {
    disableErrorReporting: true,
    teardown: (exit, onExit) => onExit(Exit.isSuccess(exit) ? 0 : Cause.isInterruptedOnly(exit.cause) ? 130 : 1)
  })
}
