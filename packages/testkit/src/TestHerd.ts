/**
 * A whole herd in one process, for tests: every server on a free loopback
 * port, linked by the topology of the test's choice, with in-memory stores
 * and logs and a Places layer of the test's choice. A server can be stopped
 * and started again during a test, keeping its store or with an empty one.
 */
import { PlacesClient } from "@herd/places"
import { Protocol } from "@herd/protocol"
import { EventLog, HerdConfig, HerdServer } from "@herd/server"
import { LocationStore } from "@herd/store"
import { Effect, Exit, Layer, Scope } from "effect"
import * as Net from "node:net"
import { fixedPlaces } from "./SingleServer.ts"

export interface TestHerd<Name extends string> {
  readonly config: HerdConfig.HerdConfigValue
  readonly names: ReadonlyArray<Name>
  readonly address: (name: Name) => { readonly host: string; readonly port: number }
  /** The store the server uses now (a restart with an empty store replaces it). */
  readonly store: (name: Name) => LocationStore.LocationStore["Type"]
  /** Everything the server has logged since the herd started, one JSON line each. */
  readonly logLines: (name: Name) => ReadonlyArray<string>
  readonly isRunning: (name: Name) => boolean
  /** Stops one server: its listener, connections and links close. */
  readonly stop: (name: Name) => Effect.Effect<void>
  /** Starts a stopped server again on the same port, with its old store unless `emptyStore`. */
  readonly start: (name: Name, options?: { readonly emptyStore?: boolean }) => Effect.Effect<void>
}

export interface TestHerdOptions<Name extends string> {
  readonly servers: ReadonlyArray<Name>
  readonly links: ReadonlyArray<readonly [Name, Name]>
  readonly places?: Layer.Layer<PlacesClient.PlacesClient>
  /** Re-dial delays; short by default so that tests of outages stay quick. */
  readonly reconnect?: { readonly initialMs: number; readonly capMs: number }
  readonly lineLimit?: number
}

interface Member {
  store: LocationStore.LocationStore["Type"]
  readonly address: { readonly host: string; readonly port: number }
  readonly log: EventLog.EventLog["Type"]
  readonly lines: Array<string>
  scope: Scope.CloseableScope | undefined
}

/** Starts the herd in the current scope; closing it stops every server. */
export const startHerd = <const Name extends string>(
  options: TestHerdOptions<Name>
): Effect.Effect<TestHerd<Name>, never, Scope.Scope> =>
  Effect.gen(function*() {
    const ports = yield* Effect.forEach(options.servers, () => freePort)
    const config = yield* HerdConfig.decodeConfig({
      servers: Object.fromEntries(options.servers.map((name, i) => [name, { host: "127.0.0.1", port: ports[i] }])),
      links: options.links,
      reconnect: options.reconnect ?? { initialMs: 10, capMs: 100 },
      ...(options.lineLimit === undefined ? {} : { lineLimit: options.lineLimit })
    }, "test herd").pipe(Effect.orDie)
    const herdScope = yield* Effect.scope
    const shared = yield* Layer.build(
      Layer.merge(Layer.succeed(HerdConfig.HerdConfig, config), options.places ?? fixedPlaces([{ name: "Royce Hall" }]))
    )

    const members = {} as Record<Name, Member>
    for (const [i, name] of options.servers.entries()) {
      const { lines, log } = yield* EventLog.makeMemory(name)
      const address = { host: "127.0.0.1", port: ports[i] ?? 0 }
      members[name] = { store: yield* LocationStore.makeMemory, address, log, lines, scope: undefined }
    }
    const member = (name: Name): Member => members[name]

    const start = (name: Name, startOptions: { readonly emptyStore?: boolean } = {}) =>
      Effect.gen(function*() {
        const m = member(name)
        if (m.scope !== undefined) return
        if (startOptions.emptyStore === true) m.store = yield* LocationStore.makeMemory
        const scope = yield* Scope.fork(herdScope, { _tag: "Sequential" })
        const own = Layer.mergeAll(
          Protocol.layer,
          Layer.succeed(LocationStore.LocationStore, m.store),
          Layer.succeed(EventLog.EventLog, m.log)
        )
        const server = HerdServer.layerWith({ name }).pipe(
          Layer.provide(HerdServer.peerLinksFromConfig(name).pipe(Layer.provideMerge(own)))
        )
        yield* Layer.buildWithScope(server, scope).pipe(Effect.provide(shared), Effect.orDie)
        m.scope = scope
      })

    const stop = (name: Name) =>
      Effect.gen(function*() {
        const m = member(name)
        if (m.scope === undefined) return
        const scope = m.scope
        m.scope = undefined
        yield* Scope.close(scope, Exit.void)
      })

    yield* Effect.forEach(options.servers, (name) => start(name), { discard: true })
    return {
      config,
      names: options.servers,
      address: (name) => member(name).address,
      store: (name) => member(name).store,
      logLines: (name) => member(name).lines,
      isRunning: (name) => member(name).scope !== undefined,
      stop,
      start
    }
  })

/** The default herd's topology (PROTOCOL.md section 1). */
export const defaultTopology = {
  servers: ["Alford", "Bolden", "Hamilton", "Parker", "Welsh"],
  links: [["Alford", "Parker"], ["Alford", "Welsh"], ["Bolden", "Parker"], ["Bolden", "Welsh"], ["Hamilton", "Parker"]]
} as const satisfies Pick<TestHerdOptions<string>, "servers" | "links">

/** A port free on 127.0.0.1 right now, so a server can stop and start again on it. */
const freePort = Effect.async<number>((resume) => {
  const probe = Net.createServer()
  probe.listen(0, "127.0.0.1", () => {
    const address = probe.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    probe.close(() => resume(Effect.succeed(port)))
  })
})
