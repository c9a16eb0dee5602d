/**
 * `herd status`: asks every server of the config for its `/status` (its
 * admin endpoint, on its `httpPort`) and prints the herd at a glance, like
 * `redis-cli --cluster check`: each server up or down, its links, records,
 * digest and lag, then one verdict line. `in sync` when every running server
 * holds the same count and digest; else which differ. Exit 0 in sync, 1
 * otherwise.
 */
import * as HttpClient from "@effect/platform/HttpClient"
import { Status } from "@herd/admin"
import { Console, Data, Effect, Schema } from "effect"
import type { LoadedConfig } from "./Config.ts"

/** The herd is not in sync (or no server answered): exit status 1, the verdict already printed. */
export class NotInSync extends Data.TaggedError("NotInSync")<{ readonly verdict: string }> {}

export type ServerAnswer =
  | { readonly name: string; readonly up: true; readonly url: string; readonly status: Status.StatusReport }
  | { readonly name: string; readonly up: false; readonly url: string | null; readonly error: string }

export interface Verdict {
  readonly inSync: boolean
  readonly line: string
  /** The running servers that differ from the most of the others (all of them when no group is larger). */
  readonly differing: ReadonlyArray<string>
}

const timeoutMs = 2000

const hostForUrl = (host: string): string => host.includes(":") ? `[${host}]` : host

const ask = (client: HttpClient.HttpClient, name: string, host: string, httpPort: number | undefined) => {
  if (httpPort === undefined) {
    return Effect.succeed<ServerAnswer>({ name, up: false, url: null, error: "no httpPort in the config: not asked" })
  }
  const url = `http://${hostForUrl(host)}:${httpPort}/status`
  return client.get(url).pipe(
    Effect.flatMap((response) =>
      response.status === 200
        ? response.json
        : Effect.fail(new Error(`answered HTTP ${response.status}`))
    ),
    Effect.flatMap(Schema.decodeUnknown(Status.StatusReport)),
    Effect.timeoutFail({ duration: timeoutMs, onTimeout: () => new Error(`no answer within ${timeoutMs} ms`) }),
    Effect.match({
      onFailure: (error): ServerAnswer => ({ name, up: false, url, error: describe(error) }),
      onSuccess: (status): ServerAnswer => ({ name, up: true, url, status })
    })
  )
}

/** A failure to reach a server, in a few words (the cause of a fetch error is where the reason is). */
const describe = (error: unknown): string => {
  if (typeof error === "object" && error !== null && "_tag" in error && error._tag === "RequestError") {
    const cause = (error as { readonly cause?: unknown }).cause
    const inner = cause instanceof Error && cause.cause instanceof Error ? cause.cause : cause
    if (inner instanceof Error) return inner.message
  }
  if (error instanceof Error) return error.message
  return String(error)
}

const stateOf = (status: Status.StatusReport): string =>
  `${status.store.count} record${status.store.count === 1 ? "" : "s"}, digest ${status.store.digest ?? "none"}`

