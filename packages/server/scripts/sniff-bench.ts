/**
 * What the first-byte sniff (Tls.unsafeFirstByte) costs a plain client: the
 * only work it adds is per connection (listeners on, the first chunk put
 * back, listeners off), none per line. So this measures connection churn:
 * clients that each connect, send one IAMAT-sized line, read the answer and
 * close, against a bare `node:net` server that answers each line, with and
 * without the sniff in front, in alternating rounds in fresh server
 * processes. Reported: cycles a second and the server's CPU per cycle.
 * With `--micro`, the sniff alone in-process instead: a fresh socket fed
 * one chunk, read by a 'data' listener, with and without the sniff first,
 * in ns a connection (no network, so only the listeners and the chunk put
 * back are measured).
 *
 *   node --conditions=@herd/source --import tsx packages/server/scripts/sniff-bench.ts [--seconds 3] [--rounds 3] [--concurrency 10]
 *   node --conditions=@herd/source --import tsx packages/server/scripts/sniff-bench.ts --micro [--rounds 4]
 */
import { Effect } from "effect"
import * as ChildProcess from "node:child_process"
import * as Net from "node:net"
import { fileURLToPath } from "node:url"
import { unsafeFirstByte } from "../src/internal/Tls.ts"

const argument = (name: string, fallback: number) => {
  const at = process.argv.indexOf(`--${name}`)
  const value = at < 0 ? undefined : Number(process.argv[at + 1])
  return value !== undefined && Number.isFinite(value) ? value : fallback
}

const line = "IAMAT kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503\n"
const reply = "AT Alford +0.263873386 kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503\n"

/** The server: answers each LF with the reply; with `sniff`, each connection goes through the sniff first. */
const serve = (sniff: boolean) => {
  const answer = (socket: Net.Socket) => {
    socket.on("data", (chunk: Buffer) => {
      for (let at = chunk.indexOf(10); at >= 0; at = chunk.indexOf(10, at + 1)) socket.write(reply)
    })
    socket.resume()
  }
  const server = Net.createServer((socket) => {
    socket.on("error", () => {})
    if (!sniff) return answer(socket)
    unsafeFirstByte(socket, (result) => {
      if (result._tag === "Right") answer(socket)
      else socket.destroy()
    })
  })
  server.listen(0, "127.0.0.1", () => {
    const address = server.address()
    process.send?.({ port: typeof address === "object" && address !== null ? address.port : 0 })
  })
  process.on("message", (message) => {
    if (message === "cpu") {
      const { user, system } = process.cpuUsage()
      process.send?.({ cpuMicros: user + system })
    }
  })
}

const ask = <A>(child: ChildProcess.ChildProcess, message: string | undefined, pick: (reply: unknown) => A | undefined) =>
  Effect.async<A>((resume) => {
    const onMessage = (reply: unknown) => {
      const value = pick(reply)
      if (value !== undefined) {
        child.off("message", onMessage)
        resume(Effect.succeed(value))
      }
    }
    child.on("message", onMessage)
    if (message !== undefined) child.send(message)
  })

const field = (name: string) => (reply: unknown) =>
  typeof reply === "object" && reply !== null && name in reply ? (reply as Record<string, number>)[name] : undefined

/** One client loop: connect, one line, its answer, close; again until `until`. */
const churn = (port: number, until: number): Effect.Effect<number> =>
  Effect.async((resume) => {
    let cycles = 0
    const next = () => {
      if (Date.now() >= until) return resume(Effect.succeed(cycles))
      const socket = Net.connect({ host: "127.0.0.1", port }, () => socket.write(line))
      socket.setNoDelay(true)
      socket.on("data", () => {
        cycles++
        socket.destroy()
        next()
      })
      socket.on("error", () => {
        socket.destroy()
        next()
      })
    }
    next()
  })

const loops = (concurrency: number, run: () => Effect.Effect<number>) =>
  Effect.all(Array.from({ length: concurrency }, run), { concurrency: "unbounded" })

const round = (sniff: boolean, seconds: number, concurrency: number) =>
  Effect.acquireUseRelease(
    Effect.sync(() =>
      ChildProcess.fork(fileURLToPath(import.meta.url), ["--serve", sniff ? "sniff" : "plain"], { execArgv: process.execArgv })
    ),
    (child) =>
      Effect.gen(function*() {
        const port = yield* ask(child, undefined, field("port"))
        // Warm-up: a second of the same, not counted.
        yield* loops(concurrency, () => churn(port, Date.now() + 1000))
        const cpuBefore = yield* ask(child, "cpu", field("cpuMicros"))
        const started = Date.now()
        const counts = yield* loops(concurrency, () => churn(port, started + seconds * 1000))
        const elapsed = (Date.now() - started) / 1000
        const cpuAfter = yield* ask(child, "cpu", field("cpuMicros"))
        const cycles = counts.reduce((sum, count) => sum + count, 0)
        return { cyclesPerSecond: cycles / elapsed, cpuMicrosPerCycle: (cpuAfter - cpuBefore) / cycles }
      }),
    (child) => Effect.sync(() => child.kill())
  )

/** One socket fed one chunk and read, with or without the sniff first; `done` when the reader has it. */
const microOnce = (sniff: boolean, done: () => void) => {
  const socket = new Net.Socket()
  const read = () => {
    socket.on("data", () => {
      socket.removeAllListeners()
      done()
    })
    socket.resume()
  }
  if (sniff) unsafeFirstByte(socket, read)
  else read()
  socket.push(line)
}

const micro = (sniff: boolean, count: number): Effect.Effect<number> =>
  Effect.async((resume) => {
    let done = 0
    const started = process.hrtime.bigint()
    const next = (): void => {
      if (done++ === count) return resume(Effect.succeed(Number(process.hrtime.bigint() - started) / count))
      microOnce(sniff, next)
    }
    next()
  })

if (process.argv.includes("--serve")) {
  serve(process.argv.includes("sniff"))
} else if (process.argv.includes("--micro")) {
  Effect.runFork(Effect.gen(function*() {
    const rounds = argument("rounds", 4)
    for (let i = 0; i < rounds; i++) {
      for (const sniff of [false, true]) {
        console.log(`${sniff ? "sniff" : "plain"} round ${i + 1}: ${(yield* micro(sniff, 50_000)).toFixed(0)} ns a connection`)
      }
    }
  }))
} else {
  Effect.runFork(Effect.gen(function*() {
    const seconds = argument("seconds", 3)
    const rounds = argument("rounds", 3)
    const concurrency = argument("concurrency", 10)
    const results: Record<"plain" | "sniff", Array<{ cyclesPerSecond: number; cpuMicrosPerCycle: number }>> = { plain: [], sniff: [] }
    for (let i = 0; i < rounds; i++) {
      for (const mode of ["plain", "sniff"] as const) {
        const result = yield* round(mode === "sniff", seconds, concurrency)
        results[mode].push(result)
        console.log(
          `${mode.padEnd(5)} round ${i + 1}: ${result.cyclesPerSecond.toFixed(0)} cycles/s, server CPU ${result.cpuMicrosPerCycle.toFixed(1)} µs a cycle`
        )
      }
    }
    const range = (values: Array<number>, digits: number) =>
      `${Math.min(...values).toFixed(digits)}-${Math.max(...values).toFixed(digits)}`
    for (const mode of ["plain", "sniff"] as const) {
      console.log(
        `${mode}: ${range(results[mode].map((r) => r.cyclesPerSecond), 0)} cycles/s, ${range(results[mode].map((r) => r.cpuMicrosPerCycle), 1)} µs server CPU a cycle`
      )
    }
  }))
}
