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
 * It asserts that every server ends equal within generous bounds; the
 * issue's targets (<= 2 s after a heal, < 5% of a full catch-up) are printed
 * beside the measures and asserted only with --assert-targets (or
 * assertIssueTargets below), for when the extended handshake lands.
 *
 * Root only (CI runs as root). Everything it makes (processes, namespaces,
 * veths, bridge, iptables rules, temporary directories) is removed on
 * success, failure and Ctrl-C.
 *
 *   node --conditions=@herd/source --import tsx scripts/netns-test.ts
 *     [--clients N] [--partition-seconds S] [--assert-targets] [--keep-logs DIR]
 *   npm run test:netns
 */
import { FetchHttpClient } from "@effect/platform"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Cause, Clock, Console, Duration, Effect, Exit, Layer, Option } from "effect"
import { cpSync, existsSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { defaultHerd } from "../packages/cli/src/DefaultHerd.ts"
import * as Hosts from "./netns/Hosts.ts"
import * as Servers from "./netns/Servers.ts"
import { describe, must, NetnsTestError } from "./netns/Shell.ts"

/**
 * Turn on (or pass --assert-targets) once incremental catch-up and links
 * that notice silence land: the test then fails when the heal takes more
 * than 2 s or Hamilton's catch-up costs 5% or more of a full one.
 */
const assertIssueTargets = false

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
const assertTargets = assertIssueTargets || process.argv.includes("--assert-targets")

const repository = fileURLToPath(new URL("..", import.meta.url))
const names = Object.keys(defaultHerd.servers)

const seconds = (ms: number) => (ms / 1000).toFixed(2)
const say = (line: string) => Console.log(`netns-test: ${line}`)

const keepLogs = argument("--keep-logs")

/** The servers' configs, data and logs; their logs copied to --keep-logs DIR first, when given. */
const tempRoot = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "herd-netns-"))),
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

const program = Effect.gen(function*() {
  const startedAt = yield* Clock.currentTimeMillis
  yield* Hosts.prerequisites
  yield* Hosts.removeLeftovers
  // Once, before any server: five processes starting at once would each
  // rebuild a stale bundle.
  yield* must(process.execPath, [join(repository, "packages/cli/build.mjs")], 120_000)

  const subnet = yield* Hosts.freeSubnet
  const plan = Hosts.planHosts(names, subnet)
  yield* Hosts.makeHosts(plan, lossProbability)
  const root = yield* tempRoot
  const herd = Servers.writeConfigs(plan, defaultHerd, root)
  const spec = (name: string) => Servers.specOf(herd, name)
  yield* say(
    `five hosts ${plan.hosts.map((host) => `${host.name} ${host.address}`).join(", ")} ` +
      `(namespaces ${plan.hosts[0]?.namespace.replace(/-[a-z]+$/, "")}-*), ${lossProbability * 100}% of each host's input dropped`
  )

  const servers = yield* Servers.makeServers(herd, repository)
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
  yield* Hosts.partition(plan, "Parker")
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
  yield* Hosts.heal(plan, "Parker")
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
      (assertTargets ? "" : " (not asserted yet)")
  )
  yield* say(
    `A: link events logged from the partition to convergence: ${downs.length === 0 ? "none (no link was ever seen down)" : downs.join(", ")}`
  )
  if (healMs > healTargetSeconds * 1000) {
    yield* say(
      "A: today links do not notice silence: a stalled TCP connection is left to its retransmission back-off, " +
        "so the heal is noticed only at the next retransmission (the heartbeats of issue 17 point 3 are not in yet)"
    )
  }

  // Scenario B: bytes Hamilton receives from Parker, its one neighbour, on
  // both their links, counted by iptables on Hamilton's INPUT.
  const hamilton = yield* spec("Hamilton")
  const parker = yield* spec("Parker")
  yield* Hosts.countLinkBytes(plan, "Hamilton", "Parker", hamilton.port, parker.port)
  const others = names.filter((name) => name !== "Hamilton")

  const restartHamilton = Effect.gen(function*() {
    const before = yield* Hosts.linkBytes(plan, "Hamilton")
    const startAt = yield* Clock.currentTimeMillis
    yield* servers.start("Hamilton")
    const equalMs = yield* Servers.waitEqual(servers, names, expected, startAt, convergeBoundMs, "after Hamilton's restart", 50)
    const wire = (yield* Hosts.linkBytes(plan, "Hamilton")) - before
    const status = yield* servers.statusOf("Hamilton")
    const app = Option.match(status, {
      onNone: () => Number.NaN,
      onSome: (report) => report.links.reduce((sum, link) => link.peer === "Parker" ? sum + link.bytesReceived : sum, 0)
    })
    return { equalMs, wire, app }
  })

  // A full catch-up, measured: Hamilton restarted with its data deleted.
  yield* servers.stop("Hamilton")
  rmSync(join(hamilton.dir, "data"), { recursive: true, force: true })
  const full = yield* restartHamilton
  yield* say(
    `B: full catch-up (Hamilton restarted with its data deleted, ${expected} records): ${full.wire} bytes from Parker ` +
      `on the wire (Hamilton's /status: ${full.app} bytes received from Parker), all five equal ${seconds(full.equalMs)} s after its start`
  )

  // The restart with its store, after 100 records it has not seen.
  yield* servers.stop("Hamilton")
  const newAt = yield* Clock.currentTimeMillis
  yield* reportAt("Alford", "b-alford", 100)
  yield* Servers.waitEqual(servers, others, expected, newAt, convergeBoundMs, "the 100 new records while Hamilton is down")
  const resumed = yield* restartHamilton
  const ratio = resumed.wire / full.wire
  yield* say(
    `B: Hamilton restarted with its store after 100 new records at Alford: ${resumed.wire} bytes from Parker on the wire ` +
      `(Hamilton's /status: ${resumed.app}), all five equal ${seconds(resumed.equalMs)} s after its start`
  )
  yield* say(
    `B: catch-up cost ${(ratio * 100).toFixed(1)}% of a full one; issue 17 target < ${catchUpTargetRatio * 100}%: ` +
      (ratio < catchUpTargetRatio ? "met" : "NOT MET") +
      (assertTargets ? "" : " (not asserted yet: every link-up still sends the whole store)")
  )

  if (assertTargets) {
    if (healMs > healTargetSeconds * 1000) {
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
  }
  yield* say(`PASS in ${seconds((yield* Clock.currentTimeMillis) - startedAt)} s (then cleanup)`)
})

const main = Effect.scoped(program).pipe(
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
