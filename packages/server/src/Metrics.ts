/**
 * What a server counts about itself, for its admin endpoint (`/metrics`,
 * `/status`, `/healthz`).
 *
 * The hot path only bumps plain numbers on a `ServerStats` (one per
 * server): a field increment costs next to nothing, where an Effect
 * `Metric` update per line would cost a registry lookup and an Effect. The
 * numbers move into the Effect `Metric`s defined here when `publish` runs
 * (the admin endpoint runs it on every scrape): counters by the difference
 * since the last publish, gauges set, histograms fed bucket by bucket.
 *
 * Every series carries a `server` label, so that the servers of one process
 * (`herd up`) share Effect's one metric registry without mixing.
 */
import type { PeerLinks } from "@herd/peers"
import { PlacesClient } from "@herd/places"
import { Clock, Effect, Metric, MetricBoundaries, MetricKey, MetricLabel } from "effect"
import type { MetricHook } from "effect"

/**
 * A latency histogram as plain numbers: counts and sums of seconds per
 * bucket. Keeping the sum per bucket lets `publish` hand Effect's histogram
 * the bucket's mean once per observation: every observation lands in its
 * own bucket, and the count and total sum come out exact.
 */
export class LatencyHistogram {
  readonly counts: Float64Array
  readonly sums: Float64Array

  constructor(readonly boundaries: ReadonlyArray<number>) {
    // One more bucket than boundaries: past the last one (+Inf).
    this.counts = new Float64Array(boundaries.length + 1)
    this.sums = new Float64Array(boundaries.length + 1)
  }

  /** One observation, in seconds. */
  observe(seconds: number): void {
    const bounds = this.boundaries
    let i = 0
    // Most observations are small: a scan from the smallest bucket ends early.
    while (i < bounds.length && seconds > (bounds[i] ?? Infinity)) i++
    this.counts[i] = (this.counts[i] ?? 0) + 1
    this.sums[i] = (this.sums[i] ?? 0) + seconds
  }

  /** `count` observations whose seconds add up to `sumSeconds`, all in one bucket (a read's replies). */
  observeMany(count: number, sumSeconds: number): void {
    if (count <= 0) return
    const mean = sumSeconds / count
    const bounds = this.boundaries
    let i = 0
    while (i < bounds.length && mean > (bounds[i] ?? Infinity)) i++
    this.counts[i] = (this.counts[i] ?? 0) + count
    this.sums[i] = (this.sums[i] ?? 0) + sumSeconds
  }

  get count(): number {
    let total = 0
    for (const count of this.counts) total += count
    return total
  }
}

/** From 10 µs to 10 s: a reply at hand takes microseconds, a Places lookup up to its time-out. */
export const latencyBoundaries: ReadonlyArray<number> = [
  0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005,
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10
]

/** How a link to a neighbour stands: `connecting` until its first dial ends. */
export type LinkState = "connecting" | "up" | "down"

/**
 * One neighbour's link, both ways: the outbound link this server dials
 * (state, catch-ups, what it sends) and the inbound connection the
 * neighbour dialled (what it receives).
 */
export class LinkStats {
  state: LinkState = "connecting"
  /** When `state` last changed (ms since the epoch). */
  stateSinceMs: number
  /** Why the link last went down or a dial failed. */
  lastError: string | undefined = undefined
  /** Dials that failed before the link came up. */
  dialFailures = 0

  /** Catch-ups sent to the neighbour, each time the link came up, and their records. */
  catchUps = 0
  catchUpRecords = 0
  /** Records in the last catch-up sent. */
  lastCatchUpRecords = 0
  /** How long catch-ups took (`catchUpMs` of `link-up`). */
  readonly catchUpSeconds = new LatencyHistogram(latencyBoundaries)

