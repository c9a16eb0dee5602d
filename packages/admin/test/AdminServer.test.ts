/**
 * The admin endpoint of real servers on loopback: /metrics parses as
 * Prometheus text (by a parser of its own library, which refuses what is
 * not) and holds the series of issue 19 with this server's label only;
 * /healthz follows readiness; /status is a StatusReport; the map's page,
 * layout and events carry the herd and a reported client.
 */
import { describe, expect, it } from "@effect/vitest"
import { Status } from "@herd/admin"
import { Eventually, LineClient } from "@herd/testkit"
import { Deferred, Effect, Exit, Schema, Scope } from "effect"
import * as Http from "node:http"
import parsePrometheus from "parse-prometheus-text-format"
import { get, readEvents, startAdminHerd } from "./support.ts"

interface Family {
  readonly name: string
  readonly type: string
  readonly metrics: ReadonlyArray<{ readonly value?: string; readonly labels?: Record<string, string>; readonly buckets?: Record<string, string> }>
}

const parse = (text: string): ReadonlyArray<Family> => parsePrometheus(text) as ReadonlyArray<Family>

const seriesOf = (families: ReadonlyArray<Family>, name: string) => families.find((family) => family.name === name)

/** The series of point 1 of the issue, as the exporter names them. */
const expectedFamilies: ReadonlyArray<readonly [string, string]> = [
  ["herd_requests_total", "COUNTER"],
  ["herd_reply_latency_seconds", "HISTOGRAM"],
  ["herd_connections_open", "GAUGE"],
  ["herd_connections_accepted_total", "COUNTER"],
  ["herd_connections_refused_total", "COUNTER"],
  ["herd_records", "GAUGE"],
  ["herd_link_up", "GAUGE"],
  ["herd_link_records_sent_total", "COUNTER"],
  ["herd_link_records_received_total", "COUNTER"],
  ["herd_link_bytes_sent_total", "COUNTER"],
  ["herd_link_bytes_received_total", "COUNTER"],
  ["herd_link_catch_ups_total", "COUNTER"],
  ["herd_link_catch_up_records_total", "COUNTER"],
  ["herd_link_catch_up_seconds", "HISTOGRAM"],
  ["herd_link_dial_failures_total", "COUNTER"],
  ["herd_store_commit_seconds", "HISTOGRAM"],
  ["herd_log_bytes_written_total", "COUNTER"],
  ["herd_places_requests_total", "COUNTER"],
  ["herd_places_latency_seconds", "HISTOGRAM"]
]

