/**
 * A herd with `tls`, in this process, with certificates made by `herd certs`:
 * floods cross mutual TLS links, and no connection that has not proved it is
 * a server of the herd can flood or say PEER (PROTOCOL.md section 10).
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import { describe, expect, it } from "@effect/vitest"
import type { PeerLinks } from "@herd/peers"
import { PlacesClient } from "@herd/places"
import { HerdConfig, HerdServer, Tls } from "@herd/server"
import { Context, Effect, Layer, Option } from "effect"
import { readFileSync } from "node:fs"
import * as Net from "node:net"
import { join } from "node:path"
import * as NodeTls from "node:tls"
import { runCerts } from "../src/Certs.ts"
import { freePort, tempDir, until } from "./support.ts"

const noPlaces = Layer.succeed(PlacesClient.PlacesClient, PlacesClient.PlacesClient.of({ provider: "none", nearby: () => Effect.dieMessage("not asked") }))

/** Sends `text` on a fresh connection made by `open`, and gives back what came back once `replies` lines did. */
const exchange = (open: () => Net.Socket, text: string, replies: number) =>
  Effect.async<string>((resume) => {
    const socket = open()
    let received = ""
    socket.on("data", (chunk: Buffer) => {
      received += chunk.toString("latin1")
      if (received.split("\n").length > replies) {
        socket.destroy()
        resume(Effect.succeed(received))
      }
    })
    socket.on("error", () => {})
    socket.write(text)
    return Effect.sync(() => socket.destroy())
  }).pipe(Effect.timeout("5 seconds"))

/** A TLS client of the herd at `port` that trusts `caFile` and shows the certificate `cert`/`key` (files). */
const tlsClient = (port: number, caFile: string, cert: string, key: string) => () =>
  NodeTls.connect({
    host: "127.0.0.1",
    port,
    ca: readFileSync(caFile),
    cert: readFileSync(cert),
    key: readFileSync(key),
    servername: "",
    checkServerIdentity: () => undefined
  })

describe("a herd with tls", () => {
  it.scopedLive("floods over mutual TLS and refuses AT and PEER from any connection that has not proved it is that server", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const [alford, bolden, hamilton] = [yield* freePort, yield* freePort, yield* freePort]
      const config = yield* HerdConfig.decodeConfig({
        servers: {
          Alford: { port: alford },
          Bolden: { port: bolden },
          Hamilton: { port: hamilton }
        },
        links: [["Alford", "Bolden"], ["Bolden", "Hamilton"]],
        logDir: join(dir, "logs"),
        store: { kind: "memory" },
        tls: { dir: join(dir, "certs") }
      }, "test")
      yield* runCerts({ config, source: "test" }, { out: join(dir, "certs"), add: Option.none(), force: false }).pipe(
        Effect.provide(NodeContext.layer)
      )
      // Another herd's CA, with a certificate that says Alford.
      const foreign = yield* HerdConfig.decodeConfig({ servers: { Alford: { port: alford } } }, "foreign")
      yield* runCerts({ config: foreign, source: "foreign" }, { out: join(dir, "foreign"), add: Option.none(), force: false })
        .pipe(Effect.provide(NodeContext.layer))

      const events: Array<PeerLinks.LinkEvent & { readonly from: string }> = []
      const servers = new Map<string, HerdServer.HerdServer["Type"]>()
      for (const name of ["Alford", "Bolden", "Hamilton"]) {
        const context = yield* Layer.build(
          HerdServer.layer({ name, onLinkEvent: (event) => events.push({ ...event, from: name }) }).pipe(
            Layer.provide(Layer.merge(Layer.succeed(HerdConfig.HerdConfig, config), noPlaces))
          )
        )
        servers.set(name, Context.get(context, HerdServer.HerdServer))
      }
      const up = (from: string, peer: string) => events.some((e) => e.from === from && e.peer === peer && e.event === "link-up")
      yield* until(() => up("Alford", "Bolden") && up("Bolden", "Hamilton") && up("Hamilton", "Bolden"), "the TLS links")

      const plain = (port: number) => () => Net.createConnection({ host: "127.0.0.1", port })
      // A plain client's report floods over the TLS links to Hamilton, two hops away.
      const report = yield* exchange(plain(alford), "IAMAT kiwi +34.068930-118.445127 1621464827.959498503\n", 1)
      expect(report).toMatch(/^AT Alford \S+ kiwi \+34\.068930-118\.445127 1621464827\.959498503\n$/)
      yield* until(() => servers.get("Hamilton")?.store.get("kiwi") !== undefined, "the flood at Hamilton")

      // A plain connection may neither flood nor say PEER.
      const forged = "AT Alford +0.000000001 kiwi +1+1 1721464827"
      expect(yield* exchange(plain(bolden), `${forged}\nPEER Alford\n${forged}\n`, 3)).toBe(
        `? ${forged}\n? PEER Alford\n? ${forged}\n`
      )
      // Nor a TLS client whose certificate another CA signed, nor one whose certificate names another server.
      const certs = join(dir, "certs")
      const foreignAlford = tlsClient(bolden, join(certs, "ca.crt"), join(dir, "foreign", "Alford.crt"), join(dir, "foreign", "Alford.key"))
      expect(yield* exchange(foreignAlford, `PEER Alford\n${forged}\n`, 2)).toBe(`? PEER Alford\n? ${forged}\n`)
      const hamiltonAsAlford = tlsClient(bolden, join(certs, "ca.crt"), join(certs, "Hamilton.crt"), join(certs, "Hamilton.key"))
      expect(yield* exchange(hamiltonAsAlford, `PEER Alford\n${forged}\n`, 2)).toBe(`? PEER Alford\n? ${forged}\n`)
      for (const server of servers.values()) {
        expect(server.store.get("kiwi")?.location).toBe("+34.068930-118.445127")
      }
      // The log is written every few milliseconds.
      // The refusals of PEER (a neighbour's dial cut short at a restart would add another kind).
      const refusals = () =>
        readFileSync(join(dir, "logs", "Bolden.log"), "utf8").split("\n").filter((line) => line.includes("\"refused\""))
          .map((line) => (JSON.parse(line) as { reason: string }).reason)
          .filter((reason) => reason.startsWith("PEER "))
      yield* until(() => refusals().length >= 3, "three refusals in Bolden's log")
      expect(refusals()).toEqual([
        "PEER Alford over plain TCP: a herd with TLS takes neighbours over TLS only",
        expect.stringMatching(/^PEER Alford: /),
        "PEER Alford: certificate names Hamilton"
      ])
      // A link really is TLS: Bolden's certificate, as a dialling neighbour sees it.
      const seen = yield* Effect.async<string>((resume) => {
        const socket = NodeTls.connect({
          host: "127.0.0.1",
          port: bolden,
          ca: readFileSync(join(certs, "ca.crt")),
          servername: "",
          checkServerIdentity: () => undefined
        }, () => {
          resume(Effect.succeed(Tls.serverNamesOf(socket.getPeerCertificate().subjectaltname).join(",")))
          socket.destroy()
        })
        socket.on("error", (error) => resume(Effect.dieMessage(error.message)))
      })
      expect(seen).toBe("Bolden")
    }).pipe(Effect.provide(NodeContext.layer)), 30_000)
})
