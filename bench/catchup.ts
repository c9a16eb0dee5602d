/**
 * What a link's catch-up costs (issue 17): a durable store of `clients`
 * records, linked to a neighbour that speaks the extended handshake. The
 * neighbour first has no checkpoint (`SINCE - 0`: full catch-up), then,
 * after `changed` new records, drops the connection and resumes from the
 * checkpoint its first catch-up's `MARK` gave (incremental). Bytes and time
 * are the neighbour's: from `PEER` to the `MARK` after the records.
 *
 *   node --conditions=@herd/source --import tsx bench/catchup.ts [--clients 1000000] [--changed 100]
 *
 * `measureCatchUp` is what `npm run bench` calls.
 */
import { PeerLinks } from "@herd/peers"
import type { LocationRecord } from "@herd/protocol"
import { DurableStore, LocationStore } from "@herd/store"
import { Context, Effect, Layer } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import * as Net from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { parseArgs } from "node:util"

export interface CatchUpFigures {
  readonly records: number
  readonly bytes: number
  readonly ms: number
}

export interface CatchUpResult {
  readonly full: CatchUpFigures
  readonly incremental: CatchUpFigures
}

const record = (client: string, time: string): LocationRecord.LocationRecord => ({
  origin: "Alford",
  skew: "+0.000000000",
  client,
  location: "+34.068930-118.445127",
  time
})

/** One connection as the neighbour sees it: bytes, and when PEER and the catch-up's MARK came. */
interface Seen {
  bytes: number
  lines: number
  startedMs: number
  markedMs: number
  mark: string
  tail: string
  socket: Net.Socket
}

/**
 * A neighbour that answers each connection's PEER with `sinceFor(index)`
 * and watches for the first `MARK`; the records before it are the catch-up.
 */
const neighbour = (sinceFor: (index: number) => string) =>
  Effect.acquireRelease(
    Effect.async<{ readonly port: number; readonly seen: Array<Seen>; readonly server: Net.Server }>((resume) => {
      const seen: Array<Seen> = []
      const server = Net.createServer((socket) => {
        const index = seen.length
        const connection: Seen = { bytes: 0, lines: 0, startedMs: 0, markedMs: 0, mark: "", tail: "", socket }
        seen.push(connection)
        socket.on("error", () => {})
        socket.on("data", (chunk: Buffer) => {
          if (connection.startedMs === 0) {
            connection.startedMs = performance.now()
            socket.write(sinceFor(index))
          }
          if (connection.markedMs !== 0) return
          // The tail is what came before this chunk and is counted already.
          const tail = connection.tail
          const text = tail + chunk.toString("latin1")
          const at = text.indexOf("\nMARK ")
          const end = at < 0 ? -1 : text.indexOf("\n", at + 1)
          // Counted: this chunk up to the LF before MARK (all of it while there is none).
          const counted = end < 0 ? chunk.length : Math.max(0, at + 1 - tail.length)
          connection.bytes += counted
          for (let i = chunk.indexOf(10); i >= 0 && i < counted; i = chunk.indexOf(10, i + 1)) connection.lines++
          if (end < 0) {
            connection.tail = text.slice(-64)
            return
          }
          connection.markedMs = performance.now()
          connection.mark = text.slice(at + 1, end)
        })
      })
      server.listen(0, "127.0.0.1", () => {
        const address = server.address()
        resume(Effect.succeed({ port: typeof address === "object" && address !== null ? address.port : 0, seen, server }))
      })
    }),
    ({ seen, server }) =>
      Effect.async<void>((resume) => {
        seen.forEach((connection) => connection.socket.destroy())
        server.close(() => resume(Effect.void))
      })
  )

const waitFor = (check: () => boolean, what: string, timeoutMs = 120_000) =>
  Effect.gen(function*() {
    const deadline = Date.now() + timeoutMs
    while (!check()) {
      if (Date.now() > deadline) return yield* Effect.dieMessage(`catch-up bench: timed out waiting for ${what}`)
      yield* Effect.sleep("2 millis")
    }
  })

