/**
 * Five hosts on one machine: a network namespace per server, each joined by a
 * veth pair to a Linux bridge in a hub namespace, and one more veth from the
 * root namespace to that bridge, so the test itself (the control host)
 * reaches every server's port and admin endpoint. Every iptables rule lives
 * inside a server's namespace and goes with it; the root namespace gets only
 * the control veth (and its address), removed at the end.
 */
import * as CommandExecutor from "@effect/platform/CommandExecutor"
import { Console, Effect } from "effect"
import { isAlive } from "./Leftovers.ts"
import type { Address, Network } from "./Network.ts"
import { bestEffort, must, NetnsTestError, run } from "./Shell.ts"

/** Names of one run: the suffix is this process's pid, so a later run can tell a leftover from a live run. */
export interface HostsPlan {
  readonly suffix: string
  readonly hub: string
  /** The root namespace's end of the control veth. */
  readonly controlLink: string
  readonly controlAddress: string
  readonly subnet: string
  readonly hosts: ReadonlyArray<{ readonly name: string; readonly namespace: string; readonly address: string }>
}

const namespacePrefix = "herd-nt-"
const linkPrefix = "hn"

export const planHosts = (names: ReadonlyArray<string>, subnet: string): HostsPlan => {
  const suffix = process.pid.toString(36)
  return {
    suffix,
    hub: `${namespacePrefix}${suffix}-hub`,
    controlLink: `${linkPrefix}${suffix}c0`,
    controlAddress: `${subnet}.1`,
    subnet,
    hosts: names.map((name, index) => ({
      name,
      namespace: `${namespacePrefix}${suffix}-${name.toLowerCase()}`,
      address: `${subnet}.${11 + index}`
    }))
  }
}

const ip = (...args: ReadonlyArray<string>) => must("ip", args)
const inNamespace = (namespace: string, command: string, ...args: ReadonlyArray<string>) =>
  must("ip", ["netns", "exec", namespace, command, ...args])
const iptables = (namespace: string, ...args: ReadonlyArray<string>) =>
  inNamespace(namespace, "iptables", "-w", ...args)

/** Why this machine cannot make the hosts, or nothing when it can. */
export const prerequisites = Effect.gen(function*() {
  const uid = process.getuid?.()
  if (uid !== 0) {
    return yield* new NetnsTestError({
      reason: "Prerequisite",
      message: `cannot make network namespaces: not running as root (uid ${uid ?? "unknown"}); run it as root, as CI does`
    })
  }
  const hasIp = yield* run("ip", ["-V"]).pipe(Effect.map((ran) => ran.code === 0), Effect.orElseSucceed(() => false))
  if (!hasIp) {
    return yield* new NetnsTestError({
      reason: "Prerequisite",
      message: "cannot make network namespaces: no `ip` command (Debian package iproute2)"
    })
  }
  const hasIptables = yield* run("iptables", ["-V"]).pipe(Effect.map((ran) => ran.code === 0), Effect.orElseSucceed(() => false))
  if (!hasIptables) {
    yield* Console.log("netns-test: iptables is missing: installing it (apt-get install -y iptables)")
    yield* must("apt-get", ["install", "-y", "-q", "--no-install-recommends", "iptables"], 180_000).pipe(
      Effect.orElse(() => must("apt-get", ["update", "-q"], 180_000).pipe(
        Effect.zipRight(must("apt-get", ["install", "-y", "-q", "--no-install-recommends", "iptables"], 180_000))
      )),
      Effect.mapError((cause) =>
        new NetnsTestError({ reason: "Prerequisite", message: `cannot install iptables: ${cause.message}`, cause })
      )
    )
  }
  // Root is not always enough (a container without CAP_SYS_ADMIN or
  // CAP_NET_ADMIN, a kernel without veth or nf_tables): try each thing the
  // hosts need once, in a namespace of its own, and say which failed.
  const probe = `${namespacePrefix}${process.pid.toString(36)}-probe`
  const cannot = (what: string) => (error: NetnsTestError) =>
    new NetnsTestError({ reason: "Prerequisite", message: `cannot make network namespaces: ${what}: ${error.message}`, cause: error })
  yield* Effect.scoped(
    Effect.gen(function*() {
      yield* Effect.acquireRelease(
        ip("netns", "add", probe).pipe(Effect.mapError(cannot("ip netns add failed"))),
        () => bestEffort("ip", ["netns", "del", probe])
      )
      yield* ip("-n", probe, "link", "add", "probe0", "type", "veth", "peer", "name", "probe1").pipe(
        Effect.mapError(cannot("no veth pair"))
      )
      yield* ip("-n", probe, "link", "add", "probebr", "type", "bridge").pipe(Effect.mapError(cannot("no bridge")))
      yield* iptables(probe, "-A", "INPUT", "-m", "statistic", "--mode", "random", "--probability", "0.01", "-j", "DROP").pipe(
        Effect.mapError(cannot("iptables does not work inside a namespace"))
      )
    })
  )
})

