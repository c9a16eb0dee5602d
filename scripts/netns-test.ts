/**
 * Issue 17 point 5: the herd across real network hosts. Five `herd serve`
 * processes of the default herd, each in its own Linux network namespace
 * joined by veth pairs to a bridge, 1% of every host's incoming packets
 * dropped (iptables; this kernel has no netem). Then:
 *
 *   A. Parker is partitioned (every packet in and out dropped, so TCP stalls
 *      rather than closes) while clients are reported on both sides; after
 *      the heal, the seconds until all five hold equal digests.
 *   B. Hamilton is restarted with its data directory after 100 new records
 *      elsewhere; the bytes it received on its links during the catch-up,
 *      against a full catch-up measured the same way (Hamilton restarted
 *      with its data deleted).
 *
 * It asserts that every server ends equal within generous bounds and that
 * Hamilton's catch-up costs under 5% of a full one (issue 17's target). The
 * seconds from the heal to equal digests are printed beside their target
 * (<= 2 s) and asserted only with --assert-targets: a time measured on a
 * shared machine, which CI (`.ci/run`) must not flake on.
 *
 * Namespaces need root (CI runs as root); where they cannot be made it says
 * why and runs the loopback variant (netns/Loopback.ts; also --loopback).
 * Everything it makes (processes, namespaces, veths, bridge, iptables rules,
 * temporary files) is removed on success, failure and Ctrl-C; what a run
 * killed outright left is removed by the next.
 *
 *   node --conditions=@herd/source --import tsx scripts/netns-test.ts
 *     [--clients N] [--partition-seconds S] [--assert-targets] [--loopback] [--keep-logs DIR]
 *   npm run test:netns
 */
import { FetchHttpClient } from "@effect/platform"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Cause, Clock, Console, Duration, Effect, Exit, Layer, Option } from "effect"
import { copyFileSync, cpSync, existsSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { defaultHerd } from "../packages/cli/src/DefaultHerd.ts"
import * as Hosts from "./netns/Hosts.ts"
import { pinnedBundleName, removeRunLeftovers, tempPrefix } from "./netns/Leftovers.ts"
import { loopbackNetwork } from "./netns/Loopback.ts"
import * as Servers from "./netns/Servers.ts"
import { describe, must, NetnsTestError, run } from "./netns/Shell.ts"

const healTargetSeconds = 2
const catchUpTargetRatio = 0.05
/** The generous bounds asserted today. */
const convergeBoundMs = 60_000
const lossProbability = 0.01

const argument = (flag: string): string | undefined => {
  const index = process.argv.indexOf(flag)
  return index === -1 ? undefined : process.argv[index + 1]
}
const clientsToFill = Number(argument("--clients") ?? 20_000)
const partitionSeconds = Number(argument("--partition-seconds") ?? 10)
/** Whether the heal's time target is asserted, not only printed. */
const assertHealTarget = process.argv.includes("--assert-targets")

const repository = fileURLToPath(new URL("..", import.meta.url))
const names = Object.keys(defaultHerd.servers)

const seconds = (ms: number) => (ms / 1000).toFixed(2)
const say = (line: string) => Console.log(`netns-test: ${line}`)

const keepLogs = argument("--keep-logs")

/** The servers' configs, data and logs; their logs copied to --keep-logs DIR first, when given. */
const tempRoot = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), tempPrefix(process.pid)))),
  (dir) =>
    Effect.sync(() => {
      if (keepLogs !== undefined) {
        for (const name of names) {
          const logs = join(dir, name, "logs")
          if (existsSync(logs)) cpSync(logs, join(keepLogs, name), { recursive: true })
        }
      }
      rmSync(dir, { recursive: true, force: true })
    })
)

