/**
 * The in-process cost of a connection's read → reply path, with no socket:
 * reads of 16 IAMAT lines shaped like loadgen's, over 10,000 clients, fed
 * straight to a server's `Session`. It splits a line's cost between the event log,
 * the store and the rest, next to the raw herd's own handler
 * (../shared/tools/raw-herd/raw-herd.mjs, or HERD_RAW_HERD) fed the same
 * reads (README, "What bounds the throughput").
 *
 *   npm run bench:hotpath -- [--passes 20] [--rounds 2]
 *   npm run bench:hotpath -- --shapes [--passes 20]
 *
 * With `--shapes` it prints instead what a byte costs in lines of about
 * 8,000 bytes of hostile shapes, beside a normal report (bench/run.ts
 * prints that table too).
 *
 * Each variant runs in a fresh process, `rounds` times in turn; a process
 * times `passes` passes of 80,000 lines and reports the fastest and the
 * quartile. The fastest is the steadiest figure on a shared machine.
 */
import { Handshake } from "@herd/peers"
import { LocationRecord, Protocol, Reply } from "@herd/protocol"
import { LocationStore } from "@herd/store"
import { Effect, Either } from "effect"
import { execFileSync } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import { parseArgs } from "node:util"
import { EntryWriter } from "../src/internal/EntryWriter.ts"
import type { EventLog, LineLog } from "../src/EventLog.ts"
import { Admission } from "../src/internal/Admission.ts"
import { Session } from "../src/internal/Session.ts"
import { ServerStats } from "../src/Metrics.ts"
import type { SessionPort, SessionServices } from "../src/internal/Session.ts"

const variants = {
  "in full": { log: true, store: "memory" },
  "without the event log": { log: false, store: "memory" },
  "without the store": { log: true, store: "none" },
  "without either": { log: false, store: "none" },
  "a plain Map in place of the store, no log": { log: false, store: "plain Map" },
  "the raw herd's own handler": { log: false, store: "raw herd" }
} as const
type Variant = keyof typeof variants

/** The raw herd's script: beside this repository, in ../shared. */
const rawHerdScript = process.env["HERD_RAW_HERD"] ??
  fileURLToPath(new URL("../../../../shared/tools/raw-herd/raw-herd.mjs", import.meta.url))

const READS = 5_000
const LINES_PER_READ = 16
const CLIENTS = 10_000

// Reads ---------------------------------------------------------------------

const signed = (microdegrees: number) => (microdegrees < 0 ? "-" : "+") + (Math.abs(microdegrees) / 1e6).toFixed(6)

// A month back: the raw herd refuses a time more than 10 minutes ahead of its
// clock, which is the wall clock, and the times of 20 passes span 19 days.
let clientTime = Math.floor(Date.now() / 1000) - 30 * 86_400

/** `READS` reads of 16 IAMATs: a client id, a location and a time as loadgen makes them. */
const makeReads = (): Array<Buffer> =>
  Array.from({ length: READS }, (_, read) => {
    let text = ""
    for (let line = 0; line < LINES_PER_READ; line++) {
      const seq = (read * LINES_PER_READ + line) % CLIENTS
      const hash = Math.imul(seq, 2654435761) >>> 0
      const latitude = (hash % 179_000_000) - 89_500_000
      const longitude = (Math.imul(hash, 40503) >>> 0) % 359_000_000 - 179_500_000
      text += `IAMAT p7300377af6-${read % 50}-${seq} ${signed(latitude)}${signed(longitude)} ${clientTime++}.499130739\n`
    }
    return Buffer.from(text, "latin1")
  })

// The handler under test ----------------------------------------------------

const silentLines: LineLog = { received() {}, sent() {}, sentAnswer() {} }

/** A `Session`'s socket write: the reply's bytes are made, then dropped. */
const dropWrite = (_bytes: Uint8Array): boolean => true

/** A store that keeps each client's record object in a Map, with the same winner rule. */
const plainMapStore = (isNewer: (a: LocationRecord.LocationRecord, b: LocationRecord.LocationRecord) => boolean): LocationStore.LocationStore["Type"] => {
  const records = new Map<string, LocationRecord.LocationRecord>()
  return {
    get: (client) => records.get(client),
    unsafeOffer: (record) => {
      const stored = records.get(record.client)
      if (stored !== undefined && !isNewer(record, stored)) return lost
      records.set(record.client, record)
      return won
    },
    snapshot: () => [...records.values()],
    size: () => records.size,
    digest: () => LocationStore.digestOf(records.values())
  }
}

/** The two answers of an offer, made once like the real stores' (an offer allocates nothing). */
const won: LocationStore.OfferResult = Either.right(true)
const lost: LocationStore.OfferResult = Either.right(false)

const noStore: LocationStore.LocationStore["Type"] = {
  get: () => undefined,
  unsafeOffer: () => won,
  snapshot: () => [],
  size: () => 0,
  digest: () => LocationStore.digestOf([])
}

