/**
 * The herd's five `herd serve` processes, each in its host's namespace with
 * its own config, data and log directories; their `/status` read from the
 * control host; clients reported to them over TCP.
 */
import * as Command from "@effect/platform/Command"
import type * as CommandExecutor from "@effect/platform/CommandExecutor"
import * as HttpClient from "@effect/platform/HttpClient"
import { Status } from "@herd/admin"
import { Clock, Duration, Effect, Exit, Option, Schema, Scope, Stream } from "effect"
import { mkdirSync, readFileSync, writeFileSync } from "node:fs"
import * as Net from "node:net"
import { join } from "node:path"
import type { Network } from "./Network.ts"
import { describe, NetnsTestError } from "./Shell.ts"

export interface ServerSpec {
  readonly name: string
  /** Where the test reaches it. */
  readonly host: string
  readonly port: number
  readonly httpPort: number
  readonly launcher: ReadonlyArray<string>
  readonly dir: string
  readonly config: string
}

export interface HerdPlan {
  readonly servers: ReadonlyArray<ServerSpec>
  readonly links: ReadonlyArray<readonly [string, string]>
}

/** Writes one config per server: the herd as that server sees it, with its own data and log directories. */
export const writeConfigs = (
  network: Network,
  names: ReadonlyArray<string>,
  links: ReadonlyArray<readonly [string, string]>,
  root: string
): HerdPlan => {
  const specs = names.map((name) => {
    const dir = join(root, name)
    mkdirSync(join(dir, "data"), { recursive: true })
    mkdirSync(join(dir, "logs"), { recursive: true })
    const config = join(dir, "herd.config.json")
    writeFileSync(
      config,
      JSON.stringify(
        {
          servers: network.viewOf(name),
          links,
          // No TLS between the hosts in this test.
          insecure: true,
          places: { provider: "offline" },
          dataDir: join(dir, "data"),
          logDir: join(dir, "logs"),
          // Wire lines in short: five servers and the test share two cores.
          log: { wire: "summary" },
          reconnect: { initialMs: 50, capMs: 5000 }
        },
        null,
        2
      )
    )
    return { name, ...network.addressOf(name), launcher: network.launcherOf(name), dir, config }
  })
  return { servers: specs, links }
}

export const specOf = (herd: HerdPlan, name: string) => {
  const spec = herd.servers.find((server) => server.name === name)
  return spec === undefined
    ? Effect.fail(new NetnsTestError({ reason: "Setup", message: `no server ${name}` }))
    : Effect.succeed(spec)
}

interface Running {
  readonly process: CommandExecutor.Process
  readonly scope: Scope.CloseableScope
  /** The last of what it printed, for the line the test fails with. */
  readonly output: { text: string }
}

const status = (client: HttpClient.HttpClient, spec: ServerSpec) =>
  client.get(`http://${spec.host}:${spec.httpPort}/status`).pipe(
    Effect.flatMap((response) =>
      response.status === 200 ? response.json : Effect.fail(new Error(`HTTP ${response.status}`))
    ),
    Effect.flatMap(Schema.decodeUnknown(Status.StatusReport)),
    Effect.timeout(Duration.seconds(2)),
    Effect.option
  )

/**
 * The running servers. `start` and `stop` may be called again for one server
 * (a restart keeps its data directory); the scope it is made in stops every
 * server still running.
 */