  /**
   * Records and bytes sent on the outbound link. A catch-up's records are
   * added when its `link-up` is noted; the links bump what they flood after.
   */
  recordsSent = 0
  bytesSent = 0
  /** Records and bytes received on the neighbour's inbound connection (bumped by the connection). */
  recordsReceived = 0
  bytesReceived = 0
  /** When the last record from this neighbour arrived (ms since the epoch); 0 for never. */
  lastRecordAtMs = 0
  /**
   * Sequence numbers this server is behind the neighbour, where the
   * neighbour's handshake says (incremental catch-up); `undefined` where
   * unknown.
   */
  lagRecords: number | undefined = undefined
  /**
   * Whether the catch-up the neighbour sends this server is done: `false`
   * while it is under way, `true` once done, `undefined` where the link's
   * protocol does not say (a plain `PEER` neighbour sends no end of
   * catch-up). `/healthz` waits for `false` to turn `true`.
   */
  caughtUpIn: boolean | undefined = undefined
  /**
   * What the neighbour answered this server's link at its last `link-up`:
   * `old-style` means it said no `SINCE`, so its own link to this server will
   * say no end of catch-up either.
   */
  handshake: PeerLinks.LinkHandshake | undefined = undefined

  constructor(readonly peer: string, readonly address: string, nowMs: number) {
    this.stateSinceMs = nowMs
  }
}

/** The counts of a server: plain numbers, bumped where things happen. */
export class ServerStats {
  /** IAMAT answered with an AT line; its record won (stored, flooded) or was not newer. */
  iamatStored = 0
  iamatNotNewer = 0
  /** IAMAT answered `? ...` although it parsed (time too far ahead, AT line too long). */
  iamatRefused = 0
  /** WHATSAT answered with a Places body (an `OK` or a failure body alike). */
  whatsatAnswered = 0
  /** WHATSAT answered `? ...` for a client this server does not know. */
  whatsatUnknownClient = 0
  /** AT records from neighbours: won (stored, flooded on), not newer (dropped), refused (too far ahead). */
  atStored = 0
  atNotNewer = 0
  atRefused = 0
  /** `PEER` lines taken, and refused (not a server of the herd, no room). */
  peerAccepted = 0
  peerRefused = 0
  /** Lines that are no command at all, answered `? ...` (or dropped on a peer link). */
  invalidLines = 0

  /** Time from a read to the write of its replies, per reply. */
  readonly replyLatency = new LatencyHistogram(latencyBoundaries)

  /** Connections open now (clients and neighbours' inbound links), accepted so far, refused (no slot). */
  connectionsOpen = 0
  connectionsAccepted = 0
  connectionsRefused = 0

  /** Commits of the durable store, and the bytes the event log wrote. */
  readonly storeCommitLatency = new LatencyHistogram(latencyBoundaries)
  logBytesWritten = 0

  /** Places requests by status; immediate answers (cache, loaded gazetteer) apart from lookups. */
  readonly placesImmediate = new Map<string, number>()
  readonly placesLookups = new Map<string, number>()
  readonly placesLatency = new LatencyHistogram(latencyBoundaries)
  placesProvider = ""

  private readonly linksByPeer = new Map<string, LinkStats>()

  constructor(readonly server: string, readonly startedAtMs: number) {}

  /** Every link this server knows of: its neighbours, and whoever else said `PEER`. */
  get links(): ReadonlyArray<LinkStats> {
    return [...this.linksByPeer.values()]
  }

  /** The stats of the link with `peer` if there are any: none for a link that reports to no one. */
  knownLink(peer: string): LinkStats | undefined {
    return this.linksByPeer.get(peer)
  }

  /** The stats of the link with `peer`, made on first use (keep it: the lookup is a Map's). */
  link(peer: string, address = ""): LinkStats {
    let link = this.linksByPeer.get(peer)
    if (link === undefined) {
      link = new LinkStats(peer, address, this.startedAtMs)
      this.linksByPeer.set(peer, link)
    }
    return link
  }

