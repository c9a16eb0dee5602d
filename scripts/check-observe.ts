/**
 * Issue 19's checks ("How it will be checked") on real processes: five
 * `herd serve` processes of the default herd (its names and links) on
 * 127.0.0.1 with HTTP ports, each with its own durable data directory and
 * log, run from a pinned copy of the bundle. Then:
 *
 *   1. `/metrics` of each server parses as the Prometheus text format (every
 *      line read against its grammar: scripts/support/PromText.ts) and holds
 *      the series of issue 19 point 1, its own only; two scrapes around a
 *      round of traffic: every counter (and histogram count, sum, bucket)
 *      non-decreasing; the requests by command and outcome, the Places
 *      requests and the reply latency histogram's count grown by exactly
 *      what was sent (one count a reply); each link's records and bytes
 *      both ways; the lag in records on every link whose dialler spoke the
 *      extended handshake (the old-style ones, which say no sequence
 *      numbers, are named).
 *   3. `herd status` exits 0 with `in sync` after a burst of IAMATs at all
 *      five; with Parker stopped and 100 new reports at its neighbour
 *      Alford, it exits 1 and names Hamilton (cut off behind Parker) as the
 *      one that differs, Parker down; with Parker back, in sync again.
 *   2. 200,000 clients filled; Hamilton stopped, its data directory deleted,
 *      started: its `/healthz`, polled from its first answer, must answer
 *      503 while the catch-up is under way (its store short of the herd's
 *      records) and 200 once it is done, never before, within 60 s.
 *   4. The herd stopped, one server alone with `log: { wire: "full",
 *      maxBytes: 10 MB, keep: 3 }` under `loadgen iamat` (50 connections,
 *      depth 16) for one minute: its log directory, sampled every second,
 *      stays under 40 MB, while the log writes many times that.
 *
 * (2 runs after 3: the fill makes every later step slower.) loadgen is built
 * from ../shared/tools/loadgen with `cargo build --release --offline` into
 * the run's temporary directory, alongside checks 1-3; without cargo or
 * that folder, bench/client.ts (the same load in Node worker threads)
 * drives check 4; `--loadgen PATH` takes a built binary.
 *
 * Every figure is printed beside its target; a failure is one FAIL line and
 * exit 1. Every process and temporary file is removed on success, failure
 * and Ctrl-C (130).
 *
 *   node --conditions=@herd/source --import tsx scripts/check-observe.ts [--loadgen PATH] [--keep DIR]
 */
import { Clock, Console, Duration, Effect, Fiber, Option } from "effect"
import { spawnSync } from "node:child_process"
import { cpSync, existsSync, readdirSync, rmSync, statSync } from "node:fs"
import { join } from "node:path"
import { LoadClient } from "../bench/client.ts"
import { defaultHerd } from "../packages/cli/src/DefaultHerd.ts"
import {
  argument,
  fail,
  getJson,
  getText,
  type Herd,
  iamat,
  type LinkEntry,
  linkEntries,
  makeHerd,
  pinnedBundle,
  removeLeftovers,
  repository,
  request,
  runCheck,
  runProcess,
  type Spec,
  tempDirectory,
  waitEqual,
  writeHerd
} from "./support/Herd.ts"
import { type Family, parseExposition, seriesKey } from "./support/PromText.ts"

const prefix = "herd-observe"
const names = Object.keys(defaultHerd.servers)
const links = defaultHerd.links
const neighboursOf = (name: string) => links.flatMap(([a, b]) => (a === name ? [b] : b === name ? [a] : []))

const fillClients = 200_000
const healthzBoundMs = 60_000
const healthzPollMs = 5
const logLimitBytes = 40_000_000
const loadSeconds = 60
const loadWarmupSeconds = 2

const loadgenGiven = argument("--loadgen")
const keepDir = argument("--keep")

const say = (line: string) => Console.log(`check-observe: ${line}`)
const secs = (ms: number) => (ms / 1000).toFixed(2)
const mb = (bytes: number) => (bytes / 1_000_000).toFixed(1)
const thousands = (n: number) => n.toLocaleString("en-US")

// ---------------------------------------------------------------- loadgen

type LoadDriver =
  | { readonly kind: "loadgen"; readonly path: string; readonly how: string }
  | { readonly kind: "node"; readonly how: string }

const cargoCommand = (): string | undefined => {
  for (const candidate of ["cargo", join(process.env["HOME"] ?? "/root", ".cargo/bin/cargo")]) {
    const probe = spawnSync(candidate, ["--version"], { timeout: 10_000, stdio: "ignore" })
    if (probe.status === 0) return candidate
  }
  return undefined
}

/**
 * loadgen as the project builds it (its README: standard library only, so
 * `--offline` works), into the run's own target directory; niced, so that
 * the build takes what the herd leaves of the two cores.
 */
const buildLoadgen = (root: string): Effect.Effect<LoadDriver> =>
  Effect.gen(function*() {
    if (loadgenGiven !== undefined) return { kind: "loadgen", path: loadgenGiven, how: `given: ${loadgenGiven}` }
    const manifest = join(repository, "../shared/tools/loadgen/Cargo.toml")
    const cargo = cargoCommand()
    if (cargo === undefined || !existsSync(manifest)) {
      return { kind: "node", how: `bench/client.ts in Node worker threads (${cargo === undefined ? "no cargo" : `no ${manifest}`})` }
    }
    const targetDir = join(root, "loadgen-target")
    const built = yield* runProcess(
      "nice",
      ["-n", "10", cargo, "build", "--release", "--offline", "--quiet", "--manifest-path", manifest, "--target-dir", targetDir],
      { timeoutMs: 180_000, detached: true }
    ).pipe(Effect.either)
    if (built._tag === "Left" || built.right.code !== 0) {
      const why = built._tag === "Left" ? built.left.message : built.right.stderr.trim().split("\n").slice(-2).join(" | ")
      return { kind: "node", how: `bench/client.ts in Node worker threads (loadgen did not build: ${why})` }
    }
    return { kind: "loadgen", path: join(targetDir, "release/loadgen"), how: `loadgen built by cargo in ${secs(built.right.ms)} s` }
  })