/** Which code the figures are of: the commit, and the packages' files changed since, if any. */
const codeVersion = Effect.gen(function*() {
  const head = yield* run("git", ["-C", repository, "rev-parse", "--short", "HEAD"])
  const changed = yield* run("git", ["-C", repository, "status", "--porcelain", "--", "packages"])
  const files = changed.stdout.split("\n").filter((line) => line.trim() !== "").length
  return head.code !== 0
    ? "not a git checkout"
    : `${head.stdout.trim()}${files === 0 ? "" : ` with ${files} uncommitted file(s) under packages/`}`
}).pipe(Effect.orElseSucceed(() => "unknown (no git)"))

/**
 * The namespaces where the machine can make them; else, saying exactly
 * why, the loopback variant (also with --loopback).
 */
const makeNetwork = Effect.gen(function*() {
  if (process.argv.includes("--loopback")) {
    yield* say("--loopback: the loopback variant, not the namespaces")
    return yield* loopbackNetwork(names, defaultHerd.links)
  }
  const cannot = yield* Hosts.prerequisites.pipe(
    Effect.as(Option.none<NetnsTestError>()),
    Effect.catchIf((error) => error.reason === "Prerequisite", (error) => Effect.succeed(Option.some(error)))
  )
  if (Option.isSome(cannot)) {
    yield* say(`${cannot.value.message}; running the loopback variant instead`)
    return yield* loopbackNetwork(names, defaultHerd.links)
  }
  yield* Hosts.removeLeftovers
  return yield* Hosts.namespaceNetwork(names, defaultHerd.servers, lossProbability)
})

