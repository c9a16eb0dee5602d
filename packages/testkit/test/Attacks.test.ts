/**
 * What a stranger with nothing but a TCP connection cannot do to a server:
 * pin a location with a time far ahead, send a report whose AT line no
 * neighbour would take, cut a neighbour's link with one bad line, or keep
 * the herd's links out by taking every connection slot.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, TestClock } from "effect"
import { Eventually, LineClient, SingleServer } from "../src/index.ts"

const events = (lines: ReadonlyArray<string>, event: string) =>
  lines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((entry) => entry["event"] === event)

const nowSeconds = () => Math.floor(Date.now() / 1000)

describe("a client time too far ahead", () => {
  it.scopedLive("is refused, and a later honest report still wins", () =>
    Effect.gen(function*() {
      const server = yield* SingleServer.startServer()
      const client = yield* LineClient.connect(server.address)
      const year3000 = "32503680000.5"
      const tooFar = [
        `IAMAT kiwi +34.068930-118.445127 ${year3000}`,
        `IAMAT kiwi +34.068930-118.445127 1${"0".repeat(30)}`,
        `IAMAT kiwi +34.068930-118.445127 ${"9".repeat(4100)}`,
        `IAMAT kiwi +34.068930-118.445127 ${nowSeconds() + 700}`
      ]
      for (const line of tooFar) {
        yield* client.write(line + "\r\n")
        expect(yield* client.nextReply()).toBe(`? ${line}`)
      }
      expect(server.store.get("kiwi")).toBeUndefined()
      // Within the bound, and long in the past, are both fine.
      const soon = `${nowSeconds() + 500}.25`
      yield* client.write(`IAMAT kiwi +1+1 ${soon}\n`)
      expect(yield* client.nextReply()).toMatch(new RegExp(`^AT Alford -\\d+\\.\\d{9} kiwi \\+1\\+1 ${soon}$`))
      yield* client.write(`IAMAT old +1+1 ${"0".repeat(5000)}1621464827.5\n`)
      expect(yield* client.nextReply()).toMatch(/^AT Alford \+\d+\.\d{9} old \+1\+1 0{5000}1621464827\.5$/)
      expect(server.store.get("kiwi")?.time).toBe(soon)
    }))

  it.scopedLive("is dropped when a neighbour floods it, and the link stays up", () =>
    Effect.gen(function*() {
      const server = yield* SingleServer.startServer()
      const peer = yield* LineClient.connect(server.address)
      yield* peer.write(`PEER Bolden\nAT Bolden +0.000000000 kiwi +1+1 ${"9".repeat(50)}\n`)
      yield* peer.write(`AT Bolden +0.000000000 kiwi +2+2 ${nowSeconds()}\n`)
      yield* Eventually.eventually(Effect.sync(() => server.store.get("kiwi")))
      expect(server.store.get("kiwi")?.location).toBe("+2+2")
      const violations = events(server.logLines(), "violation")
      expect(violations.map((entry) => entry["reason"])).toEqual(["time: too far ahead of this server's clock"])
      expect(violations[0]?.["peer"]).toBe("Bolden")
      expect(peer.isClosed()).toBe(false)
    }))
})

describe("an IAMAT whose AT line would not fit the line limit", () => {
  it.scopedLive("is refused, so that no neighbour is sent a line it must drop", () =>
    Effect.gen(function*() {
      const lineLimit = 300
      const server = yield* SingleServer.startServer({ config: { lineLimit } })
      const client = yield* LineClient.connect(server.address)
      const time = `${nowSeconds()}.5`
      // IAMAT + id + location + time: the AT line adds the server's name and the skew.
      const location = "+" + "0".repeat(lineLimit - 13 - time.length) + "1+1"
      const line = `IAMAT c ${location} ${time}`
      expect(line.length).toBe(lineLimit)
      yield* client.write(line + "\n")
      expect(yield* client.nextReply()).toBe(`? ${line}`)
      expect(server.store.get("c")).toBeUndefined()
      // One that fits is answered with an AT line within the limit.
      const fits = `IAMAT c +${location.slice(31)} ${time}`
      yield* client.write(fits + "\n")
      const reply = yield* client.nextReply()
      expect(reply.startsWith("AT Alford ")).toBe(true)
      expect(reply.length).toBeLessThanOrEqual(lineLimit)
    }))
})

describe("a neighbour's link", () => {
  it.scopedLive("is never cut by a bad line: an over-long one is skipped, invalid ones dropped, and the log says so in a few entries", () =>
    Effect.gen(function*() {
      const lineLimit = 200
      const server = yield* SingleServer.startServer({ config: { lineLimit } })
      const peer = yield* LineClient.connect(server.address)
      yield* peer.write("PEER Bolden\n")
      yield* peer.write(`AT Bolden +0.000000000 long +1+1 1${"0".repeat(5000)}\n`)
      for (let i = 0; i < 100; i++) yield* peer.write(`AT Bolden not-a-skew bad${i} +1+1 1\n`)
      // Sent in pieces: the skipped line's tail is not taken for a line.
      yield* peer.write(`AT Bolden +0.000000000 split +1+1 ${"1".repeat(300)}`)
      yield* peer.write(`${"1".repeat(300)}\nAT Bolden +0.000000000 good +1+1 1621464827\n`)
      yield* Eventually.eventually(Effect.sync(() => server.store.get("good")))
      expect(server.store.get("long")).toBeUndefined()
      expect(server.store.get("split")).toBeUndefined()
      expect(server.store.size()).toBe(1)
      expect(peer.isClosed()).toBe(false)
      // Nothing is ever said on a neighbour's link that did not ask (RESUME).
      expect(peer.received().length).toBe(0)
      // 102 violations, logged at most one a second with the count of the rest.
      peer.socket.end()
      yield* Eventually.eventually(Effect.sync(() => events(server.logLines(), "close").length === 1 ? true : undefined))
      const violations = events(server.logLines(), "violation")
      const close = events(server.logLines(), "close")[0]
      const counted = violations.length +
        violations.reduce((sum, entry) => sum + Number(entry["notLoggedSince"] ?? 0), 0) +
        Number(close?.["violationsNotLogged"] ?? 0)
      expect(violations.length).toBeLessThanOrEqual(3)
      expect(counted).toBe(102)
    }))
})

describe("the connection limit", () => {
  it.scoped("lets a neighbour's link in past it, and closes anyone else without a word", () =>
    Effect.gen(function*() {
      const server = yield* SingleServer.startServer({ config: { limits: { maxConnections: 2 } } })
      const clients = [yield* LineClient.connect(server.address), yield* LineClient.connect(server.address)]
      for (const client of clients) {
        yield* client.write("IAMAT held +1+1 1\n")
        yield* client.nextReply()
      }
      const stranger = yield* LineClient.connect(server.address)
      yield* stranger.write("IAMAT intruder +1+1 1\n")
      yield* stranger.closed(2000)
      expect(stranger.received().length).toBe(0)
      const unknownPeer = yield* LineClient.connect(server.address)
      yield* unknownPeer.write("PEER Mallory\nAT Mallory +0.000000000 fake +1+1 1\n")
      yield* unknownPeer.closed(2000)
      const silent = yield* LineClient.connect(server.address)
      yield* Eventually.eventually(Effect.sync(() => events(server.logLines(), "open").length === 5 ? true : undefined))
      yield* TestClock.adjust("900 millis")
      expect(silent.isClosed()).toBe(false)
      yield* TestClock.adjust("200 millis")
      yield* silent.closed(2000)
      // A server of the herd gets in, and its floods are taken.
      const neighbour = yield* LineClient.connect(server.address)
      yield* neighbour.write("PEER Alford\nAT Alford +0.000000000 flooded +1+1 1\n")
      yield* Eventually.eventually(Effect.sync(() => server.store.get("flooded")))
      expect(server.store.get("fake")).toBeUndefined()
      expect(server.store.get("intruder")).toBeUndefined()
      expect(neighbour.isClosed()).toBe(false)
      const refused = events(server.logLines(), "refused").map((entry) => String(entry["reason"]))
      expect(refused).toHaveLength(3)
      expect(refused[0]).toMatch(/said something other than PEER/)
      expect(refused[1]).toMatch(/PEER Mallory: not a server of the herd/)
      expect(refused[2]).toMatch(/did not say PEER in time/)
      // The neighbour's link took no client slot: a client that leaves makes room for one.
      clients[0]?.socket.destroy()
      yield* Eventually.eventually(Effect.sync(() => events(server.logLines(), "close").length >= 4 ? true : undefined))
      const next = yield* LineClient.connect(server.address)
      yield* next.write("IAMAT next +1+1 1\n")
      expect(yield* next.nextReply()).toMatch(/^AT Alford \S+ next \+1\+1 1$/)
    }))

  it.scoped("makes room for a neighbour when strangers hold every probation slot", () =>
    Effect.gen(function*() {
      // A herd of one: four probation slots.
      const server = yield* SingleServer.startServer({ config: { limits: { maxConnections: 1 } } })
      const client = yield* LineClient.connect(server.address)
      yield* client.write("IAMAT held +1+1 1\n")
      yield* client.nextReply()
      const strangers = []
      for (let i = 0; i < 4; i++) strangers.push(yield* LineClient.connect(server.address))
      yield* Eventually.eventually(Effect.sync(() => events(server.logLines(), "open").length === 5 ? true : undefined))
      const neighbour = yield* LineClient.connect(server.address)
      yield* neighbour.write("PEER Alford\nAT Alford +0.000000000 flooded +1+1 1\n")
      yield* Eventually.eventually(Effect.sync(() => server.store.get("flooded")))
      // The oldest stranger made room: the clock stands still, so no probation ran out.
      const [oldest, ...others] = strangers
      yield* oldest?.closed(2000) ?? Effect.dieMessage("no stranger")
      expect(others.some((stranger) => stranger.isClosed())).toBe(false)
      expect(events(server.logLines(), "refused").map((entry) => String(entry["reason"]))).toEqual([
        "1 client connections open, the limit; closed to make room for a newer connection"
      ])
    }))
})
