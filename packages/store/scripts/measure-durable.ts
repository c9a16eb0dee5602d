/**
 * The durable store at scale: fill a database with N clients through `offer`
 * and commits, then, in a fresh process, open and load it.
 *
 *   node --conditions=@herd/source --import tsx packages/store/scripts/measure-durable.ts [clients] [sync]
 *   ... measure-durable.ts fill <clients> <path>   (fill only: the bench's first step)
 *   ... measure-durable.ts load <path>             (open and load only, in this process)
 *   ... measure-durable.ts window <rate> <clients> [seconds]  (how long records wait for their commit)
 *
 * Prints the fill rate, the file's size, the time to open and load, and the
 * RSS each loaded client costs; lines `name: value` for bench/durable.ts.
 */
import { Effect } from "effect"
import { execFileSync } from "node:child_process"
import { mkdtempSync, rmSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { DurableStore } from "../src/index.ts"

const [, script, first = "1000000", second = "batch", third = ""] = process.argv

const record = (i: number, round: number) => ({
  origin: "Alford",
  skew: "+0.263873386",
  client: `client-${i.toString(36).padStart(8, "0")}.cs.ucla.edu`,
  location: `+34.${String(68930 + (i % 1000)).padStart(6, "0")}-118.${String(445127 + round).padStart(6, "0")}`,
  time: `${1621464827 + round}.${String(i % 1_000_000_000).padStart(9, "0")}`
})

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`

const load = (path: string) =>
  Effect.gen(function*() {
    const before = process.memoryUsage()
    const started = performance.now()
    const cpuBefore = process.cpuUsage()
    const store = yield* DurableStore.makeUnscheduled({ path })
    const loadedMs = performance.now() - started
    const cpu = process.cpuUsage(cpuBefore)
    const after = process.memoryUsage()
    const clients = store.size()
    console.log(`open and load: ${clients} clients in ${(loadedMs / 1000).toFixed(2)} s`)
    console.log(`clients: ${clients}`)
    console.log(`load seconds: ${(loadedMs / 1000).toFixed(3)}`)
    // CPU of every thread of the process (the writer's too): beside the wall time, for a machine shared with other work.
    console.log(`load cpu seconds: ${((cpu.user + cpu.system) / 1e6).toFixed(3)}`)
    console.log(`rss per client: ${((after.rss - before.rss) / clients).toFixed(0)}`)
    console.log(
      `memory after load: RSS +${mib(after.rss - before.rss)} (${((after.rss - before.rss) / clients).toFixed(0)} B per client), ` +
        `heap +${mib(after.heapUsed - before.heapUsed)}, external +${mib(after.external - before.external)}`
    )
  }).pipe(Effect.scoped)

/** Fills the store at `path` with `clients` new clients, then replaces up to 200,000 of them. */
const fillAt = (path: string, clients: number, sync: "batch" | "always") =>
  Effect.gen(function*() {
    // Commits as a server's ticks would make them: a batch of offers between each.
    const perCommit = 5000
    const store = yield* DurableStore.makeUnscheduled({ path, sync })
    const started = performance.now()
    for (let i = 0; i < clients; i += perCommit) {
      for (let j = i; j < Math.min(clients, i + perCommit); j++) store.unsafeOffer(record(j, 0))
      yield* store.commit
    }
    const filledMs = performance.now() - started
    console.log(
      `fill: ${clients} new clients, ${perCommit} per commit (${sync}): ${(filledMs / 1000).toFixed(2)} s, ` +
        `${Math.round(clients / (filledMs / 1000))} records/s`
    )
    console.log(`fill records per second: ${Math.round(clients / (filledMs / 1000))}`)
    // Every client again, newer: replaces rather than inserts.
    const replaced = Math.min(clients, 200_000)
    const again = performance.now()
    for (let i = 0; i < replaced; i += perCommit) {
      for (let j = i; j < Math.min(replaced, i + perCommit); j++) store.unsafeOffer(record(j, 1))
      yield* store.commit
    }
    const againMs = performance.now() - again
    console.log(`update: ${replaced} known clients: ${Math.round(replaced / (againMs / 1000))} records/s`)
  }).pipe(Effect.scoped)

const fill = (clients: number, sync: "batch" | "always") =>
  Effect.gen(function*() {
    const dir = mkdtempSync(join(tmpdir(), "herd-measure-durable-"))
    const path = join(dir, "store.db")
    try {
      yield* fillAt(path, clients, sync)
      console.log(`file: ${mib(statSync(path).size)} (${(statSync(path).size / clients).toFixed(0)} B per client)`)
      // A fresh process, so what it loads is all it holds.
      execFileSync(process.execPath, [...process.execArgv, script ?? "", "load", path], { stdio: "inherit" })
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

/**
 * How long a record waits to be committed with `sync: "batch"` under a
 * steady load: `rate` records a second over `clients` clients for `seconds`,
 * offered in chunks every millisecond, each chunk's wait taken from
 * `unsafeOnCommitted`. The longest wait is the most a crash can lose.
 */
const window = (rate: number, clients: number, seconds: number) =>
  Effect.gen(function*() {
    const dir = mkdtempSync(join(tmpdir(), "herd-measure-durable-"))
    try {
      const store = yield* DurableStore.make({ path: join(dir, "store.db") })
      const waits: Array<number> = []
      const started = performance.now()
      let offered = 0
      yield* Effect.async<void>((resume) => {
        const tick = () => {
          const now = performance.now()
          const due = Math.min(rate * seconds, Math.floor(((now - started) / 1000) * rate))
          for (; offered < due; offered++) store.unsafeOffer(record(offered % clients, Math.floor(offered / clients) + 1))
          store.unsafeOnCommitted(() => waits.push(performance.now() - now))
          if (now - started < seconds * 1000) setTimeout(tick, 1)
          else resume(store.whenCommitted)
        }
        tick()
      })
      const sorted = waits.sort((a, b) => a - b)
      const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN
      console.log(
        `commit wait at ${rate} records/s over ${clients} clients for ${seconds} s (sync batch): ` +
          `p50 ${at(0.5).toFixed(1)} ms, p99 ${at(0.99).toFixed(1)} ms, max ${at(1).toFixed(1)} ms (${offered} records)`
      )
      console.log(`commit wait max ms: ${at(1).toFixed(1)}`)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }).pipe(Effect.scoped)

Effect.runPromise(
  first === "load"
    ? load(second)
    : first === "window"
    ? window(Number(second), Number(third), Number(process.argv[5] ?? "3"))
    : first === "fill"
    ? fillAt(third, Number(second), "batch")
    : fill(Number(first), second === "always" ? "always" : "batch")
).catch((error: unknown) => {
  console.error(error)
  process.exitCode = 1
})