// ---------------------------------------------------------------- metrics

interface Scrape {
  readonly families: ReadonlyMap<string, Family>
  readonly lines: number
  /** Every sample's value by its series key. */
  readonly values: ReadonlyMap<string, number>
}

const scrape = (spec: Spec) =>
  Effect.gen(function*() {
    const answer = yield* getText(spec.httpPort, "/metrics")
    if (answer.status !== 200) return yield* fail(`${spec.name}'s /metrics answered HTTP ${answer.status}: ${answer.body.slice(0, 200)}`)
    if (!answer.contentType.startsWith("text/plain") || !answer.contentType.includes("version=0.0.4")) {
      return yield* fail(`${spec.name}'s /metrics content type is ${JSON.stringify(answer.contentType)}, not the text format's`)
    }
    const parsed = parseExposition(answer.body)
    if (!parsed.ok) {
      return yield* fail(
        `${spec.name}'s /metrics is not the Prometheus text format: ${parsed.errors.slice(0, 5).join("; ")}` +
          (parsed.errors.length > 5 ? ` (and ${parsed.errors.length - 5} more)` : "")
      )
    }
    const values = new Map<string, number>()
    for (const family of parsed.families.values()) {
      for (const sample of family.samples) values.set(seriesKey(sample.name, sample.labels), sample.value)
    }
    return { families: parsed.families, lines: parsed.lines, values } satisfies Scrape
  })

/** The value of one series, or undefined; `labels` besides `server`. */
const valueOf = (scraped: Scrape, server: string, name: string, labels: Record<string, string> = {}) =>
  scraped.values.get(seriesKey(name, { server, ...labels }))

const requestOutcomes: ReadonlyArray<readonly [string, string]> = [
  ["IAMAT", "stored"],
  ["IAMAT", "not_newer"],
  ["IAMAT", "refused"],
  ["WHATSAT", "answered"],
  ["WHATSAT", "unknown_client"],
  ["AT", "stored"],
  ["AT", "not_newer"],
  ["AT", "refused"],
  ["PEER", "accepted"],
  ["PEER", "refused"],
  ["invalid", "refused"]
]

/**
 * What issue 19 point 1 lists, as the series each server must show (from
 * packages/server/src/Metrics.ts, named as the exporter prints them):
 * missing ones, each named. The lag in records is asked for on the links
 * whose neighbour spoke the extended handshake to this server.
 */
const missingSeries = (scraped: Scrape, server: string, lagKnownFrom: (peer: string) => boolean): Array<string> => {
  const missing: Array<string> = []
  const need = (name: string, type: Family["type"], labels: Record<string, string> = {}) => {
    const family = scraped.families.get(name)
    const label = `${name}${Object.keys(labels).length === 0 ? "" : JSON.stringify(labels)}`
    if (family === undefined) return missing.push(`${label} (no such family)`)
    if (family.type !== type) return missing.push(`${name} is a ${family.type}, not a ${type}`)
    const sampleName = type === "histogram" ? `${name}_count` : name
    if (valueOf(scraped, server, sampleName, labels) === undefined) missing.push(label)
  }
  for (const [command, outcome] of requestOutcomes) need("herd_requests_total", "counter", { command, outcome })
  need("herd_reply_latency_seconds", "histogram")
  need("herd_connections_open", "gauge")
  need("herd_connections_accepted_total", "counter")
  need("herd_connections_refused_total", "counter")
  need("herd_records", "gauge")
  need("herd_store_commit_seconds", "histogram")
  need("herd_log_bytes_written_total", "counter")
  for (const peer of neighboursOf(server)) {
    need("herd_link_up", "gauge", { peer })
    need("herd_link_records_sent_total", "counter", { peer })
    need("herd_link_records_received_total", "counter", { peer })
    need("herd_link_bytes_sent_total", "counter", { peer })
    need("herd_link_bytes_received_total", "counter", { peer })
    need("herd_link_catch_ups_total", "counter", { peer })
    need("herd_link_catch_up_records_total", "counter", { peer })
    need("herd_link_catch_up_seconds", "histogram", { peer })
    need("herd_link_dial_failures_total", "counter", { peer })
    // Sequence numbers behind are known only where the neighbour's handshake said them (CATCHUP, MARK).
    if (lagKnownFrom(peer)) need("herd_link_lag_records", "gauge", { peer })
    need("herd_link_seconds_since_last_record", "gauge", { peer })
  }
  const places = scraped.families.get("herd_places_requests_total")
  if (places === undefined || places.type !== "counter") missing.push("herd_places_requests_total (no counter family)")
  else if (!places.samples.some((s) => s.labels["server"] === server && s.labels["provider"] === "offline" && s.labels["status"] !== undefined)) {
    missing.push(`herd_places_requests_total{provider="offline",status=...}`)
  }
  need("herd_places_latency_seconds", "histogram", { provider: "offline" })
  return missing
}

/** Series of other servers in a server's scrape (each shows its own only). */
const foreignSeries = (scraped: Scrape, server: string): number => {
  let foreign = 0
  for (const family of scraped.families.values()) {
    for (const sample of family.samples) if (sample.labels["server"] !== server) foreign++
  }
  return foreign
}