const program = Effect.gen(function*() {
  const startedAt = yield* Clock.currentTimeMillis
  if (!Number.isInteger(clientsToFill) || clientsToFill < names.length || !(partitionSeconds > 0)) {
    return yield* new NetnsTestError({
      reason: "Prerequisite",
      message: `usage: --clients takes an integer of at least ${names.length}, --partition-seconds a number above 0`
    })
  }
  const removed = yield* removeRunLeftovers(repository)
  if (removed.length > 0) yield* say(`removed what an earlier run left: ${removed.join(", ")}`)
  const network = yield* makeNetwork
  // The herd command's bundle, built once and pinned for the run: run
  // through packages/cli/bin/herd.mjs, every start would rebuild it while
  // anyone edits a source, adding seconds to Hamilton's restart and perhaps
  // running other code than its neighbours. The copy sits beside the bundle,
  // where it finds the packages it loads at run time.
  yield* must(process.execPath, [join(repository, "packages/cli/build.mjs")], 120_000)
  const bundle = yield* Effect.acquireRelease(
    Effect.sync(() => {
      const pinned = join(repository, "packages/cli/dist", pinnedBundleName(process.pid))
      copyFileSync(join(repository, "packages/cli/dist/herd.mjs"), pinned)
      return pinned
    }),
    (pinned) => Effect.sync(() => rmSync(pinned, { force: true }))
  )
  const root = yield* tempRoot
  const herd = Servers.writeConfigs(network, names, defaultHerd.links, root)
  const spec = (name: string) => Servers.specOf(herd, name)
  yield* say(network.description)
  yield* say(`the code under test: ${yield* codeVersion}`)

  const servers = yield* Servers.makeServers(herd, repository, bundle)
  yield* Effect.forEach(names, servers.start, { concurrency: "unbounded", discard: true })
  const serversUpAt = yield* Clock.currentTimeMillis
  yield* say(`five herd serve processes up in ${seconds(serversUpAt - startedAt)} s from the test's start`)

  let expected = 0
  const reportAt = (name: string, prefix: string, count: number) =>
    Effect.gen(function*() {
      yield* Servers.report(yield* spec(name), Servers.iamats(prefix, count))
      expected += count
    })

  // The fill: clients at every server, so every link carries records.
  const share = Math.ceil(clientsToFill / names.length)
  const fillFrom = yield* Clock.currentTimeMillis
  yield* Effect.forEach(names, (name) => reportAt(name, `fill-${name}`, share), { discard: true })
  const filled = yield* Servers.waitEqual(servers, names, expected, fillFrom, convergeBoundMs, "after the fill")
  yield* say(`filled ${expected} clients (${share} at each server): all five equal ${seconds(filled)} s after the first report`)

  // Scenario A: Parker partitioned; clients reported on both sides.
  yield* network.partition("Parker")
  const partitionedAt = yield* Clock.currentTimeMillis
  yield* reportAt("Parker", "a-parker", 100)
  yield* reportAt("Alford", "a-alford", 100)
  yield* reportAt("Welsh", "a-welsh", 100)
  // The two sides must differ meanwhile, or the partition did not hold.
  const away = yield* Servers.waitEqual(
    servers, ["Alford", "Bolden", "Welsh"], expected - 100, partitionedAt, convergeBoundMs, "the majority side during the partition"
  )
  const parkerDuring = yield* servers.statusOf("Parker")
  const parkerCount = Option.match(parkerDuring, { onNone: () => -1, onSome: (status) => status.store.count })
  if (parkerCount !== expected - 200) {
    return yield* new NetnsTestError({
      reason: "Convergence",
      message: `the partition did not hold: Parker holds ${parkerCount} records, expected ${expected - 200} (its own 100 and none of the 200 reported elsewhere)`
    })
  }
  yield* say(
    `A: Parker partitioned; 100 reported at Parker, 100 at Alford, 100 at Welsh; Alford, Bolden, Welsh equal ` +
      `${seconds(away)} s into it, Parker apart (${parkerCount} records)`
  )
  const partitionLeft = partitionSeconds * 1000 - ((yield* Clock.currentTimeMillis) - partitionedAt)
  if (partitionLeft > 0) yield* Effect.sleep(Duration.millis(partitionLeft))
  yield* network.heal("Parker")
  const healedAt = yield* Clock.currentTimeMillis
  const healMs = yield* Servers.waitEqual(servers, names, expected, healedAt, convergeBoundMs, "after the heal", 50)
  const downs = yield* Effect.forEach(herd.servers, (server) =>
    Effect.sync(() => {
      const events = Servers.linkEvents(server, partitionedAt, healedAt + healMs)
      return Object.entries(events).map(([key, count]) => `${server.name}->${key} ${count}`)
    })).pipe(Effect.map((all) => all.flat()))
  yield* say(
    `A: partition of ${seconds(healedAt - partitionedAt)} s healed: all five equal (${expected} records) ` +
      `${seconds(healMs)} s after the heal; issue 17 target <= ${healTargetSeconds} s: ` +
      (healMs <= healTargetSeconds * 1000 ? "met" : "NOT MET") +
      (assertHealTarget ? "" : " (printed; asserted with --assert-targets)")
  )
  yield* say(
    `A: link events logged from the partition to convergence: ${downs.length === 0 ? "none (no link was ever seen down)" : downs.join(", ")}`
  )
  if (healMs > healTargetSeconds * 1000) {
    yield* say(
      downs.length === 0
        ? "A: the links did not notice the silence (no link-down logged): each stalled TCP connection was left to its " +
          "retransmission back-off, so the heal was noticed only at its next retransmission (issue 17 point 3: heartbeats)"
        : "A: the links noticed the silence (link-down logged), yet the herd converged only after the target: " +
          "see the re-dial back-off (reconnect.capMs) and the link events above"
    )
  }

  // Scenario B: the bytes Hamilton receives from Parker, its one neighbour,
  // on both their links (each side dials the other).
  const hamilton = yield* spec("Hamilton")
  yield* network.countLinkBytes("Hamilton", "Parker")
  const others = names.filter((name) => name !== "Hamilton")

  const restartHamilton = Effect.gen(function*() {
    const before = yield* network.linkBytes("Hamilton")
    const startAt = yield* Clock.currentTimeMillis
    yield* servers.start("Hamilton")
    const answeringMs = (yield* Clock.currentTimeMillis) - startAt
    const equalMs = yield* Servers.waitEqual(servers, names, expected, startAt, convergeBoundMs, "after Hamilton's restart", 50)
    const bytes = (yield* network.linkBytes("Hamilton")) - before
    const status = yield* servers.statusOf("Hamilton")
    const reported = Option.match(status, {
      onNone: () => "no answer",
      onSome: (report) => String(report.links.reduce((sum, link) => link.peer === "Parker" ? sum + link.bytesReceived : sum, 0))
    })
    return { answeringMs, equalMs, bytes, reported }
  })
  const describeRestart = (restart: Effect.Effect.Success<typeof restartHamilton>) =>
    `${restart.bytes} bytes from Parker ${network.bytesAre}; Hamilton's /status says ${restart.reported} bytes received from Parker; ` +
    `its admin endpoint answered ${seconds(restart.answeringMs)} s after the start, all five equal after ${seconds(restart.equalMs)} s`

  // A full catch-up, measured the same way: Hamilton restarted with its data deleted.
  yield* servers.stop("Hamilton")
  rmSync(join(hamilton.dir, "data"), { recursive: true, force: true })
  const full = yield* restartHamilton
  yield* say(`B: full catch-up (Hamilton restarted with its data deleted, ${expected} records): ${describeRestart(full)}`)

  // The restart with its store, after 100 records it has not seen.
  yield* servers.stop("Hamilton")
  const newAt = yield* Clock.currentTimeMillis
  yield* reportAt("Alford", "b-alford", 100)
  yield* Servers.waitEqual(servers, others, expected, newAt, convergeBoundMs, "the 100 new records while Hamilton is down")
  const resumed = yield* restartHamilton
  const ratio = resumed.bytes / full.bytes
  yield* say(`B: Hamilton restarted with its store after 100 new records at Alford: ${describeRestart(resumed)}`)
  yield* say(
    `B: that catch-up cost ${(ratio * 100).toFixed(1)}% of a full one; issue 17 target < ${catchUpTargetRatio * 100}%: ` +
      (ratio < catchUpTargetRatio ? "met" : "NOT MET")
  )

  if (assertHealTarget && healMs > healTargetSeconds * 1000) {
    return yield* new NetnsTestError({
      reason: "Target",
      message: `all five equal ${seconds(healMs)} s after the heal, target <= ${healTargetSeconds} s`
    })
  }
  if (ratio >= catchUpTargetRatio) {
    return yield* new NetnsTestError({
      reason: "Target",
      message: `Hamilton's catch-up cost ${(ratio * 100).toFixed(1)}% of a full one, target < ${catchUpTargetRatio * 100}%`
    })
  }
  return startedAt
})

const main = Effect.scoped(program).pipe(
  Effect.flatMap((startedAt) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => say(`PASS in ${seconds(now - startedAt)} s, cleanup included`))
  ),
  Effect.timeoutFail({
    duration: Duration.minutes(5),
    onTimeout: () => new NetnsTestError({ reason: "Convergence", message: "the whole test took more than 5 minutes" })
  }),
  Effect.provide(Layer.mergeAll(NodeContext.layer, FetchHttpClient.layer)),
  Effect.onExit((exit) =>
    Exit.isSuccess(exit)
      ? Effect.void
      : Cause.isInterruptedOnly(exit.cause)
      ? Console.error("netns-test: interrupted; everything it made is removed")
      : Console.error(`netns-test: FAIL: ${describe(Cause.squash(exit.cause))}`)
  )
)

NodeRuntime.runMain(main, {
  disableErrorReporting: true,
  // Ctrl-C is not a pass: 130, as a shell reports a SIGINT.
  teardown: (exit, onExit) => onExit(Exit.isSuccess(exit) ? 0 : Cause.isInterruptedOnly(exit.cause) ? 130 : 1)
})