/** A /24 of 10.x.0.0 that no route of the root namespace uses yet. */
export const freeSubnet = Effect.gen(function*() {
  const routes = yield* ip("-4", "route", "show", "table", "all")
  for (let second = 77; second < 127; second++) {
    if (!routes.includes(`10.${second}.`)) return `10.${second}.0`
  }
  return yield* new NetnsTestError({ reason: "Setup", message: "no free 10.x.0.0/24 subnet among 10.77-10.126" })
})

/** Kills every process left in a namespace of ours (a server this test started), by pid. */
const killInside = (namespace: string) =>
  run("ip", ["netns", "pids", namespace]).pipe(
    Effect.flatMap((ran) =>
      Effect.forEach(ran.stdout.split("\n").filter((line) => /^\d+$/.test(line.trim())), (pid) =>
        Effect.sync(() => {
          try {
            process.kill(Number(pid.trim()), "SIGKILL")
          } catch {
            // Gone already.
          }
        }))
    ),
    Effect.catchAll(() => Effect.void)
  )

/**
 * Removes what an earlier run of this test left when it could not clean up
 * (killed with SIGKILL, a second Ctrl-C): its namespaces and control veth,
 * told apart from a live run's by the run's pid in their names.
 */
export const removeLeftovers = Effect.gen(function*() {
  const listed = yield* run("ip", ["netns", "list"]).pipe(Effect.map((ran) => ran.stdout), Effect.orElseSucceed(() => ""))
  const stale = new Set<string>()
  for (const line of listed.split("\n")) {
    const namespace = line.trim().split(/\s+/)[0] ?? ""
    const match = /^herd-nt-([0-9a-z]+)-/.exec(namespace)
    if (match === null || match[1] === undefined) continue
    const pid = Number.parseInt(match[1], 36)
    if (pid === process.pid || isAlive(pid)) continue
    stale.add(match[1])
    yield* killInside(namespace)
    yield* bestEffort("ip", ["netns", "del", namespace])
  }
  for (const suffix of stale) yield* bestEffort("ip", ["link", "del", `${linkPrefix}${suffix}c0`])
  if (stale.size > 0) yield* Console.log(`netns-test: removed the namespaces of ${stale.size} earlier run(s) of this test`)
})

/** A namespace that is deleted (with whatever is left inside it) when the scope closes. */
const namespace = (name: string) =>
  Effect.acquireRelease(
    ip("netns", "add", name),
    () => killInside(name).pipe(Effect.zipRight(bestEffort("ip", ["netns", "del", name])))
  )

/** Makes the hosts of the plan, all removed when the scope closes. */
export const makeHosts = (plan: HostsPlan, lossProbability: number) =>
  Effect.gen(function*() {
    yield* namespace(plan.hub)
    yield* ip("-n", plan.hub, "link", "add", "br0", "type", "bridge")
    yield* ip("-n", plan.hub, "link", "set", "br0", "up")

    // The control veth is made in the root namespace; its end there is
    // deleted by name (deleting either end deletes the pair).
    yield* Effect.acquireRelease(
      ip("link", "add", plan.controlLink, "type", "veth", "peer", "name", `${linkPrefix}${plan.suffix}c1`),
      () => bestEffort("ip", ["link", "del", plan.controlLink])
    )
    yield* ip("link", "set", `${linkPrefix}${plan.suffix}c1`, "netns", plan.hub)
    yield* ip("-n", plan.hub, "link", "set", `${linkPrefix}${plan.suffix}c1`, "master", "br0", "up")
    yield* ip("addr", "add", `${plan.controlAddress}/24`, "dev", plan.controlLink)
    yield* ip("link", "set", plan.controlLink, "up")

    for (const [index, host] of plan.hosts.entries()) {
      yield* namespace(host.namespace)
      const inside = `${linkPrefix}${plan.suffix}h${index}`
      const outside = `${linkPrefix}${plan.suffix}b${index}`
      yield* Effect.acquireRelease(
        ip("link", "add", inside, "type", "veth", "peer", "name", outside),
        // Gone with its namespace once moved; this is for a failure before.
        () => bestEffort("ip", ["link", "del", inside])
      )
      yield* ip("link", "set", inside, "netns", host.namespace)
      yield* ip("link", "set", outside, "netns", plan.hub)
      yield* ip("-n", plan.hub, "link", "set", outside, "master", "br0", "up")
      yield* ip("-n", host.namespace, "link", "set", "lo", "up")
      yield* ip("-n", host.namespace, "addr", "add", `${host.address}/24`, "dev", inside)
      yield* ip("-n", host.namespace, "link", "set", inside, "up")
      yield* iptables(
        host.namespace,
        "-A", "INPUT", "-m", "statistic", "--mode", "random", "--probability", String(lossProbability),
        "-m", "comment", "--comment", "herd-loss", "-j", "DROP"
      )
    }
  })

const hostOf = (plan: HostsPlan, name: string) => {
  const host = plan.hosts.find((candidate) => candidate.name === name)
  return host === undefined
    ? Effect.fail(new NetnsTestError({ reason: "Setup", message: `no host for ${name}` }))
    : Effect.succeed(host)
}