/** The counter-like series (counters; histograms' counts, sums and buckets) that went down or vanished between two scrapes. */
const decreased = (before: Scrape, after: Scrape): { readonly checked: number; readonly down: Array<string> } => {
  let checked = 0
  const down: Array<string> = []
  for (const family of before.families.values()) {
    if (family.type !== "counter" && family.type !== "histogram") continue
    for (const sample of family.samples) {
      const key = seriesKey(sample.name, sample.labels)
      const later = after.values.get(key)
      checked++
      if (later === undefined) down.push(`${key} vanished`)
      else if (later < sample.value) down.push(`${key} ${sample.value} -> ${later}`)
    }
  }
  return { checked, down }
}

// ---------------------------------------------------------------- the log directory

/** The bytes of the files in a directory now (a file rotated away between the listing and its stat counts nothing). */
const directoryBytes = (dir: string): { readonly bytes: number; readonly files: number } => {
  let bytes = 0
  let files = 0
  let entries: Array<string> = []
  try {
    entries = readdirSync(dir)
  } catch {
    return { bytes, files }
  }
  for (const entry of entries) {
    try {
      bytes += statSync(join(dir, entry)).size
      files++
    } catch {
      // Renamed or removed by a rotation meanwhile: it is counted under its new name, or gone.
    }
  }
  return { bytes, files }
}

// ---------------------------------------------------------------- the checks

const statusCommand = (bundle: string, spec: Spec, json = false) =>
  runProcess(process.execPath, [bundle, "status", "--config", spec.config, ...(json ? ["--json"] : [])], { timeoutMs: 30_000 })

const lastLine = (text: string) => text.trim().split("\n").at(-1) ?? ""

