/**
 * A server's state as `/status` answers it, and its readiness (`/healthz`).
 * The schema is the contract `herd status` decodes, so both sides share it.
 */
import type { HerdConfig, HerdServer, Metrics } from "@herd/server"
import type { LocationStore } from "@herd/store"
import { Schema } from "effect"

export const LinkStatus = Schema.Struct({
  peer: Schema.String,
  address: Schema.String,
  /** `connecting` until its first dial ends; `up` once catch-up is sent; `down` after. */
  state: Schema.Literal("connecting", "up", "down"),
  /** When the state last changed (ISO 8601). */
  since: Schema.String,
  lastError: Schema.NullOr(Schema.String),
  dialFailures: Schema.Number,
  catchUps: Schema.Number,
  lastCatchUpRecords: Schema.Number,
  recordsSent: Schema.Number,
  recordsReceived: Schema.Number,
  bytesSent: Schema.Number,
  bytesReceived: Schema.Number,
  /** Sequence numbers behind the neighbour, where its handshake says. */
  lagRecords: Schema.NullOr(Schema.Number),
  /** Seconds since the last record from the neighbour; null for none yet. */
  secondsSinceLastRecord: Schema.NullOr(Schema.Number),
  /** Whether the neighbour's catch-up of this server is done, where its protocol says. */
  caughtUpIn: Schema.NullOr(Schema.Boolean)
})
export type LinkStatus = typeof LinkStatus.Type

export const StoreStatus = Schema.Struct({
  kind: Schema.Literal("durable", "memory"),
  count: Schema.Number,
  /** The store's digest (equal for stores holding the same winners); null where the store has none. */
  digest: Schema.NullOr(Schema.String),
  /** The durable store's last sequence number and epoch. */
  lastSeq: Schema.NullOr(Schema.Number),
  epoch: Schema.NullOr(Schema.String)
})

const Address = Schema.Struct({ host: Schema.String, port: Schema.Number })

export const StatusReport = Schema.Struct({
  name: Schema.String,
  address: Address,
  startedAt: Schema.String,
  uptimeSeconds: Schema.Number,
  /** What `/healthz` answers: ready once nothing is waited for. */
  ready: Schema.Boolean,
  waitingFor: Schema.Array(Schema.String),
  store: StoreStatus,
  connections: Schema.Struct({ open: Schema.Number, accepted: Schema.Number, refused: Schema.Number }),
  links: Schema.Array(LinkStatus)
})
export type StatusReport = typeof StatusReport.Type

/** A store's digest, where the store keeps one. */
export const digestOf = (store: LocationStore.LocationStore["Type"]): { readonly count: number; readonly digest: string } | undefined => {
  // Not every store has `digest` (older ones, and until it lands in
  // LocationStore): asked only where it is there.
  const withDigest = store as LocationStore.LocationStore["Type"] & {
    readonly digest?: () => { readonly count: number; readonly digest: string }
  }
  return typeof withDigest.digest === "function" ? withDigest.digest() : undefined
}

/**
 * How long a neighbour reached by an extended handshake may take to begin
 * its own link's catch-up here before it holds no one back: its link may
 * never come (it cannot reach this server, or is refused).
 */
export const notBegunGraceMs = 10_000

/** The neighbours this server waits for before it is ready, each with why. */
export const waitingFor = (stats: Metrics.ServerStats, neighbours: ReadonlyArray<string>, nowMs: number): Array<string> => {
  const waiting: Array<string> = []
  for (const peer of neighbours) {
    // A server whose links report to no one (built with links of a test's
    // own) has no stats for them, and waits for none of them.
    const link = stats.knownLink(peer)
    if (link === undefined) continue
    // Reachable until its first dial says otherwise; a neighbour that cannot
    // be reached holds no one back.
    if (link.state === "connecting") waiting.push(`${peer}: first dial not done`)
    if (link.caughtUpIn === false) waiting.push(`${peer}: its catch-up of this server not done`)
    // Reached, and it speaks the extended handshake, so its own link here will say
    // where its catch-up ends: until that link has begun, it is still to come (for a while).
    else if (
      link.state === "up" && link.handshake !== undefined && link.handshake !== "old-style" &&
      link.caughtUpIn === undefined && nowMs - link.stateSinceMs < notBegunGraceMs
    ) {
      waiting.push(`${peer}: its catch-up of this server not begun`)
    }
    // Where the neighbour's handshake says how far behind this server is.
    if (link.state === "up" && link.lagRecords !== undefined && link.lagRecords > 0) {
      waiting.push(`${peer}: ${link.lagRecords} records behind`)
    }
  }
  return waiting
}

export const statusOf = (
  server: HerdServer.HerdServer["Type"],
  config: HerdConfig.HerdConfigValue,
  neighbours: ReadonlyArray<string>,
  nowMs: number
): StatusReport => {
  const { durable, stats, store } = server
  const digest = digestOf(store)
  const waiting = waitingFor(stats, neighbours, nowMs)
  return {
    name: server.name,
    address: server.address,
    startedAt: new Date(stats.startedAtMs).toISOString(),
    uptimeSeconds: (nowMs - stats.startedAtMs) / 1000,
    ready: waiting.length === 0,
    waitingFor: waiting,
    store: {
      kind: durable === undefined ? "memory" : "durable",
      count: digest?.count ?? store.size(),
      digest: digest?.digest ?? null,
      lastSeq: durable === undefined ? null : durable.lastSeq(),
      epoch: durable === undefined ? null : durable.epoch
    },
    connections: { open: stats.connectionsOpen, accepted: stats.connectionsAccepted, refused: stats.connectionsRefused },
    // The neighbours of the config first, in its order, then whoever else said PEER.
    links: [...new Set([...neighbours, ...stats.links.map((link) => link.peer)])].flatMap((peer) => {
      const link = stats.knownLink(peer)
      if (link === undefined) return []
      return [{
        peer,
        address: link.address !== "" ? link.address : addressOf(config, peer),
        state: link.state,
        since: new Date(link.stateSinceMs).toISOString(),
        lastError: link.lastError ?? null,
        dialFailures: link.dialFailures,
        catchUps: link.catchUps,
        lastCatchUpRecords: link.lastCatchUpRecords,
        recordsSent: link.recordsSent,
        recordsReceived: link.recordsReceived,
        bytesSent: link.bytesSent,
        bytesReceived: link.bytesReceived,
        lagRecords: link.lagRecords ?? null,
        secondsSinceLastRecord: link.lastRecordAtMs > 0 ? (nowMs - link.lastRecordAtMs) / 1000 : null,
        caughtUpIn: link.caughtUpIn ?? null
      }]
    })
  }
}

const addressOf = (config: HerdConfig.HerdConfigValue, peer: string): string => {
  const address = config.servers[peer]
  return address === undefined ? "" : `${address.host}:${address.port}`
}
