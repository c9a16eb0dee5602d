/**
 * One server of the herd: a TCP listener on its address from the config, one
 * supervised fiber per inbound connection (client or neighbour), answering
 * the line protocol of PROTOCOL.md.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeSocketServer from "@effect/platform-node/NodeSocketServer"
import { PeerLinks } from "@herd/peers"
import * as Peers from "@herd/peers"
import { PlacesClient } from "@herd/places"
import { Protocol } from "@herd/protocol"
import * as ProtocolLayer from "@herd/protocol"
import { LocationStore } from "@herd/store"
import * as Store from "@herd/store"
import { Context, Effect, FiberSet, Layer, Schema } from "effect"
import * as EventLog from "./EventLog.ts"
import { HerdConfig, neighboursOf } from "./HerdConfig.ts"
import { Admission, peerAllowanceOf } from "./internal/Admission.ts"
import { serveConnection } from "./internal/Connection.ts"

export class HerdServerError extends Schema.TaggedError<HerdServerError>()("HerdServerError", {
  server: Schema.String,
  message: Schema.String
}) {}

export interface HerdServerOptions {
  /** The server's name in the config's `servers`. */
  readonly name: string
  /** Listen on this port instead of the config's (0: any free port). */
  readonly port?: number
  /** Called on every peer link change, besides the event log (`herd up` prints them). */
  readonly onLinkEvent?: (event: Peers.LinkEvent) => void
}

export class HerdServer extends Context.Tag("@herd/server/HerdServer")<
  HerdServer,
  {
    readonly name: string
    /** Where it listens; with port 0 in the config, the port it was given. */
    readonly address: { readonly host: string; readonly port: number }
  }
>() {}

/**
 * The server, given every service it uses: swap any of them (a store that
 * outlives a restart, fake Places, an in-memory log).
 */
export const layerWith = (
  options: HerdServerOptions
): Layer.Layer<
  HerdServer,
  HerdServerError,
  HerdConfig | Protocol | LocationStore | PeerLinks | PlacesClient | EventLog.EventLog
> =>
  Layer.scoped(
    HerdServer,
    Effect.gen(function*() {
      const config = yield* HerdConfig
      const configured = config.servers[options.name]
      if (configured === undefined) {
        return yield* new HerdServerError({ server: options.name, message: "is not a server of the config" })
      }
      const log = yield* EventLog.EventLog
      // Added first, so it runs last: after the listener and every connection closed.
      yield* Effect.addFinalizer(() => Effect.sync(() => log.record("stopped")))
      const lookUp = yield* FiberSet.makeRuntime<never, void, never>()
      const services = {
        serverName: options.name,
        protocol: yield* Protocol,
        store: yield* LocationStore,
        peers: yield* PeerLinks,
        places: yield* PlacesClient,
        log,
        lineLimit: config.lineLimit,
        pendingReplyBytes: config.limits.pendingReplyBytes,
        maxClientAheadNs: BigInt(config.limits.maxClientAheadMs) * 1_000_000n,
        admission: new Admission(config.limits.maxConnections, peerAllowanceOf(Object.keys(config.servers).length)),
        herdServers: new Set(Object.keys(config.servers)),
        partialLineTimeoutMs: config.limits.partialLineTimeoutMs,
        lookUp: (lookup: Effect.Effect<void>) => {
          lookUp(lookup)
        }
      }
      const server = yield* NodeSocketServer.make({
        host: configured.host,
        port: options.port ?? configured.port,
        // Answer what a client sent before it half-closed its side.
        allowHalfOpen: true,
        // Replies are written once per batch already: Nagle would only delay them.
        noDelay: true
      }).pipe(
        Effect.mapError((error) =>
          new HerdServerError({
            server: options.name,
            message: `cannot listen on ${configured.host}:${options.port ?? configured.port}: ${
              error.cause instanceof Error ? error.cause.message : error.reason
            }`
          })
        )
      )
      const address = server.address._tag === "TcpAddress"
        ? { host: server.address.hostname, port: server.address.port }
        : { host: configured.host, port: configured.port }

      yield* server.run(serveConnection(services)).pipe(Effect.forkScoped)

      log.record("listening", { host: address.host, port: address.port })
      return HerdServer.of({ name: options.name, address })
    })
  )

/**
 * The server with the default services: the standard protocol, an in-memory
 * store, links to its neighbours of the config, and its log file in
 * `logDir`. Provide `HerdConfig` and a `PlacesClient`.
 */
export const layer = (
  options: HerdServerOptions
): Layer.Layer<HerdServer, HerdServerError, HerdConfig | PlacesClient> => {
  // `fresh`: every server of a process gets a store of its own, even when
  // several are built together (herd up, or a user's mergeAll).
  const own = Layer.mergeAll(ProtocolLayer.layer, Layer.fresh(Store.layerMemory), eventLogFile(options.name))
  return layerWith(options).pipe(
    Layer.provide(peerLinksFromConfig(options.name, options.onLinkEvent).pipe(Layer.provideMerge(own)))
  )
}

/** Links to the neighbours of `name` in the config, reported to its event log. */
export const peerLinksFromConfig = (
  name: string,
  onLinkEvent?: (event: Peers.LinkEvent) => void
): Layer.Layer<PeerLinks, never, HerdConfig | LocationStore | EventLog.EventLog> =>
  Layer.unwrapEffect(Effect.gen(function*() {
    const config = yield* HerdConfig
    const log = yield* EventLog.EventLog
    const neighbours = neighboursOf(config, name).flatMap((neighbour) => {
      const address = config.servers[neighbour]
      return address === undefined ? [] : [{ name: neighbour, host: address.host, port: address.port }]
    })
    return Peers.layer({
      self: name,
      neighbours,
      reconnect: config.reconnect,
      onEvent: (linkEvent) => {
        const { event, ...fields } = linkEvent
        log.record(event, fields)
        onLinkEvent?.(linkEvent)
      }
    })
  }))

/** `<logDir>/<name>.log` of the config. */
export const eventLogFile = (name: string): Layer.Layer<EventLog.EventLog, HerdServerError, HerdConfig> =>
  Layer.unwrapEffect(
    Effect.map(HerdConfig, (config) =>
      EventLog.layerFile({ dir: config.logDir, server: name }).pipe(
        Layer.provide(NodeContext.layer),
        Layer.mapError((error) => new HerdServerError({ server: name, message: `cannot open its log: ${error.message}` }))
      ))
  )
