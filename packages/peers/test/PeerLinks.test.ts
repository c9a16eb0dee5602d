import { describe, expect, it } from "@effect/vitest"
import { PeerLinks } from "../src/index.ts"
import { LocationStore } from "@herd/store"
import { Context, Effect, Exit, Layer, Option, Scope, TestClock, TestServices } from "effect"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Net from "node:net"
import { record } from "./support.ts"

/** A neighbour stand-in on a free port: it keeps what it receives and counts its connections. */
const fakeNeighbour = Effect.acquireRelease(
  Effect.async<{ readonly server: Net.Server; readonly port: number; readonly received: () => string; readonly open: () => number; readonly accepted: () => number }>((resume) => {
    let text = ""
    let open = 0
    let accepted = 0
    const server = Net.createServer((socket) => {
      accepted++
      open++
      socket.on("data", (chunk) => {
        text += chunk.toString("latin1")
      })
      socket.on("error", () => {})
      socket.on("close", () => {
        open--
      })
    })
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      resume(Effect.succeed({ server, port, received: () => text, open: () => open, accepted: () => accepted }))
    })
  }),
  ({ server }) =>
    Effect.async<void>((resume) => {
      server.close(() => resume(Effect.void))
    })
)

/** Waits in real time, whatever clock the test runs on. */
const pause = (millis: number) => TestServices.provideLive(Effect.sleep(millis))

/** Polls `check` in real time until it holds (at most 3 s). */
const until = (check: () => boolean, what: string) =>
  Effect.gen(function*() {
    const deadline = Date.now() + 3000
    while (!check()) {
      if (Date.now() > deadline) return yield* Effect.dieMessage(`timed out waiting for ${what}`)
      yield* pause(2)
    }
  })

/**
 * A neighbour that never completes a TCP handshake, like a stopped process
 * whose accept queue is full: a child process listens with a backlog of 1
 * and never runs its event loop again (Node accepts by itself: a server in
 * this process would accept), and connections of ours fill its accept queue,
 * so that the kernel drops every further SYN and a dial stays in SYN-SENT.
 * `fillers` are the local ports of those connections of ours.
 */
const unresponsiveNeighbour = Effect.gen(function*() {
  const { port } = yield* Effect.acquireRelease(
    Effect.async<{ readonly child: ChildProcess.ChildProcess; readonly port: number }>((resume) => {
      // Blocked for 30 s at most, so that it cannot outlive a test run that died.
      const script = "const s = require('node:net').createServer();" +
        "s.listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => {" +
        "process.stdout.write(s.address().port + '\\n');" +
        "Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 30000); process.exit(0) })"
      const child = ChildProcess.spawn(process.execPath, ["-e", script], { stdio: ["ignore", "pipe", "inherit"] })
      child.once("error", (cause) => resume(Effect.die(cause)))
      child.stdout?.once("data", (chunk: Buffer) => resume(Effect.succeed({ child, port: Number(chunk.toString().trim()) })))
      return Effect.sync(() => child.kill("SIGKILL"))
    }),
    ({ child }) =>
      Effect.async<void>((resume) => {
        if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.void)
        child.once("exit", () => resume(Effect.void))
        child.kill("SIGKILL")
      })
  )
  const fillers = new Set<number>()
  for (let i = 0; i < 8; i++) {
    const filler = yield* Effect.acquireRelease(
      Effect.sync(() => Net.createConnection({ port, host: "127.0.0.1" }).on("error", () => {})),
      (socket) => Effect.sync(() => socket.destroy())
    )
    const connected = yield* Effect.async<void>((resume) => {
      filler.once("connect", () => resume(Effect.void))
    }).pipe(Effect.timeoutOption("300 millis"), TestServices.provideLive)
    if (Option.isNone(connected)) {
      // The queue is full: this one hangs in SYN-SENT as a dial will.
      filler.destroy()
      return { port, fillers: fillers as ReadonlySet<number> }
    }
    fillers.add(filler.localPort ?? 0)
  }
  return yield* Effect.dieMessage("the neighbour's accept queue never filled: its SYNs are not dropped")
})

