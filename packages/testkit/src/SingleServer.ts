/**
 * One server in this process on a free loopback port, with in-memory store
 * and log and the Places layer of the test's choice.
 */
import { PeerLinks } from "@herd/peers"
import { PlacesClient } from "@herd/places"
import { Protocol } from "@herd/protocol"
import { EventLog, HerdConfig, HerdServer } from "@herd/server"
import { LocationStore } from "@herd/store"
import { Context, Effect, Layer } from "effect"
import type { Scope } from "effect"

export interface StartedServer {
  readonly name: string
  readonly address: { readonly host: string; readonly port: number }
  readonly store: LocationStore.LocationStore["Type"]
  /** The server's event log so far, one JSON line per entry. */
  readonly logLines: () => ReadonlyArray<string>
}

/** Places that answers every query with `results` cut to the bound. */
export const fixedPlaces = (results: ReadonlyArray<unknown>, provider = "fixture"): Layer.Layer<PlacesClient.PlacesClient> =>
  Layer.succeed(
    PlacesClient.PlacesClient,
    PlacesClient.PlacesClient.of({
      provider,
      nearby: (query) =>
        Effect.succeed<PlacesClient.PlacesBody>({
          html_attributions: [],
          results: results.slice(0, query.limit),
          status: results.length === 0 ? "ZERO_RESULTS" : "OK"
        })
    })
  )

export const startServer = (options: {
  readonly name?: string
  /** Config fields to set; the server itself listens on 127.0.0.1, port 0. */
  readonly config?: Omit<Partial<HerdConfig.HerdConfigInput>, "servers">
  readonly places?: Layer.Layer<PlacesClient.PlacesClient>
  /** Another dialect (or a broken one, to test what a server does about it). */
  readonly protocol?: Layer.Layer<Protocol.Protocol>
} = {}): Effect.Effect<StartedServer, never, Scope.Scope> =>
  Effect.gen(function*() {
    const name = options.name ?? "Alford"
    const config = yield* HerdConfig.decodeConfig(
      { ...options.config, servers: { [name]: { host: "127.0.0.1", port: 0 } } },
      "test config"
    ).pipe(Effect.orDie)
    const store = yield* LocationStore.makeMemory
    const { lines, log } = yield* EventLog.makeMemory(name)
    const context = yield* Layer.build(
      HerdServer.layerWith({ name }).pipe(
        Layer.provide(Layer.mergeAll(
          options.protocol ?? Protocol.layer,
          PeerLinks.layerAlone,
          Layer.succeed(LocationStore.LocationStore, store),
          Layer.succeed(EventLog.EventLog, log),
          Layer.succeed(HerdConfig.HerdConfig, config),
          options.places ?? fixedPlaces([{ name: "Royce Hall" }, { name: "Powell Library" }])
        ))
      )
    ).pipe(Effect.orDie)
    const server = Context.get(context, HerdServer.HerdServer)
    return { name, address: server.address, store, logLines: () => lines }
  })
