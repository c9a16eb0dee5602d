/**
 * `HerdServer.layer`, the default stack, binds its address before it opens
 * its log file or dials a neighbour: a server whose port is taken fails with
 * "cannot listen" and leaves neither a log line nor a connection behind.
 */
import { describe, expect, it } from "@effect/vitest"
import { PlacesClient } from "@herd/places"
import { Context, Deferred, Effect, Exit, Layer } from "effect"
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import * as Net from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { decodeConfig, HerdConfig, HerdServer } from "../src/index.ts"

/** A plain listener on a free loopback port that counts the connections it is offered. */
const listener = Effect.acquireRelease(
  Effect.flatMap(Deferred.make<void>(), (connected) =>
    Effect.async<{
      readonly port: number
      readonly connections: () => number
      readonly connected: Effect.Effect<void>
      readonly server: Net.Server
    }>((resume) => {
      let connections = 0
      const server = Net.createServer((socket) => {
        connections++
        Deferred.unsafeDone(connected, Exit.void)
        socket.on("error", () => {})
        socket.destroy()
      })
      server.listen(0, "127.0.0.1", () => {
        const address = server.address()
        const port = typeof address === "object" && address !== null ? address.port : 0
        resume(Effect.succeed({ port, connections: () => connections, connected: Deferred.await(connected), server }))
      })
    })),
  ({ server }) =>
    Effect.async<void>((resume) => {
      server.close(() => resume(Effect.void))
    })
)

const tempDir = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "herd-server-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

const noPlaces = Layer.succeed(PlacesClient, {
  provider: "none",
  nearby: () => Effect.die("not asked in this test")
})

describe("HerdServer.layer", () => {
  it.scopedLive("fails on a taken port before it opens its log or dials its neighbour", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const taken = yield* listener
      const neighbour = yield* listener
      const config = yield* decodeConfig({
        servers: { Alford: { port: taken.port }, Parker: { port: neighbour.port } },
        links: [["Alford", "Parker"]],
        // The first dial would go at once, were the links started.
        reconnect: { initialMs: 1, capMs: 1 },
        logDir: join(dir, "logs"),
        dataDir: join(dir, "data")
      }, "test")
      const started = yield* Effect.scoped(Layer.build(HerdServer.layer({ name: "Alford" }))).pipe(
        Effect.provide(Layer.merge(Layer.succeed(HerdConfig, config), noPlaces)),
        Effect.exit
      )
      expect(Exit.isFailure(started)).toBe(true)
      if (Exit.isFailure(started)) {
        expect(String(started.cause)).toContain(`cannot listen on 127.0.0.1:${taken.port}`)
      }
      expect(existsSync(join(dir, "logs", "Alford.log"))).toBe(false)
      // Anything dialled before the failure was offered to the neighbour by now:
      // one more round trip through it proves the queue is empty.
      yield* Effect.async<void>((resume) => {
        const probe = Net.connect({ host: "127.0.0.1", port: neighbour.port }, () => probe.end())
        probe.on("error", () => {})
        probe.on("close", () => resume(Effect.void))
      })
      expect(neighbour.connections()).toBe(1)
    }))

  it.scopedLive("with its port free, listens, logs and links as before", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const neighbour = yield* listener
      const config = yield* decodeConfig({
        servers: { Alford: { port: 0 }, Parker: { port: neighbour.port } },
        links: [["Alford", "Parker"]],
        logDir: join(dir, "logs"),
        dataDir: join(dir, "data")
      }, "test")
      const server = yield* Effect.scoped(
        Effect.gen(function*() {
          const context = yield* Layer.build(HerdServer.layer({ name: "Alford" }))
          yield* neighbour.connected.pipe(Effect.timeout("5 seconds"))
          return Context.get(context, HerdServer.HerdServer)
        })
      ).pipe(Effect.provide(Layer.merge(Layer.succeed(HerdConfig, config), noPlaces)))
      expect(server.address.port).toBeGreaterThan(0)
      const events = readFileSync(join(dir, "logs", "Alford.log"), "utf8").trimEnd().split("\n")
        .map((line) => (JSON.parse(line) as { event: string }).event)
      expect(events[0]).toBe("listening")
      expect(events.at(-1)).toBe("stopped")
    }))

  it.scoped("refuses to serve plain TCP beyond loopback unless the config says insecure", () =>
    Effect.gen(function*() {
      const places = Layer.succeed(PlacesClient, PlacesClient.of({ provider: "none", nearby: () => Effect.dieMessage("not asked") }))
      const serveOn = (input: Record<string, unknown>) =>
        Effect.flatMap(decodeConfig({ servers: { Alford: { host: "0.0.0.0", port: 0 } }, store: { kind: "memory" }, ...input }, "test"), (config) =>
          Layer.build(HerdServer.layer({ name: "Alford" }).pipe(Layer.provide(Layer.merge(Layer.succeed(HerdConfig, config), places)))))
      const refused = yield* Effect.flip(serveOn({}))
      expect(refused.message).toContain("--insecure")
      const dir = mkdtempSync(join(tmpdir(), "herd-insecure-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
      const served = yield* serveOn({ insecure: true, logDir: dir })
      expect(Context.get(served, HerdServer.HerdServer).address.port).toBeGreaterThan(0)
    }))
})
