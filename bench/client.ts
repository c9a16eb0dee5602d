/**
 * The bench's load client: closed-loop, pipelined IAMAT or WHATSAT load over
 * plain `node:net` sockets, driven from a few worker threads (the design of
 * `shared/tools/loadgen`, in TypeScript).
 *
 * Each worker drives its share of the connections. A connection keeps up to
 * `depth` requests in flight: whatever it may send goes out in one write, and
 * each read is answered with new requests (with depth 1, a strict ping-pong).
 * Replies come in request order, so a FIFO of send times per connection gives
 * each request's latency, from just before the write that carried it to the
 * read that completed its reply. Every reply is checked; failures are counted
 * by kind, with a few examples.
 *
 * The main thread only coordinates: every worker connects (and, for WHATSAT,
 * reports a location for each id it will ask about), then all start together;
 * the first `warmupMs` are not counted, then replies received during the next
 * `durationMs` are. Requests sent in the window are timed even if they
 * complete after it. The client's own CPU use is measured over the run.
 */
import { createConnection } from "node:net"
import type { Socket } from "node:net"
import { Worker, isMainThread, parentPort } from "node:worker_threads"

export type Mode = "iamat" | "whatsat"

export interface Target {
  readonly host: string
  readonly port: number
}

export interface LoadOptions {
  readonly mode: Mode
  readonly target: Target
  readonly conns: number
  readonly depth: number
  readonly warmupMs: number
  /** Length of the measured window; a run limited by `requests` may end sooner. */
  readonly durationMs: number
  /** Size of the client-id pool, split over the connections (default 10,000 for IAMAT, 1,000 for WHATSAT). */
  readonly ids?: number
  /** A fresh client id for every IAMAT (the server's store grows by one per request). */
  readonly unique?: boolean
  /** Stop after this many requests in all (0: no limit). */
  readonly requests?: number
  /** Without a reply for this long, a connection counts as stuck. */
  readonly timeoutMs?: number
  readonly radius?: string
  readonly bound?: string
  /** The reply's skew plus the client's time must land within this of the client's clock (0: no check). */
  readonly skewToleranceMs?: number
}

export interface Latency {
  readonly n: number
  readonly p50Us: number
  readonly p90Us: number
  readonly p99Us: number
  readonly maxUs: number
  readonly meanUs: number
}

export interface LoadResult {
  readonly mode: Mode
  readonly conns: number
  readonly connected: number
  readonly depth: number
  readonly windowS: number
  readonly inWindow: number
  readonly completed: number
  readonly ok: number
  readonly rps: number
  readonly latency: Latency
  readonly errors: { readonly total: number; readonly byKind: Record<string, number>; readonly examples: Array<string> }
  /** CPU seconds (user + system) of this whole process during the run: the client threads, as the main thread waits. */
  readonly clientCpuS: number
  readonly elapsedS: number
  readonly clientCores: number
  readonly clientUsPerRequest: number
}

// ---------------------------------------------------------------------------
// Histogram (as loadgen's hist.rs): nanoseconds, exact below 256, then 128
// buckets per power of two (under 0.8% error), fixed memory, mergeable.

const LINEAR = 256
const SUB = 128
const BUCKETS = LINEAR + 56 * SUB

const highestBit = (v: number): number => {
  if (v < 2 ** 32) return 31 - Math.clz32(v)
  let e = Math.floor(Math.log2(v))
  if (2 ** e > v) e--
  else if (2 ** (e + 1) <= v) e++
  return e
}

const bucketIndex = (ns: number): number => {
  if (ns < LINEAR) return ns
  const shift = highestBit(ns) - 7
  const top = Math.floor(ns / 2 ** shift) // 128..255
  return Math.min(BUCKETS - 1, LINEAR + (shift - 1) * SUB + (top - SUB))
}

const bucketMiddle = (i: number): number => {
  if (i < LINEAR) return i
  const j = i - LINEAR
  const shift = Math.floor(j / SUB) + 1
  const top = (j % SUB) + SUB
  return top * 2 ** shift + 2 ** shift / 2
}

