/**
 * `HerdServer.layer`, the default stack, binds its address before it opens
 * its log file or dials a neighbour: a server whose port is taken fails with
 * "cannot listen" and leaves neither a log line nor a connection behind.
 */
import { describe, expect, it } from "@effect/vitest"
import { PlacesClient } from "@herd/places"
import { HerdConfig, HerdServer } from "../src/index.ts"
import { Context, Deferred, Effect, Exit, Fiber, Layer } from "effect"
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import * as Net from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"

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

const noPlaces = Layer.succeed(PlacesClient.PlacesClient, {
  provider: "none",
  nearby: () => Effect.die("not asked in this test")
})

/**
 * A neighbour's extended link into the server on `port`: says `PEER <name>`
 * and `RESUME`, then reads the server's lines one at a time (5 s each at most).
 */
const linkIn = (port: number, name: string) =>
  Effect.acquireRelease(
    Effect.async<Net.Socket>((resume) => {
      const socket = Net.connect({ host: "127.0.0.1", port }, () => resume(Effect.succeed(socket)))
      socket.on("error", () => {})
    }),
    (socket) => Effect.sync(() => socket.destroy())
  ).pipe(Effect.map((socket) => {
    const lines: Array<string> = []
    let partial = ""
    let waiting: (() => void) | undefined
    socket.on("data", (chunk: Buffer) => {
      const text = partial + chunk.toString("latin1")
      const complete = text.split("\n")
      partial = complete.pop() ?? ""
      lines.push(...complete.filter((line) => !line.startsWith("DIGEST ")))
      waiting?.()
    })
    socket.write(`PEER ${name}\nRESUME\n`)
    const nextLine: Effect.Effect<string> = Effect.async<string>((resume) => {
      const take = () => {
        const line = lines.shift()
        if (line === undefined) return false
        waiting = undefined
        resume(Effect.succeed(line))
        return true
      }
      if (!take()) waiting = take
    }).pipe(Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => new Error(`no line from the server to ${name}`) }), Effect.orDie)
    return { nextLine, say: (text: string) => socket.write(text) }
  }))

/**
 * A neighbour that takes the server's link as an extended receiver would
 * (`SINCE - 0` to its `RESUME`) and keeps every line it is sent; `lines`
 * completes when the link closes.
 */
const extendedNeighbour = Effect.acquireRelease(
  Effect.all([Deferred.make<ReadonlyArray<string>>(), Deferred.make<void>()]).pipe(Effect.flatMap(([closed, marked]) =>
    Effect.async<{ readonly port: number; readonly lines: Effect.Effect<ReadonlyArray<string>>; readonly marked: Effect.Effect<void>; readonly server: Net.Server }>((resume) => {
      const server = Net.createServer((socket) => {
        const lines: Array<string> = []
        let partial = ""
        socket.on("error", () => {})
        socket.on("data", (chunk: Buffer) => {
          const complete = (partial + chunk.toString("latin1")).split("\n")
          partial = complete.pop() ?? ""
          for (const line of complete) {
            lines.push(line)
            if (line === "RESUME") socket.write("SINCE - 0\n")
            if (line.startsWith("MARK ")) Deferred.unsafeDone(marked, Exit.void)
          }
        })
        socket.on("close", () => Deferred.unsafeDone(closed, Exit.succeed(lines)))
      })
      server.listen(0, "127.0.0.1", () => {
        const address = server.address()
        const port = typeof address === "object" && address !== null ? address.port : 0
        resume(Effect.succeed({ port, lines: Deferred.await(closed), marked: Deferred.await(marked), server }))
      })
    }))),
  ({ server }) => Effect.async<void>((resume) => {
    server.close(() => resume(Effect.void))
  })
)

/**
 * Alford served until its fiber is interrupted, as `herd serve` runs until a
 * signal: its port once it listens, and that fiber.
 */