/** Feeds one read to a server `Session` whose port drops what is sent. */
const connectionHandler = (variant: Variant): (read: Buffer) => void => {
  const { log: logged, store: storeKind } = variants[variant]
  const protocol = Effect.runSync(Effect.provide(Protocol.Protocol, Protocol.layer))
  const store = storeKind === "memory"
    ? Effect.runSync(LocationStore.makeMemory)
    : storeKind === "plain Map"
    ? plainMapStore(LocationRecord.isNewer)
    : noStore
  const writer = new EntryWriter("Alford", 1 << 20)
  const log: EventLog["Type"] = {
    unsafeRecord: (event, fields) => writer.record(event, fields),
    lines: (conn, remote) => logged ? writer.lines(conn, remote) : silentLines,
    flush: Effect.void,
    wire: "full",
    hasRoom: () => true,
    unsafeOnRoom: (resume) => resume(),
    reopen: Effect.void
  }
  const services: SessionServices = {
    serverName: "Alford",
    protocol,
    store,
    peers: { neighbours: [], unsafeFlood() {} },
    places: { provider: "none", nearby: () => Effect.die("no WHATSAT here") },
    log,
    lineLimit: 8192,
    pendingReplyBytes: 256 * 1024,
    maxClientAheadNs: 600_000_000_000n,
    admission: new Admission(10_000, 16),
    herdServers: new Set(["Alford"]),
    partialLineTimeoutMs: 30_000,
    peersMustProve: false,
    checkpoints: Handshake.makeMemoryCheckpoints(),
    extendedLinksIn: new Set(),
    stats: new ServerStats("Alford", 0),
    whenStored: undefined,
    printBody: Reply.printedPlacesBody,
    lookUp() {}
  }
  // The reads of a pass are made before it is fed, so every client time is
  // behind this clock, as it is behind a server's for loadgen's reports.
  const nowNs = () => BigInt(clientTime) * 1_000_000_000n
  const port: SessionPort = {
    send: dropWrite,
    unsentBytes: () => 0,
    pause() {},
    resume() {},
    inputEnded() {},
    settled() {},
    wakeAt() {},
    guard: (body) => body(),
    nowNs
  }
  const session = new Session(services, port, 1, "127.0.0.1:40000")
  return (read) => {
    session.feed(read, nowNs())
    // The server hands the log's bytes to its file every 50 ms, about 1 MB under
    // load; here they are dropped at that size.
    if (writer.size > 1 << 20) writer.recycle(writer.take())
  }
}

/**
 * The raw herd's data handler, its own code: its module up to where it
 * starts its server, with `onData` exported, loaded from a temporary file
 * (it reads its arguments as it loads). Its socket's write drops the reply,
 * as the other variants' does. Whether it took the lines (an AT line each)
 * rather than refused them is checked first: a refusal costs less.
 */
const rawHerdHandler = async (): Promise<(read: Buffer) => void> => {
  const source = readFileSync(rawHerdScript, "utf8")
  const serverStart = source.indexOf("const server = net.createServer")
  if (serverStart === -1) throw new Error(`${rawHerdScript}: no "const server = net.createServer" to cut its module at`)
  const dir = mkdtempSync(join(tmpdir(), "hotpath-raw-herd-"))
  const file = join(dir, "handler.mjs")
  writeFileSync(file, `${source.slice(0, serverStart).replace(/^#!.*\n/, "")}\nexport { onData };\n`)
  const argv = process.argv
  process.argv = [argv[0] ?? "node", file, "--name", "Alford", "--port", "0"]
  let onData: (conn: unknown, read: Buffer) => void
  try {
    ;({ onData } = await import(pathToFileURL(file).href))
  } finally {
    process.argv = argv
    rmSync(dir, { recursive: true, force: true })
  }
  const connection = (write: (text: string) => boolean) => ({ sock: { write }, rest: "", peer: null, closing: false, skipping: false })
  let answered = 0
  const probe = connection((text) => {
    answered += text.split("\n").filter((line) => line.startsWith("AT ")).length
    return true
  })
  const probeReads = makeReads().slice(0, 10)
  for (const read of probeReads) onData(probe, read)
  if (answered !== probeReads.length * LINES_PER_READ) {
    throw new Error(`the raw herd answered ${answered} of ${probeReads.length * LINES_PER_READ} IAMATs with an AT line`)
  }
  const conn = connection(() => true)
  return (read) => onData(conn, read)
}

/** One process's figures: ns a line, fastest and quartile of `passes` passes. */
const measure = async (variant: Variant, passes: number): Promise<{ fastest: number; quartile: number }> => {
  const handle = variants[variant].store === "raw herd" ? await rawHerdHandler() : connectionHandler(variant)
  const times: Array<number> = []
  for (let pass = 0; pass < passes; pass++) {
    const reads = makeReads()
    const start = process.hrtime.bigint()
    for (const read of reads) handle(read)
    times.push(Number(process.hrtime.bigint() - start) / (READS * LINES_PER_READ))
  }
  times.sort((a, b) => a - b)
  return { fastest: times[0]!, quartile: times[Math.floor(passes / 4)]! }
}

// Lines of any shape ----------------------------------------------------------

/**
 * Lines of about 8,000 bytes, each a shape a hostile client might send,
 * beside a normal report. A line's cost must stay proportional to its size
 * with a small constant: no shape may cost much more a byte than a normal line.
 */
