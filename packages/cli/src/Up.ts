/**
 * Runs servers of a config in this process until interrupted (Ctrl-C or
 * SIGTERM): `herd serve` runs one, `herd up` all of them. They share one
 * Places provider, so the offline gazetteer is loaded once.
 */
import type { LinkEvent } from "@herd/peers"
import { layerFromConfig, PlacesClient } from "@herd/places"
import { HerdConfig, HerdServer } from "@herd/server"
import { Console, Context, Effect, Layer } from "effect"
import type { LoadedConfig } from "./Config.ts"
import { checkServerNames } from "./Config.ts"
import { printLine } from "./Report.ts"

export const runHerd = (loaded: LoadedConfig, names: ReadonlyArray<string>) =>
  Effect.flatMap(checkServerNames(loaded, names), () =>
    Effect.scoped(Effect.gen(function*() {
      const { config } = loaded
      const shared = yield* Layer.build(
        Layer.succeed(HerdConfig, config).pipe(Layer.merge(layerFromConfig(config.places, process.env)))
      )
      const places = Context.get(shared, PlacesClient)
      yield* Console.log(`Places provider: ${places.provider}`)
      for (const name of names) {
        const server = yield* Layer.build(HerdServer.layer({ name, onLinkEvent: printLink(name) })).pipe(
          Effect.provide(shared)
        )
        const { address } = Context.get(server, HerdServer.HerdServer)
        yield* Console.log(`${name} listening on ${address.host}:${address.port}`)
      }
      // A daemon: loading cannot be interrupted, and a stop must not wait for it.
      if (places.warmUp !== undefined) {
        yield* Effect.forkDaemon(places.warmUp.pipe(
          Effect.catchAll((error) => printLine(`Places provider ${places.provider}: ${error.message}`))
        ))
      }
      return yield* Effect.never
    })))

/** One line per link that comes up or goes down; failed dials stay in the log. */
const printLink = (name: string) => (event: LinkEvent) => {
  if (event.event === "link-up") console.log(`${name} -> ${event.peer} up (${event.address}, sent ${event.catchUp} records)`)
  if (event.event === "link-down") console.log(`${name} -> ${event.peer} down: ${event.reason}`)
}