  /** Notes a link change reported by `PeerLinks` (its `onEvent`). */
  onLinkEvent(event: PeerLinks.LinkEvent, nowMs: number): void {
    const link = this.link(event.peer, event.address)
    switch (event.event) {
      case "link-up": {
        link.state = "up"
        link.stateSinceMs = nowMs
        link.lastError = undefined
        link.catchUps++
        link.catchUpRecords += event.catchUp
        link.lastCatchUpRecords = event.catchUp
        link.handshake = event.handshake
        link.recordsSent += event.catchUp
        link.catchUpSeconds.observe(event.catchUpMs / 1000)
        break
      }
      case "link-down":
        link.state = "down"
        link.stateSinceMs = nowMs
        link.lastError = event.reason
        break
      case "link-failed":
        link.dialFailures++
        link.lastError = event.reason
        if (link.state !== "down") {
          link.state = "down"
          link.stateSinceMs = nowMs
        }
        break
      case "link-extended":
        // Its catch-up was a full one; the neighbour's own link here will say where its ends.
        link.handshake = "full"
        break
    }
  }

  /** Counts a Places answer of `status`. */
  placesAnswered(immediate: boolean, status: string): void {
    const counts = immediate ? this.placesImmediate : this.placesLookups
    counts.set(status, (counts.get(status) ?? 0) + 1)
  }
}

/** A fresh `ServerStats` for `server`, started now (the Effect clock). */
export const makeStats = (server: string): Effect.Effect<ServerStats> =>
  Effect.map(Clock.currentTimeMillis, (now) => new ServerStats(server, now))

/**
 * `places`, counting each answer in `stats` by status, and each lookup's
 * latency: immediate answers (a cache hit, the loaded gazetteer) apart from
 * lookups that went to the provider. A failure is counted by the status the
 * WHATSAT will answer with (`UNKNOWN_ERROR` where the provider gave none).
 */
export const countingPlaces = (places: PlacesClient.PlacesClient["Type"], stats: ServerStats): PlacesClient.PlacesClient["Type"] => {
  stats.placesProvider = places.provider
  const immediate = places.immediate
  return PlacesClient.PlacesClient.of({
    ...places,
    nearby: (query: PlacesClient.NearbyQuery) =>
      Effect.flatMap(Clock.currentTimeNanos, (started) =>
        places.nearby(query).pipe(
          Effect.onExit((exit) =>
            Effect.map(Clock.currentTimeNanos, (ended) => {
              stats.placesLatency.observe(Number(ended - started) / 1e9)
              const status = exit._tag === "Success"
                ? exit.value.status
                : exit.cause._tag === "Fail"
                ? exit.cause.error.status ?? "UNKNOWN_ERROR"
                : "UNKNOWN_ERROR"
              stats.placesAnswered(false, status)
            })
          )
        )),
    ...(immediate === undefined ? {} : {
      immediate: (query: PlacesClient.NearbyQuery): PlacesClient.PlacesBody | undefined => {
        const body = immediate(query)
        if (body !== undefined) stats.placesAnswered(true, body.status)
        return body
      }
    })
  })
}

// The Effect metrics: one registry for the process, one series per server
// (and per neighbour, command, status) by label. Counters are incremental,
// so that they are exported as counters, not gauges.

const counter = (name: string, description: string) => Metric.counter(name, { description, incremental: true })
// Histograms by their keys: a publish feeds each series' hook itself.
const histogram = (name: string, description: string) =>
  MetricKey.histogram(name, MetricBoundaries.fromIterable(latencyBoundaries), description)