/** Check 1: each server's /metrics, before and after a round of traffic whose counts are known. */
const checkMetrics = (herd: Herd, missed: Array<string>, expectedBefore: number) =>
  Effect.gen(function*() {
    const specs = yield* Effect.forEach(names, herd.spec)
    const first = yield* Effect.forEach(specs, scrape, { concurrency: "unbounded" })
    const firstAt = yield* Clock.currentTimeMillis
    // The round: at each server 200 new clients, 10 reports older than what
    // it holds, 5 too far ahead, 20 WHATSAT for known clients and 5 for
    // unknown ones, 3 lines that are no command.
    const farAheadSeconds = Math.floor(Date.now() / 1000) + 3600
    const round = (name: string) => [
      ...Array.from({ length: 200 }, (_, i) => iamat(`m2-${name}-${i}`, i)),
      ...Array.from({ length: 10 }, (_, i) => `IAMAT m1-${name}-${i} +10.000000+20.000000 1000000000.000000000`),
      ...Array.from({ length: 5 }, (_, i) => `IAMAT ahead-${name}-${i} +10.000000+20.000000 ${farAheadSeconds}.000000000`),
      ...Array.from({ length: 20 }, (_, i) => `WHATSAT m1-${name}-${i} 10 5`),
      ...Array.from({ length: 5 }, (_, i) => `WHATSAT nobody-${name}-${i} 10 5`),
      "HELLO there",
      "IAMAT too few",
      "WHATSAT m1 x y"
    ]
    const sent = { stored: 200, notNewer: 10, ahead: 5, answered: 20, unknown: 5, invalid: 3 }
    const replies = 200 + 10 + 5 + 20 + 5 + 3
    yield* Effect.forEach(specs, (spec) => request(spec, round(spec.name)), { concurrency: "unbounded", discard: true })
    const expected = expectedBefore + sent.stored * names.length
    yield* waitEqual(herd, names, expected, yield* Clock.currentTimeMillis, "after the metrics round")
    const second = yield* Effect.forEach(specs, scrape, { concurrency: "unbounded" })
    const scrapedApartMs = (yield* Clock.currentTimeMillis) - firstAt

    // How each link came up (the dialler's link-up entry): a neighbour taken for an old-style server sends
    // no CATCHUP or MARK, so the receiver knows no lag in sequence numbers on that link.
    const handshakes = new Map<string, string>()
    for (const spec of specs) {
      for (const entry of linkEntries(spec, 0)) if (entry.event === "link-up") handshakes.set(`${spec.name}->${entry.peer}`, entry.handshake)
    }
    const oldStyle = [...handshakes].filter(([, handshake]) => handshake === "old-style").map(([link]) => link)
    yield* say(
      `1: the links' handshakes at start (each dialler's link-up): ${[...handshakes].map(([link, handshake]) => `${link} ${handshake}`).join(", ")}; ` +
        `${oldStyle.length} of ${handshakes.size} old-style`
    )
    let families = 0
    let series = 0
    for (const [i, spec] of specs.entries()) {
      const before = first[i]
      const after = second[i]
      if (before === undefined || after === undefined) continue
      const name = spec.name
      families = Math.max(families, after.families.size)
      series = Math.max(series, after.values.size)
      const lagKnownFrom = (peer: string) => handshakes.get(`${peer}->${name}`) !== "old-style"
      const missing = missingSeries(after, name, lagKnownFrom)
      const foreign = foreignSeries(after, name)
      const { checked, down } = decreased(before, after)
      const delta = (metric: string, labels: Record<string, string> = {}) =>
        (valueOf(after, name, metric, labels) ?? Number.NaN) - (valueOf(before, name, metric, labels) ?? Number.NaN)
      const request = (command: string, outcome: string) => delta("herd_requests_total", { command, outcome })
      const grown: Array<[string, number, number]> = [
        ["IAMAT stored", request("IAMAT", "stored"), sent.stored],
        ["IAMAT not_newer", request("IAMAT", "not_newer"), sent.notNewer],
        ["IAMAT refused", request("IAMAT", "refused"), sent.ahead],
        ["WHATSAT answered", request("WHATSAT", "answered"), sent.answered],
        ["WHATSAT unknown_client", request("WHATSAT", "unknown_client"), sent.unknown],
        ["invalid refused", request("invalid", "refused"), sent.invalid],
        ["AT stored", request("AT", "stored"), sent.stored * (names.length - 1)],
        // A neighbour's new link is answered too (SINCE to its RESUME): none expected, counted if any.
        ["reply latency count", delta("herd_reply_latency_seconds_count"), replies + request("PEER", "accepted")]
      ]
      const placesDelta = (after.families.get("herd_places_requests_total")?.samples ?? [])
        .filter((s) => s.labels["server"] === name)
        .reduce((sum, s) => sum + s.value - (before.values.get(seriesKey(s.name, s.labels)) ?? 0), 0)
      grown.push(["Places requests (provider offline)", placesDelta, sent.answered])
      const records = valueOf(after, name, "herd_records")
      const peers = neighboursOf(name)
      const linkGrowth = peers.map((peer) => ({
        peer,
        up: valueOf(after, name, "herd_link_up", { peer }),
        sent: delta("herd_link_records_sent_total", { peer }),
        received: delta("herd_link_records_received_total", { peer }),
        bytesSent: delta("herd_link_bytes_sent_total", { peer }),
        bytesReceived: delta("herd_link_bytes_received_total", { peer }),
        catchUps: valueOf(after, name, "herd_link_catch_ups_total", { peer }),
        catchUpSeconds: valueOf(after, name, "herd_link_catch_up_seconds_count", { peer }),
        lag: valueOf(after, name, "herd_link_lag_records", { peer }),
        sinceLast: valueOf(after, name, "herd_link_seconds_since_last_record", { peer })
      }))
      yield* say(
        `1: ${name} /metrics: ${after.lines} lines, ${after.families.size} families, ${after.values.size} series, ` +
          `all parsed (target: the text format); series of point 1 missing: ${missing.length === 0 ? "none" : missing.join(", ")} (target none); ` +
          `of another server: ${foreign} (target 0); ${checked} counter/histogram series, ${down.length} went down (target 0)`
      )
      yield* say(
        `1: ${name} grew by (got/sent): ${grown.map(([what, got, want]) => `${what} ${got}/${want}`).join(", ")}; ` +
          `herd_records ${records} (target ${expected}); commits +${delta("herd_store_commit_seconds_count")}, ` +
          `log bytes +${delta("herd_log_bytes_written_total")}, connections accepted +${delta("herd_connections_accepted_total")}`
      )
      yield* say(
        `1: ${name} links: ${
          linkGrowth.map((link) =>
            `${link.peer} up=${link.up} records +${link.sent} sent/+${link.received} received, bytes +${link.bytesSent}/+${link.bytesReceived}, ` +
            `catch-ups ${link.catchUps} (${link.catchUpSeconds} timed), lag ${link.lag} records, ${link.sinceLast} s since its last record`
          ).join("; ")
        }`
      )
      if (missing.length > 0) missed.push(`${name}'s /metrics lacks ${missing.join(", ")}`)
      if (foreign > 0) missed.push(`${name}'s /metrics shows ${foreign} series of other servers`)
      if (down.length > 0) missed.push(`${name}'s counters went down: ${down.slice(0, 3).join(", ")}`)
      for (const [what, got, want] of grown) {
        if (got !== want) missed.push(`${name}'s ${what} grew by ${got} for ${want} sent (scrapes ${secs(scrapedApartMs)} s apart)`)
      }
      if (records !== expected) missed.push(`${name}'s herd_records is ${records}, its store holds ${expected}`)
      for (const link of linkGrowth) {
        if (link.up !== 1) missed.push(`${name}'s herd_link_up for ${link.peer} is ${link.up}`)
        // Every link carries at least the sender's own new clients each way.
        if (!(link.sent >= sent.stored && link.received >= sent.stored)) {
          missed.push(`${name}'s link with ${link.peer} counted ${link.sent} records sent and ${link.received} received, each at least ${sent.stored}`)
        }
        if (!(link.bytesSent > 0 && link.bytesReceived > 0)) missed.push(`${name}'s link with ${link.peer} counted no bytes one way`)
        if (!((link.catchUps ?? 0) >= 1 && (link.catchUpSeconds ?? 0) >= 1)) missed.push(`${name}'s link with ${link.peer} counted no catch-up`)
      }
      if (!(delta("herd_store_commit_seconds_count") > 0)) missed.push(`${name}'s store commit latency did not grow`)
      if (!(delta("herd_log_bytes_written_total") > 0)) missed.push(`${name}'s log bytes written did not grow`)
    }
    yield* say(
      `1: two scrapes of each of five servers ${secs(scrapedApartMs)} s apart, up to ${families} families and ${series} series a scrape; ` +
        `herd_link_lag_records asked of the ${handshakes.size - oldStyle.length} links whose dialler spoke the extended handshake, ` +
        `not of the ${oldStyle.length} old-style ones (${oldStyle.join(", ") || "none"}): a dialler that hears no SINCE within 500 ms ` +
        `from a neighbour it has not heard before takes it for an old-style server (README, catch-up by checkpoint)`
    )
    return expected
  })

