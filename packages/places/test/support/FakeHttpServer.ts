/**
 * A fake HTTP server on a loopback port for the Google providers' tests: it
 * records every request and answers with what the test's `reply` says, when
 * it says (an Effect, so a reply can wait on a Deferred or never come).
 * A thin adapter over node:http; the scope closes it, connections and all.
 */
import * as Http from "node:http"
import { Effect, FiberSet } from "effect"
import type { Scope } from "effect"

export interface SeenRequest {
  readonly method: string
  readonly path: string
  readonly query: URLSearchParams
  readonly headers: Http.IncomingHttpHeaders
  readonly body: string
}

export interface FakeReply {
  readonly status?: number
  readonly body: string
}

export interface FakeHttpServer {
  readonly baseUrl: string
  /** Every request seen so far, oldest first. */
  readonly seen: ReadonlyArray<SeenRequest>
}

export const json = (value: unknown, status = 200): FakeReply => ({ status, body: JSON.stringify(value) })

export const fakeHttpServer = (
  reply: (request: SeenRequest) => Effect.Effect<FakeReply>
): Effect.Effect<FakeHttpServer, never, Scope.Scope> =>
  Effect.gen(function*() {
    // Replies still pending when the test ends are interrupted with the scope.
    const runFork = yield* FiberSet.makeRuntime<never, void, never>()
    const seen: Array<SeenRequest> = []
    const server = Http.createServer((incoming, outgoing) => {
      const chunks: Array<Buffer> = []
      incoming.on("data", (chunk: Buffer) => chunks.push(chunk))
      incoming.on("end", () => {
        const url = new URL(incoming.url ?? "/", "http://fake.invalid")
        const request: SeenRequest = {
          method: incoming.method ?? "",
          path: url.pathname,
          query: url.searchParams,
          headers: incoming.headers,
          body: Buffer.concat(chunks).toString("utf8")
        }
        seen.push(request)
        runFork(
          Effect.flatMap(reply(request), (answer) =>
            Effect.sync(() => {
              outgoing.writeHead(answer.status ?? 200, { "content-type": "application/json; charset=UTF-8" })
              outgoing.end(answer.body)
            }))
        )
      })
    })
    yield* Effect.acquireRelease(
      Effect.async<void>((resume) => {
        server.listen(0, "127.0.0.1", () => resume(Effect.void))
      }),
      () =>
        Effect.async<void>((resume) => {
          server.closeAllConnections()
          server.close(() => resume(Effect.void))
        })
    )
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    return { baseUrl: `http://127.0.0.1:${port}`, seen }
  })
