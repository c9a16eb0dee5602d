/**
 * A server with a Google provider whose upstream misbehaves: every failure
 * becomes the failure reply of PROTOCOL.md section 4, requests pipelined
 * behind it are answered in order, and the API key appears in no log line
 * and no reply.
 */
import { FetchHttpClient } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Google, GoogleLegacy, PlacesClient } from "@herd/places"
import { LineClient, SingleServer } from "../src/index.ts"
import { Effect, Layer, Redacted } from "effect"
import * as Http from "node:http"

const apiKey = "TEST-KEY-5c4b3a"

/** An upstream on a free loopback port: each request gets the next answer of `answers`, cycling. */
const fakeUpstream = (answers: ReadonlyArray<(response: Http.ServerResponse) => void>) =>
  Effect.acquireRelease(
    Effect.async<{ readonly server: Http.Server; readonly baseUrl: string }>((resume) => {
      let next = 0
      const server = Http.createServer((request, response) => {
        request.resume()
        const answer = answers[next++ % answers.length]
        answer?.(response)
      })
      server.listen(0, "127.0.0.1", () => {
        const address = server.address()
        const port = typeof address === "object" && address !== null ? address.port : 0
        resume(Effect.succeed({ server, baseUrl: `http://127.0.0.1:${port}` }))
      })
    }),
    ({ server }) =>
      Effect.async<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
  )

const json = (status: number, body: unknown) => (response: Http.ServerResponse) => {
  response.writeHead(status, { "content-type": "application/json" })
  response.end(JSON.stringify(body))
}

describe("WHATSAT when the Places provider fails", () => {
  for (const provider of ["google", "google-legacy"] as const) {
    it.scopedLive(`${provider}: answers each failure in the framing of section 4, never showing the key`, () =>
      Effect.gen(function*() {
        const upstream = yield* fakeUpstream([
          json(500, { error: { message: `internal trouble with key ${apiKey}` } }),
          (response) => {
            response.writeHead(200, { "content-type": "application/json" })
            response.end("<html>not json</html>")
          },
          json(provider === "google" ? 429 : 200, provider === "google"
            ? { error: { status: "RESOURCE_EXHAUSTED", message: "quota" } }
            : { status: "OVER_QUERY_LIMIT", results: [], html_attributions: [], error_message: `key ${apiKey} over` }),
          () => {} // never answers: the time-out
        ])
        const options = { apiKey: Redacted.make(apiKey), baseUrl: upstream.baseUrl, timeoutMs: 300, cacheTtlMs: 0 }
        const places = (provider === "google" ? Google.layer(options) : GoogleLegacy.layer(options)).pipe(
          Layer.provide(FetchHttpClient.layer)
        )
        const server = yield* SingleServer.startServer({ places })
        const client = yield* LineClient.connect(server.address)
        yield* client.write("IAMAT kiwi +34.068930-118.445127 1621464827.5\n")
        const at = yield* client.nextReply()
        // Four lookups (different radii, so no answer is shared), each followed by an IAMAT.
        yield* client.write([1, 2, 3, 4].map((radius) => `WHATSAT kiwi ${radius} 5\nIAMAT after${radius} +1+1 1\n`).join(""))
        const statuses: Array<unknown> = []
        for (const radius of [1, 2, 3, 4]) {
          const reply = yield* client.nextReply({ multiLine: true })
          const [atLine, ...body] = reply.split("\n")
          expect(atLine).toBe(at)
          expect(reply.endsWith("}\n")).toBe(true)
          const parsed = JSON.parse(body.join("\n")) as Record<string, unknown>
          expect(parsed["results"]).toEqual([])
          expect(typeof parsed["error_message"]).toBe("string")
          statuses.push(parsed["status"])
          expect(yield* client.nextReply()).toMatch(new RegExp(`^AT Alford \\S+ after${radius} \\+1\\+1 1$`))
        }
        expect(statuses).toEqual(["UNKNOWN_ERROR", "UNKNOWN_ERROR", "OVER_QUERY_LIMIT", "UNKNOWN_ERROR"])
        const log = server.logLines()
        expect(log.filter((line) => line.includes(`"event":"places"`)).length).toBe(4)
        expect(log.join("").includes(apiKey)).toBe(false)
        expect(client.received().toString("latin1").includes(apiKey)).toBe(false)
      }), 15_000)
  }

  it.scopedLive("a provider that dies (a bug, not an error) gets a failure reply, and the lines behind it are answered", () =>
    Effect.gen(function*() {
      const dying = Layer.succeed(PlacesClient.PlacesClient, PlacesClient.PlacesClient.of({ provider: "broken", nearby: () => Effect.die(new Error("kaboom")) }))
      const server = yield* SingleServer.startServer({ places: dying })
      const client = yield* LineClient.connect(server.address)
      yield* client.write("IAMAT kiwi +34.068930-118.445127 1621464827.5\n")
      const at = yield* client.nextReply()
      yield* client.write("WHATSAT kiwi 10 5\nIAMAT after +1+1 1\n")
      const [atLine, ...body] = (yield* client.nextReply({ multiLine: true })).split("\n")
      expect(atLine).toBe(at)
      expect(JSON.parse(body.join("\n"))).toEqual({
        html_attributions: [],
        results: [],
        status: "UNKNOWN_ERROR",
        error_message: "the Places provider failed: kaboom"
      })
      expect(yield* client.nextReply()).toMatch(/^AT Alford \S+ after \+1\+1 1$/)
      const places = server.logLines().filter((line) => line.includes(`"event":"places"`))
      expect(places.map((line) => JSON.parse(line))).toMatchObject([{ provider: "broken", reason: "Defect" }])
    }), 15_000)
})

