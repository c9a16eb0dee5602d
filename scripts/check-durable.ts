/**
 * The herd-level checks of issue 16 (the durable store), on real processes:
 *
 *   node --conditions=@herd/source --import tsx scripts/check-durable.ts [--clients 10000]
 *
 * 1. Five `herd serve` processes of the default herd's shape (default store:
 *    durable, sync batch) on free loopback ports, with a temporary config,
 *    dataDir and logDir. 10,000 clients report (2,000 at each server); once
 *    every server answers WHATSAT for all of them, one commit interval later,
 *    `kill -9` of all five; restarted, every server must answer WHATSAT for
 *    all 10,000 with the same AT line as before (and as every other server).
 * 2. One `herd serve` with `store.sync: "always"`: connections pipeline
 *    IAMATs of fresh clients; `kill -9` in the middle of the burst;
 *    restarted, every IAMAT that got its AT reply must be answered by
 *    WHATSAT with that AT line.
 *
 * Prints what it measured; exits 1 on any failure. Every process it starts is
 * killed and the temporary folder removed, whatever happens.
 */
import { spawn } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { createConnection, createServer } from "node:net"
import type { AddressInfo, Socket } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("..", import.meta.url))
const herdBin = join(root, "packages/cli/bin/herd.mjs")
const names = ["Alford", "Bolden", "Hamilton", "Parker", "Welsh"] as const
const links = [["Alford", "Parker"], ["Alford", "Welsh"], ["Bolden", "Parker"], ["Bolden", "Welsh"], ["Hamilton", "Parker"]]
/** The durable store's commit interval with `sync: "batch"` when the writer is idle (packages/store). */
const commitIntervalMs = 5

const argClients = process.argv.indexOf("--clients")
const clientCount = argClients === -1 ? 10_000 : Number(process.argv[argClients + 1])

const tmp = mkdtempSync(join(tmpdir(), "herd-check-durable-"))
const processes = new Set<ChildProcess>()
const failures: Array<string> = []
const started = performance.now()
const say = (message: string): void => {
  console.log(`[${((performance.now() - started) / 1000).toFixed(1)} s] ${message}`)
}
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

interface Target {
  readonly host: string
  readonly port: number
}

const freePorts = async (count: number): Promise<Array<number>> => {
  const servers = Array.from({ length: count }, () => createServer())
  const ports = await Promise.all(servers.map((server) =>
    new Promise<number>((resolve, reject) => {
      server.once("error", reject)
      server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port))
    })
  ))
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))))
  return ports
}

