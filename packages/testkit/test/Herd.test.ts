/**
 * Herds over real loopback TCP: flooding, cycles, outages, catch-up and
 * convergence (PROTOCOL.md sections 5 and 7), through the testkit harness.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { Eventually, LineClient, TestHerd } from "../src/index.ts"

/** Sends one IAMAT to `name` and answers its AT line. */
const iamat = <N extends string>(
  herd: TestHerd.TestHerd<N>,
  name: N,
  client: string,
  time: string,
  location = "+34.068930-118.445127"
) =>
  Effect.scoped(Effect.gen(function*() {
    const connection = yield* LineClient.connect(herd.address(name))
    yield* connection.write(`IAMAT ${client} ${location} ${time}\n`)
    return yield* connection.nextReply()
  }))

/** The AT lines of a store, sorted: equal stores give equal lists. */
const storeLines = <N extends string>(herd: TestHerd.TestHerd<N>, name: N) =>
  herd.store(name).snapshot().map((r) => `AT ${r.origin} ${r.skew} ${r.client} ${r.location} ${r.time}`).sort()

const allStoresEqual = <N extends string>(herd: TestHerd.TestHerd<N>, names: ReadonlyArray<N>, timeoutMs = 5000) =>
  Eventually.eventually(
    Effect.sync(() => {
      const stores = names.map((name) => storeLines(herd, name))
      const first = JSON.stringify(stores[0])
      return stores.every((store) => JSON.stringify(store) === first) ? stores[0] : undefined
    }),
    { timeoutMs, describe: () => `the stores of ${names.join(", ")} to be equal` }
  )

const logEvents = <N extends string>(herd: TestHerd.TestHerd<N>, name: N) =>
  herd.logLines(name).map((line) => JSON.parse(line) as Record<string, unknown>)

const countEvents = <N extends string>(herd: TestHerd.TestHerd<N>, name: N, event: string, peer?: string) =>
  logEvents(herd, name).filter((e) => e["event"] === event && (peer === undefined || e["peer"] === peer)).length

/** Waits until `name` has logged its link to `peer` up more than `before` times. */
const linkUp = <N extends string>(herd: TestHerd.TestHerd<N>, name: N, peer: N, before = 0) =>
  Eventually.eventually(
    Effect.sync(() => countEvents(herd, name, "link-up", peer) > before ? true : undefined),
    { describe: () => `${name}'s link to ${peer} up` }
  )

const allLinksUp = <N extends string>(herd: TestHerd.TestHerd<N>, links: ReadonlyArray<readonly [N, N]>) =>
  Effect.forEach(links, ([a, b]) => Effect.zipRight(linkUp(herd, a, b), linkUp(herd, b, a)), { discard: true })

