/**
 * Runs servers of a config in this process until interrupted (Ctrl-C or
 * SIGTERM): `herd serve` runs one, `herd up` all of them. They share one
 * Places provider, so the offline gazetteer is loaded once.
 */
import { AdminServer } from "@herd/admin"
import type { PeerLinks } from "@herd/peers"
import { PlacesClient, PlacesConfig } from "@herd/places"
import { HerdConfig, HerdServer } from "@herd/server"
import { Console, Context, Effect, Layer, Schedule } from "effect"
import type { LoadedConfig } from "./Config.ts"
import { checkServerNames } from "./Config.ts"
import { printLine } from "./Report.ts"

export const runHerd = (loaded: LoadedConfig, names: ReadonlyArray<string>) =>
  Effect.flatMap(checkServerNames(loaded, names), () =>
    Effect.raceFirst(
      Effect.scoped(Effect.gen(function*() {
        const { config } = loaded
        const shared = yield* Layer.build(
          Layer.succeed(HerdConfig.HerdConfig, config).pipe(Layer.merge(PlacesConfig.layerFromConfig(config.places, process.env)))
        )
        const places = Context.get(shared, PlacesClient.PlacesClient)
        yield* Console.log(`Places provider: ${places.provider}`)
        for (const name of names) {
          const server = yield* Layer.build(HerdServer.layer({ name, onLinkEvent: printLink(name) })).pipe(
            Effect.provide(shared)
          )
          const { address } = Context.get(server, HerdServer.HerdServer)
          yield* Console.log(`${name} listening on ${address.host}:${address.port}`)
          // Its admin endpoint, where the config gives it an HTTP port.
          if (config.servers[name]?.httpPort !== undefined) {
            const admin = yield* Layer.build(AdminServer.layer()).pipe(
              Effect.provide(Context.merge(shared, server)),
              Effect.mapError((error) => new HerdServer.HerdServerError({ server: name, message: error.message, cause: error }))
            )
            const http = Context.get(admin, AdminServer.AdminServer).address
            yield* Console.log(`${name} admin on http://${hostForUrl(http.host)}:${http.port}/ (metrics, healthz, status, map)`)
          }
        }
        // A daemon: loading cannot be interrupted, and a stop must not wait for it.
        if (places.warmUp !== undefined) {
          yield* Effect.forkDaemon(places.warmUp.pipe(
            Effect.catchAll((error) => printLine(`Places provider ${places.provider}: ${error.message}`))
          ))
        }
        return yield* Effect.never
      })),
      whenAbandonedByNpm
    ))

/**
 * `npm start` (and `npx herd ...`) runs the herd under `sh -c`, and npm passes
 * a SIGINT or SIGTERM it receives to that shell alone, which dies of it
 * without passing it on: the herd would be left running, listening, with no
 * one to stop it. So under npm the herd stops, as if signalled, once the
 * process that started it is gone (its parent changes). Elsewhere a herd
 * outlives its parent as any process does (`nohup herd up &`).
 */
const whenAbandonedByNpm: Effect.Effect<void> = process.env["npm_lifecycle_event"] === undefined
  ? Effect.never
  : Effect.suspend(() => {
    const parent = process.ppid
    return Effect.repeat(Effect.sync(() => process.ppid), {
      until: (current) => current !== parent,
      schedule: Schedule.spaced("100 millis")
    }).pipe(Effect.asVoid)
  })

const hostForUrl = (host: string): string => host.includes(":") ? `[${host}]` : host

/** One line per link that comes up or goes down; failed dials stay in the log. */
const printLink = (name: string) => (event: PeerLinks.LinkEvent) => {
  if (event.event === "link-up") console.log(`${name} -> ${event.peer} up (${event.address}, sent ${event.catchUp} records)`)
  if (event.event === "link-down") console.log(`${name} -> ${event.peer} down: ${event.reason}`)
}