/** Starts `herd serve name` on `configPath`; resolves once it listens. */
const serve = async (name: string, configPath: string): Promise<ChildProcess> => {
  const env = { ...process.env }
  delete env["HERD_PLACES_API_KEY"]
  delete env["HERD_PLACES_PROVIDER"]
  const child = spawn(process.execPath, [herdBin, "serve", name, "--config", configPath], {
    cwd: root,
    env,
    stdio: ["ignore", "pipe", "pipe"]
  })
  processes.add(child)
  child.once("exit", () => processes.delete(child))
  let out = ""
  let err = ""
  child.stderr?.on("data", (chunk: Buffer) => (err = (err + chunk.toString()).slice(-2000)))
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not listen within 60 s: ${err}`)), 60_000)
    child.stdout?.on("data", (chunk: Buffer) => {
      out += chunk.toString()
      if (new RegExp(`^${name} listening on `, "m").test(out)) {
        clearTimeout(timer)
        resolve()
      }
    })
    child.once("exit", (code, signal) => {
      clearTimeout(timer)
      reject(new Error(`${name} exited (${code ?? signal}) before listening: ${err}`))
    })
  })
  return child
}

const killHard = async (child: ChildProcess): Promise<void> => {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise((resolve) => child.once("exit", resolve))
  child.kill("SIGKILL")
  await exited
}

/**
 * One connection that pipelines `requests` and resolves with their replies in
 * order: an IAMAT's AT line, a WHATSAT's first line (its AT line, or `? ...`).
 */
const pipeline = (target: Target, requests: ReadonlyArray<string>, timeoutMs = 60_000): Promise<Array<string>> =>
  requests.length === 0 ? Promise.resolve([]) : new Promise((resolve, reject) => {
    const socket = createConnection(target)
    const replies: Array<string> = []
    let buffer = ""
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`${replies.length} of ${requests.length} replies within ${timeoutMs} ms from ${target.port}`))
    }, timeoutMs)
    socket.setEncoding("latin1")
    socket.on("connect", () => {
      socket.write(requests.map((request) => `${request}\n`).join(""), "latin1")
    })
    socket.on("data", (chunk: string) => {
      buffer += chunk
      for (;;) {
        const request = requests[replies.length]
        if (request === undefined) break
        const nl = buffer.indexOf("\n")
        if (nl === -1) break
        const first = buffer.slice(0, nl)
        if (request.startsWith("WHATSAT ") && first.startsWith("AT ")) {
          // The AT line, the Places JSON, then an empty line.
          const end = buffer.indexOf("\n\n", nl)
          if (end === -1) break
          buffer = buffer.slice(end + 2)
        } else {
          buffer = buffer.slice(nl + 1)
        }
        replies.push(first)
      }
      if (replies.length === requests.length) {
        clearTimeout(timer)
        socket.destroy()
        resolve(replies)
      }
    })
    socket.on("error", (error) => {
      clearTimeout(timer)
      reject(error)
    })
  })

const clientTime = (): string => {
  const ms = performance.timeOrigin + performance.now()
  const seconds = Math.floor(ms / 1000)
  return `${seconds}.${String(Math.floor((ms - seconds * 1000) * 1e6)).padStart(9, "0")}`
}

const nonce = Math.random().toString(36).slice(2, 8)

/** Every server's AT line for every client, by WHATSAT (first line of each reply). */
const answersOf = async (targets: ReadonlyMap<string, Target>, clients: ReadonlyArray<string>) => {
  const requests = clients.map((client) => `WHATSAT ${client} 1 1`)
  return new Map(await Promise.all([...targets].map(async ([name, target]) => [name, await pipeline(target, requests)] as const)))
}

const checkAllFive = async (): Promise<void> => {
  const dir = join(tmp, "five")
  mkdirSync(dir, { recursive: true })
  const ports = await freePorts(names.length)
  const targets = new Map(names.map((name, i) => [name, { host: "127.0.0.1", port: ports[i] ?? 0 }]))
  const config = {
    servers: Object.fromEntries([...targets].map(([name, target]) => [name, target])),
    links,
    places: { provider: "offline" },
    logDir: join(dir, "logs"),
    dataDir: join(dir, "data")
  }
  const configPath = join(dir, "herd.config.json")
  writeFileSync(configPath, JSON.stringify(config))
  say(`five herd serve processes (default store: durable, sync batch), data in ${config.dataDir}`)
  let servers = await Promise.all(names.map((name) => serve(name, configPath)))

  const clients = Array.from({ length: clientCount }, (_, i) => `check-${nonce}-${i}.example`)
  const reported = new Map<string, string>()
  await Promise.all(names.map(async (name, s) => {
    const target = targets.get(name)
    if (target === undefined) return
    const mine = clients.filter((_, i) => i % names.length === s)
    const requests = mine.map((client, i) => `IAMAT ${client} +34.${String(i % 1_000_000).padStart(6, "0")}-118.445127 ${clientTime()}`)
    const replies = await pipeline(target, requests)
    replies.forEach((reply, i) => {
      const client = mine[i] ?? ""
      if (!reply.startsWith(`AT ${name} `)) failures.push(`IAMAT ${client} at ${name}: ${reply.slice(0, 100)}`)
      reported.set(client, reply)
    })
  }))
  say(`${reported.size} clients reported (${clientCount / names.length} at each server)`)

  // Flooding takes a moment: wait until every server knows every client.
  let before = await answersOf(targets, clients)
  for (let attempt = 0; attempt < 50; attempt++) {
    const unknown = [...before.values()].reduce((n, lines) => n + lines.filter((line) => !line.startsWith("AT ")).length, 0)
    if (unknown === 0) break
    await sleep(200)
    before = await answersOf(targets, clients)
  }
  let agreeing = 0
  clients.forEach((client, i) => {
    const lines = names.map((name) => before.get(name)?.[i])
    if (lines.every((line) => line === reported.get(client))) agreeing++
    else if (failures.length < 20) failures.push(`before the kill, ${client}: ${lines.join(" | ")}`)
  })
  say(`before: every server answers WHATSAT for ${agreeing} of ${clientCount} clients with the AT line its IAMAT got`)

  await sleep(commitIntervalMs)
  await Promise.all(servers.map(killHard))
  say(`kill -9 of all five, ${commitIntervalMs} ms after the last server answered`)
  const restartedAt = performance.now()
  servers = await Promise.all(names.map((name) => serve(name, configPath)))
  say(`restarted, all five listening in ${((performance.now() - restartedAt) / 1000).toFixed(2)} s`)
  const after = await answersOf(targets, clients)
  let same = 0
  clients.forEach((client, i) => {
    const lines = names.map((name) => after.get(name)?.[i])
    if (lines.every((line) => line === reported.get(client))) same++
    else if (failures.length < 20) failures.push(`after the restart, ${client}: ${lines.join(" | ")} (was ${reported.get(client)})`)
  })
  say(`after: every server answers WHATSAT for ${same} of ${clientCount} clients with the same AT line as before`)
  if (same !== clientCount) failures.push(`after kill -9 of all five: ${clientCount - same} clients lost or changed`)
  await Promise.all(servers.map(killHard))
}

const checkAlwaysBurst = async (): Promise<void> => {
  const dir = join(tmp, "always")
  mkdirSync(dir, { recursive: true })
  const [port = 0] = await freePorts(1)
  const target = { host: "127.0.0.1", port }
  const config = {
    servers: { Alford: target },
    links: [],
    places: { provider: "offline" },
    logDir: join(dir, "logs"),
    dataDir: join(dir, "data"),
    store: { kind: "durable", sync: "always" }
  }
  const configPath = join(dir, "herd.config.json")
  writeFileSync(configPath, JSON.stringify(config))
  say("one herd serve with store.sync always: 8 connections pipeline IAMATs of fresh clients")
  const server = await serve("Alford", configPath)
  const acknowledged = new Map<string, string>()
  const sockets: Array<Socket> = []
  let sent = 0
  const burst = Array.from({ length: 8 }, (_, c) =>
    new Promise<void>((resolve) => {
      const socket = createConnection(target)
      sockets.push(socket)
      socket.setEncoding("latin1")
      const inFlight: Array<string> = []
      let buffer = ""
      let seq = 0
      const send = (count: number): void => {
        const lines: Array<string> = []
        for (let k = 0; k < count; k++) {
          const client = `burst-${nonce}-${c}-${seq++}.example`
          inFlight.push(client)
          lines.push(`IAMAT ${client} +34.068930-118.445127 ${clientTime()}\n`)
        }
        sent += count
        socket.write(lines.join(""), "latin1")
      }
      socket.on("connect", () => send(32))
      socket.on("data", (chunk: string) => {
        buffer += chunk
        let nl: number
        let answered = 0
        while ((nl = buffer.indexOf("\n")) !== -1) {
          const reply = buffer.slice(0, nl)
          buffer = buffer.slice(nl + 1)
          const client = inFlight.shift()
          if (client !== undefined && reply.startsWith("AT ") && reply.includes(` ${client} `)) acknowledged.set(client, reply)
          answered++
        }
        if (answered > 0 && socket.writable) send(answered)
      })
      // The kill ends every connection: what was acknowledged by then is what counts.
      socket.on("close", () => resolve())
      socket.on("error", () => {})
    })
  )
  // Killed once the burst is well under way (a few thousand replies, or 10 s), at a random moment.
  for (let waited = 0; acknowledged.size < 3000 && waited < 10_000; waited += 50) await sleep(50)
  await sleep(Math.random() * 200)
  const atKill = acknowledged.size
  await killHard(server)
  await Promise.all(burst)
  for (const socket of sockets) socket.destroy()
  say(`kill -9 in the middle of the burst: ${sent} IAMATs sent, ${acknowledged.size} had their AT reply (${atKill} just before the kill)`)
  if (acknowledged.size < 100) failures.push(`only ${acknowledged.size} IAMATs acknowledged before the kill: the burst was too small to check`)
  const restarted = await serve("Alford", configPath)
  const clients = [...acknowledged.keys()]
  const answers = await pipeline(target, clients.map((client) => `WHATSAT ${client} 1 1`))
  const missing = clients.filter((client, i) => answers[i] !== acknowledged.get(client))
  say(`after the restart: ${clients.length - missing.length} of ${clients.length} acknowledged IAMATs answered by WHATSAT with their AT line`)
  if (missing.length > 0) failures.push(`sync always: ${missing.length} acknowledged IAMATs lost, e.g. ${missing.slice(0, 3).join(", ")}`)
  await killHard(restarted)
}

const main = async (): Promise<void> => {
  try {
    if (!process.argv.includes("--only-burst")) await checkAllFive()
    await checkAlwaysBurst()
  } catch (error) {
    failures.push(error instanceof Error ? error.message : String(error))
  } finally {
    await Promise.all([...processes].map(killHard))
    rmSync(tmp, { recursive: true, force: true })
  }
  say(failures.length === 0 ? "check-durable: every check holds" : `check-durable: FAILED\n  ${failures.join("\n  ")}`)
  process.exitCode = failures.length === 0 ? 0 : 1
}

void main()