const lineShapes = (): Record<string, string> => {
  const now = clientTime
  const big = 8000
  let noise = ""
  for (let i = 0; noise.length < big; i++) {
    const code = (Math.imul(i, 2654435761) >>> 24) & 0xff
    if (code !== 10) noise += String.fromCharCode(code)
  }
  return {
    "a normal IAMAT": `IAMAT p7300377af6-1-1 +34.068930-118.445127 ${now}.499130739`,
    "IAMAT, time of 8,000 nines (refused: ahead)": `IAMAT huge +10.000000+010.000000 ${"9".repeat(big)}`,
    "IAMAT, 8,000 leading zeros in the time": `IAMAT zeros +10.000000+010.000000 ${"0".repeat(big)}${now}.5`,
    "IAMAT, 8,000-byte location": `IAMAT where +${"0".repeat(big)}10.5-010.5 ${now}.5`,
    "IAMAT, 8,000-byte client id (refused)": `IAMAT ${"c".repeat(big)} +1+1 ${now}`,
    "AT flood, time of 8,000 nines (dropped)": `AT Bolden +0.000000000 huge +1+1 ${"9".repeat(big)}`,
    "WHATSAT, 8,000-digit radius (refused)": `WHATSAT x ${"0".repeat(big)}1 5`,
    "8,000 spaces and a word": `${" ".repeat(big)}x`,
    "4,000 tab-separated fields": "a\t".repeat(big / 2),
    "8,000 random bytes": noise
  }
}

/** ns a byte of each shape, fed to a connection in reads of many lines, fastest of `passes`. */
const measureShapes = (passes: number): Array<{ shape: string; bytes: number; nsPerByte: number }> => {
  const feed = connectionHandler("in full")
  return Object.entries(lineShapes()).map(([shape, line]) => {
    const read = Buffer.from((line + "\n").repeat(Math.max(1, Math.floor(65536 / (line.length + 1)))), "latin1")
    const reads = Math.max(1, Math.floor(4_000_000 / read.length))
    let fastest = Infinity
    for (let pass = 0; pass < passes; pass++) {
      const start = process.hrtime.bigint()
      for (let i = 0; i < reads; i++) feed(read)
      fastest = Math.min(fastest, Number(process.hrtime.bigint() - start) / (reads * read.length))
    }
    return { shape, bytes: line.length, nsPerByte: fastest }
  })
}

// Main ----------------------------------------------------------------------

const { values } = parseArgs({
  options: {
    passes: { type: "string", default: "20" },
    rounds: { type: "string", default: "2" },
    variant: { type: "string" },
    shapes: { type: "boolean", default: false }
  }
})
const passes = Number(values.passes)
const rounds = Number(values.rounds)
if (!Number.isInteger(passes) || passes < 1) throw new Error(`--passes: expected a positive integer, got ${values.passes}`)
if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds: expected a positive integer, got ${values.rounds}`)

if (values.shapes) {
  const results = measureShapes(passes)
  const normal = results[0]?.nsPerByte ?? NaN
  console.log(`${"line shape".padEnd(46)}${"bytes".padStart(7)}${"ns a byte".padStart(11)}${"vs normal".padStart(11)}`)
  for (const { bytes, nsPerByte, shape } of results) {
    console.log(
      `${shape.padEnd(46)}${String(bytes).padStart(7)}${nsPerByte.toFixed(2).padStart(11)}${
        `${(nsPerByte / normal).toFixed(2)}×`.padStart(11)
      }`
    )
  }
} else if (values.variant !== undefined) {
  if (!(values.variant in variants)) throw new Error(`--variant: unknown variant ${values.variant}`)
  console.log(JSON.stringify(await measure(values.variant as Variant, passes)))
} else {
  const script = fileURLToPath(import.meta.url)
  const results = new Map<Variant, Array<{ fastest: number; quartile: number }>>()
  for (let round = 1; round <= rounds; round++) {
    for (const variant of Object.keys(variants) as Array<Variant>) {
      console.error(`hotpath: round ${round} of ${rounds}: ${variant}`)
      const output = execFileSync(
        process.execPath,
        [...process.execArgv, script, "--variant", variant, "--passes", String(passes)],
        { encoding: "utf8" }
      )
      results.set(variant, [...(results.get(variant) ?? []), JSON.parse(output)])
    }
  }
  const range = (figures: Array<number>) => {
    const low = Math.round(Math.min(...figures)), high = Math.round(Math.max(...figures))
    return low === high ? `${low}` : `${low}-${high}`
  }
  console.log(`\nns a line, ${READS * LINES_PER_READ} lines a pass, ${passes} passes a process, ${rounds} processes a variant`)
  console.log(`${"variant".padEnd(44)}${"fastest pass".padStart(14)}${"quartile".padStart(14)}`)
  for (const [variant, figures] of results) {
    console.log(
      `${variant.padEnd(44)}${range(figures.map((f) => f.fastest)).padStart(14)}${
        range(figures.map((f) => f.quartile)).padStart(14)
      }`
    )
  }
}