/** Check 3: `herd status` in sync, then naming the server cut off behind a stopped one, then in sync again. */
const checkStatus = (herd: Herd, bundle: string, missed: Array<string>, expectedBefore: number) =>
  Effect.gen(function*() {
    const specs = yield* Effect.forEach(names, herd.spec)
    const alford = yield* herd.spec("Alford")
    const burst = 2000
    const burstFrom = yield* Clock.currentTimeMillis
    yield* Effect.forEach(specs, (spec) =>
      request(spec, Array.from({ length: burst }, (_, i) => iamat(`burst-${spec.name}-${i}`, i))), {
      concurrency: "unbounded",
      discard: true
    })
    let expected = expectedBefore + burst * names.length
    const equal = yield* waitEqual(herd, names, expected, burstFrom, "after the burst")
    const inSync = yield* statusCommand(bundle, alford)
    const inSyncLine = lastLine(inSync.stdout)
    yield* say(
      `3: after a burst of ${thousands(burst * names.length)} IAMATs (${burst} at each, all five equal ${secs(equal.ms)} s after): ` +
        `herd status exit ${inSync.code} (target 0) in ${inSync.ms} ms: "${inSyncLine}" (target: in sync, 5 running, ${expected} records, digest ${equal.digest})`
    )
    if (inSync.code !== 0 || !inSyncLine.startsWith(`in sync: 5 running, ${expected} records, digest ${equal.digest}`)) {
      missed.push(`herd status after the burst: exit ${inSync.code}, "${inSyncLine}"`)
    }

    // Parker stopped: Hamilton, whose only neighbour it is, is cut off from what Alford is told.
    yield* herd.stop("Parker", "SIGTERM")
    const fresh = 100
    yield* request(alford, Array.from({ length: fresh }, (_, i) => iamat(`cut-${i}`, i)))
    expected += fresh
    const reached = ["Alford", "Bolden", "Welsh"]
    yield* waitEqual(herd, reached, expected, yield* Clock.currentTimeMillis, "the new reports while Parker is down")
    const hamilton = yield* herd.status("Hamilton")
    const hamiltonCount = Option.match(hamilton, { onNone: () => Number.NaN, onSome: (s) => s.store.count })
    const apart = yield* statusCommand(bundle, alford)
    const apartLine = lastLine(apart.stdout)
    const parkerLine = apart.stdout.split("\n").find((line) => line.startsWith("Parker ")) ?? "(no line for Parker)"
    const apartJson = yield* statusCommand(bundle, alford, true)
    let differing: unknown = undefined
    let parkerUp: unknown = undefined
    try {
      const report = JSON.parse(apartJson.stdout) as {
        verdict: { differing: unknown }
        servers: Array<{ name: string; up: unknown }>
      }
      differing = report.verdict.differing
      parkerUp = report.servers.find((server) => server.name === "Parker")?.up
    } catch {
      // Not JSON: reported below.
    }
    yield* say(
      `3: Parker stopped, ${fresh} new clients at Alford (Alford, Bolden, Welsh at ${expected}, Hamilton at ${hamiltonCount}): ` +
        `herd status exit ${apart.code} (target 1) in ${apart.ms} ms: "${apartLine}"; its line for Parker: "${parkerLine.trim()}"; ` +
        `--json exit ${apartJson.code}: differing ${JSON.stringify(differing)} (target ["Hamilton"]), Parker up ${String(parkerUp)} (target false)`
    )
    const namesHamilton = apartLine.startsWith("not in sync: Hamilton (") && apartLine.includes("differs from Alford, Bolden, Welsh (") &&
      apartLine.endsWith("; 1 of 5 down")
    if (apart.code !== 1 || !namesHamilton || !/^Parker\s+down\b/.test(parkerLine)) {
      missed.push(`herd status with Parker stopped: exit ${apart.code}, "${apartLine}", "${parkerLine.trim()}"`)
    }
    if (apartJson.code !== 1 || JSON.stringify(differing) !== JSON.stringify(["Hamilton"]) || parkerUp !== false) {
      missed.push(`herd status --json with Parker stopped: exit ${apartJson.code}, differing ${JSON.stringify(differing)}, Parker up ${String(parkerUp)}`)
    }

    const backAt = yield* Clock.currentTimeMillis
    yield* herd.start("Parker")
    const back = yield* waitEqual(herd, names, expected, backAt, "after Parker's restart")
    const again = yield* statusCommand(bundle, alford)
    const againLine = lastLine(again.stdout)
    yield* say(
      `3: Parker started again: all five equal ${secs(back.ms)} s after; herd status exit ${again.code} (target 0): "${againLine}"`
    )
    if (again.code !== 0 || !againLine.startsWith(`in sync: 5 running, ${expected} records`)) {
      missed.push(`herd status after Parker's restart: exit ${again.code}, "${againLine}"`)
    }
    return expected
  })

interface Poll {
  readonly at: number
  /** The HTTP status; 0 for a request unanswered within its second. */
  readonly code: number
  readonly waitingFor: ReadonlyArray<string>
  /** The store's count by /status just before and just after this answer. */
  readonly countBefore: number
  readonly countAfter: number
  /** Whether the /status just after said ready (with `countAfter` records: one snapshot). */
  readonly statusReady: boolean
}

/** Waits (at most 5 s: the event log is written in batches) for a link entry that `found` picks. */
const waitLinkEntries = (spec: Spec, fromMs: number, found: (entries: ReadonlyArray<LinkEntry>) => boolean) =>
  Effect.gen(function*() {
    for (let i = 0; i < 50; i++) {
      const entries = linkEntries(spec, fromMs)
      if (found(entries)) return entries
      yield* Effect.sleep(Duration.millis(100))
    }
    return linkEntries(spec, fromMs)
  })

