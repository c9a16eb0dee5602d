/**
 * The loopback variant, for a machine that cannot make network namespaces
 * (not root, no `ip`): the five servers on 127.0.0.1, each link dialled
 * through a TCP proxy of the test's own that can be made to stall. A stalled
 * proxy pauses both sockets of every connection and holds new ones unopened,
 * so a server's links stall rather than close, as behind a DROP rule; it
 * cannot drop 1% of packets, and after the heal no retransmission back-off
 * delays the flow, so its heal times say less than the namespaces' do.
 */
import { Effect } from "effect"
import * as Net from "node:net"
import type { Address, Network } from "./Network.ts"
import { NetnsTestError } from "./Shell.ts"

interface StallProxy {
  readonly port: number
  /** Bytes passed from the dialling server to the one it dials, and back. */
  readonly counted: { toTarget: number; toDialler: number }
  readonly stall: () => void
  readonly heal: () => void
}

const freePort = Effect.async<number, NetnsTestError>((resume) => {
  const probe = Net.createServer()
  probe.on("error", (cause) => resume(Effect.fail(new NetnsTestError({ reason: "Setup", message: "no free port", cause }))))
  probe.listen(0, "127.0.0.1", () => {
    const address = probe.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    probe.close(() => resume(Effect.succeed(port)))
  })
})

/** One direction of a proxied connection: counted, with back-pressure, held while stalled. */
const forward = (from: Net.Socket, to: Net.Socket, count: (bytes: number) => void, stalled: () => boolean) => {
  from.on("data", (chunk: Buffer) => {
    count(chunk.length)
    if (!to.write(chunk)) from.pause()
  })
  to.on("drain", () => {
    if (!stalled()) from.resume()
  })
  from.on("end", () => to.end())
}

const stallProxy = (target: { readonly host: string; readonly port: number }) =>
  Effect.acquireRelease(
    Effect.async<StallProxy & { readonly close: (done: () => void) => void }, NetnsTestError>((resume) => {
      const counted = { toTarget: 0, toDialler: 0 }
      const sockets = new Set<Net.Socket>()
      let stalled = false
      let held: Array<() => void> = []
      const track = (socket: Net.Socket) => {
        sockets.add(socket)
        socket.on("close", () => sockets.delete(socket))
        // A reset on either side ends the pair (the close below); nothing to report.
        socket.on("error", () => socket.destroy())
      }
      const server = Net.createServer((dialler) => {
        track(dialler)
        dialler.pause()
        const open = () => {
          if (dialler.destroyed) return
          const upstream = Net.connect(target)
          track(upstream)
          upstream.on("close", () => dialler.destroy())
          dialler.on("close", () => upstream.destroy())
          forward(dialler, upstream, (bytes) => (counted.toTarget += bytes), () => stalled)
          forward(upstream, dialler, (bytes) => (counted.toDialler += bytes), () => stalled)
          dialler.resume()
        }
        if (stalled) held.push(open)
        else open()
      })
      server.on("error", (cause) =>
        resume(Effect.fail(new NetnsTestError({ reason: "Setup", message: `stall proxy: ${cause.message}`, cause })))
      )
      server.listen(0, "127.0.0.1", () => {
        const address = server.address()
        resume(Effect.succeed({
          port: typeof address === "object" && address !== null ? address.port : 0,
          counted,
          stall: () => {
            stalled = true
            for (const socket of sockets) socket.pause()
          },
          heal: () => {
            stalled = false
            for (const socket of sockets) socket.resume()
            const opening = held
            held = []
            for (const open of opening) open()
          },
          close: (done) => {
            for (const socket of sockets) socket.destroy()
            server.close(() => done())
          }
        }))
      })
    }),
    (proxy) => Effect.async<void>((resume) => proxy.close(() => resume(Effect.void)))
  )

/** The loopback Network, made in the current scope: free ports for the servers, a stall proxy per link and direction. */
export const loopbackNetwork = (names: ReadonlyArray<string>, links: ReadonlyArray<readonly [string, string]>) =>
  Effect.gen(function*() {
    const addresses: Record<string, Address> = {}
    for (const name of names) addresses[name] = { host: "127.0.0.1", port: yield* freePort, httpPort: yield* freePort }
    const addressOf = (name: string): Address => addresses[name] ?? { host: "127.0.0.1", port: 0, httpPort: 0 }
    const proxies = new Map<string, StallProxy>()
    const key = (dialler: string, target: string) => `${dialler}->${target}`
    for (const [a, b] of links) {
      proxies.set(key(a, b), yield* stallProxy(addressOf(b)))
      proxies.set(key(b, a), yield* stallProxy(addressOf(a)))
    }
    const touching = (name: string) =>
      [...proxies.entries()].filter(([link]) => link.startsWith(`${name}->`) || link.endsWith(`->${name}`)).map(([, proxy]) => proxy)
    const counting = new Map<string, Array<() => number>>()
    const network: Network = {
      kind: "loopback",
      description: `five servers on 127.0.0.1, each link through a stall proxy of the test's own ` +
        `(no packet loss: loopback cannot drop packets without iptables)`,
      addressOf,
      viewOf: (name) => {
        const view: Record<string, Address> = { ...addresses }
        for (const other of names) {
          const proxy = proxies.get(key(name, other))
          if (proxy !== undefined) view[other] = { ...addressOf(other), port: proxy.port }
        }
        return view
      },
      launcherOf: () => [],
      partition: (name) => Effect.sync(() => touching(name).forEach((proxy) => proxy.stall())),
      heal: (name) => Effect.sync(() => touching(name).forEach((proxy) => proxy.heal())),
      countLinkBytes: (name, from) =>
        Effect.sync(() => {
          const into = proxies.get(key(from, name))
          const back = proxies.get(key(name, from))
          const counters = counting.get(name) ?? []
          if (into !== undefined) counters.push(() => into.counted.toTarget)
          if (back !== undefined) counters.push(() => back.counted.toDialler)
          counting.set(name, counters)
        }),
      linkBytes: (name) => Effect.sync(() => (counting.get(name) ?? []).reduce((sum, counter) => sum + counter(), 0)),
      bytesAre: "through the proxies (TCP payload)"
    }
    return network
  })
