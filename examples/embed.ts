/**
 * Composing herd servers in another Effect app: two linked servers of one
 * herd in this process, sharing the offline Places provider. Run it with
 * `node --conditions=@herd/source --import tsx examples/embed.ts`; `npm run typecheck` compiles it.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Offline } from "@herd/places"
import { HerdConfig, HerdServer } from "@herd/server"
import { Context, Effect, Layer } from "effect"

const config = Layer.effect(
  HerdConfig.HerdConfig,
  HerdConfig.decodeConfig({
    servers: { North: { port: 12800 }, South: { port: 12801 } },
    links: [["North", "South"]],
    logDir: "logs"
  }, "examples/embed.ts")
)

const server = (name: string) =>
  HerdServer.layer({ name }).pipe(
    Layer.tap((context) => {
      const { address } = Context.get(context, HerdServer.HerdServer)
      return Effect.log(`${name} is listening on ${address.host}:${address.port}`)
    })
  )

const app = Layer.mergeAll(server("North"), server("South")).pipe(
  Layer.provide(Offline.layer),
  Layer.provide(config)
)

Layer.launch(app).pipe(NodeRuntime.runMain)