/** Check 2: a wiped Hamilton's /healthz through its catch-up. */
const checkHealthz = (herd: Herd, missed: Array<string>, expectedBefore: number) =>
  Effect.gen(function*() {
    const specs = yield* Effect.forEach(names, herd.spec)
    const share = fillClients / names.length
    const fillFrom = yield* Clock.currentTimeMillis
    yield* Effect.forEach(specs, (spec) =>
      request(spec, Array.from({ length: share }, (_, i) => iamat(`fill-${spec.name}-${i}`, i)), 120_000), {
      concurrency: "unbounded",
      discard: true
    })
    const expected = expectedBefore + fillClients
    const filled = yield* waitEqual(herd, names, expected, fillFrom, "after the fill", { intervalMs: 200, boundMs: 120_000 })
    yield* say(`2: filled ${thousands(fillClients)} clients (${thousands(share)} at each server): all five equal at ${thousands(expected)} ${secs(filled.ms)} s after the first report`)

    const hamilton = yield* herd.spec("Hamilton")
    const parker = yield* herd.spec("Parker")
    yield* herd.stop("Hamilton", "SIGTERM")
    rmSync(hamilton.dataDir, { recursive: true, force: true })
    const spawnedAt = yield* herd.launch("Hamilton")

    // Its /status: the store's count and the readiness /healthz answers, of one moment.
    const statusNow = Effect.map(
      Effect.either(getJson(hamilton.httpPort, "/status", 1000)),
      (answer) => {
        if (answer._tag === "Left") return { count: Number.NaN, ready: false }
        const body = answer.right.body as { ready?: unknown; store?: { count?: unknown } }
        return { count: typeof body.store?.count === "number" ? body.store.count : Number.NaN, ready: body.ready === true }
      }
    )
    // From its spawn: a refused connection is asked again until its first answer; then every answer is kept,
    // each with the store's count by /status just before and just after it (the count only grows).
    let firstAnswerAt = -1
    let lastCount = 0
    const polls: Array<Poll> = []
    let caughtUpAt = -1
    // The first 200 once its store held every record: what the check waits for, then a second more.
    let readyAfterAt = -1
    const unanswered = { refused: 0, timedOut: 0 }
    while (true) {
      const asked = yield* Effect.either(getJson(hamilton.httpPort, "/healthz", 1000))
      const now = yield* Clock.currentTimeMillis
      if (asked._tag === "Left") {
        yield* herd.alive("Hamilton")
        const cause = asked.left.cause
        const timedOut = cause instanceof Error && cause.name === "TimeoutError"
        if (firstAnswerAt >= 0) {
          // Busy taking its catch-up in: a probe unanswered within its second, which counts as not ready.
          if (!timedOut) return yield* fail(`Hamilton's /healthz stopped answering during its catch-up: ${String(cause)}`)
          polls.push({ at: now, code: 0, waitingFor: [], countBefore: lastCount, countAfter: lastCount, statusReady: false })
          if (now - firstAnswerAt > healthzBoundMs) break
          continue
        }
        if (timedOut) unanswered.timedOut++
        else unanswered.refused++
        if (now - spawnedAt > 30_000) return yield* fail(`Hamilton's /healthz did not answer within 30 s of its spawn: ${herd.outputOf("Hamilton")}`)
        yield* Effect.sleep(Duration.millis(healthzPollMs))
        continue
      }
      if (firstAnswerAt < 0) firstAnswerAt = now
      const body = asked.right.body as { waitingFor?: unknown }
      const waitingFor = Array.isArray(body.waitingFor) ? body.waitingFor.map(String) : []
      const after = yield* statusNow
      const countAfter = after.count
      const afterAt = yield* Clock.currentTimeMillis
      polls.push({ at: now, code: asked.right.status, waitingFor, countBefore: lastCount, countAfter, statusReady: after.ready })
      if (countAfter === expected && caughtUpAt < 0) caughtUpAt = afterAt
      if (asked.right.status === 200 && lastCount === expected && readyAfterAt < 0) readyAfterAt = now
      lastCount = Number.isNaN(countAfter) ? lastCount : countAfter
      if (readyAfterAt >= 0 && now - readyAfterAt >= 1000) break
      if (now - firstAnswerAt > healthzBoundMs) break
      yield* Effect.sleep(Duration.millis(healthzPollMs))
    }

    const unready = polls.filter((poll) => poll.code === 503)
    // Under way: the records had begun to arrive and were not all there yet.
    const duringRecords = unready.filter((poll) => poll.countBefore > 0 && poll.countAfter < expected)
    const sayingCatchUp = unready.filter((poll) =>
      poll.countAfter < expected && poll.waitingFor.some((why) => why.includes("catch-up") || why.includes("records behind"))
    )
    const reasons = [...new Set(unready.flatMap((poll) => poll.waitingFor.map((why) => why.replace(/\d+ records behind/, "N records behind"))))]
    // 200 while the store was short (by the count just after it), or /status ready with its own count short:
    // ready before the catch-up ended.
    const early = polls.filter((poll) => (poll.code === 200 || poll.statusReady) && poll.countAfter < expected)
    const firstEarly = early[0]
    const afterReady = readyAfterAt < 0 ? [] : polls.filter((poll) => poll.at > readyAfterAt)
    const flaps = afterReady.filter((poll) => poll.code !== 200).length
    const other = polls.filter((poll) => poll.code !== 200 && poll.code !== 503 && poll.code !== 0).length
    const stalled = polls.filter((poll) => poll.code === 0).length
    const rel = (at: number) => (at < 0 ? "never" : `${at - firstAnswerAt} ms`)
    yield* say(
      `2: Hamilton started with its data deleted: /healthz first answered ${firstAnswerAt - spawnedAt} ms after its spawn ` +
        `(before: ${unanswered.refused} refused, ${unanswered.timedOut} unanswered within 1 s); ` +
        `${polls.length} requests polled every ${healthzPollMs} ms: ${unready.length} answered 503, ${stalled} unanswered within 1 s, ` +
        `${sayingCatchUp.length} naming the catch-up with its store short (target >= 1), ${duringRecords.length} while its records arrived; ` +
        `waiting for: ${reasons.join(" / ")}`
    )
    yield* say(
      `2: from its first answer: its store held all ${thousands(expected)} records at ${rel(caughtUpAt)} (by /status), ` +
        `/healthz 200 after that at ${rel(readyAfterAt)} (target: within ${healthzBoundMs / 1000} s), ` +
        `200 (or ready by /status) with its store short: ${early.length} (target 0)` +
        (firstEarly === undefined
          ? ""
          : `, the first at ${rel(firstEarly.at)} with ${thousands(firstEarly.countAfter)} records, the last at ${rel(early.at(-1)?.at ?? -1)}`) +
        `; not 200 in the second after: ${flaps} of ${afterReady.length} (target 0); neither 200 nor 503: ${other}`
    )
    yield* say(
      `2: /healthz in order: ${
        polls.reduce<Array<{ code: number; n: number; from: number; to: number }>>((runs, poll) => {
          const last = runs.at(-1)
          if (last !== undefined && last.code === poll.code) {
            last.n++
            last.to = poll.countAfter
          } else runs.push({ code: poll.code, n: 1, from: poll.countBefore, to: poll.countAfter })
          return runs
        }, []).map((run) => `${run.n} x ${run.code === 0 ? "no answer in 1 s" : run.code} (records ${thousands(run.from)}..${thousands(run.to)})`)
          .join(", ")
      }`
    )
    const entries = (yield* waitLinkEntries(parker, spawnedAt, (found) => found.some((entry) => entry.event === "link-up" && entry.peer === "Hamilton")))
      .filter((entry) => entry.peer === "Hamilton")
    const described = entries.map((entry) =>
      entry.event === "link-up"
        ? `up ${entry.at - spawnedAt} ms after the spawn (${thousands(entry.catchUp)} records, ${entry.handshake}, ${entry.catchUpMs} ms)`
        : `${entry.event.slice(5)} ${entry.at - spawnedAt} ms after the spawn (${entry.reason})`
    )
    yield* say(`2: Parker's log of its link to Hamilton: ${described.length === 0 ? "nothing" : described.join("; ")}`)
    if (sayingCatchUp.length === 0) missed.push(`Hamilton's /healthz never answered 503 for its catch-up with its store short (${unready.length} 503s: ${reasons.join(" / ")})`)
    if (readyAfterAt < 0) missed.push(`Hamilton's /healthz was not 200 with its store full within ${healthzBoundMs / 1000} s of its first answer`)
    if (firstEarly !== undefined) {
      missed.push(
        `Hamilton's /healthz answered 200 ${early.length} times before its catch-up ended, the first ${rel(firstEarly.at)} after its first answer ` +
          `with ${thousands(firstEarly.countAfter)} of ${thousands(expected)} records`
      )
    }
    if (flaps > 0) missed.push(`Hamilton's /healthz was not 200 ${flaps} times in the second after it was ready`)
    if (other > 0) missed.push(`Hamilton's /healthz answered ${other} times neither 200 nor 503`)
    const equal = yield* waitEqual(herd, names, expected, yield* Clock.currentTimeMillis, "after Hamilton's catch-up")
    yield* say(`2: all five equal (digest ${equal.digest}) ${secs(equal.ms)} s after the polling ended`)
  })