describe("a herd", () => {
  it.scopedLive("floods an IAMAT at Alford to Hamilton, three hops away, and to every server", () =>
    Effect.gen(function*() {
      const herd = yield* TestHerd.startHerd(TestHerd.defaultTopology)
      yield* allLinksUp(herd, TestHerd.defaultTopology.links)
      const hamilton = yield* LineClient.connect(herd.address("Hamilton"))
      const at = yield* iamat(herd, "Alford", "kiwi", "1621464827.959498503")
      const sent = Date.now()
      // Poll Hamilton the way a client would, until it knows kiwi.
      const answer = yield* Eventually.eventually(Effect.gen(function*() {
        yield* hamilton.write("WHATSAT kiwi 10 1\n")
        const reply = yield* hamilton.nextReply({ multiLine: true })
        return reply.startsWith("? ") ? undefined : reply
      }).pipe(Effect.orDie), { timeoutMs: 2000, describe: () => "Hamilton to know kiwi" })
      const elapsedMs = Date.now() - sent
      expect(answer.split("\n")[0]).toBe(at)
      expect(elapsedMs).toBeLessThan(100)
      const stores = yield* allStoresEqual(herd, TestHerd.defaultTopology.servers)
      expect(stores).toEqual([at])
    }))

  it.scopedLive("stops flooding on a cycle: one IAMAT makes at most two messages per link", () =>
    Effect.gen(function*() {
      const servers = ["A", "B", "C", "D"] as const
      const links = [["A", "B"], ["B", "C"], ["C", "A"], ["C", "D"], ["D", "A"]] as const
      const herd = yield* TestHerd.startHerd({ servers, links })
      yield* allLinksUp(herd, links)
      const floodLinesIn = () =>
        servers.reduce((sum, name) =>
          sum + logEvents(herd, name).filter((e) => e["event"] === "in" && String(e["line"]).startsWith("AT ")).length, 0)
      const before = floodLinesIn()
      yield* iamat(herd, "A", "loop", "100")
      yield* allStoresEqual(herd, servers)
      yield* iamat(herd, "B", "sentinel", "100")
      yield* Eventually.eventually(Effect.sync(() => herd.store("D").get("sentinel")))
      const sentinelAndLoop = floodLinesIn() - before
      // Each record crosses each link at most once each way: 2 × 5 per record.
      expect(sentinelAndLoop).toBeGreaterThanOrEqual(2 * (servers.length - 1))
      expect(sentinelAndLoop).toBeLessThanOrEqual(2 * 2 * links.length)
      // And nothing keeps circulating.
      const settled = floodLinesIn()
      yield* iamat(herd, "D", "last", "100")
      yield* allStoresEqual(herd, servers)
      expect(floodLinesIn() - settled).toBeLessThanOrEqual(2 * links.length)
    }))

  it.scopedLive("keeps serving without Parker, and brings Hamilton up to date when Parker is back", () =>
    Effect.gen(function*() {
      const herd = yield* TestHerd.startHerd(TestHerd.defaultTopology)
      yield* allLinksUp(herd, TestHerd.defaultTopology.links)
      yield* herd.stop("Parker")
      yield* iamat(herd, "Alford", "during-outage", "200")
      yield* iamat(herd, "Bolden", "also-during", "201")
      const rest = ["Alford", "Bolden", "Welsh"] as const
      yield* allStoresEqual(herd, rest)
      expect(storeLines(herd, "Welsh").length).toBe(2)
      expect(herd.store("Hamilton").size()).toBe(0)
      const hamiltonLinksBefore = countEvents(herd, "Hamilton", "link-up", "Parker")
      yield* herd.start("Parker")
      yield* linkUp(herd, "Hamilton", "Parker", hamiltonLinksBefore)
      const stores = yield* allStoresEqual(herd, TestHerd.defaultTopology.servers)
      expect(stores.length).toBe(2)
      expect(countEvents(herd, "Alford", "link-down", "Parker")).toBeGreaterThanOrEqual(1)
      expect(countEvents(herd, "Hamilton", "link-down", "Parker")).toBeGreaterThanOrEqual(1)
    }))

  it.scopedLive("restarts Hamilton with an empty store and catches it up within a second of its link", () =>
    Effect.gen(function*() {
      const herd = yield* TestHerd.startHerd(TestHerd.defaultTopology)
      yield* allLinksUp(herd, TestHerd.defaultTopology.links)
      const clients = Array.from({ length: 200 }, (_, i) => `client-${i}`)
      yield* Effect.scoped(Effect.gen(function*() {
        const alford = yield* LineClient.connect(herd.address("Alford"))
        yield* alford.write(clients.map((c, i) => `IAMAT ${c} +1+1 ${1000 + i}\n`).join(""))
        yield* alford.readLines(clients.length)
      }))
      yield* allStoresEqual(herd, TestHerd.defaultTopology.servers)
      yield* herd.stop("Hamilton")
      const linksBefore = countEvents(herd, "Hamilton", "link-up", "Parker")
      yield* herd.start("Hamilton", { emptyStore: true })
      yield* linkUp(herd, "Hamilton", "Parker", linksBefore)
      const linkUpAt = Date.now()
      yield* Eventually.eventually(Effect.sync(() => herd.store("Hamilton").size() === clients.length ? true : undefined), {
        timeoutMs: 1000,
        describe: () => "Hamilton to learn every client"
      })
      const hamilton = yield* LineClient.connect(herd.address("Hamilton"))
      yield* hamilton.write(clients.map((c) => `WHATSAT ${c} 1 1\n`).join(""))
      for (const client of clients) {
        const reply = yield* hamilton.nextReply({ multiLine: true })
        expect(reply.split("\n")[0]).toMatch(new RegExp(`^AT Alford \\S+ ${client} \\+1\\+1 \\d+$`))
      }
      expect(Date.now() - linkUpAt).toBeLessThan(1000)
    }))

  it.scopedLive("converges on one record when two servers get IAMATs for a client at the same client time", () =>
    Effect.gen(function*() {
      const herd = yield* TestHerd.startHerd(TestHerd.defaultTopology)
      yield* allLinksUp(herd, TestHerd.defaultTopology.links)
      yield* Effect.all([
        iamat(herd, "Bolden", "twin", "500", "+10+10"),
        iamat(herd, "Hamilton", "twin", "500", "+20+20")
      ], { concurrency: 2 })
      const [winner] = yield* allStoresEqual(herd, TestHerd.defaultTopology.servers)
      // Same client time: the origin that sorts later (Hamilton) wins.
      expect(winner).toMatch(/^AT Hamilton \S+ twin \+20\+20 500$/)
    }))

  it.scopedLive("ends a seeded random run of IAMATs, kills and restarts with every server holding the same store", () =>
    Effect.gen(function*() {
      const herd = yield* TestHerd.startHerd(TestHerd.defaultTopology)
      yield* allLinksUp(herd, TestHerd.defaultTopology.links)
      const random = seeded(20261125)
      const names = TestHerd.defaultTopology.servers
      let time = 1_000_000
      for (let step = 0; step < 300; step++) {
        const roll = random()
        const name = names[Math.floor(random() * names.length)] ?? "Alford"
        if (roll < 0.06 && herd.isRunning(name)) {
          yield* herd.stop(name)
        } else if (roll < 0.14 && !herd.isRunning(name)) {
          yield* herd.start(name, { emptyStore: random() < 0.3 })
        } else if (herd.isRunning(name)) {
          // Client times sometimes repeat and sometimes go back: the ordering rule decides.
          time += Math.floor(random() * 3) - 1
          yield* iamat(herd, name, `c${Math.floor(random() * 20)}`, String(time), `+${Math.floor(random() * 90)}+0`)
        }
      }
      for (const name of names) yield* herd.start(name)
      const stores = yield* allStoresEqual(herd, names, 10_000)
      expect(stores.length).toBeGreaterThan(0)
    }), 30_000)

  it.scopedLive("logs peer links going up and down with the neighbour's name", () =>
    Effect.gen(function*() {
      const herd = yield* TestHerd.startHerd({ servers: ["North", "South"], links: [["North", "South"]] })
      yield* linkUp(herd, "North", "South")
      yield* Eventually.eventually(Effect.sync(() =>
        logEvents(herd, "South").some((e) => e["event"] === "peer-in" && e["peer"] === "North") ? true : undefined
      ))
      yield* herd.stop("South")
      yield* Eventually.eventually(Effect.sync(() => countEvents(herd, "North", "link-down", "South") > 0 ? true : undefined))
      const down = logEvents(herd, "North").find((e) => e["event"] === "link-down")
      expect(down).toMatchObject({ server: "North", peer: "South", reason: "closed by neighbour" })
      expect(logEvents(herd, "South").some((e) => e["event"] === "close" && e["peer"] === "North")).toBe(true)
    }))
})

/** A small deterministic generator (mulberry32), so a failing run can be replayed. */
function seeded(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