export const makeServers = (herd: HerdPlan, repository: string, bundle: string) =>
  Effect.gen(function*() {
    const client = yield* HttpClient.HttpClient
    const running = new Map<string, Running>()

    const outputOf = (name: string) => (running.get(name)?.output.text ?? "").trim().split("\n").slice(-3).join(" | ")

    const stop = (name: string) =>
      Effect.gen(function*() {
        const server = running.get(name)
        if (server === undefined) return
        running.delete(name)
        // SIGTERM: the server closes its links, flushes its log, commits its
        // store. Bounded, then SIGKILL.
        yield* server.process.kill("SIGTERM").pipe(
          Effect.timeout(Duration.seconds(10)),
          Effect.catchAll(() => server.process.kill("SIGKILL").pipe(Effect.timeout(Duration.seconds(5)))),
          Effect.ignore
        )
        yield* Scope.close(server.scope, Exit.void)
      })

    yield* Effect.addFinalizer(() => Effect.forEach([...running.keys()], stop, { concurrency: "unbounded", discard: true }))

    const statusOf = (name: string) =>
      Effect.flatMap(specOf(herd, name), (spec) => status(client, spec))

    /** Starts a server and waits (at most 30 s) until its admin endpoint answers. */
    const start = (name: string) =>
      Effect.gen(function*() {
        const spec = yield* specOf(herd, name)
        const scope = yield* Scope.make()
        const output = { text: "" }
        const argv = [...spec.launcher, globalThis.process.execPath, bundle, "serve", name, "--config", spec.config]
        const process = yield* Command.start(
          Command.make(argv[0] ?? globalThis.process.execPath, ...argv.slice(1)).pipe(Command.workingDirectory(repository))
        ).pipe(
          Scope.extend(scope),
          Effect.mapError((cause) =>
            new NetnsTestError({ reason: "Server", message: `${name} did not start: ${describe(cause)}`, cause })
          )
        )
        running.set(name, { process, scope, output })
        // Drained so that a full pipe never blocks it; the tail is kept.
        const keep = (stream: Stream.Stream<Uint8Array, unknown>) =>
          stream.pipe(
            Stream.decodeText(),
            Stream.runForEach((chunk) => Effect.sync(() => (output.text = (output.text + chunk).slice(-4000)))),
            Effect.ignore,
            Effect.forkIn(scope)
          )
        yield* keep(process.stdout)
        yield* keep(process.stderr)
        const deadline = (yield* Clock.currentTimeMillis) + 30_000
        while (true) {
          const answer = yield* statusOf(name)
          if (Option.isSome(answer)) return answer.value
          if (!(yield* process.isRunning.pipe(Effect.orElseSucceed(() => false)))) {
            return yield* new NetnsTestError({ reason: "Server", message: `${name} exited at start: ${outputOf(name)}` })
          }
          if ((yield* Clock.currentTimeMillis) > deadline) {
            return yield* new NetnsTestError({
              reason: "Server",
              message: `${name}'s admin endpoint did not answer within 30 s of its start: ${outputOf(name)}`
            })
          }
          yield* Effect.sleep(Duration.millis(100))
        }
      })

    return { start, stop, statusOf, outputOf }
  })

export type Servers = Effect.Effect.Success<ReturnType<typeof makeServers>>

/** What one poll of the servers saw: each answer, or none. */
export type Poll = ReadonlyArray<{ readonly name: string; readonly status: Option.Option<Status.StatusReport> }>

export const poll = (servers: Servers, names: ReadonlyArray<string>): Effect.Effect<Poll> =>
  Effect.forEach(names, (name) =>
    servers.statusOf(name).pipe(
      Effect.map((status) => ({ name, status })),
      Effect.orElseSucceed(() => ({ name, status: Option.none<Status.StatusReport>() }))
    ), { concurrency: "unbounded" })

export const describePoll = (seen: Poll): string =>
  seen.map(({ name, status }) =>
    Option.match(status, {
      onNone: () => `${name} no answer`,
      onSome: (report) => `${name} ${report.store.count}/${report.store.digest ?? "no digest"}`
    })
  ).join(", ")

/** Whether every server answered with the same digest and `count` records. */
export const allEqual = (seen: Poll, count: number): boolean => {
  const digests = new Set<string>()
  for (const { status } of seen) {
    if (Option.isNone(status) || status.value.store.count !== count || status.value.store.digest === null) return false
    digests.add(status.value.store.digest)
  }
  return digests.size === 1
}

/**
 * Polls every `intervalMs` until every server of `names` holds the same
 * digest and `count` records; the milliseconds from `sinceMs` to the poll
 * that saw it (a poll takes a few ms: that is the resolution). Fails after
 * `boundMs`, with what the last poll saw.
 */