interface Histogram {
  counts: Float64Array
  total: number
  sum: number
  min: number
  max: number
}

const emptyHistogram = (): Histogram => ({ counts: new Float64Array(BUCKETS), total: 0, sum: 0, min: Infinity, max: 0 })

const record = (h: Histogram, ns: number): void => {
  const v = Math.max(0, Math.round(ns))
  const i = bucketIndex(v)
  h.counts[i] = (h.counts[i] ?? 0) + 1
  h.total++
  h.sum += v
  if (v < h.min) h.min = v
  if (v > h.max) h.max = v
}

const merge = (into: Histogram, from: Histogram): void => {
  for (let i = 0; i < BUCKETS; i++) into.counts[i] = (into.counts[i] ?? 0) + (from.counts[i] ?? 0)
  into.total += from.total
  into.sum += from.sum
  into.min = Math.min(into.min, from.min)
  into.max = Math.max(into.max, from.max)
}

const percentileNs = (h: Histogram, q: number): number => {
  if (h.total === 0) return 0
  const rank = Math.max(1, Math.ceil(q * h.total))
  let seen = 0
  for (let i = 0; i < BUCKETS; i++) {
    seen += h.counts[i] ?? 0
    if (seen >= rank) return Math.min(h.max, Math.max(h.min, bucketMiddle(i)))
  }
  return h.max
}

const summarize = (h: Histogram): Latency => ({
  n: h.total,
  p50Us: percentileNs(h, 0.5) / 1000,
  p90Us: percentileNs(h, 0.9) / 1000,
  p99Us: percentileNs(h, 0.99) / 1000,
  maxUs: h.max / 1000,
  meanUs: h.total === 0 ? 0 : h.sum / h.total / 1000
})

// ---------------------------------------------------------------------------
// Errors by kind, with up to three examples of each.

class Errors {
  readonly byKind: Record<string, number> = {}
  readonly examples: Array<string> = []
  total = 0

  add(kind: string, example: string, count = 1): void {
    const seen = this.byKind[kind] ?? 0
    this.byKind[kind] = seen + count
    this.total += count
    if (seen < 3) this.examples.push(`${kind}: ${JSON.stringify(example.slice(0, 160))}`)
  }

  mergeFrom(other: { byKind: Record<string, number>; examples: Array<string> }): void {
    for (const [kind, count] of Object.entries(other.byKind)) {
      this.byKind[kind] = (this.byKind[kind] ?? 0) + count
      this.total += count
    }
    for (const example of other.examples) if (this.examples.length < 20) this.examples.push(example)
  }
}

// ---------------------------------------------------------------------------
// Requests and their checks.

/** The wall clock in milliseconds (with a fraction), the same in every thread. */
const wallMs = (): number => performance.timeOrigin + performance.now()

/** A POSIX time with nine decimals, from the wall clock: reused ids always get newer records. */
const clientTime = (ms: number): string => {
  const seconds = Math.floor(ms / 1000)
  const nanos = Math.min(999_999_999, Math.floor((ms - seconds * 1000) * 1e6))
  return `${seconds}.${String(nanos).padStart(9, "0")}`
}

const coordinate = (micro: number, intDigits: number): string => {
  const sign = micro < 0 ? "-" : "+"
  const abs = Math.abs(micro)
  return `${sign}${String(Math.floor(abs / 1e6)).padStart(intDigits, "0")}.${String(abs % 1e6).padStart(6, "0")}`
}