/** Check 4: one server's log directory under a minute of loadgen iamat. */
const checkLogBound = (root: string, bundle: string, driver: LoadDriver, missed: Array<string>) =>
  Effect.gen(function*() {
    const name = "Alford"
    const specs = yield* writeHerd(join(root, "alone"), [name], [], {
      places: { provider: "offline" },
      log: { wire: "full", maxBytes: 10_000_000, keep: 3 },
      reconnect: defaultHerd.reconnect
    })
    const herd = yield* makeHerd(specs, bundle)
    const spec = yield* herd.spec(name)
    yield* herd.start(name)
    const target = { host: "127.0.0.1", port: spec.port }
    const samples: Array<{ readonly at: number; readonly bytes: number; readonly files: number }> = []
    const from = yield* Clock.currentTimeMillis
    const sampler = yield* Effect.forkScoped(Effect.forever(
      Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.sync(() => samples.push({ at: now - from, ...directoryBytes(spec.logDir) }))).pipe(
        Effect.zipRight(Effect.sleep(Duration.seconds(1)))
      )
    ))
    const durationArgs = ["--duration", String(loadSeconds - loadWarmupSeconds), "--warmup", String(loadWarmupSeconds)]
    const load = driver.kind === "loadgen"
      ? yield* Effect.map(
        runProcess(driver.path, ["iamat", "--target", `${target.host}:${target.port}`, "--conns", "50", "--depth", "16", ...durationArgs], {
          timeoutMs: (loadSeconds + 60) * 1000
        }),
        (finished) => {
          const summary = finished.stdout.split("\n").filter((line) => line.startsWith("{")).at(-1)
          let figures = `exit ${finished.code}`
          try {
            const parsed = JSON.parse(summary ?? "") as Record<string, unknown>
            figures = `${Math.round(Number(parsed["throughput_rps"]))} req/s in its window, ` +
              `errors ${JSON.stringify(parsed["errors"] ?? "?").slice(0, 300)}, exit ${finished.code}`
          } catch {
            figures += `: ${lastLine(finished.stdout)}`
          }
          return { figures, ok: finished.code === 0 || finished.code === 1 }
        }
      )
      : yield* Effect.acquireUseRelease(
        Effect.sync(() => LoadClient.start(2)),
        (client) =>
          Effect.map(
            Effect.promise(() =>
              client.run({
                mode: "iamat",
                target,
                conns: 50,
                depth: 16,
                warmupMs: loadWarmupSeconds * 1000,
                durationMs: (loadSeconds - loadWarmupSeconds) * 1000
              })
            ),
            (result) => ({ figures: `${Math.round(result.rps)} req/s in its window, errors ${result.errors.total}`, ok: true })
          ),
        (client) => Effect.promise(() => client.close())
      )
    const loadEndedAt = (yield* Clock.currentTimeMillis) - from
    // The last flush after the load (entries are appended every 50 ms).
    yield* Effect.sleep(Duration.seconds(2))
    yield* Fiber.interrupt(sampler)
    samples.push({ at: (yield* Clock.currentTimeMillis) - from, ...directoryBytes(spec.logDir) })
    const metrics = yield* getText(spec.httpPort, "/metrics")
    const written = Number(/^herd_log_bytes_written_total\{[^}]*\} (\S+)$/m.exec(metrics.body)?.[1] ?? Number.NaN)
    const max = samples.reduce((best, sample) => (sample.bytes > best.bytes ? sample : best), { at: 0, bytes: 0, files: 0 })
    const files = readdirSync(spec.logDir).sort()
    yield* herd.stop(name, "SIGTERM")
    yield* say(
      `4: ${name} alone, log wire full, maxBytes 10 MB, keep 3, under ${driver.how}: 50 connections x depth 16 for ${secs(loadEndedAt)} s: ${load.figures}`
    )
    yield* say(
      `4: its log directory, ${samples.length} samples a second apart: at most ${mb(max.bytes)} MB (${thousands(max.bytes)} bytes, ${max.files} files, at ${secs(max.at)} s) ` +
        `(target < ${mb(logLimitBytes)} MB); the log wrote ${mb(written)} MB in all (${(written / logLimitBytes).toFixed(1)}x the bound); files at the end: ${files.join(", ")}`
    )
    if (!load.ok) missed.push(`the load did not run: ${load.figures}`)
    if (!(max.bytes < logLimitBytes)) missed.push(`${name}'s log directory reached ${thousands(max.bytes)} bytes, bound ${thousands(logLimitBytes)}`)
    // A load that writes less than the bound proves nothing about rotation.
    if (!(written > 2 * logLimitBytes)) missed.push(`the log wrote only ${thousands(written)} bytes under the load: not enough to test the ${mb(logLimitBytes)} MB bound`)
    if (files.length > 4) missed.push(`${name}'s log directory holds ${files.length} files: ${files.join(", ")}`)
  })

