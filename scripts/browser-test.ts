/**
 * The live map in a real browser: Debian's chromium driven by playwright-core.
 *
 * Starts the default herd's five servers in this process (free loopback
 * ports, memory stores, each with its admin endpoint), reports a client at
 * Alford, loads Alford's map with every request to another host refused
 * (the page must need no network), and waits (bounded, on conditions) until
 * it shows the five servers, their five links up, and the client; a click on
 * the client shows its AT line. Saves a screenshot (`/tmp/herd-map.png`, or
 * the path given as the first argument).
 *
 *   node --conditions=@herd/source --import tsx scripts/browser-test.ts [screenshot.png]
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { AdminServer } from "@herd/admin"
import { HerdConfig, HerdServer } from "@herd/server"
import { SingleServer } from "@herd/testkit"
import { Context, Effect, Layer } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import * as Net from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { BrowserContext, Page } from "playwright-core"
import { chromium } from "playwright-core"
import { buildMap } from "../packages/admin/build-map.mjs"
import { defaultHerd } from "../packages/cli/src/DefaultHerd.ts"

const screenshot = process.argv[2] ?? "/tmp/herd-map.png"
const waitMs = 20_000

const freePort = Effect.async<number>((resume) => {
  const probe = Net.createServer()
  probe.listen(0, "127.0.0.1", () => {
    const address = probe.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    probe.close(() => resume(Effect.succeed(port)))
  })
})

const tempDir = (prefix: string) =>
  Effect.acquireRelease(
    Effect.sync(() => mkdtempSync(join(tmpdir(), prefix))),
    (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
  )

/** One line to a server, its first reply line back, within 5 s. */
const ask = (port: number, line: string) =>
  Effect.async<string, Error>((resume) => {
    const socket = Net.connect({ host: "127.0.0.1", port }, () => socket.write(`${line}\n`))
    let text = ""
    const timer = setTimeout(() => resume(Effect.fail(new Error(`no reply to ${line}`))), 5000)
    socket.on("data", (chunk: Buffer) => {
      text += chunk.toString("latin1")
      if (text.includes("\n")) resume(Effect.succeed(text.split("\n")[0] ?? ""))
    })
    socket.on("error", (error) => resume(Effect.fail(error)))
    return Effect.sync(() => {
      clearTimeout(timer)
      socket.destroy()
    })
  })

const browser = <A>(what: string, run: () => Promise<A>) =>
  Effect.tryPromise({ try: run, catch: (cause) => new Error(`${what}: ${cause instanceof Error ? cause.message : String(cause)}`) })