/**
 * The states (`01` ESTABLISHED, `02` SYN-SENT) of this machine's IPv4
 * connections to `port` that are open or opening, as the kernel sees them,
 * except those from the local ports `except`.
 */
const connectionsTo = (port: number, except: ReadonlySet<number>): Array<string> =>
  Fs.readFileSync("/proc/net/tcp", "latin1").split("\n").slice(1).flatMap((line) => {
    const [, local, remote, state] = line.trim().split(/\s+/)
    if (local === undefined || remote === undefined || state === undefined) return []
    const portOf = (address: string) => parseInt(address.split(":")[1] ?? "", 16)
    return portOf(remote) === port && !except.has(portOf(local)) && (state === "01" || state === "02") ? [state] : []
  })

describe("PeerLinks", () => {
  it.scopedLive("says PEER, sends catch-up, floods, and leaves no socket or retrying fiber when its scope closes", () =>
    Effect.gen(function*() {
      const neighbour = yield* fakeNeighbour
      const store = yield* LocationStore.makeMemory
      store.unsafeOffer(record("before", "1"))
      const events: Array<PeerLinks.LinkEvent> = []
      const scope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(
        PeerLinks.layer({
          self: "Alford",
          neighbours: [{ name: "Parker", host: "127.0.0.1", port: neighbour.port }],
          reconnect: { initialMs: 5, capMs: 20 },
          onEvent: (event) => events.push(event)
        }).pipe(Layer.provide(Layer.succeed(LocationStore.LocationStore, store))),
        scope
      )
      const links = Context.get(context, PeerLinks.PeerLinks)
      yield* until(() => events.some((e) => e.event === "link-up"), "the link")
      expect(events[0]).toMatchObject({ event: "link-up", peer: "Parker", address: `127.0.0.1:${neighbour.port}`, catchUp: 1 })
      links.unsafeFlood(record("after", "2"))
      links.unsafeFlood(record("echo", "3"), "Parker") // came from Parker: not sent back
      links.unsafeFlood(record("last", "4"))
      yield* until(() => neighbour.received().includes(" last "), "the floods")
      // RESUME asks an extended neighbour where to resume from; this one is old-style.
      expect(neighbour.received()).toBe(
        "PEER Alford\nRESUME\n" +
          "AT Alford +0.000000000 before +1+1 1\n" +
          "AT Alford +0.000000000 after +1+1 2\n" +
          "AT Alford +0.000000000 last +1+1 4\n"
      )
      yield* Scope.close(scope, Exit.void)
      yield* until(() => neighbour.open() === 0, "the link's socket to close")
      // Well past the retry delays: a fiber left behind would have dialled again.
      const accepted = neighbour.accepted()
      yield* Effect.sleep("200 millis")
      expect(neighbour.accepted()).toBe(accepted)
    }))

  it.scopedLive("ends a connection on a bug met while catching up, reports it as an internal error, and dials again", () =>
    Effect.gen(function*() {
      const neighbour = yield* fakeNeighbour
      const store = yield* LocationStore.makeMemory
      store.unsafeOffer(record("before", "1"))
      let snapshots = 0
      const faulty: LocationStore.LocationStore["Type"] = {
        ...store,
        snapshot: () => {
          if (snapshots++ === 0) throw new Error("a bug met while catching up")
          return store.snapshot()
        }
      }
      const events: Array<PeerLinks.LinkEvent> = []
      yield* PeerLinks.make({
        self: "Alford",
        neighbours: [{ name: "Parker", host: "127.0.0.1", port: neighbour.port }],
        reconnect: { initialMs: 5, capMs: 20 },
        onEvent: (event) => events.push(event)
      }).pipe(Effect.provideService(LocationStore.LocationStore, faulty))
      yield* until(() => events.some((e) => e.event === "link-up"), "the link, dialled again")
      expect(events[0]).toMatchObject({ event: "link-failed", peer: "Parker", reason: "internal error: a bug met while catching up" })
      yield* until(() => neighbour.received().endsWith("AT Alford +0.000000000 before +1+1 1\n"), "the catch-up")
    }))

  it.scopedLive("re-dials an unreachable neighbour with back-off, queueing nothing meanwhile", () =>
    Effect.gen(function*() {
      const store = yield* LocationStore.makeMemory
      const events: Array<PeerLinks.LinkEvent> = []
      // A port with nothing listening: take a free one and close it.
      const port = yield* Effect.scoped(Effect.map(fakeNeighbour, (n) => n.port))
      const links = yield* PeerLinks.make({
        self: "Alford",
        neighbours: [{ name: "Parker", host: "127.0.0.1", port }],
        reconnect: { initialMs: 5, capMs: 40 },
        onEvent: (event) => events.push(event)
      }).pipe(Effect.provideService(LocationStore.LocationStore, store))
      for (let i = 0; i < 10_000; i++) links.unsafeFlood(record(`c${i}`, "1"))
      yield* until(() => events.length >= 4, "several dial attempts")
      expect(events.every((e) => e.event === "link-failed" && e.reason === "connect failed: ECONNREFUSED")).toBe(true)
    }))

  it.scopedLive("cuts a neighbour that stops reading once its queue is full, and dials again", () =>
    Effect.gen(function*() {
      const store = yield* LocationStore.makeMemory
      const events: Array<PeerLinks.LinkEvent> = []
      // A neighbour that accepts and does not read, until it is told to.
      const sockets: Array<Net.Socket> = []
      let reading = false
      const server = yield* Effect.acquireRelease(
        Effect.async<Net.Server>((resume) => {
          const s = Net.createServer((socket) => {
            if (!reading) socket.pause()
            socket.on("error", () => {})
            sockets.push(socket)
          })
          s.listen(0, "127.0.0.1", () => resume(Effect.succeed(s)))
        }),
        (s) => Effect.async<void>((resume) => {
          sockets.forEach((socket) => socket.destroy())
          s.close(() => resume(Effect.void))
        })
      )
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      const links = yield* PeerLinks.make({
        self: "Alford",
        neighbours: [{ name: "Parker", host: "127.0.0.1", port }],
        reconnect: { initialMs: 5, capMs: 40 },
        maxPendingRecords: 1000,
        // An old-style neighbour: no wait for a SINCE it will not send, while the floods queue.
        handshakeWaitMs: 0,
        onEvent: (event) => events.push(event)
      }).pipe(Effect.provideService(LocationStore.LocationStore, store))
      yield* until(() => events.some((e) => e.event === "link-up"), "the link")
      const padding = "x".repeat(200)
      // Far more than the socket buffers hold, in bursts well below the
      // bound (a burst is what one read can make win), until the link is cut.
      let sent = 0
      const burst = () => {
        for (let i = 0; i < 200; i++) links.unsafeFlood(record(`${padding}${sent++}`, "1"))
      }
      while (!events.some((e) => e.event === "link-down") && sent < 2_000_000) {
        burst()
        yield* Effect.sleep("1 millis")
      }
      const down = events.find((e) => e.event === "link-down")
      expect(down).toMatchObject({ peer: "Parker", reason: "more than 1000 records unsent: not reading" })
      // It reads again, and the flood goes on: the next link comes up and
      // stays up (what the cut connection left unsent does not count against it).
      reading = true
      const ups = () => events.filter((e) => e.event === "link-up").length
      for (let bursts = 0; bursts < 2000 && ups() < 2; bursts++) {
        burst()
        yield* Effect.sleep("1 millis")
      }
      expect(ups()).toBe(2)
      for (let bursts = 0; bursts < 50; bursts++) {
        burst()
        yield* Effect.sleep("1 millis")
      }
      expect(events.filter((e) => e.event === "link-down")).toHaveLength(1)
    }))

  it.scopedLive("abandons a dial that does not connect in time, destroys its socket, and dials again", () =>
    Effect.gen(function*() {
      const neighbour = yield* unresponsiveNeighbour
      const ours = () => connectionsTo(neighbour.port, neighbour.fillers)
      const store = yield* LocationStore.makeMemory
      const failures: Array<{ readonly event: PeerLinks.LinkEvent; readonly at: number; readonly openThen: number }> = []
      const scope = yield* Scope.make()
      const started = Date.now()
      yield* PeerLinks.make({
        self: "Alford",
        neighbours: [{ name: "Parker", host: "127.0.0.1", port: neighbour.port }],
        reconnect: { initialMs: 5, capMs: 20 },
        dialTimeoutMs: 300,
        onEvent: (event) => failures.push({ event, at: Date.now(), openThen: ours().length })
      }).pipe(Effect.provideService(LocationStore.LocationStore, store), Scope.extend(scope))
      // What the kernel holds towards the neighbour, all along.
      let most = 0
      let sawSynSent = false
      yield* until(() => {
        const states = ours()
        most = Math.max(most, states.length)
        sawSynSent ||= states.includes("02")
        return failures.length >= 3
      }, "three dial attempts")
      expect(sawSynSent).toBe(true)
      expect(most).toBe(1)
      for (const { event, openThen } of failures) {
        expect(event).toEqual({
          event: "link-failed",
          peer: "Parker",
          address: `127.0.0.1:${neighbour.port}`,
          reason: "connect timed out"
        })
        // Its socket was destroyed before the failure was told.
        expect(openThen).toBe(0)
      }
      // Each attempt gives up at its deadline, not when the kernel does.
      let previous = started
      for (const { at } of failures) {
        expect(at - previous).toBeGreaterThanOrEqual(295)
        expect(at - previous).toBeLessThan(1000)
        previous = at
      }
      // Closed while a dial is pending: nothing of ours stays, nothing dials again.
      yield* until(() => ours().length === 1, "a pending dial")
      yield* Scope.close(scope, Exit.void)
      expect(ours()).toEqual([])
      const told = failures.length
      yield* pause(400)
      expect(ours()).toEqual([])
      expect(failures).toHaveLength(told)
    }))

  it.scoped("abandons a dial at its deadline on the Effect clock, 2 s by default, and retries on schedule", () =>
    Effect.gen(function*() {
      const neighbour = yield* TestServices.provideLive(unresponsiveNeighbour)
      const ours = () => connectionsTo(neighbour.port, neighbour.fillers)
      const store = yield* LocationStore.makeMemory
      const failures: Array<{ readonly event: PeerLinks.LinkEvent; readonly openThen: number }> = []
      yield* PeerLinks.make({
        self: "Alford",
        neighbours: [{ name: "Parker", host: "127.0.0.1", port: neighbour.port }],
        reconnect: { initialMs: 1000, capMs: 5000 },
        onEvent: (event) => failures.push({ event, openThen: ours().length })
      }).pipe(Effect.provideService(LocationStore.LocationStore, store))
      yield* until(() => ours().length === 1, "the dial")
      const deadline = Date.now() + 3000
      while ((yield* TestClock.sleeps()).length === 0) {
        if (Date.now() > deadline) return yield* Effect.dieMessage("timed out waiting for the dial's deadline")
        yield* pause(2)
      }
      yield* TestClock.adjust("1999 millis")
      yield* pause(50)
      expect(failures).toEqual([])
      expect(ours()).toEqual(["02"])
      yield* TestClock.adjust("1 millis")
      yield* until(() => failures.length === 1, "the dial to be abandoned")
      expect(failures[0]).toEqual({
        event: { event: "link-failed", peer: "Parker", address: `127.0.0.1:${neighbour.port}`, reason: "connect timed out" },
        openThen: 0
      })
      expect(ours()).toEqual([])
      // The retry waits 0.5 to 1 times the initial delay.
      yield* TestClock.adjust("1000 millis")
      yield* until(() => ours().length === 1, "the next dial")
      expect(ours()).toEqual(["02"])
    }))
})
