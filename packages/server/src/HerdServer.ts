/**
 * One server of the herd: a TCP listener on its address from the config, one
 * supervised fiber per inbound connection (client or neighbour), answering
 * the line protocol of PROTOCOL.md.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeSocketServer from "@effect/platform-node/NodeSocketServer"
import { Handshake, PeerLinks } from "@herd/peers"
import { PlacesClient } from "@herd/places"
import { Protocol, Reply } from "@herd/protocol"
import { DurableStore, LocationStore } from "@herd/store"
import type { SocketServer } from "@effect/platform"
import * as NodePath from "node:path"
import { Clock, Context, Deferred, Duration, Effect, Either, Exit, FiberSet, Layer, Option, Schema, Scope } from "effect"
import * as EventLog from "./EventLog.ts"
import * as Exposure from "./Exposure.ts"
import * as Metrics from "./Metrics.ts"
import { HerdConfig, neighboursOf } from "./HerdConfig.ts"
import type { HerdConfigValue } from "./HerdConfig.ts"
import { Admission, peerAllowanceOf } from "./internal/Admission.ts"
import { serveConnection } from "./internal/Connection.ts"
import { makeDeadlines } from "./internal/Deadlines.ts"
import type { Session } from "./internal/Session.ts"
import * as Tls from "./internal/Tls.ts"

export class HerdServerError extends Schema.TaggedError<HerdServerError>()("HerdServerError", {
  server: Schema.String,
  message: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {}

export interface HerdServerOptions {
  /** The server's name in the config's `servers`. */
  readonly name: string
  /** Listen on this port instead of the config's (0: any free port). */
  readonly port?: number
  /** Called on every peer link change, besides the event log (`herd up` prints them). */
  readonly onLinkEvent?: (event: PeerLinks.LinkEvent) => void
}

export class HerdServer extends Context.Tag("@herd/server/HerdServer")<
  HerdServer,
  {
    readonly name: string
    /** Where it listens; with port 0 in the config, the port it was given. */
    readonly address: { readonly host: string; readonly port: number }
    /** Its counts, for its admin endpoint. */
    readonly stats: Metrics.ServerStats
    /** Its store, and the durable store behind it where there is one (sequence numbers). */
    readonly store: LocationStore.LocationStore["Type"]
    readonly durable: DurableStore.DurableStoreService | undefined
  }
>() {}

/** The server's address, bound; the listener closes when `close` runs or its scope ends. */
interface Bound {
  readonly config: HerdConfigValue
  readonly server: SocketServer.SocketServer["Type"]
  readonly address: { readonly host: string; readonly port: number }
  readonly close: Effect.Effect<void>
}

/**
 * Binds the server's address and nothing else: a server that cannot listen
 * (the port in use) must fail before it opens a log or dials a neighbour, so
 * that it leaves no trace in the log of the server already there.
 */
const bind = (options: HerdServerOptions): Effect.Effect<Bound, HerdServerError, HerdConfig | Scope.Scope> =>
  Effect.gen(function*() {
    const config = yield* HerdConfig
    const configured = config.servers[options.name]
    if (configured === undefined) {
      return yield* new HerdServerError({ server: options.name, message: "is not a server of the config" })
    }
    // The safe default, for library users as for the command: no plain TCP past loopback unless asked for.
    const exposed = Exposure.check(config, [options.name])
    if (Either.isLeft(exposed)) {
      return yield* new HerdServerError({ server: options.name, message: exposed.left.message, cause: exposed.left })
    }
    const port = options.port ?? configured.port
    // A scope of its own, so that the listener can be closed before "stopped"
    // is recorded, whatever was acquired after it.
    const listenerScope = yield* Scope.make()
    yield* Effect.addFinalizer((exit) => Scope.close(listenerScope, exit))
    const server = yield* NodeSocketServer.make({
      host: configured.host,
      port,
      // Answer what a client sent before it half-closed its side.
      allowHalfOpen: true,
      // Replies are written once per batch already: Nagle would only delay them.
      noDelay: true
    }).pipe(
      Scope.extend(listenerScope),
      Effect.mapError((error) =>
        new HerdServerError({
          server: options.name,
          message: `cannot listen on ${configured.host}:${port}: ${
            error.cause instanceof Error ? error.cause.message : error.reason
          }`,
          cause: error
        })
      )
    )
    const address = server.address._tag === "TcpAddress"
      ? { host: server.address.hostname, port: server.address.port }
      : { host: configured.host, port }
    return { config, server, address, close: Scope.close(listenerScope, Exit.void) }
  })