const program = Effect.gen(function*() {
  const startedAt = yield* Clock.currentTimeMillis
  yield* removeLeftovers(prefix)
  const root = yield* tempDirectory(prefix)
  if (keepDir !== undefined) {
    // --keep DIR: the servers' logs copied out before the temporary directory goes, to read a failure by.
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        for (const entry of readdirSync(root)) {
          if (entry !== "loadgen-target") cpSync(join(root, entry), join(keepDir, entry), { recursive: true, force: true })
        }
      }).pipe(Effect.ignore)
    )
  }
  const loadgen = yield* Effect.forkScoped(buildLoadgen(root))
  const bundle = yield* pinnedBundle(prefix)
  const specs = yield* writeHerd(root, names, links, {
    places: { provider: "offline" },
    // Five servers and this script share the machine: no wire lines in the log (check 4 has its own server).
    log: { wire: "off" },
    reconnect: defaultHerd.reconnect
  })
  const herd = yield* makeHerd(specs, bundle)
  yield* Effect.forEach(names, herd.start, { concurrency: "unbounded", discard: true })
  yield* say(`five herd serve processes up on 127.0.0.1 with HTTP ports (durable stores) ${secs((yield* Clock.currentTimeMillis) - startedAt)} s after the start`)
  const missed: Array<string> = []

  // Traffic before the first scrape: 200 clients and 20 WHATSAT at each server.
  const warm = 200
  yield* Effect.forEach(names, (name) =>
    Effect.flatMap(herd.spec(name), (spec) =>
      request(spec, [
        ...Array.from({ length: warm }, (_, i) => iamat(`m1-${name}-${i}`, i)),
        ...Array.from({ length: 20 }, (_, i) => `WHATSAT m1-${name}-${i} 10 5`)
      ])), { concurrency: "unbounded", discard: true })
  yield* waitEqual(herd, names, warm * names.length, yield* Clock.currentTimeMillis, "after the first traffic")
  let expected = yield* checkMetrics(herd, missed, warm * names.length)
  yield* say(`1 done at ${secs((yield* Clock.currentTimeMillis) - startedAt)} s`)
  expected = yield* checkStatus(herd, bundle, missed, expected)
  yield* say(`3 done at ${secs((yield* Clock.currentTimeMillis) - startedAt)} s`)
  yield* checkHealthz(herd, missed, expected)
  yield* say(`2 done at ${secs((yield* Clock.currentTimeMillis) - startedAt)} s`)
  yield* Effect.forEach(names, (name) => herd.stop(name, "SIGTERM"), { concurrency: "unbounded", discard: true })
  const driver = yield* Fiber.join(loadgen)
  yield* checkLogBound(root, bundle, driver, missed)
  // Every miss in one FAIL line, once every figure is printed.
  if (missed.length > 0) return yield* fail(missed.join("; "))
  return startedAt
})

runCheck("check-observe", program, 4)
