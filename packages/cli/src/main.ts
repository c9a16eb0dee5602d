/**
 * `herd`: run one server of a herd, the whole herd in one process, or talk
 * to a server the way people use redis-cli.
 *
 * A usage error (a bad flag or argument, a bad config or environment, a
 * server the config does not name) exits 2 with one line on stderr and
 * nothing on stdout; a failure at run time exits 1, also in one line. Help
 * has no ANSI escapes when stdout is not a terminal or NO_COLOR is set.
 */
import { Args, Command, HelpDoc, Options, ValidationError } from "@effect/cli"
import { FetchHttpClient } from "@effect/platform"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import type { PlacesConfig } from "@herd/places"
import type { HerdConfig, HerdServer } from "@herd/server"
import { Cause, Console, Effect, Exit, Layer } from "effect"
import { stripVTControlCharacters } from "node:util"
import type { CertsError } from "./Certs.ts"
import type { ClientError } from "./Client.ts"
import { resolveClient, runClient } from "./Client.ts"
import { checkExposure, resolveConfig } from "./Config.ts"
import type { LoadedConfig } from "./Config.ts"
import { printLine, UsageError } from "./Report.ts"
import type { NotInSync } from "./Status.ts"
import { runStatus } from "./Status.ts"
import { runHerd } from "./Up.ts"

const config = Options.file("config", { exists: "yes" }).pipe(
  Options.withDescription(
    "the herd config: .ts, .mts, .js, .mjs or .json (default: ./herd.config.ts, else the default herd)"
  ),
  Options.optional
)

/** A word starting with `-` is an option the parser did not take, not a server's name. */
const notAnOption = (what: string) => (text: string) =>
  text.startsWith("-")
    ? Effect.fail(HelpDoc.p(`expected <${what}>, got ${text}`))
    : Effect.succeed(text)

const serverName = Args.text({ name: "name" }).pipe(
  Args.withDescription("a server of the config, e.g. Alford"),
  Args.mapEffect(notAnOption("name"))
)

const insecure = Options.boolean("insecure").pipe(
  Options.withDescription(
    "listen beyond loopback without tls, in clear, knowingly (as insecure: true in the config): anyone who reaches the port can rewrite the herd's locations"
  )
)

/** `--insecure` is `insecure: true` for the servers too, which check it themselves (library users get the same default). */
const withInsecure = (loaded: LoadedConfig, insecure: boolean): LoadedConfig =>
  insecure ? { ...loaded, config: { ...loaded.config, insecure: true } } : loaded

const serve = Command.make("serve", { name: serverName, config, insecure }, ({ config, insecure, name }) =>
  Effect.flatMap(
    resolveConfig(config),
    (loaded) => Effect.zipRight(checkExposure(loaded, [name], insecure), runHerd(withInsecure(loaded, insecure), [name]))
  )
).pipe(
  Command.withDescription(
    "Run one server of the config: it listens on its address, links to its neighbours and logs to <logDir>/<name>.log. Ctrl-C (SIGINT) or SIGTERM stops it cleanly."
  )
)

const up = Command.make("up", { config, insecure }, ({ config, insecure }) =>
  Effect.flatMap(resolveConfig(config), (loaded) => {
    const names = Object.keys(loaded.config.servers)
    return Effect.zipRight(checkExposure(loaded, names, insecure), runHerd(withInsecure(loaded, insecure), names))
  })
).pipe(
  Command.withDescription(
    "Run every server of the config in this process (the default herd: five servers on loopback). Ctrl-C stops them all cleanly."
  )
)

const clientTarget = Args.text({ name: "server" }).pipe(
  Args.withDescription("a server of the config (e.g. Alford), or an address: host:port, [::1]:port"),
  Args.mapEffect(notAnOption("server"))
)

const clientTls = Options.boolean("tls").pipe(
  Options.withDescription("speak TLS, verifying the server against the herd CA (--ca, else ca.crt in the config's tls.dir)")
)

const clientCa = Options.file("ca", { exists: "yes" }).pipe(
  Options.withDescription("the herd CA's certificate to verify the server with (implies --tls)"),
  Options.optional
)

const client = Command.make(
  "client",
  { server: clientTarget, config, tls: clientTls, ca: clientCa },
  ({ ca, config, server, tls }) =>
    Effect.gen(function*() {
      // An address needs no config: one that cannot be read does not stand in the way.
      const resolved = yield* resolveClient({ server, config, tls, ca })
      yield* runClient(resolved.target, resolved.tls)
    })
).pipe(
  Command.withDescription(
    "Open a line session to a server: lines typed (or piped) on stdin go to the server, its replies to stdout."
  )
)

const certsOut = Options.text("out").pipe(
  Options.withPseudoName("dir"),
  Options.withDescription("the folder to write to (tls.dir then points at it)")
)

const certsAdd = Options.text("add").pipe(
  Options.withPseudoName("name"),
  Options.withDescription("issue one more server's key and certificate from the herd CA already in --out"),
  Options.optional
)

const certsForce = Options.boolean("force").pipe(
  Options.withDescription("replace what is there: a new CA (and every server's certificate), or the added server's")
)