/** Groups the running servers by what they hold; in sync when there is one group. */
export const verdictOf = (answers: ReadonlyArray<ServerAnswer>): Verdict => {
  const running = answers.flatMap((answer) => answer.up ? [answer] : [])
  const down = answers.length - running.length
  if (running.length === 0) return { inSync: false, line: "not in sync: no server answered", differing: [] }
  const groups = new Map<string, Array<Extract<ServerAnswer, { up: true }>>>()
  for (const answer of running) {
    const key = `${answer.status.store.count}/${answer.status.store.digest ?? ""}`
    const group = groups.get(key) ?? []
    group.push(answer)
    groups.set(key, group)
  }
  const downNote = down === 0 ? "" : `; ${down} of ${answers.length} down`
  const ordered = [...groups.values()].sort((a, b) => b.length - a.length)
  const [largest, ...rest] = ordered
  if (largest === undefined) return { inSync: false, line: "not in sync: no server answered", differing: [] }
  const [first] = largest
  if (rest.length === 0 && first !== undefined) {
    return { inSync: true, line: `in sync: ${running.length} running, ${stateOf(first.status)}${downNote}`, differing: [] }
  }
  const names = (group: ReadonlyArray<Extract<ServerAnswer, { up: true }>>) => group.map((answer) => answer.name).join(", ")
  const describeGroup = (group: ReadonlyArray<Extract<ServerAnswer, { up: true }>>) =>
    `${names(group)} (${group[0] === undefined ? "" : stateOf(group[0].status)})`
  const secondLargest = rest[0]
  if (secondLargest !== undefined && secondLargest.length === largest.length) {
    // No majority: every group differs from every other.
    return {
      inSync: false,
      line: `not in sync: ${ordered.map(describeGroup).join(" / ")}${downNote}`,
      differing: running.map((answer) => answer.name)
    }
  }
  const differing = rest.flat()
  return {
    inSync: false,
    line: `not in sync: ${differing.map((answer) => `${answer.name} (${stateOf(answer.status)})`).join(", ")} ` +
      `differ${differing.length === 1 ? "s" : ""} from ${describeGroup(largest)}${downNote}`,
    differing: differing.map((answer) => answer.name)
  }
}

const pad = (text: string, width: number): string => text.padEnd(width)

const ago = (seconds: number): string =>
  seconds < 1 ? `${Math.round(seconds * 1000)}ms` : seconds < 120 ? `${seconds.toFixed(1)}s` : `${Math.round(seconds / 60)}m`

const uptime = (seconds: number): string => {
  const s = Math.floor(seconds)
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`
  return `${Math.floor(s / 3600)}h${String(Math.floor(s / 60) % 60).padStart(2, "0")}m`
}

/** The herd as text, a server a paragraph, then the verdict. */
export const formatReport = (answers: ReadonlyArray<ServerAnswer>, verdict: Verdict): string => {
  const width = Math.max(...answers.map((answer) => answer.name.length)) + 2
  const lines: Array<string> = []
  for (const answer of answers) {
    if (!answer.up) {
      lines.push(`${pad(answer.name, width)}down  ${answer.url === null ? "" : `${answer.url}: `}${answer.error}`)
      continue
    }
    const { status } = answer
    const store = status.store
    lines.push(
      `${pad(answer.name, width)}up    ${status.address.host}:${status.address.port}  ` +
        `records ${store.count}  digest ${store.digest ?? "none"}` +
        `${store.lastSeq === null ? "" : `  seq ${store.lastSeq}`}  uptime ${uptime(status.uptimeSeconds)}  ` +
        (status.ready ? "ready" : `not ready (${status.waitingFor.join("; ")})`)
    )
    const peerWidth = Math.max(0, ...status.links.map((link) => link.peer.length)) + 2
    for (const link of status.links) {
      const details = link.state === "up"
        ? `sent ${link.recordsSent}  received ${link.recordsReceived}  catch-ups ${link.catchUps} ` +
          `(last ${link.lastCatchUpRecords} records)  lag ${link.lagRecords ?? "-"}` +
          (link.secondsSinceLastRecord === null ? "" : `  last record ${ago(link.secondsSinceLastRecord)} ago`)
        : link.lastError ?? ""
      lines.push(`  -> ${pad(link.peer, peerWidth)}${pad(link.state, 11)}${details}`)
    }
  }
  lines.push(verdict.line)
  return lines.join("\n")
}

/** Asks every server, prints the report (text or `--json`); fails with `NotInSync` unless in sync. */
export const runStatus = (
  loaded: LoadedConfig,
  options: { readonly json: boolean }
): Effect.Effect<void, NotInSync, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const client = yield* HttpClient.HttpClient
    const answers = yield* Effect.forEach(
      Object.entries(loaded.config.servers),
      ([name, address]) => ask(client, name, address.host, address.httpPort),
      { concurrency: "unbounded" }
    )
    const verdict = verdictOf(answers)
    yield* Console.log(options.json ? JSON.stringify({ servers: answers, verdict }, null, 2) : formatReport(answers, verdict))
    if (!verdict.inSync) return yield* new NotInSync({ verdict: verdict.line })
  })
