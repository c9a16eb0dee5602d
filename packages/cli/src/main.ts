/**
 * `herd`: run one server of a herd, the whole herd in one process, or talk
 * to a server the way people use redis-cli.
 */
import { Args, Command, Options } from "@effect/cli"
import { FetchHttpClient } from "@effect/platform"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Console, Effect, Layer } from "effect"
import { runClient } from "./Client.ts"
import { resolveConfig } from "./Config.ts"
import { runHerd } from "./Up.ts"

const config = Options.file("config", { exists: "yes" }).pipe(
  Options.withDescription("the herd config: .ts, .js, .mjs or .json (default: ./herd.config.ts, else the default herd)"),
  Options.optional
)

const serverName = Args.text({ name: "name" }).pipe(
  Args.withDescription("a server of the config, e.g. Alford")
)

const serve = Command.make("serve", { name: serverName, config }, ({ config, name }) =>
  Effect.flatMap(resolveConfig(config), (herd) => runHerd(herd, [name]))
).pipe(
  Command.withDescription(
    "Run one server of the config: it listens on its address, links to its neighbours and logs to <logDir>/<name>.log. Ctrl-C (SIGINT) or SIGTERM stops it cleanly."
  )
)

const up = Command.make("up", { config }, ({ config }) =>
  Effect.flatMap(resolveConfig(config), (herd) => runHerd(herd, Object.keys(herd.servers)))
).pipe(
  Command.withDescription(
    "Run every server of the config in this process (the default herd: five servers on loopback). Ctrl-C stops them all cleanly."
  )
)

const client = Command.make("client", { name: serverName, config }, ({ config, name }) =>
  Effect.flatMap(resolveConfig(config), (herd) => runClient(herd, name))
).pipe(
  Command.withDescription(
    "Open a line session to a server of the config: lines typed (or piped) on stdin go to the server, its replies to stdout."
  )
)

const herd = Command.make("herd").pipe(
  Command.withDescription("A proxy server herd: location reports, flooding across the herd, and places near a client."),
  Command.withSubcommands([serve, up, client])
)

const cli = Command.run(herd, { name: "herd", version: "0.1.0" })

cli(process.argv).pipe(
  // A bad config or an address in use is the user's to fix: say what, plainly.
  Effect.catchTags({
    HerdConfigError: (error) => fail(`config ${error.source}:\n${error.message}`),
    HerdServerError: (error) => fail(`${error.server} ${error.message}`)
  }),
  Effect.provide(Layer.mergeAll(NodeContext.layer, FetchHttpClient.layer)),
  NodeRuntime.runMain({ disableErrorReporting: false })
)

function fail(message: string) {
  return Console.error(`herd: ${message}`).pipe(Effect.zipRight(Effect.sync(() => {
    process.exitCode = 1
  })))
}