const figuresOf = (connection: Seen | undefined): CatchUpFigures => ({
  // The PEER line is not a record.
  records: Math.max(0, (connection?.lines ?? 0) - 1),
  bytes: connection?.bytes ?? 0,
  ms: (connection?.markedMs ?? 0) - (connection?.startedMs ?? 0)
})

export const catchUpCost = (options: { readonly clients: number; readonly changed: number; readonly dir: string }) =>
  Effect.scoped(Effect.gen(function*() {
    const store = yield* DurableStore.make({ path: join(options.dir, "Alford.db") })
    for (let i = 0; i < options.clients; i++) store.unsafeOffer(record(`client-${i}`, "1600000000.5"))
    yield* store.commit
    let checkpoint = "SINCE - 0\n"
    const { port, seen } = yield* neighbour((index) => index === 0 ? "SINCE - 0\n" : checkpoint)
    const context = Context.make(LocationStore.LocationStore, store).pipe(Context.add(DurableStore.DurableStore, store))
    yield* Layer.build(
      PeerLinks.layer({
        self: "Alford",
        neighbours: [{ name: "Parker", host: "127.0.0.1", port }],
        reconnect: { initialMs: 10, capMs: 100 }
      }).pipe(Layer.provide(Layer.succeedContext(context)))
    )
    yield* waitFor(() => (seen[0]?.markedMs ?? 0) > 0, "the full catch-up")
    // What the neighbour would have kept: its checkpoint is the MARK it got.
    const [, epoch, seq] = (seen[0]?.mark ?? "").split(" ")
    checkpoint = `SINCE ${epoch} ${seq}\n`
    for (let i = 0; i < options.changed; i++) store.unsafeOffer(record(`client-${i}`, "1700000000.5"))
    yield* store.commit
    seen[0]?.socket.destroy()
    yield* waitFor(() => (seen[1]?.markedMs ?? 0) > 0, "the incremental catch-up")
    return { full: figuresOf(seen[0]), incremental: figuresOf(seen[1]) }
  }))

/** The bench's table rows. */
export const describeCatchUp = (clients: number, changed: number, result: CatchUpResult): Array<string> => {
  const row = (what: string, figures: CatchUpFigures) =>
    `  ${what.padEnd(30)}${String(figures.records).padStart(10)}${(figures.bytes / 1e6).toFixed(2).padStart(10)} MB${
      figures.ms.toFixed(0).padStart(8)
    } ms`
  return [
    `Catch-up of one link, ${clients.toLocaleString("en")} stored clients, ${changed} changed (bench/catchup.ts)`,
    `  ${"".padEnd(30)}${"records".padStart(10)}${"bytes".padStart(13)}${"time".padStart(11)}`,
    row("full (no checkpoint)", result.full),
    row("incremental (checkpoint)", result.incremental),
    `  incremental / full: ${(result.incremental.bytes / result.full.bytes * 100).toFixed(3)} % of the bytes, ${
      (result.incremental.ms / result.full.ms * 100).toFixed(1)
    } % of the time`
  ]
}

export const measureCatchUp = (clients: number, changed: number): Promise<Array<string>> => {
  const dir = mkdtempSync(join(tmpdir(), "herd-catchup-"))
  return Effect.runPromise(catchUpCost({ clients, changed, dir })).then(
    (result) => describeCatchUp(clients, changed, result),
    (error: unknown) => [`Catch-up bench failed: ${error instanceof Error ? error.message : String(error)}`]
  ).finally(() => rmSync(dir, { recursive: true, force: true }))
}

if (process.argv[1] !== undefined && import.meta.url.endsWith(process.argv[1].split("/").pop() ?? "")) {
  const { values } = parseArgs({ options: { clients: { type: "string", default: "1000000" }, changed: { type: "string", default: "100" } } })
  const lines = await measureCatchUp(Number(values.clients), Number(values.changed))
  console.log(lines.join("\n"))
}