const program = Effect.gen(function*() {
  const checks: Array<string> = []
  const passed = (check: string) =>
    Effect.sync(() => {
      checks.push(check)
      console.log(`ok: ${check}`)
    })

  yield* browser("build the map's script", buildMap)
  const dir = yield* tempDir("herd-browser-")
  const names = Object.keys(defaultHerd.servers)
  const servers: Record<string, { host: string; port: number; httpPort: number }> = {}
  for (const name of names) servers[name] = { host: "127.0.0.1", port: yield* freePort, httpPort: yield* freePort }
  const config = yield* HerdConfig.decodeConfig({
    servers,
    links: defaultHerd.links,
    logDir: join(dir, "logs"),
    store: { kind: "memory" },
    reconnect: { initialMs: 20, capMs: 200 }
  }, "browser test herd")
  const shared = Layer.merge(Layer.succeed(HerdConfig.HerdConfig, config), SingleServer.fixedPlaces([]))
  const stores = new Map<string, HerdServer.HerdServer["Type"]>()
  for (const name of names) {
    const context = yield* Layer.build(AdminServer.layer().pipe(Layer.provideMerge(HerdServer.layer({ name })), Layer.provide(shared)))
    stores.set(name, Context.get(context, HerdServer.HerdServer))
  }

  const alford = servers["Alford"]
  if (alford === undefined) return yield* Effect.fail(new Error("no Alford in the default herd"))
  const atLine = yield* ask(alford.port, "IAMAT kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503")
  if (!atLine.startsWith("AT Alford ")) return yield* Effect.fail(new Error(`IAMAT answered ${atLine}`))
  yield* passed("a client reported at Alford")

  const profile = yield* tempDir("herd-chromium-")
  const context = yield* Effect.acquireRelease(
    browser("launch chromium", () =>
      chromium.launchPersistentContext(profile, {
        executablePath: "/usr/bin/chromium",
        headless: true,
        viewport: { width: 1280, height: 720 },
        args: [
          "--no-sandbox",
          "--disable-gpu",
          "--disable-background-networking",
          "--disable-component-update",
          "--disable-sync",
          "--no-first-run"
        ]
      })),
    (context: BrowserContext) => Effect.promise(() => context.close())
  )
  // The page must work with no network: anything not from this herd is refused, and counted.
  const elsewhere: Array<string> = []
  yield* browser("route requests", () =>
    context.route("**/*", (route) => {
      const url = new URL(route.request().url())
      if (url.hostname === "127.0.0.1") return route.continue()
      elsewhere.push(url.href)
      return route.abort()
    }))
  const page: Page = context.pages()[0] ?? (yield* browser("open a page", () => context.newPage()))
  const errors: Array<string> = []
  page.on("pageerror", (error) => errors.push(error.message))

  yield* browser("load the map", () => page.goto(`http://127.0.0.1:${alford.httpPort}/`, { waitUntil: "load" }))
  yield* browser("the map to draw the world", () => page.waitForSelector("path.land", { state: "attached", timeout: waitMs }))
  yield* passed("the world map drawn")
  yield* browser("five servers", () =>
    // Expressions, not functions: they run in the page, whose DOM this file's types do not describe.
    page.waitForFunction(`document.querySelectorAll("g.server").length === 5`, undefined, { timeout: waitMs }))
  const shown = yield* browser("server names", () =>
    page.$$eval("g.server", (groups) => groups.map((group) => group.getAttribute("data-server") ?? "").sort()))
  if (shown.join(",") !== [...names].sort().join(",")) {
    return yield* Effect.fail(new Error(`the map shows servers ${shown.join(", ")}`))
  }
  yield* passed(`five servers shown: ${shown.join(", ")}`)
  yield* browser("five links up", () =>
    page.waitForFunction(`document.querySelectorAll('path.link[data-state="up"]').length === 5`, undefined, {
      timeout: waitMs
    }))
  yield* passed("five links, all up (both ends say so)")
  const client = `circle.client[data-client="kiwi.cs.ucla.edu"]`
  yield* browser("the client", () => page.waitForSelector(client, { timeout: waitMs }))
  yield* passed("the reported client shown")
  yield* browser("click the client", () => page.click(client, { force: true }))
  yield* browser("its AT line", () =>
    page.waitForFunction(`document.getElementById("selected")?.textContent === ${JSON.stringify(atLine)}`, undefined, {
      timeout: waitMs
    }))
  yield* passed("a click on the client shows its AT line")
  yield* browser("screenshot", () => page.screenshot({ path: screenshot }))
  console.log(`screenshot: ${screenshot}`)

  if (elsewhere.length > 0) return yield* Effect.fail(new Error(`the page asked other hosts: ${elsewhere.join(", ")}`))
  yield* passed("no request to any other host")
  if (errors.length > 0) return yield* Effect.fail(new Error(`errors on the page: ${errors.join("; ")}`))
  yield* passed("no error on the page")
  return checks.length
})

NodeRuntime.runMain(
  Effect.scoped(program).pipe(
    Effect.timeoutFail({ duration: 120_000, onTimeout: () => new Error("the browser test took more than 2 minutes") }),
    Effect.matchEffect({
      onSuccess: (count) => Effect.sync(() => console.log(`browser test: ${count} passed, 0 failed`)),
      onFailure: (error) =>
        Effect.sync(() => {
          console.error(`browser test: FAILED: ${error instanceof Error ? error.message : String(error)}`)
          console.log("browser test: 0 passed, 1 failed")
          process.exitCode = 1
        })
    })
  ),
  { disableErrorReporting: true }
)