/** Serves connections on a bound listener with the services of the context. */
const serve = (
  options: HerdServerOptions,
  { address, close, config, server }: Bound,
  stats: Metrics.ServerStats,
  tls: Tls.Credentials | undefined
) =>
  Effect.gen(function*() {
    const log = yield* EventLog.EventLog
    // Added first, so it runs last: after the listener and every connection closed.
    yield* Effect.addFinalizer(() => Effect.sync(() => log.unsafeRecord("stopped")))
    const lookUp = yield* FiberSet.makeRuntime<never, void, never>()
    const deadlines = yield* makeDeadlines
    const durable = yield* Effect.serviceOption(DurableStore.DurableStore)
    const store = yield* LocationStore.LocationStore
    const services = {
      serverName: options.name,
      protocol: yield* Protocol.Protocol,
      store,
      peers: yield* PeerLinks.PeerLinks,
      places: Metrics.countingPlaces(yield* PlacesClient.PlacesClient, stats),
      printBody: Reply.makeBodyPrinter(),
      stats,
      log,
      lineLimit: config.lineLimit,
      pendingReplyBytes: config.limits.pendingReplyBytes,
      maxClientAheadNs: BigInt(config.limits.maxClientAheadMs) * 1_000_000n,
      admission: new Admission(config.limits.maxConnections, peerAllowanceOf(Object.keys(config.servers).length)),
      herdServers: new Set(Object.keys(config.servers)),
      partialLineTimeoutMs: config.limits.partialLineTimeoutMs,
      peersMustProve: tls !== undefined,
      extendedLinksIn: new Set<Session>(),
      // Kept by the durable store, they outlive a restart; in memory, a link's flap.
      checkpoints: Option.match(durable, {
        onNone: () => Handshake.makeMemoryCheckpoints(),
        onSome: Handshake.durableCheckpoints
      }),
      tls,
      deadlines,
      whenStored: config.store.sync === "always" ? Option.getOrUndefined(durable)?.unsafeOnCommitted : undefined,
      lookUp: (lookup: Effect.Effect<void>) => {
        lookUp(lookup)
      }
    }
    yield* Effect.addFinalizer(() => close)
    yield* server.run(serveConnection(services)).pipe(Effect.forkScoped)
    // Added last, so it runs first, while every connection is still served. A
    // store in memory keeps no checkpoint past the process: nothing to ask.
    if (Option.isSome(durable)) yield* Effect.addFinalizer(() => askCheckpoints(services.extendedLinksIn, log))

    log.unsafeRecord("listening", { host: address.host, port: address.port })
    return HerdServer.of({ name: options.name, address, stats, store, durable: Option.getOrUndefined(durable) })
  })

/**
 * A stopping server asks each neighbour linked to it where it stands with
 * that neighbour's store (`CHECKPOINT`), and waits for the answers (at most
 * `Handshake.checkpointWaitMs`): its checkpoints are then where the links
 * are, and its restart costs what changed while it was down, not what the
 * neighbours had not committed yet when it stopped.
 */
const askCheckpoints = (linksIn: ReadonlySet<Session>, log: EventLog.EventLog["Type"]) =>
  Effect.gen(function*() {
    const asked = [...linksIn]
    if (asked.length === 0) return
    const started = yield* Clock.currentTimeMillis
    const done = yield* Deferred.make<void>()
    let answered = 0
    let gone = 0
    for (const session of asked) {
      session.askCheckpoint((gotAnswer) => {
        if (gotAnswer) answered++
        else gone++
        if (answered + gone === asked.length) Deferred.unsafeDone(done, Exit.void)
      })
    }
    yield* Handshake.awaitAtMost(done, Handshake.checkpointWaitMs)
    log.unsafeRecord("checkpoints", { asked: asked.length, answered, gone, ms: (yield* Clock.currentTimeMillis) - started })
  })

/**
 * The server, given every service it uses: swap any of them (a store that
 * outlives a restart, fake Places, an in-memory log). It listens once they
 * are built; `layer` listens first.
 */
export const layerWith = (
  options: HerdServerOptions
): Layer.Layer<
  HerdServer,
  HerdServerError,
  HerdConfig | Protocol.Protocol | LocationStore.LocationStore | PeerLinks.PeerLinks | PlacesClient.PlacesClient | EventLog.EventLog
> =>
  Layer.scoped(
    HerdServer,
    Effect.gen(function*() {
      const bound = yield* bind(options)
      const stats = yield* Metrics.makeStats(options.name)
      return yield* serve(options, bound, stats, yield* credentialsOf(options.name, bound.config))
    })
  )

/**
 * The server with the default services: the standard protocol, an in-memory
 * store, links to its neighbours of the config, and its log file in
 * `logDir`. Provide `HerdConfig` and a `PlacesClient`.
 *
 * It binds its address first, then opens its log, then starts its links: a
 * server whose port is taken fails without writing a line into the log of
 * the one listening there (same `logDir` and name) and without dialling.
 */
