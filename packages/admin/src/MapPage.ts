/**
 * The live map's page and the data it draws: the herd's servers and links
 * (`/map/data`), then server-sent events (`/map/events`) with the state of
 * every link and the client locations this server knows.
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import { LocationRecord } from "@herd/protocol"
import { HerdConfig } from "@herd/server"
import type { HerdServer } from "@herd/server"
import { Clock, Effect, Schedule, Schema, Stream } from "effect"
import { positionOf } from "./Positions.ts"
import type { StatusReport } from "./Status.ts"
import { statusOf } from "./Status.ts"

export const page = (server: string): string => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>herd: ${escapeHtml(server)}</title>
<style>
  html, body { margin: 0; height: 100%; background: #0d1b2a; color: #e0e1dd; font: 14px/1.4 system-ui, sans-serif; }
  #map { position: absolute; inset: 0; width: 100%; height: 100%; }
  .sphere { fill: #10263d; }
  .graticule { fill: none; stroke: #1d3a57; stroke-width: 0.5; }
  .land { fill: #2b4a3a; }
  .borders { fill: none; stroke: #1b3028; stroke-width: 0.5; }
  .link { fill: none; stroke-width: 2.5; stroke-linecap: round; }
  .link[data-state="up"] { stroke: #52d273; }
  .link[data-state="half"] { stroke: #f5b041; stroke-dasharray: 6 4; }
  .link[data-state="down"] { stroke: #e74c3c; stroke-dasharray: 2 4; }
  .link[data-state="unknown"] { stroke: #7f8c8d; stroke-dasharray: 2 4; }
  .server circle { fill: #f4f1de; stroke: #0d1b2a; stroke-width: 2; }
  .server[data-self="true"] circle { fill: #ffd166; }
  .server[data-reachable="false"] circle { fill: #7f8c8d; }
  .server text { fill: #f4f1de; font-weight: 600; paint-order: stroke; stroke: #0d1b2a; stroke-width: 3px; }
  .client { fill: #4cc9f0; fill-opacity: 0.8; stroke: #0d1b2a; stroke-width: 0.5; cursor: pointer; }
  .client.selected { fill: #ff006e; fill-opacity: 1; }
  .panel { position: absolute; background: rgba(13, 27, 42, 0.88); border: 1px solid #415a77; border-radius: 6px; padding: 8px 12px; }
  #info { top: 12px; left: 12px; min-width: 220px; }
  #info h1 { font-size: 16px; margin: 0 0 4px; }
  #selected { bottom: 12px; left: 12px; right: 12px; font-family: ui-monospace, monospace; word-break: break-all; }
  #selected:empty { display: none; }
  .credit { font-size: 11px; color: #778da9; margin-top: 2px; }
  .legend span { display: inline-block; width: 14px; height: 3px; vertical-align: middle; margin: 0 4px 0 8px; }
</style>
</head>
<body>
<svg id="map" viewBox="0 0 960 500" preserveAspectRatio="xMidYMid meet" role="img" aria-label="map of the herd"></svg>
<div id="info" class="panel">
  <h1>herd: ${escapeHtml(server)}</h1>
  <div id="summary">loading…</div>
  <div class="legend">links:<span style="background:#52d273"></span>up<span style="background:#f5b041"></span>one way<span style="background:#e74c3c"></span>down</div>
  <div class="credit">map: Natural Earth (world-atlas), drawn here with d3-geo</div>
</div>
<div id="selected" class="panel"></div>
<script src="map.js"></script>
</body>
</html>
`

const escapeHtml = (text: string): string =>
  text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`)

/** What the page draws before any event: the herd as the config has it. */
export interface MapLayout {
  readonly self: string
  readonly servers: ReadonlyArray<{
    readonly name: string
    readonly latitude: number
    readonly longitude: number
    readonly address: string
  }>
  readonly links: ReadonlyArray<readonly [string, string]>
  readonly clientsLimit: number
}

export const layoutOf = (config: HerdConfig.HerdConfigValue, self: string, clientsLimit: number): MapLayout => ({
  self,
  servers: Object.entries(config.servers).map(([name, address]) => ({
    name,
    ...positionOf(name),
    address: `${address.host}:${address.port}`
  })),
  links: config.links.map(([a, b]) => [a, b] as const),
  clientsLimit
})

/** A client location as the page gets it: text fields decoded as UTF-8 for display. */
export interface MapClient {
  readonly client: string
  readonly latitude: number
  readonly longitude: number
  readonly at: string
}

const display = (latin1: string): string => Buffer.from(latin1, "latin1").toString("utf8")

export const mapClientOf = (record: LocationRecord.LocationRecord): MapClient => {
  const { latitude, longitude } = LocationRecord.coordinatesOf(record.location)
  return { client: display(record.client), latitude, longitude, at: display(LocationRecord.formatAtLine(record)) }
}

/** At most `limit` records, evenly spaced over `records`. */
export const sample = <A>(records: ReadonlyArray<A>, limit: number): Array<A> => {
  if (records.length <= limit) return [...records]
  const step = records.length / limit
  const picked: Array<A> = []
  for (let i = 0; i < limit; i++) {
    const record = records[Math.floor(i * step)]
    if (record !== undefined) picked.push(record)
  }
  return picked
}