// Everything in and out is dropped, so TCP stalls rather than closes; the
// control host is let through, so the test can still report clients at the
// partitioned server and read its status.
const partitionRules = (plan: HostsPlan): ReadonlyArray<ReadonlyArray<string>> => [
  ["INPUT", "-m", "comment", "--comment", "herd-partition", "-j", "DROP"],
  ["INPUT", "-s", plan.controlAddress, "-m", "comment", "--comment", "herd-partition", "-j", "ACCEPT"],
  ["OUTPUT", "-m", "comment", "--comment", "herd-partition", "-j", "DROP"],
  ["OUTPUT", "-d", plan.controlAddress, "-m", "comment", "--comment", "herd-partition", "-j", "ACCEPT"]
]

/** Cuts a host off from every other server (each rule inserted first, the control host's ACCEPT before the DROP). */
export const partition = (plan: HostsPlan, name: string) =>
  Effect.gen(function*() {
    const host = yield* hostOf(plan, name)
    for (const [chain, ...rule] of partitionRules(plan)) {
      if (chain !== undefined) yield* iptables(host.namespace, "-I", chain, "1", ...rule)
    }
  })

export const heal = (plan: HostsPlan, name: string) =>
  Effect.gen(function*() {
    const host = yield* hostOf(plan, name)
    for (const [chain, ...rule] of partitionRules(plan)) {
      if (chain !== undefined) yield* iptables(host.namespace, "-D", chain, ...rule)
    }
  })

/**
 * Counts, on `name`'s INPUT (after the loss rule: what it took in), the TCP
 * bytes from `from` on both of their links: the one `from` dialled (to
 * `port`) and the one `name` dialled (from `fromPort`).
 */
export const countLinkBytes = (plan: HostsPlan, name: string, from: string, port: number, fromPort: number) =>
  Effect.gen(function*() {
    const host = yield* hostOf(plan, name)
    const source = yield* hostOf(plan, from)
    yield* iptables(host.namespace, "-A", "INPUT", "-s", source.address, "-p", "tcp", "--dport", String(port),
      "-m", "comment", "--comment", "herd-link-bytes")
    yield* iptables(host.namespace, "-A", "INPUT", "-s", source.address, "-p", "tcp", "--sport", String(fromPort),
      "-m", "comment", "--comment", "herd-link-bytes")
  })

/** The bytes the `herd-link-bytes` rules of `name` have counted so far (IP headers included). */
export const linkBytes = (plan: HostsPlan, name: string) =>
  Effect.gen(function*() {
    const host = yield* hostOf(plan, name)
    const listing = yield* iptables(host.namespace, "-L", "INPUT", "-n", "-v", "-x")
    let bytes = 0
    for (const line of listing.split("\n")) {
      if (!line.includes("/* herd-link-bytes */")) continue
      const [, counted] = line.trim().split(/\s+/)
      bytes += Number(counted ?? 0)
    }
    return bytes
  })

/**
 * The five hosts as the scenarios' Network, made in the current scope:
 * every server on its host's address with the ports of `ports`.
 */
export const namespaceNetwork = (
  names: ReadonlyArray<string>,
  ports: Record<string, { readonly port: number; readonly httpPort: number }>,
  lossProbability: number
) =>
  Effect.gen(function*() {
    const plan = planHosts(names, yield* freeSubnet)
    yield* makeHosts(plan, lossProbability)
    const addresses: Record<string, Address> = {}
    for (const host of plan.hosts) {
      const port = ports[host.name]
      if (port === undefined) return yield* new NetnsTestError({ reason: "Setup", message: `no ports for ${host.name}` })
      addresses[host.name] = { host: host.address, port: port.port, httpPort: port.httpPort }
    }
    const addressOf = (name: string): Address => addresses[name] ?? { host: "0.0.0.0", port: 0, httpPort: 0 }
    const executor = yield* CommandExecutor.CommandExecutor
    const withExecutor = <A, E>(effect: Effect.Effect<A, E, CommandExecutor.CommandExecutor>) =>
      Effect.provideService(effect, CommandExecutor.CommandExecutor, executor)
    const network: Network = {
      kind: "namespaces",
      description: `five hosts ${plan.hosts.map((host) => `${host.name} ${host.address}`).join(", ")} ` +
        `(network namespaces ${namespacePrefix}${plan.suffix}-*, veth pairs to a bridge), ` +
        `${lossProbability * 100}% of each host's incoming packets dropped`,
      addressOf,
      viewOf: () => addresses,
      launcherOf: (name) => ["ip", "netns", "exec", plan.hosts.find((host) => host.name === name)?.namespace ?? name],
      partition: (name) => withExecutor(partition(plan, name)),
      heal: (name) => withExecutor(heal(plan, name)),
      countLinkBytes: (name, from) => withExecutor(countLinkBytes(plan, name, from, addressOf(name).port, addressOf(from).port)),
      linkBytes: (name) => withExecutor(linkBytes(plan, name)),
      bytesAre: "on the wire (iptables on its input: IP and TCP headers and retransmissions included)"
    }
    return network
  })