export const layer = (
  options: HerdServerOptions
): Layer.Layer<HerdServer, HerdServerError, HerdConfig | PlacesClient.PlacesClient> =>
  Layer.scoped(
    HerdServer,
    Effect.gen(function*() {
      const bound = yield* bind(options)
      const tls = yield* credentialsOf(options.name, bound.config)
      const stats = yield* Metrics.makeStats(options.name)
      // Known from the start, so that readiness waits for each one's first dial.
      for (const neighbour of neighboursOf(bound.config, options.name)) {
        const address = bound.config.servers[neighbour]
        if (address !== undefined) stats.link(neighbour, `${address.host}:${address.port}`)
      }
      const clock = yield* Effect.clock
      const onLinkEvent = (event: PeerLinks.LinkEvent) => {
        stats.onLinkEvent(event, clock.unsafeCurrentTimeMillis())
        options.onLinkEvent?.(event)
      }
      // Built here rather than provided, so that it is built after the bind;
      // each server of a process gets a store of its own.
      const own = Layer.mergeAll(Protocol.layer, storeFromConfig(options.name, stats), eventLogFile(options.name, stats))
      const services = yield* Layer.build(
        peerLinksFromConfig(options.name, onLinkEvent, tls, stats).pipe(Layer.provideMerge(own))
      )
      return yield* serve(options, bound, stats, tls).pipe(Effect.provide(services))
    })
  )

/**
 * The store of `name` the config asks for: durable in `<dataDir>/<name>.db`
 * (loaded whole before the server serves anyone), or in memory.
 */
export const storeFromConfig = (
  name: string,
  stats?: Metrics.ServerStats
): Layer.Layer<LocationStore.LocationStore, HerdServerError, HerdConfig> =>
  Layer.unwrapEffect(Effect.map(HerdConfig, (config) => {
    if (config.store.kind === "memory") return Layer.fresh(LocationStore.layerMemory)
    const path = NodePath.join(config.dataDir, `${name}.db`)
    return DurableStore.layer({
      path,
      sync: config.store.sync,
      ...(config.store.retainDays === undefined ? {} : { retainDays: config.store.retainDays }),
      ...(stats === undefined ? {} : { onCommitted: (ms: number) => stats.storeCommitLatency.observe(ms / 1000) })
    }).pipe(
      Layer.mapError((error) =>
        new HerdServerError({ server: name, message: `cannot open its store ${path}: ${error.message}`, cause: error })
      )
    )
  }))

/** Links to the neighbours of `name` in the config, reported to its event log. */
export const peerLinksFromConfig = (
  name: string,
  onLinkEvent?: (event: PeerLinks.LinkEvent) => void,
  tls?: Tls.Credentials,
  stats?: Metrics.ServerStats
): Layer.Layer<PeerLinks.PeerLinks, never, HerdConfig | LocationStore.LocationStore | EventLog.EventLog> =>
  Layer.unwrapEffect(Effect.gen(function*() {
    const config = yield* HerdConfig
    const log = yield* EventLog.EventLog
    const neighbours = neighboursOf(config, name).flatMap((neighbour) => {
      const address = config.servers[neighbour]
      return address === undefined ? [] : [{ name: neighbour, host: address.host, port: address.port }]
    })
    return PeerLinks.layer({
      self: name,
      neighbours,
      reconnect: config.reconnect,
      ...(stats === undefined ? {} : { counters: (neighbour: string) => stats.link(neighbour) }),
      ...(tls === undefined ? {} : {
        // Mutual TLS: the neighbour's certificate must name it, and ours names us.
        connect: (neighbour: PeerLinks.Neighbour, timeout: Duration.Duration) =>
          Tls.dial({ host: neighbour.host, port: neighbour.port, context: tls.context, server: neighbour.name, timeout })
      }),
      onEvent: (linkEvent) => {
        const { event, ...fields } = linkEvent
        log.unsafeRecord(event, fields)
        onLinkEvent?.(linkEvent)
      }
    })
  }))

/**
 * The certificates of `name` in the config's `tls.dir`, checked, when the
 * config has `tls`: a missing or bad file stops the server from starting,
 * with the file named.
 */
export const credentialsOf = (
  name: string,
  config: HerdConfigValue
): Effect.Effect<Tls.Credentials | undefined, HerdServerError> =>
  config.tls === undefined ? Effect.succeed(undefined) : Tls.load({ dir: config.tls.dir, name, clients: config.tls.clients }).pipe(
    Effect.provide(NodeContext.layer),
    Effect.mapError((error) => new HerdServerError({ server: name, message: `tls: ${error.message}`, cause: error }))
  )

/** `<logDir>/<name>.log` of the config. */
export const eventLogFile = (
  name: string,
  stats?: Metrics.ServerStats
): Layer.Layer<EventLog.EventLog, HerdServerError, HerdConfig> =>
  Layer.unwrapEffect(
    Effect.map(HerdConfig, (config) =>
      EventLog.layerFile({
        dir: config.logDir,
        server: name,
        wire: config.log.wire,
        maxFileBytes: config.log.maxBytes,
        keep: config.log.keep,
        ...(stats === undefined ? {} : {
          onWritten: (bytes: number) => {
            stats.logBytesWritten += bytes
          }
        })
      }).pipe(
        Layer.provide(NodeContext.layer),
        Layer.mapError((error) =>
          new HerdServerError({ server: name, message: `cannot open its log: ${error.message}`, cause: error })
        )
      ))
  )
