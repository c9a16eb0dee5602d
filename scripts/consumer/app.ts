// Two linked servers of one herd in an app of your own, as README's
// "Use it from your own project" shows it.
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Offline } from "@herd/places"
import { HerdConfig, HerdServer } from "@herd/server"
import { Layer } from "effect"

const config = Layer.effect(HerdConfig.HerdConfig, HerdConfig.decodeConfig({
  servers: { North: { port: Number(process.env.NORTH_PORT ?? 12800) }, South: { port: Number(process.env.SOUTH_PORT ?? 12801) } },
  links: [["North", "South"]]
}, "app.ts"))

const herd = Layer.mergeAll(HerdServer.layer({ name: "North" }), HerdServer.layer({ name: "South" }))

Layer.launch(herd.pipe(Layer.provide(Offline.layer), Layer.provide(config))).pipe(NodeRuntime.runMain)