/** A location spread over the globe, fixed for (connection, seq). */
const location = (conn: number, seq: number): string => {
  let h = Math.imul(seq ^ Math.imul(conn + 1, 0x9e3779b1), 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  const g = Math.imul(h ^ 0x27d4eb2f, 0x165667b1) >>> 0
  const lat = ((h >>> 0) % 179_000_000) - 89_500_000
  const lon = (g % 359_000_000) - 179_500_000
  return coordinate(lat, 2) + coordinate(lon, 3)
}

const PLUS = 43
const MINUS = 45
const DOT = 46
const ZERO = 48
const NINE = 57

/**
 * The skew `[+-]\d+\.\d{9}` in data[start, end), in seconds, or NaN when
 * malformed (checked on char codes: no substring per reply).
 */
const skewSeconds = (data: string, start: number, end: number): number => {
  const sign = data.charCodeAt(start)
  if ((sign !== PLUS && sign !== MINUS) || end - start < 12 || data.charCodeAt(end - 10) !== DOT) return NaN
  let whole = 0
  for (let i = start + 1; i < end - 10; i++) {
    const c = data.charCodeAt(i)
    if (c < ZERO || c > NINE) return NaN
    whole = whole * 10 + (c - ZERO)
  }
  let fraction = 0
  for (let i = end - 9; i < end; i++) {
    const c = data.charCodeAt(i)
    if (c < ZERO || c > NINE) return NaN
    fraction = fraction * 10 + (c - ZERO)
  }
  const seconds = whole + fraction / 1e9
  return sign === MINUS ? -seconds : seconds
}

/**
 * An IAMAT reply in data[start, end): `AT <name> <skew> <id> <location>
 * <time>`, the client's fields echoed byte for byte, the skew with a sign and
 * nine decimals, and client time + skew within the tolerance of this clock
 * between send and reply.
 */
const checkAt = (
  data: string,
  start: number,
  end: number,
  expect: string,
  clientMs: number,
  sentWallMs: number,
  nowWallMs: number,
  toleranceMs: number
): string | undefined => {
  if (data.startsWith("? ", start)) return "rejected"
  if (!data.startsWith("AT ", start)) return "not-at"
  const nameEnd = data.indexOf(" ", start + 3)
  const skewEnd = nameEnd < 0 || nameEnd >= end ? -1 : data.indexOf(" ", nameEnd + 1)
  if (nameEnd === start + 3 || skewEnd < 0 || skewEnd >= end) return "malformed-at"
  const skew = skewSeconds(data, nameEnd + 1, skewEnd)
  if (Number.isNaN(skew)) return "bad-skew-format"
  if (end - skewEnd - 1 !== expect.length || !data.startsWith(expect, skewEnd + 1)) return "echo-mismatch"
  if (toleranceMs > 0) {
    const serverMs = clientMs + skew * 1000
    if (serverMs < sentWallMs - toleranceMs || serverMs > nowWallMs + toleranceMs) return "skew-implausible"
  }
  return undefined
}

/**
 * A WHATSAT reply: the AT line for the asked client in data[start, headEnd),
 * then a body in data[headEnd + 1, blank) from a first line starting with `{`
 * to a last line `}` (then LF and the empty line).
 */
const checkWhatsat = (data: string, start: number, headEnd: number, blank: number, id: string): string | undefined => {
  if (!data.startsWith("AT ", start)) return "not-at"
  const spaces: Array<number> = []
  for (let i = data.indexOf(" ", start); i >= 0 && i < headEnd; i = data.indexOf(" ", i + 1)) spaces.push(i)
  const [, nameEnd = 0, skewEnd = 0, idEnd = 0] = spaces
  if (spaces.length !== 5 || Number.isNaN(skewSeconds(data, nameEnd + 1, skewEnd))) return "malformed-at"
  if (idEnd - skewEnd - 1 !== id.length || !data.startsWith(id, skewEnd + 1)) return "wrong-client"
  const lastLine = data.lastIndexOf("\n", blank - 1) + 1
  if (blank <= headEnd || data.charCodeAt(headEnd + 1) !== 123 || blank - lastLine !== 1 || data.charCodeAt(lastLine) !== 125) {
    return "body-not-json-object"
  }
  return undefined
}

const lineAt = (data: string, start: number): string => {
  const nl = data.indexOf("\n", start)
  return data.slice(start, nl < 0 ? data.length : nl)
}

// ---------------------------------------------------------------------------
// The worker: its connections and their event handlers.

interface Job {
  readonly options: LoadOptions
  readonly connIndices: ReadonlyArray<number>
  readonly nonce: string
  /** Requests issued by all workers, for `requests`. */
  readonly issued: SharedArrayBuffer
}

interface WorkerResult {
  readonly connected: number
  readonly inWindow: number
  readonly completed: number
  readonly ok: number
  /** Wall-clock ms of the last reply, or 0. */
  readonly lastReplyWallMs: number
  readonly histogram: Histogram
  readonly errors: { byKind: Record<string, number>; examples: Array<string> }
}

type ToWorker =
  | { readonly type: "run"; readonly job: Job }
  | { readonly type: "go"; readonly warmEndWallMs: number; readonly endWallMs: number }
type FromWorker =
  | { readonly type: "ready" }
  | { readonly type: "result"; readonly result: WorkerResult }

class Connection {
  rest = ""
  /** The in-flight FIFO: send time, what the reply must echo, client time, as a ring of `depth` slots. */
  readonly sentAt: Float64Array
  readonly sentWall: Float64Array
  readonly clientMs: Float64Array
  readonly expect: Array<string>
  readonly prefixes: Array<string> = []
  head = 0
  count = 0
  seq = 0
  stopping = false
  done = false
  lastProgress = 0

  constructor(readonly index: number, readonly socket: Socket, readonly depth: number) {
    this.sentAt = new Float64Array(depth)
    this.sentWall = new Float64Array(depth)
    this.clientMs = new Float64Array(depth)
    this.expect = new Array<string>(depth).fill("")
  }
}

const connect = (target: Target): Promise<Socket> =>
  new Promise((resolve, reject) => {
    const socket = createConnection({ host: target.host, port: target.port })
    socket.once("connect", () => {
      socket.off("error", reject)
      socket.setNoDelay(true)
      socket.setEncoding("latin1")
      resolve(socket)
    })
    socket.once("error", reject)
  })

const runJob = async (job: Job, post: (message: FromWorker) => void, go: Promise<{ warmEndWallMs: number; endWallMs: number }>): Promise<void> => {
  const { options } = job
  const iamat = options.mode === "iamat"
  const depth = options.depth
  const idsPerConn = Math.max(1, Math.ceil((options.ids ?? (iamat ? 10_000 : 1_000)) / options.conns))
  const unique = options.unique === true
  const limit = options.requests ?? 0
  const timeoutMs = options.timeoutMs ?? 5000
  const toleranceMs = options.skewToleranceMs ?? 2000
  const whatsatTail = ` ${options.radius ?? "10"} ${options.bound ?? "5"}\n`
  const issued = new Int32Array(job.issued)
  const errors = new Errors()
  const histogram = emptyHistogram()
  let inWindow = 0
  let completed = 0
  let ok = 0
  let lastReply = 0

  const clientId = (c: number, seq: number): string =>
    `${unique ? "u" : "p"}${job.nonce}-${c}-${unique ? seq : seq % idsPerConn}`
  /** The fixed part of a request for id `k` of the pool ("id loc" for IAMAT, the id for WHATSAT), built once. */
  const prefix = (conn: Connection, k: number): string =>
    conn.prefixes[k] ??= iamat ? `${clientId(conn.index, k)} ${location(conn.index, k)}` : clientId(conn.index, k)

  // Connect; for WHATSAT, first report a location for every id this connection will ask about.
  const connections: Array<Connection> = []
  await Promise.all(job.connIndices.map(async (c) => {
    let socket: Socket
    try {
      socket = await connect(options.target)
    } catch (error) {
      errors.add("connect", String(error))
      return
    }
    if (!iamat) {
      const sentWall = wallMs()
      const time = clientTime(sentWall)
      const expected: Array<string> = []
      let lines = ""
      for (let k = 0; k < idsPerConn; k++) {
        const fields = `${clientId(c, k)} ${location(c, k)} ${time}`
        expected.push(fields)
        lines += `IAMAT ${fields}\n`
      }
      const setupOk = await new Promise<boolean>((resolve) => {
        let rest = ""
        let next = 0
        const onData = (chunk: string): void => {
          const data = rest + chunk
          let pos = 0
          for (let nl = data.indexOf("\n"); nl >= 0 && next < expected.length; nl = data.indexOf("\n", pos)) {
            const kind = checkAt(data, pos, nl, expected[next++] ?? "", sentWall, sentWall, wallMs(), toleranceMs)
            if (kind !== undefined) errors.add(`setup-${kind}`, data.slice(pos, nl))
            pos = nl + 1
          }
          rest = data.slice(pos)
          if (next === expected.length) finish(true)
        }
        const onEnd = (): void => {
          errors.add("setup-closed", `closed after ${next} of ${expected.length} setup replies`)
          finish(false)
        }
        const finish = (result: boolean): void => {
          socket.off("data", onData)
          socket.off("close", onEnd)
          socket.off("error", onEnd)
          resolve(result)
        }
        socket.on("data", onData)
        socket.on("close", onEnd)
        socket.on("error", onEnd)
        socket.write(lines, "latin1")
      })
      if (!setupOk) {
        socket.destroy()
        return
      }
    }
    connections.push(new Connection(c, socket, depth))
  }))

  post({ type: "ready" })
  const clock = await go
  // Window bounds on this thread's performance.now() scale.
  const warmEnd = clock.warmEndWallMs - performance.timeOrigin
  const end = clock.endWallMs - performance.timeOrigin

  /** Top up to `depth` requests in flight, all in one write. */
  const topUp = (conn: Connection): void => {
    if (conn.stopping || conn.done || conn.count >= depth) return
    const wall = wallMs()
    const time = iamat ? clientTime(wall) : ""
    const clientMs = wall
    let out = ""
    const first = conn.count
    while (conn.count < depth) {
      if (limit > 0 && Atomics.add(issued, 0, 1) >= limit) {
        conn.stopping = true
        break
      }
      const slot = (conn.head + conn.count) % depth
      const seq = conn.seq++
      if (iamat) {
        const fields = `${unique ? `${clientId(conn.index, seq)} ${location(conn.index, seq)}` : prefix(conn, seq % idsPerConn)} ${time}`
        conn.expect[slot] = fields
        out += `IAMAT ${fields}\n`
      } else {
        const id = prefix(conn, seq % idsPerConn)
        conn.expect[slot] = id
        out += `WHATSAT ${id}${whatsatTail}`
      }
      conn.clientMs[slot] = clientMs
      conn.count++
    }
    if (out === "") return
    const sent = performance.now()
    for (let k = first; k < conn.count; k++) {
      const slot = (conn.head + k) % depth
      conn.sentAt[slot] = sent
      conn.sentWall[slot] = wall
    }
    conn.socket.write(out, "latin1")
  }

  /**
   * Account for one complete reply: data[start, headEnd) is its first line;
   * for a WHATSAT answer, data[headEnd + 1, blank) is its body, followed by
   * the LF that ends it and the empty line (`blank` is -1 for a one-line reply).
   */
  const complete = (conn: Connection, now: number, nowWall: number, data: string, start: number, headEnd: number, blank: number): void => {
    if (conn.count === 0) {
      errors.add("unsolicited-reply", lineAt(data, start))
      return
    }
    const slot = conn.head
    conn.head = (conn.head + 1) % depth
    conn.count--
    const expect = conn.expect[slot] ?? ""
    const problem = iamat
      ? checkAt(data, start, headEnd, expect, conn.clientMs[slot] ?? 0, conn.sentWall[slot] ?? 0, nowWall, toleranceMs)
      : blank < 0
      ? "rejected"
      : checkWhatsat(data, start, headEnd, blank, expect)
    if (problem === undefined) ok++
    else errors.add(problem, lineAt(data, start))
    completed++
    lastReply = now
    const sentAt = conn.sentAt[slot] ?? 0
    if (sentAt >= warmEnd) record(histogram, (now - sentAt) * 1e6)
    if (now >= warmEnd && now <= end) inWindow++
  }

  let finished = false
  let resolveDone = (): void => {}
  const allDone = new Promise<void>((resolve) => {
    resolveDone = resolve
  })
  const finishConnection = (conn: Connection): void => {
    if (conn.done) return
    conn.done = true
    if (conn.count > 0) errors.add("lost-in-flight", `${conn.count} requests`, conn.count)
    conn.socket.destroy()
    if (!finished && connections.every((c) => c.done)) {
      finished = true
      resolveDone()
    }
  }

  const onData = (conn: Connection, chunk: string): void => {
    const now = performance.now()
    const nowWall = iamat ? wallMs() : 0
    conn.lastProgress = now
    const data = conn.rest === "" ? chunk : conn.rest + chunk
    let pos = 0
    while (pos < data.length) {
      const nl = data.indexOf("\n", pos)
      if (nl < 0) break
      if (iamat || data.startsWith("? ", pos)) {
        complete(conn, now, nowWall, data, pos, nl, -1)
        pos = nl + 1
      } else {
        // The body runs to the first empty line (an AT line straight followed by one: no body).
        const blank = data.indexOf("\n\n", nl)
        if (blank < 0) break
        complete(conn, now, nowWall, data, pos, nl, blank)
        pos = blank + 2
      }
    }
    conn.rest = pos === 0 ? data : data.slice(pos)
    if (now >= end) conn.stopping = true
    if (conn.stopping && conn.count === 0) finishConnection(conn)
    else topUp(conn)
  }

  const started = performance.now()
  for (const conn of connections) {
    conn.lastProgress = started
    conn.socket.on("data", (chunk: string) => onData(conn, chunk))
    conn.socket.on("error", (error) => {
      if (!conn.done) errors.add("io-error", String(error))
      finishConnection(conn)
    })
    conn.socket.on("close", () => {
      if (!conn.done) errors.add("closed-by-server", `after ${completed} replies`)
      finishConnection(conn)
    })
    topUp(conn)
  }
  if (connections.length === 0) {
    finished = true
    resolveDone()
  }

  // The clock: stop at the end of the window, and catch connections that got stuck.
  const ticker = setInterval(() => {
    const now = performance.now()
    for (const conn of connections) {
      if (conn.done) continue
      if (now >= end) conn.stopping = true
      if (conn.stopping && conn.count === 0) finishConnection(conn)
      else if (conn.count > 0 && now - conn.lastProgress > timeoutMs) {
        errors.add("timeout", `no reply within ${timeoutMs} ms`)
        finishConnection(conn)
      }
    }
  }, 20)
  await allDone
  clearInterval(ticker)

  post({
    type: "result",
    result: {
      connected: connections.length,
      inWindow,
      completed,
      ok,
      lastReplyWallMs: lastReply === 0 ? 0 : lastReply + performance.timeOrigin,
      histogram,
      errors: { byKind: errors.byKind, examples: errors.examples }
    }
  })
}

if (!isMainThread && parentPort !== null) {
  const port = parentPort
  let release: ((clock: { warmEndWallMs: number; endWallMs: number }) => void) | undefined
  port.on("message", (message: ToWorker) => {
    if (message.type === "run") {
      const go = new Promise<{ warmEndWallMs: number; endWallMs: number }>((resolve) => {
        release = resolve
      })
      // A failure rejects this promise unhandled, which ends the worker with an "error" event.
      void runJob(message.job, (m) => port.postMessage(m), go)
    } else {
      release?.({ warmEndWallMs: message.warmEndWallMs, endWallMs: message.endWallMs })
    }
  })
}

// ---------------------------------------------------------------------------
// The main thread: a pool of workers, one run at a time.

/** Waits for the next message of a given type from a worker (or its failure). */
const nextMessage = <T extends FromWorker["type"]>(worker: Worker, type: T): Promise<Extract<FromWorker, { type: T }>> =>
  new Promise((resolve, reject) => {
    const onMessage = (message: FromWorker): void => {
      if (message.type !== type) return
      cleanup()
      resolve(message as Extract<FromWorker, { type: T }>)
    }
    const onError = (error: Error): void => {
      cleanup()
      reject(error)
    }
    const onExit = (code: number): void => {
      cleanup()
      reject(new Error(`load client worker exited with code ${code}`))
    }
    const cleanup = (): void => {
      worker.off("message", onMessage)
      worker.off("error", onError)
      worker.off("exit", onExit)
    }
    worker.on("message", onMessage)
    worker.on("error", onError)
    worker.on("exit", onExit)
  })

export class LoadClient {
  private constructor(private readonly workers: ReadonlyArray<Worker>) {}

  /**
   * Start `threads` workers running this file. Under `node --import tsx`, a
   * worker does not inherit the TypeScript loader, so each one registers it
   * before importing this module.
   */
  static start(threads: number): LoadClient {
    const self = JSON.stringify(import.meta.url)
    const tsx = JSON.stringify(import.meta.resolve("tsx/esm/api"))
    const source = `import(${tsx}).then((tsx) => { tsx.register(); return import(${self}) })`
    return new LoadClient(Array.from({ length: threads }, () => new Worker(source, { eval: true })))
  }

  async run(options: LoadOptions): Promise<LoadResult> {
    const threads = Math.max(1, Math.min(this.workers.length, options.conns))
    const active = this.workers.slice(0, threads)
    const nonce = Math.random().toString(36).slice(2, 10)
    const issued = new SharedArrayBuffer(4)
    const results = active.map((worker) => nextMessage(worker, "result"))
    const ready = active.map((worker) => nextMessage(worker, "ready"))
    // Guard against unhandled rejections while we wait on `ready` first.
    for (const pending of results) pending.catch(() => {})
    active.forEach((worker, t) => {
      const connIndices: Array<number> = []
      for (let c = t; c < options.conns; c += threads) connIndices.push(c)
      worker.postMessage({ type: "run", job: { options, connIndices, nonce, issued } } satisfies ToWorker)
    })
    await Promise.all(ready)

    const cpuBefore = process.cpuUsage()
    const start = wallMs()
    const warmEndWallMs = start + options.warmupMs
    const endWallMs = warmEndWallMs + options.durationMs
    for (const worker of active) worker.postMessage({ type: "go", warmEndWallMs, endWallMs } satisfies ToWorker)
    const parts = (await Promise.all(results)).map((message) => message.result)
    const cpu = process.cpuUsage(cpuBefore)
    const elapsedS = (wallMs() - start) / 1000

    const histogram = emptyHistogram()
    const errors = new Errors()
    let connected = 0
    let inWindow = 0
    let completed = 0
    let ok = 0
    let lastReply = 0
    for (const part of parts) {
      merge(histogram, part.histogram)
      errors.mergeFrom(part.errors)
      connected += part.connected
      inWindow += part.inWindow
      completed += part.completed
      ok += part.ok
      lastReply = Math.max(lastReply, part.lastReplyWallMs)
    }
    // The window ends at its deadline, or earlier when `requests` ran out.
    const windowEnd = lastReply > 0 && lastReply < endWallMs ? lastReply : endWallMs
    const windowS = Math.max(0, (windowEnd - warmEndWallMs) / 1000)
    const clientCpuS = (cpu.user + cpu.system) / 1e6
    return {
      mode: options.mode,
      conns: options.conns,
      connected,
      depth: options.depth,
      windowS,
      inWindow,
      completed,
      ok,
      rps: windowS > 0 ? inWindow / windowS : 0,
      latency: summarize(histogram),
      errors: { total: errors.total, byKind: errors.byKind, examples: errors.examples },
      clientCpuS,
      elapsedS,
      clientCores: elapsedS > 0 ? clientCpuS / elapsedS : 0,
      clientUsPerRequest: completed > 0 ? (clientCpuS * 1e6) / completed : 0
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((worker) => worker.terminate()))
  }
}