const certs = Command.make(
  "certs",
  { config, out: certsOut, add: certsAdd, force: certsForce },
  ({ add, config, force, out }) =>
    Effect.flatMap(resolveConfig(config), (loaded) =>
      // Loaded when used: the certificate library would cost every other command's start-up.
      Effect.flatMap(Effect.promise(() => import("./Certs.ts")), (Certs) => Certs.runCerts(loaded, { out, add, force })))
).pipe(
  Command.withDescription(
    "Make the herd's CA and a key and certificate for each server of the config in --out (keys mode 0600), or with --add <name> one more from that CA: for tls.dir."
  )
)

const status = Command.make(
  "status",
  { config, json: Options.boolean("json").pipe(Options.withDescription("print the answers and the verdict as JSON")) },
  ({ config, json }) => Effect.flatMap(resolveConfig(config), (loaded) => runStatus(loaded, { json }))
).pipe(
  Command.withDescription(
    "Ask every server of the config for its status (its admin endpoint, httpPort): up or down, links, records, digest, lag, and a verdict: in sync (exit 0) when every running server holds the same records, else which differ (exit 1)."
  )
)

const herd = Command.make(
  "herd",
  {},
  () => Effect.fail(new UsageError({ message: "no command given: use serve, up or client (herd --help tells more)" }))
).pipe(
  Command.withDescription("A proxy server herd: location reports, flooding across the herd, and places near a client."),
  Command.withSubcommands([serve, up, client, status, certs])
)

const cli = Command.run(herd, { name: "herd", version: "0.1.0" })

type Failure =
  | ValidationError.ValidationError
  | UsageError
  | HerdConfig.HerdConfigError
  | HerdServer.HerdServerError
  | PlacesConfig.PlacesConfigError
  | ClientError
  | CertsError
  | NotInSync

/** Says what went wrong, in one line (a config's problems one a line), and gives the exit status. */
const report = (failure: Failure): Effect.Effect<number> => {
  if (ValidationError.isValidationError(failure)) {
    return Effect.as(printLine(`${oneLine(HelpDoc.toAnsiText(failure.error))} (herd --help tells more)`), 2)
  }
  switch (failure._tag) {
    case "UsageError":
      return Effect.as(printLine(failure.message), 2)
    case "HerdConfigError":
      return Effect.as(printLine(`config ${failure.source}:\n${failure.message}`), 2)
    case "PlacesConfigError":
      return Effect.as(printLine(failure.message), 2)
    case "HerdServerError":
      return Effect.as(printLine(`${failure.server} ${failure.message}`), 1)
    case "ClientError":
      return Effect.as(printLine(failure.message), 1)
    case "CertsError":
      return Effect.as(printLine(failure.message), 1)
    case "NotInSync":
      // Its verdict is printed already, on stdout with the rest of the report.
      return Effect.succeed(1)
  }
}

const oneLine = (text: string): string =>
  stripVTControlCharacters(text).split("\n").map((line) => line.trim()).filter((line) => line !== "").join(" ")

/** no-color.org: NO_COLOR set to anything but the empty string. */
const plainOutput = process.stdout.isTTY !== true || (process.env["NO_COLOR"] ?? "") !== ""

/**
 * The console the command line library prints through. Its help goes to
 * `log`, in ANSI colours that only a terminal should get. Its usage errors go
 * to `error`, multi-line, just before it fails with them: `report` says them
 * in one line instead, so they are dropped here. (The logger writes through
 * the console's `unsafe` side, which is kept.)
 */
const cliConsole = (console: Console.Console): Console.Console => ({
  ...console,
  log: plainOutput
    ? (...args) => console.log(...args.map((arg) => typeof arg === "string" ? stripVTControlCharacters(arg) : arg))
    : console.log,
  error: () => Effect.void
})

const main: Effect.Effect<number> = Effect.consoleWith((console) =>
  cli(process.argv).pipe(
    Effect.as(0),
    Effect.catchAll(report),
    Effect.withConsole(cliConsole(console))
  )
).pipe(Effect.provide(Layer.mergeAll(NodeContext.layer, FetchHttpClient.layer)))

/**
 * A stop signal repeated at once must not cut the clean stop short: a Ctrl-C
 * can reach the herd twice, from the terminal and passed on by npm (when the
 * start script `exec`s the herd), or a key is pressed twice. runMain stops
 * listening after the first, and a second signal
 * with no listener would kill the process before its log is flushed. So
 * this listener stays: a repeat within a second of the first is ignored, a
 * later one (Ctrl-C pressed again) ends the process at once.
 */
const stopSignalRepeats = (() => {
  let firstAt: number | undefined
  return (signal: NodeJS.Signals) => {
    const now = Date.now()
    if (firstAt === undefined) firstAt = now
    else if (now - firstAt > 1000) process.exit(signal === "SIGINT" ? 130 : 143)
  }
})()
process.on("SIGINT", stopSignalRepeats)
process.on("SIGTERM", stopSignalRepeats)

NodeRuntime.runMain(main, {
  // Interrupted by SIGINT or SIGTERM is a clean stop: 0.
  teardown: (exit, onExit) =>
    onExit(
      Exit.isSuccess(exit)
        ? typeof exit.value === "number" ? exit.value : 0
        : Cause.isInterruptedOnly(exit.cause)
        ? 0
        : 1
    )
})