export const metrics = {
  requests: counter("herd_requests", "Lines handled, by command and outcome"),
  replyLatency: histogram("herd_reply_latency_seconds", "Time from a read to the write of its replies, per reply"),
  connectionsOpen: Metric.gauge("herd_connections_open", { description: "Connections open (clients and neighbours)" }),
  connectionsAccepted: counter("herd_connections_accepted", "Connections accepted"),
  connectionsRefused: counter("herd_connections_refused", "Connections refused (no slot, or not a herd server on probation)"),
  records: Metric.gauge("herd_records", { description: "Records stored (clients known)" }),
  linkUp: Metric.gauge("herd_link_up", { description: "Whether the link to a neighbour is up (catch-up sent)" }),
  linkRecordsSent: counter("herd_link_records_sent", "Records sent to a neighbour, catch-up included"),
  linkRecordsReceived: counter("herd_link_records_received", "Records received from a neighbour"),
  linkBytesSent: counter("herd_link_bytes_sent", "Bytes sent to a neighbour"),
  linkBytesReceived: counter("herd_link_bytes_received", "Bytes received from a neighbour"),
  linkCatchUps: counter("herd_link_catch_ups", "Catch-ups sent to a neighbour (each time its link came up)"),
  linkCatchUpRecords: counter("herd_link_catch_up_records", "Records sent in catch-ups"),
  linkCatchUpSeconds: histogram("herd_link_catch_up_seconds", "How long a catch-up took"),
  linkDialFailures: counter("herd_link_dial_failures", "Dials to a neighbour that failed"),
  linkLagRecords: Metric.gauge("herd_link_lag_records", {
    description: "Sequence numbers this server is behind a neighbour, where its handshake says"
  }),
  linkSecondsSinceLastRecord: Metric.gauge("herd_link_seconds_since_last_record", {
    description: "Seconds since the last record from a neighbour"
  }),
  storeCommitSeconds: histogram("herd_store_commit_seconds", "Durable store commits"),
  logBytesWritten: counter("herd_log_bytes_written", "Bytes written to the event log"),
  placesRequests: counter("herd_places_requests", "Places answers by provider and status (immediate: cache or gazetteer at hand)"),
  placesLatency: histogram("herd_places_latency_seconds", "Places lookups that went to the provider")
} as const

/** What `publish` needs besides the stats: what only the store knows. */
export interface StoreView {
  readonly records: number
}

type Labels = ReadonlyArray<MetricLabel.MetricLabel>

/**
 * Moves a server's numbers into the Effect metrics. Keeps what it published
 * last, so counters grow by the difference and histograms by the new
 * observations; every series is made at once, zero or not, so a scrape
 * shows the whole list from the first.
 */
export class Publisher {
  private readonly labels = new Map<string, Labels>()
  private readonly published = new Map<string, number>()
  private readonly publishedBuckets = new Map<
    string,
    { readonly hook: MetricHook.MetricHook.Histogram; readonly counts: Float64Array; readonly sums: Float64Array }
  >()

  constructor(readonly stats: ServerStats) {}

  /** The label arrays are kept: Effect caches a series' hook by its array. */
  private labelsOf(key: string, pairs: ReadonlyArray<readonly [string, string]>): Labels {
    let labels = this.labels.get(key)
    if (labels === undefined) {
      labels = [MetricLabel.make("server", this.stats.server), ...pairs.map(([k, v]) => MetricLabel.make(k, v))]
      this.labels.set(key, labels)
    }
    return labels
  }

  private count(
    metric: Metric.Metric.Counter<number>,
    key: string,
    pairs: ReadonlyArray<readonly [string, string]>,
    value: number
  ): void {
    const last = this.published.get(key) ?? 0
    metric.unsafeUpdate(Math.max(0, value - last), this.labelsOf(key, pairs))
    this.published.set(key, Math.max(last, value))
  }

  private histogram(
    metricKey: MetricKey.MetricKey.Histogram,
    key: string,
    pairs: ReadonlyArray<readonly [string, string]>,
    histogram: LatencyHistogram
  ): void {
    let last = this.publishedBuckets.get(key)
    if (last === undefined) {
      // The series' own hook, made now (so the series shows before its first
      // observation) and kept: a publish feeds it once per new observation,
      // and through the metric each call would look the hook up again.
      const hook = Metric.globalMetricRegistry.getHistogram(
        MetricKey.taggedWithLabels(metricKey, this.labelsOf(key, pairs))
      )
      last = { hook, counts: new Float64Array(histogram.counts.length), sums: new Float64Array(histogram.sums.length) }
      this.publishedBuckets.set(key, last)
    }
    for (let i = 0; i < histogram.counts.length; i++) {
      const count = (histogram.counts[i] ?? 0) - (last.counts[i] ?? 0)
      if (count <= 0) continue
      const sum = (histogram.sums[i] ?? 0) - (last.sums[i] ?? 0)
      // Each new observation of the bucket as the bucket's mean: the mean of
      // values within a bucket lies within it, and the sums add up exactly.
      const mean = sum / count
      for (let n = 0; n < count; n++) last.hook.update(mean)
      last.counts[i] = histogram.counts[i] ?? 0
      last.sums[i] = histogram.sums[i] ?? 0
    }
  }