export const waitEqual = (
  servers: Servers,
  names: ReadonlyArray<string>,
  count: number,
  sinceMs: number,
  boundMs: number,
  what: string,
  intervalMs = 100
) =>
  Effect.gen(function*() {
    let seen: Poll = []
    while (true) {
      const askedAt = yield* Clock.currentTimeMillis
      seen = yield* poll(servers, names)
      if (allEqual(seen, count)) return askedAt - sinceMs
      if (askedAt - sinceMs > boundMs) {
        return yield* new NetnsTestError({
          reason: "Convergence",
          message: `${what}: ${names.join(", ")} not equal at ${count} records within ${boundMs / 1000} s (${describePoll(seen)})`
        })
      }
      yield* Effect.sleep(Duration.millis(intervalMs))
    }
  })

/** `count` IAMAT lines for distinct clients, named after `prefix`. */
export const iamats = (prefix: string, count: number): ReadonlyArray<string> => {
  const nowNs = BigInt(Date.now()) * 1_000_000n
  return Array.from({ length: count }, (_, index) => {
    const ns = nowNs - 60_000_000_000n + BigInt(index)
    const time = `${ns / 1_000_000_000n}.${String(ns % 1_000_000_000n).padStart(9, "0")}`
    const latitude = (index % 170) - 85 + 0.5
    const longitude = (index % 350) - 175 + 0.25
    const sign = (value: number) => (value < 0 ? value.toFixed(6) : `+${value.toFixed(6)}`)
    return `IAMAT ${prefix}-${index} ${sign(latitude)}${sign(longitude)} ${time}`
  })
}

/**
 * Reports the lines at a server over one pipelined connection from the
 * control host; succeeds once every one is answered with an AT line (at
 * most 60 s).
 */
export const report = (spec: ServerSpec, lines: ReadonlyArray<string>) =>
  Effect.async<void, NetnsTestError>((resume) => {
    let answered = 0
    let pending = ""
    let done = false
    // Effect.async's cleanup runs only on interruption: the end of the
    // exchange closes the socket and its timer itself.
    const finish = (result: Effect.Effect<void, NetnsTestError>) => {
      if (done) return
      done = true
      clearTimeout(timer)
      socket.destroy()
      resume(result)
    }
    const fail = (message: string, cause?: unknown) =>
      finish(Effect.fail(new NetnsTestError({ reason: "Client", message: `reporting at ${spec.name}: ${message}`, cause })))
    // Not half-closed: the connection ends once every line is answered.
    const socket = Net.connect({ host: spec.host, port: spec.port }, () => socket.write(`${lines.join("\n")}\n`))
    const timer = setTimeout(() => fail(`${answered} of ${lines.length} answered within 60 s`), 60_000)
    socket.setEncoding("latin1")
    socket.on("data", (chunk: string) => {
      pending += chunk
      const replies = pending.split("\n")
      pending = replies.pop() ?? ""
      for (const reply of replies) {
        if (!reply.startsWith("AT ")) return fail(`answered ${JSON.stringify(reply.slice(0, 120))}`)
        answered++
      }
      if (answered === lines.length) finish(Effect.void)
    })
    socket.on("error", (error) => fail(error.message, error))
    socket.on("close", () => {
      if (answered < lines.length) fail(`closed after ${answered} of ${lines.length} answers`)
    })
    return Effect.sync(() => {
      done = true
      clearTimeout(timer)
      socket.destroy()
    })
  })

/** The `link-down` and `link-failed` entries of a server's log within a window, as `peer: event` counts. */
export const linkEvents = (spec: ServerSpec, fromMs: number, toMs: number): Record<string, number> => {
  const counts: Record<string, number> = {}
  let text = ""
  try {
    text = readFileSync(join(spec.dir, "logs", `${spec.name}.log`), "latin1")
  } catch {
    return counts
  }
  for (const line of text.split("\n")) {
    if (!line.includes("\"link-down\"") && !line.includes("\"link-failed\"")) continue
    try {
      const entry = JSON.parse(line) as { time?: unknown; event?: unknown; peer?: unknown }
      const at = typeof entry.time === "string" ? Date.parse(entry.time) : Number.NaN
      if (at < fromMs || at > toMs) continue
      const key = `${String(entry.peer)} ${String(entry.event)}`
      counts[key] = (counts[key] ?? 0) + 1
    } catch {
      // A line cut by the rotation: not an event to count.
    }
  }
  return counts
}
