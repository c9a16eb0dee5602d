/**
 * A herd of real servers in this process, each with its admin endpoint, on
 * free loopback ports, with memory stores and fixed Places; and an HTTP GET
 * with a deadline.
 */
import { AdminServer } from "@herd/admin"
import { HerdConfig, HerdServer } from "@herd/server"
import { SingleServer } from "@herd/testkit"
import { Context, Effect, Layer } from "effect"
import type { Scope } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import * as Net from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"

/** A port free on 127.0.0.1 a moment ago. */
export const freePort = Effect.async<number>((resume) => {
  const probe = Net.createServer()
  probe.listen(0, "127.0.0.1", () => {
    const address = probe.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    probe.close(() => resume(Effect.succeed(port)))
  })
})

export const tempDir: Effect.Effect<string, never, Scope.Scope> = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "herd-admin-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

export interface AdminHerd {
  readonly config: HerdConfig.HerdConfigValue
  readonly server: (name: string) => HerdServer.HerdServer["Type"]
  /** `http://127.0.0.1:<httpPort>` of a server. */
  readonly http: (name: string) => string
}

export const startAdminHerd = (
  names: ReadonlyArray<string>,
  links: ReadonlyArray<readonly [string, string]>,
  options: { readonly store?: "memory" | "durable" } = {}
): Effect.Effect<AdminHerd, unknown, Scope.Scope> =>
  Effect.gen(function*() {
    const dir = yield* tempDir
    const servers: Record<string, { host: string; port: number; httpPort: number }> = {}
    for (const name of names) servers[name] = { host: "127.0.0.1", port: yield* freePort, httpPort: yield* freePort }
    const config = yield* HerdConfig.decodeConfig({
      servers,
      links,
      logDir: join(dir, "logs"),
      dataDir: join(dir, "data"),
      store: { kind: options.store ?? "memory" },
      reconnect: { initialMs: 10, capMs: 100 }
    }, "admin test herd")
    const shared = Layer.merge(Layer.succeed(HerdConfig.HerdConfig, config), SingleServer.fixedPlaces([{ name: "Royce Hall" }]))
    const built = new Map<string, HerdServer.HerdServer["Type"]>()
    for (const name of names) {
      const context = yield* Layer.build(
        AdminServer.layer().pipe(Layer.provideMerge(HerdServer.layer({ name })), Layer.provide(shared))
      )
      built.set(name, Context.get(context, HerdServer.HerdServer))
    }
    return {
      config,
      server: (name) => {
        const server = built.get(name)
        if (server === undefined) throw new Error(`no server ${name} in this herd`)
        return server
      },
      http: (name) => `http://127.0.0.1:${servers[name]?.httpPort ?? 0}`
    }
  })

export interface Fetched {
  readonly status: number
  readonly contentType: string
  readonly text: string
}

/** GET `url`, the whole body, within `timeoutMs`. */
export const get = (url: string, timeoutMs = 5000): Effect.Effect<Fetched, Error> =>
  Effect.tryPromise({
    try: async (signal) => {
      const response = await fetch(url, { signal })
      return { status: response.status, contentType: response.headers.get("content-type") ?? "", text: await response.text() }
    },
    catch: (cause) => new Error(`GET ${url}: ${String(cause)}`)
  }).pipe(Effect.timeoutFail({ duration: timeoutMs, onTimeout: () => new Error(`GET ${url}: no answer in ${timeoutMs} ms`) }))

/**
 * Reads the server-sent events of `url` until `done` holds of the text
 * received so far, within `timeoutMs`; the stream is closed then.
 */
export const readEvents = (url: string, done: (text: string) => boolean, timeoutMs = 5000): Effect.Effect<string, Error> =>
  Effect.tryPromise({
    try: async (signal) => {
      const response = await fetch(url, { signal })
      const reader = response.body?.getReader()
      if (reader === undefined) return ""
      const decoder = new TextDecoder()
      let text = ""
      while (!done(text)) {
        const chunk = await reader.read()
        if (chunk.done) break
        text += decoder.decode(chunk.value, { stream: true })
      }
      await reader.cancel()
      return text
    },
    catch: (cause) => new Error(`events of ${url}: ${String(cause)}`)
  }).pipe(Effect.timeoutFail({ duration: timeoutMs, onTimeout: () => new Error(`events of ${url}: not done in ${timeoutMs} ms`) }))