const runAlford = (context: Layer.Layer<HerdConfig.HerdConfig | PlacesClient.PlacesClient>) =>
  Effect.gen(function*() {
    const listening = yield* Deferred.make<number>()
    const running = yield* Effect.fork(Effect.scoped(Effect.gen(function*() {
      const server = Context.get(yield* Layer.build(HerdServer.layer({ name: "Alford" })), HerdServer.HerdServer)
      yield* Deferred.succeed(listening, server.address.port)
      return yield* Effect.never
    })).pipe(Effect.provide(context)))
    return { port: yield* Deferred.await(listening), running }
  })

/** One request on a connection of its own: the first line of the answer. */
const ask = (port: number, line: string) =>
  Effect.async<string>((resume) => {
    const socket = Net.connect({ host: "127.0.0.1", port }, () => socket.write(line))
    let text = ""
    socket.on("error", () => {})
    socket.on("data", (chunk: Buffer) => {
      text += chunk.toString("latin1")
      const end = text.indexOf("\n")
      if (end >= 0) {
        socket.destroy()
        resume(Effect.succeed(text.slice(0, end)))
      }
    })
  }).pipe(Effect.timeout("5 seconds"), Effect.orDie)

describe("HerdServer.layer", () => {
  it.scopedLive("fails on a taken port before it opens its log or dials its neighbour", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const taken = yield* listener
      const neighbour = yield* listener
      const config = yield* HerdConfig.decodeConfig({
        servers: { Alford: { port: taken.port }, Parker: { port: neighbour.port } },
        links: [["Alford", "Parker"]],
        // The first dial would go at once, were the links started.
        reconnect: { initialMs: 1, capMs: 1 },
        logDir: join(dir, "logs"),
        dataDir: join(dir, "data")
      }, "test")
      const started = yield* Effect.scoped(Layer.build(HerdServer.layer({ name: "Alford" }))).pipe(
        Effect.provide(Layer.merge(Layer.succeed(HerdConfig.HerdConfig, config), noPlaces)),
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
      const config = yield* HerdConfig.decodeConfig({
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
      ).pipe(Effect.provide(Layer.merge(Layer.succeed(HerdConfig.HerdConfig, config), noPlaces)))
      expect(server.address.port).toBeGreaterThan(0)
      const events = readFileSync(join(dir, "logs", "Alford.log"), "utf8").trimEnd().split("\n")
        .map((line) => (JSON.parse(line) as { event: string }).event)
      expect(events[0]).toBe("listening")
      expect(events.at(-1)).toBe("stopped")
    }))

  it.scopedLive("when stopped, asks each neighbour linked to it where it stands (CHECKPOINT) and keeps the answer on disk", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const parker = yield* listener
      const welsh = yield* listener
      const config = yield* HerdConfig.decodeConfig({
        servers: { Alford: { port: 0 }, Parker: { port: parker.port }, Welsh: { port: welsh.port } },
        links: [["Alford", "Parker"], ["Alford", "Welsh"]],
        reconnect: { initialMs: 60_000, capMs: 60_000 },
        logDir: join(dir, "logs"),
        dataDir: join(dir, "data")
      }, "test")
      const context = Layer.merge(Layer.succeed(HerdConfig.HerdConfig, config), noPlaces)
      const alfordAt = (server: Context.Context<HerdServer.HerdServer>) => Context.get(server, HerdServer.HerdServer).address.port

      // Parker's link in: it resumes, and once asked, answers past its last MARK.
      // Run until interrupted, as `herd serve` runs until a signal.
      const { port, running } = yield* runAlford(context)
      const fromParker = yield* linkIn(port, "Parker")
      expect(yield* fromParker.nextLine).toBe("SINCE - 0")
      fromParker.say("CATCHUP 0\nMARK p-epoch 4\n")
      // Welsh's link in never answers: the stop waits for it a bounded time only.
      const fromWelsh = yield* linkIn(port, "Welsh")
      expect(yield* fromWelsh.nextLine).toBe("SINCE - 0")
      fromWelsh.say("CATCHUP 0\nMARK w-epoch 2\n")
      const stopping = yield* Effect.fork(Fiber.interrupt(running))
      expect(yield* fromParker.nextLine).toBe("CHECKPOINT")
      expect(yield* fromWelsh.nextLine).toBe("CHECKPOINT")
      fromParker.say("CHECKPOINT p-epoch 9\n")
      yield* Fiber.join(stopping)
      const logged = readFileSync(join(dir, "logs", "Alford.log"), "utf8").trimEnd().split("\n")
        .map((line) => JSON.parse(line) as Record<string, unknown>)
      expect(logged.find((entry) => entry["event"] === "checkpoints")).toMatchObject({ asked: 2, answered: 1 })

      // Started again on the same data: Parker resumes from the answer, Welsh from its last MARK.
      const again = alfordAt(yield* Layer.build(HerdServer.layer({ name: "Alford" })).pipe(Effect.provide(context)))
      expect(yield* (yield* linkIn(again, "Parker")).nextLine).toBe("SINCE p-epoch 9")
      expect(yield* (yield* linkIn(again, "Welsh")).nextLine).toBe("SINCE w-epoch 2")
    }), 20_000)

  it.scopedLive("when stopped, says a last MARK of all it committed on each extended link it dialled", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const parker = yield* extendedNeighbour
      const config = yield* HerdConfig.decodeConfig({
        servers: { Alford: { port: 0 }, Parker: { port: parker.port } },
        links: [["Alford", "Parker"]],
        logDir: join(dir, "logs"),
        dataDir: join(dir, "data")
      }, "test")
      const { port, running } = yield* runAlford(Layer.merge(Layer.succeed(HerdConfig.HerdConfig, config), noPlaces))
      // The link is caught up (its first MARK), then a record is accepted and flooded on it.
      yield* parker.marked.pipe(Effect.timeout("5 seconds"), Effect.orDie)
      const at = yield* ask(port, "IAMAT kiwi.cs.ucla.edu +34.068930-118.445127 1479413884.392014450\n")
      expect(at).toMatch(/^AT Alford /)
      // Stopped at once, before a beat's MARK could claim it.
      yield* Fiber.interrupt(running)
      const lines = yield* parker.lines.pipe(Effect.timeout("5 seconds"), Effect.orDie)
      const flooded = lines.findIndex((line) => line === at)
      const marks = lines.filter((line) => line.startsWith("MARK "))
      expect(flooded).toBeGreaterThan(0)
      expect(marks[0]).toMatch(/^MARK \S+ 0$/)
      const epoch = marks[0]?.split(" ")[1]
      expect(lines.at(-1)).toBe(`MARK ${epoch} 1`)
    }), 20_000)

  it.scoped("refuses to serve plain TCP beyond loopback unless the config says insecure", () =>
    Effect.gen(function*() {
      const places = Layer.succeed(PlacesClient.PlacesClient, PlacesClient.PlacesClient.of({ provider: "none", nearby: () => Effect.dieMessage("not asked") }))
      const serveOn = (input: Record<string, unknown>) =>
        Effect.flatMap(HerdConfig.decodeConfig({ servers: { Alford: { host: "0.0.0.0", port: 0 } }, store: { kind: "memory" }, ...input }, "test"), (config) =>
          Layer.build(HerdServer.layer({ name: "Alford" }).pipe(Layer.provide(Layer.merge(Layer.succeed(HerdConfig.HerdConfig, config), places)))))
      const refused = yield* Effect.flip(serveOn({}))
      expect(refused.message).toContain("--insecure")
      const dir = mkdtempSync(join(tmpdir(), "herd-insecure-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
      const served = yield* serveOn({ insecure: true, logDir: dir })
      expect(Context.get(served, HerdServer.HerdServer).address.port).toBeGreaterThan(0)
    }))
})