describe("the admin endpoint", () => {
  it("the parser refuses what is not Prometheus text", () => {
    expect(() => parse(`herd_records{server="A" 3\n`)).toThrow(/invalid line/)
    expect(() => parse(`herd_records{server=A} 3\n`)).toThrow(/invalid line/)
    expect(() => parse(`# TYPE herd_records gauge extra\n`)).toThrow(/invalid line/)
  })

  it.scopedLive("/metrics: Prometheus text with every series of the issue, this server's only", () =>
    Effect.gen(function*() {
      const herd = yield* startAdminHerd(["North", "South"], [["North", "South"]])
      yield* Eventually.eventually(Effect.sync(() => herd.server("North").stats.link("South").state === "up" || undefined), {
        describe: () => "North's link to South to come up"
      })
      const north = yield* LineClient.connect(herd.server("North").address)
      yield* north.write("IAMAT kiwi +34.068930-118.445127 1621464827.959498503\n")
      expect(yield* north.nextReply()).toMatch(/^AT North [+-]\d+\.\d{9} kiwi /)
      yield* north.write("WHATSAT kiwi 10 1\n")
      expect(yield* north.nextReply({ multiLine: true })).toContain("Royce Hall")

      const scraped = yield* get(`${herd.http("North")}/metrics`)
      expect(scraped.status).toBe(200)
      expect(scraped.contentType).toMatch(/^text\/plain; version=0\.0\.4/)
      const families = parse(scraped.text)
      for (const [name, type] of expectedFamilies) {
        expect(seriesOf(families, name)?.type, name).toBe(type)
      }
      // Only North's series, though South's live in the same registry.
      for (const family of families) {
        for (const series of family.metrics) {
          if (series.labels !== undefined) expect(series.labels["server"], family.name).toBe("North")
        }
      }
      const valueOf = (name: string, labels: Record<string, string>) =>
        seriesOf(families, name)?.metrics.find((series) =>
          Object.entries(labels).every(([key, value]) => series.labels?.[key] === value)
        )?.value
      expect(valueOf("herd_records", {})).toBe("1")
      expect(valueOf("herd_link_up", { peer: "South" })).toBe("1")
      expect(valueOf("herd_link_catch_ups_total", { peer: "South" })).toBe("1")
      expect(valueOf("herd_places_requests_total", { provider: "fixture", status: "OK", immediate: "false" })).toBe("1")
      // One lookup, so one observation in the latency histogram (its only series).
      expect(seriesOf(families, "herd_places_latency_seconds")?.metrics[0]?.buckets?.["+Inf"]).toBe("1")
      expect(valueOf("herd_requests_total", { command: "IAMAT", outcome: "stored" })).toBe("1")
      expect(valueOf("herd_requests_total", { command: "WHATSAT", outcome: "answered" })).toBe("1")
      expect(valueOf("herd_requests_total", { command: "AT", outcome: "stored" })).toBe("0")


      // Counters count on from where they were: a second scrape after another lookup.
      yield* north.write("WHATSAT kiwi 10 1\n")
      yield* north.nextReply({ multiLine: true })
      const again = parse((yield* get(`${herd.http("North")}/metrics`)).text)
      expect(
        seriesOf(again, "herd_places_requests_total")?.metrics.find((series) => series.labels?.["status"] === "OK")?.value
      ).toBe("2")
    }), 20_000)

  it.scopedLive("/status is a StatusReport; /healthz follows readiness", () =>
    Effect.gen(function*() {
      const herd = yield* startAdminHerd(["North", "South"], [["North", "South"]])
      const ready = yield* Eventually.eventually(
        Effect.map(get(`${herd.http("South")}/healthz`).pipe(Effect.orDie), (answer) => answer.status === 200 ? answer : undefined),
        { describe: () => "South to be ready" }
      )
      expect(JSON.parse(ready.text)).toEqual({ ready: true, waitingFor: [] })

      const north = yield* LineClient.connect(herd.server("North").address)
      yield* north.write("IAMAT kiwi +34.068930-118.445127 1621464827.959498503\n")
      yield* north.nextReply()
      yield* Eventually.eventually(Effect.sync(() => herd.server("South").store.get("kiwi")))
      const answer = yield* get(`${herd.http("South")}/status`)
      const report = yield* Schema.decodeUnknown(Status.StatusReport)(JSON.parse(answer.text))
      expect(report).toMatchObject({
        name: "South",
        address: herd.server("South").address,
        ready: true,
        store: { kind: "memory", count: 1 },
        links: [{ peer: "North", state: "up", catchUps: 1, recordsReceived: 1 }]
      })
      expect(report.uptimeSeconds).toBeGreaterThanOrEqual(0)

      // A neighbour that says its catch-up of South is under way holds South back.
      herd.server("South").stats.link("North").caughtUpIn = false
      const waiting = yield* get(`${herd.http("South")}/healthz`)
      expect(waiting.status).toBe(503)
      expect(JSON.parse(waiting.text)).toEqual({ ready: false, waitingFor: ["North: its catch-up of this server not done"] })
      herd.server("South").stats.link("North").caughtUpIn = true
      expect((yield* get(`${herd.http("South")}/healthz`)).status).toBe(200)
      // So does one whose handshake says South is behind it.
      herd.server("South").stats.link("North").lagRecords = 3
      expect(JSON.parse((yield* get(`${herd.http("South")}/healthz`)).text)).toEqual({
        ready: false,
        waitingFor: ["North: 3 records behind"]
      })
      herd.server("South").stats.link("North").lagRecords = 0
      expect((yield* get(`${herd.http("South")}/healthz`)).status).toBe(200)
      // So does one reached by a handshake that spoke the extension, whose own link here has not begun
      // its catch-up yet; an old-style neighbour says no end of catch-up, and is not waited for.
      const link = herd.server("South").stats.link("North")
      link.caughtUpIn = undefined
      expect(link.handshake).toBe("full")
      expect(JSON.parse((yield* get(`${herd.http("South")}/healthz`)).text)).toEqual({
        ready: false,
        waitingFor: ["North: its catch-up of this server not begun"]
      })
      // Not for ever: a link of its own that never comes (it cannot reach South) holds South back 10 s at most.
      link.stateSinceMs -= Status.notBegunGraceMs
      expect((yield* get(`${herd.http("South")}/healthz`)).status).toBe(200)
      link.stateSinceMs += Status.notBegunGraceMs
      link.handshake = "old-style"
      expect((yield* get(`${herd.http("South")}/healthz`)).status).toBe(200)
    }), 20_000)

  it.scopedLive("/healthz waits for a neighbour's first dial, and not for one that cannot be reached", () =>
    Effect.gen(function*() {
      const herd = yield* startAdminHerd(["North", "South"], [["North", "South"]])
      // Both links up and caught up first, so that none comes up in the middle of what follows.
      yield* Eventually.eventually(
        Effect.map(get(`${herd.http("North")}/healthz`).pipe(Effect.orDie), (answer) => answer.status === 200 ? true : undefined),
        { describe: () => "North to be ready" }
      )
      const stats = herd.server("North").stats
      const link = stats.link("South")
      // As before its first dial ended.
      link.state = "connecting"
      expect((yield* get(`${herd.http("North")}/healthz`)).status).toBe(503)
      stats.onLinkEvent({ event: "link-failed", peer: "South", address: link.address, reason: "connection refused" }, Date.now())
      expect((yield* get(`${herd.http("North")}/healthz`)).status).toBe(200)
    }), 20_000)

  it.scopedLive("the map: its page, its script, the herd's layout and a reported client by server-sent events", () =>
    Effect.gen(function*() {
      const herd = yield* startAdminHerd(["Alford", "Parker", "Zed"], [["Alford", "Parker"], ["Parker", "Zed"]])
      const pageAnswer = yield* get(`${herd.http("Alford")}/`)
      expect(pageAnswer.status).toBe(200)
      expect(pageAnswer.contentType).toMatch(/^text\/html/)
      expect(pageAnswer.text).toContain(`<script src="map.js"></script>`)
      const script = yield* get(`${herd.http("Alford")}/map.js`)
      expect(script.status).toBe(200)
      // Drawn offline: the countries are in the script, and it asks no other host.
      expect(script.text).toContain("arcs")
      expect(script.text).not.toMatch(/https?:\/\/(?!www\.w3\.org)/)

      const layout = JSON.parse((yield* get(`${herd.http("Alford")}/map/data`)).text) as {
        self: string
        servers: ReadonlyArray<{ name: string; latitude: number; longitude: number }>
        links: ReadonlyArray<readonly [string, string]>
      }
      expect(layout.self).toBe("Alford")
      expect(layout.servers.map((server) => server.name)).toEqual(["Alford", "Parker", "Zed"])
      expect(layout.servers[0]).toMatchObject({ latitude: 53.26, longitude: 0.18 })
      expect(layout.links).toEqual([["Alford", "Parker"], ["Parker", "Zed"]])

      const alford = yield* LineClient.connect(herd.server("Alford").address)
      yield* alford.write("IAMAT kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503\n")
      const atLine = yield* alford.nextReply()
      const text = yield* readEvents(`${herd.http("Alford")}/map/events`, (received) =>
        received.includes("kiwi.cs.ucla.edu") && received.includes(`"Zed":{"reachable":true`))
      const clients = text.split("\n\n").find((event) => event.startsWith("event: clients"))
      expect(clients).toBeDefined()
      const update = JSON.parse((clients ?? "").replace(/^event: clients\ndata: /, "")) as {
        clients: ReadonlyArray<{ client: string; latitude: number; longitude: number; at: string }>
      }
      expect(update.clients).toEqual([{ client: "kiwi.cs.ucla.edu", latitude: 34.06893, longitude: -118.445127, at: atLine }])
    }), 20_000)
})

describe("the admin endpoint stopping", () => {
  it.scopedLive("closes while a map holds its event stream open, and ends the stream", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const herd = yield* startAdminHerd(["Lone"], []).pipe(Scope.extend(scope))
      const firstEvent = yield* Deferred.make<void>()
      const streamEnded = yield* Deferred.make<void>()
      // A subscriber that never lets go: the server must end its stream.
      const request = Http.get(`${herd.http("Lone")}/map/events`, (response) => {
        response.on("data", () => Deferred.unsafeDone(firstEvent, Exit.void))
        response.on("close", () => Deferred.unsafeDone(streamEnded, Exit.void))
      })
      request.on("error", () => Deferred.unsafeDone(streamEnded, Exit.void))
      yield* Effect.addFinalizer(() => Effect.sync(() => request.destroy()))
      yield* Deferred.await(firstEvent).pipe(Effect.timeout(5000))
      yield* Scope.close(scope, Exit.void).pipe(
        Effect.timeoutFail({ duration: 5000, onTimeout: () => new Error("the endpoint did not close within 5 s") })
      )
      yield* Deferred.await(streamEnded).pipe(
        Effect.timeoutFail({ duration: 5000, onTimeout: () => new Error("the event stream is still open") })
      )
    }), 20_000)
})
