/**
 * The HTTP endpoint of one server, on its host and `httpPort`, on
 * `@effect/platform`'s HTTP server:
 *
 * - `/metrics`: the server's Effect metrics in the Prometheus text format;
 * - `/healthz`: 200 once the store is loaded (the server is built) and every
 *   reachable neighbour's catch-up is done, 503 before: a readiness probe;
 * - `/status`: the server's state as JSON (`StatusReport`);
 * - `/`: the live map, with `/map.js`, `/map/data` and `/map/events` (SSE).
 */
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as FileSystem from "@effect/platform/FileSystem"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { HerdConfig, HerdServer, Metrics } from "@herd/server"
import { Clock, Context, Deferred, Effect, Layer, Option, Schedule, Schema, Stream } from "effect"
import * as Http from "node:http"
import { bundledMapScript, mapScriptPath } from "./MapScript.ts"
import { events, layoutOf, page } from "./MapPage.ts"
import * as Prometheus from "./Prometheus.ts"
import { statusOf } from "./Status.ts"

export class AdminError extends Schema.TaggedError<AdminError>()("AdminError", {
  server: Schema.String,
  message: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {}

export interface AdminOptions {
  /** Listen on this port instead of the config's `httpPort` (0: any free port). */
  readonly port?: number
  /** The most client locations the map is sent (default 3,000: beyond, the newest or a sample). */
  readonly mapClients?: number
}

export class AdminServer extends Context.Tag("@herd/admin/AdminServer")<
  AdminServer,
  {
    /** Where it listens; with port 0, the port it was given. */
    readonly address: { readonly host: string; readonly port: number }
  }
>() {}

export const defaultMapClients = 3000

/** Answers that nobody stores: every request sees the state of now. */
const noStore = { "cache-control": "no-store" }

/**
 * The endpoint of the `HerdServer` of the context, on the host of its
 * config and its `httpPort` (or `options.port`). Fails when it has neither,
 * or cannot listen.
 */
export const layer = (
  options: AdminOptions = {}
): Layer.Layer<AdminServer, AdminError, HerdServer.HerdServer | HerdConfig.HerdConfig> =>
  Layer.scoped(
    AdminServer,
    Effect.gen(function*() {
      const server = yield* HerdServer.HerdServer
      const config = yield* HerdConfig.HerdConfig
      const configured = config.servers[server.name]
      const port = options.port ?? configured?.httpPort
      if (port === undefined) {
        return yield* new AdminError({ server: server.name, message: "has no httpPort in the config" })
      }
      const host = configured?.host ?? server.address.host
      let nodeServer: Http.Server | undefined
      const http = yield* NodeHttpServer.make(() => (nodeServer = Http.createServer()), { host, port }).pipe(
        Effect.mapError((error) =>
          new AdminError({
            server: server.name,
            message: `cannot serve HTTP on ${host}:${port}: ${error.cause instanceof Error ? error.cause.message : error.message}`,
            cause: error
          })
        )
      )
      // Run before the server's own close, which waits for every connection
      // to end: a map's event stream never would. Streams end first, then
      // whatever connection is left is closed.
      const closing = yield* Deferred.make<void>()
      yield* Effect.addFinalizer(() =>
        Effect.andThen(Deferred.succeed(closing, undefined), Effect.sync(() => nodeServer?.closeAllConnections()))
      )
      const address = http.address._tag === "TcpAddress"
        ? { host: http.address.hostname, port: http.address.port }
        : { host, port }
      const clientsLimit = options.mapClients ?? defaultMapClients
      const neighbours = HerdConfig.neighboursOf(config, server.name)
      const publisher = new Metrics.Publisher(server.stats)
      const publish = Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Effect.sync(() => publisher.unsafePublish({ records: server.store.size() }, now)))
      // Histograms take their new observations one by one: published every
      // second as well as on a scrape, a scrape never has more than a
      // second's worth to move, however rarely it comes.
      yield* Effect.forkScoped(Effect.repeat(publish, Schedule.spaced("1 second")))
      const scrape = yield* Prometheus.makeScrape(server.name)
      const client = yield* HttpClient.HttpClient.pipe(Effect.provide(FetchHttpClient.layer))
      const mapScript = yield* loadMapScript

      const status = Effect.map(Clock.currentTimeMillis, (now) => statusOf(server, config, neighbours, now))

      const router = HttpRouter.empty.pipe(
        HttpRouter.get(
          "/metrics",
          Effect.gen(function*() {
            yield* publish
            const text = yield* scrape
            return HttpServerResponse.text(text, { contentType: Prometheus.contentType, headers: noStore })
          }).pipe(
            Effect.catchAll((error) => Effect.succeed(HttpServerResponse.text(`${error.message}\n`, { status: 500 })))
          )
        ),
        HttpRouter.get(
          "/healthz",
          Effect.map(status, (report) =>
            HttpServerResponse.unsafeJson(
              { ready: report.ready, waitingFor: report.waitingFor },
              { status: report.ready ? 200 : 503, headers: noStore }
            ))
        ),
        HttpRouter.get(
          "/status",
          Effect.map(status, (report) =>
            // Any page may read it: the map of one server shows the others' links.
            HttpServerResponse.unsafeJson(report, { headers: { ...noStore, "access-control-allow-origin": "*" } }))
        ),
        HttpRouter.get("/", Effect.succeed(HttpServerResponse.text(page(server.name), { contentType: "text/html; charset=utf-8" }))),
        HttpRouter.get(
          "/map.js",
          Effect.succeed(Option.match(mapScript, {
            onNone: () =>
              HttpServerResponse.text(
                `document.getElementById("summary").textContent = "the map's script is not built: run npm run build:map"\n`,
                { contentType: "text/javascript; charset=utf-8", status: 503 }
              ),
            onSome: (script) =>
              HttpServerResponse.text(script, { contentType: "text/javascript; charset=utf-8" })
          }))
        ),
        HttpRouter.get(
          "/map/data",
          Effect.sync(() => HttpServerResponse.unsafeJson(layoutOf(config, server.name, clientsLimit), { headers: noStore }))
        ),
        HttpRouter.get(
          "/map/events",
          Effect.sync(() =>
            HttpServerResponse.stream(events({ server, config, clientsLimit, client }).pipe(Stream.interruptWhen(Deferred.await(closing))), {
              contentType: "text/event-stream",
              headers: { ...noStore, "x-accel-buffering": "no" }
            })
          )
        )
      )
      yield* HttpServer.serveEffect()(router).pipe(Effect.provideService(HttpServer.HttpServer, http))
      return AdminServer.of({ address })
    })
  )

/** The map's script: bundled into this module, else `dist/map.js`; none if neither (the page says so). */
const loadMapScript: Effect.Effect<Option.Option<string>> = Effect.suspend(() => {
  if (bundledMapScript !== undefined) return Effect.succeed(Option.some(bundledMapScript))
  const path = mapScriptPath
  if (path === undefined) return Effect.succeed(Option.none())
  return Effect.flatMap(FileSystem.FileSystem, (fs) => fs.readFileString(path)).pipe(
    Effect.option,
    Effect.provide(NodeFileSystem.layer)
  )
})