  private gauge(metric: Metric.Metric.Gauge<number>, key: string, pairs: ReadonlyArray<readonly [string, string]>, value: number): void {
    metric.unsafeUpdate(value, this.labelsOf(key, pairs))
  }

  /** Publishes everything now; `nowMs` for the ages of the links' last records. */
  unsafePublish(store: StoreView, nowMs: number): void {
    const s = this.stats
    const request = (command: string, outcome: string, value: number) =>
      this.count(metrics.requests, `requests/${command}/${outcome}`, [["command", command], ["outcome", outcome]], value)
    request("IAMAT", "stored", s.iamatStored)
    request("IAMAT", "not_newer", s.iamatNotNewer)
    request("IAMAT", "refused", s.iamatRefused)
    request("WHATSAT", "answered", s.whatsatAnswered)
    request("WHATSAT", "unknown_client", s.whatsatUnknownClient)
    request("AT", "stored", s.atStored)
    request("AT", "not_newer", s.atNotNewer)
    request("AT", "refused", s.atRefused)
    request("PEER", "accepted", s.peerAccepted)
    request("PEER", "refused", s.peerRefused)
    request("invalid", "refused", s.invalidLines)
    this.histogram(metrics.replyLatency, "replyLatency", [], s.replyLatency)

    this.gauge(metrics.connectionsOpen, "connectionsOpen", [], s.connectionsOpen)
    this.count(metrics.connectionsAccepted, "connectionsAccepted", [], s.connectionsAccepted)
    this.count(metrics.connectionsRefused, "connectionsRefused", [], s.connectionsRefused)
    this.gauge(metrics.records, "records", [], store.records)
    this.histogram(metrics.storeCommitSeconds, "storeCommit", [], s.storeCommitLatency)
    this.count(metrics.logBytesWritten, "logBytes", [], s.logBytesWritten)

    for (const link of s.links) {
      const peer = [["peer", link.peer]] as const
      const key = (what: string) => `link/${link.peer}/${what}`
      this.gauge(metrics.linkUp, key("up"), peer, link.state === "up" ? 1 : 0)
      this.count(metrics.linkRecordsSent, key("recordsSent"), peer, link.recordsSent)
      this.count(metrics.linkRecordsReceived, key("recordsReceived"), peer, link.recordsReceived)
      this.count(metrics.linkBytesSent, key("bytesSent"), peer, link.bytesSent)
      this.count(metrics.linkBytesReceived, key("bytesReceived"), peer, link.bytesReceived)
      this.count(metrics.linkCatchUps, key("catchUps"), peer, link.catchUps)
      this.count(metrics.linkCatchUpRecords, key("catchUpRecords"), peer, link.catchUpRecords)
      this.count(metrics.linkDialFailures, key("dialFailures"), peer, link.dialFailures)
      this.histogram(metrics.linkCatchUpSeconds, key("catchUpSeconds"), peer, link.catchUpSeconds)
      if (link.lagRecords !== undefined) this.gauge(metrics.linkLagRecords, key("lag"), peer, link.lagRecords)
      if (link.lastRecordAtMs > 0) {
        this.gauge(metrics.linkSecondsSinceLastRecord, key("sinceLast"), peer, (nowMs - link.lastRecordAtMs) / 1000)
      }
    }

    const provider = s.placesProvider
    for (const [immediate, counts] of [["true", s.placesImmediate], ["false", s.placesLookups]] as const) {
      for (const [status, value] of counts) {
        this.count(
          metrics.placesRequests,
          `places/${immediate}/${status}`,
          [["provider", provider], ["status", status], ["immediate", immediate]],
          value
        )
      }
    }
    this.histogram(metrics.placesLatency, "placesLatency", [["provider", provider]], s.placesLatency)
  }
}