/** The states of one server's links, as the page colours them. */
interface ServerView {
  readonly reachable: boolean
  readonly ready: boolean | null
  readonly count: number | null
  readonly links: Readonly<Record<string, string>>
}

const viewOf = (status: StatusReport): ServerView => ({
  reachable: true,
  ready: status.ready,
  count: status.store.count,
  links: Object.fromEntries(status.links.map((link) => [link.peer, link.state]))
})

const unreachable: ServerView = { reachable: false, ready: null, count: null, links: {} }

const StatusLinks = Schema.Struct({
  ready: Schema.Boolean,
  store: Schema.Struct({ count: Schema.Number }),
  links: Schema.Array(Schema.Struct({ peer: Schema.String, state: Schema.String }))
})

/**
 * The events of one subscriber: `herd` (every server's links, this one's
 * from its own counts, the others' from their `/status`, polled every 2 s)
 * whenever it changes, and `clients` with the locations this server learnt
 * since the last one. A comment every 15 s of silence keeps proxies from
 * closing the stream.
 */
export const events = (options: {
  readonly server: HerdServer.HerdServer["Type"]
  readonly config: HerdConfig.HerdConfigValue
  readonly clientsLimit: number
  readonly client: HttpClient.HttpClient
}): Stream.Stream<Uint8Array> => {
  const { client, clientsLimit, config, server } = options
  const neighbours = HerdConfig.neighboursOf(config, server.name)
  const others = Object.entries(config.servers).filter(([name]) => name !== server.name)
  let lastHerd = ""
  let sentSeq = -1
  let sentVersion = ""
  let lastSentMs = 0
  let tick = 0
  const othersViews = new Map<string, ServerView>()

  const pollOthers = Effect.forEach(others, ([name, address]) => {
    if (address.httpPort === undefined) return Effect.sync(() => othersViews.set(name, unreachable))
    return client.get(`http://${hostForUrl(address.host)}:${address.httpPort}/status`).pipe(
      Effect.flatMap((response) => response.json),
      Effect.flatMap(Schema.decodeUnknown(StatusLinks)),
      Effect.timeout("1500 millis"),
      Effect.match({
        onFailure: () => unreachable,
        onSuccess: (status): ServerView => ({
          reachable: true,
          ready: status.ready,
          count: status.store.count,
          links: Object.fromEntries(status.links.map((link) => [link.peer, link.state]))
        })
      }),
      Effect.map((view) => othersViews.set(name, view))
    )
  }, { concurrency: "unbounded", discard: true })

  const herdEvent = (nowMs: number): string | undefined => {
    const servers: Record<string, ServerView> = {
      [server.name]: viewOf(statusOf(server, config, neighbours, nowMs))
    }
    for (const [name] of others) servers[name] = othersViews.get(name) ?? unreachable
    const data = JSON.stringify({ servers })
    if (data === lastHerd) return undefined
    lastHerd = data
    return data
  }

  const clientsEvent: Effect.Effect<string | undefined> = Effect.gen(function*() {
    const { durable, stats, store } = server
    if (durable !== undefined) {
      const lastSeq = durable.lastSeq()
      if (lastSeq === sentSeq) return undefined
      // Past the limit, the newest `clientsLimit`: a client's row takes a
      // new sequence number when its record changes, so a window of seqs
      // holds at most that many clients.
      const replace = sentSeq < 0 || lastSeq - sentSeq > clientsLimit
      const after = replace ? Math.max(0, lastSeq - clientsLimit) : sentSeq
      const records = yield* durable.recordsAfter(after, clientsLimit).pipe(Effect.orElseSucceed(() => []))
      sentSeq = records.at(-1)?.seq ?? lastSeq
      return JSON.stringify({ replace, total: store.size(), clients: records.map(({ record }) => mapClientOf(record)) })
    }
    // A memory store has no sequence numbers: the sample is sent again when
    // the store may have changed (its size, or records won since).
    const version = `${store.size()}/${stats.iamatStored + stats.atStored}`
    if (version === sentVersion) return undefined
    if (sentVersion !== "" && tick % 4 !== 0) return undefined
    sentVersion = version
    return JSON.stringify({ replace: true, total: store.size(), clients: sample(store.snapshot(), clientsLimit).map(mapClientOf) })
  })

  const step = Effect.gen(function*() {
    if (tick % 4 === 0 && others.length > 0) yield* pollOthers
    const nowMs = yield* Clock.currentTimeMillis
    tick++
    const out: Array<string> = []
    const herd = herdEvent(nowMs)
    if (herd !== undefined) out.push(`event: herd\ndata: ${herd}\n\n`)
    const clients = yield* clientsEvent
    if (clients !== undefined) out.push(`event: clients\ndata: ${clients}\n\n`)
    if (out.length === 0 && nowMs - lastSentMs > 15_000) out.push(": still here\n\n")
    if (out.length > 0) lastSentMs = nowMs
    return out
  })

  return Stream.repeatEffectWithSchedule(step, Schedule.spaced("500 millis")).pipe(
    Stream.flattenIterables,
    Stream.encodeText
  )
}

/** An IPv6 host in a URL goes in brackets. */
export const hostForUrl = (host: string): string => host.includes(":") ? `[${host}]` : host
