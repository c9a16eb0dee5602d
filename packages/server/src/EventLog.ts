/**
 * The event log of PROTOCOL.md section 9: one JSON object per line in
 * `<logDir>/<server>.log`, for every line in and out, every connection and
 * peer link change, Places outcomes and protocol violations.
 *
 * Logging is off the hot path: `record` only pushes the raw parts of an entry
 * onto an array (no JSON, no decoding, no I/O); a background fiber turns the
 * batch into JSON and appends it to the file, and the layer's finalizer writes
 * whatever is left, so closing the scope loses nothing.
 */
import { FileSystem, Path } from "@effect/platform"
import type { PlatformError } from "@effect/platform/Error"
import { Context, Effect, Layer, Schedule } from "effect"
import { isUtf8 } from "node:buffer"

/** Fields of an entry besides its time, server and event name. */
export interface EventFields {
  readonly conn?: number
  readonly remote?: string
  /** A wire line; bytes that are not UTF-8 are also logged in base64. */
  readonly line?: Uint8Array | string
  readonly [field: string]: unknown
}

export class EventLog extends Context.Tag("@herd/server/EventLog")<
  EventLog,
  {
    /** Buffers one entry; never blocks and never fails. */
    readonly record: (event: string, fields?: EventFields) => void
    /** Writes every buffered entry now. */
    readonly flush: Effect.Effect<void>
  }
>() {}

interface PendingEntry {
  readonly timeMs: number
  readonly event: string
  readonly fields: EventFields | undefined
}

/** One JSON line for an entry. Wire lines are latin1 strings or bytes. */
export const formatEntry = (server: string, entry: PendingEntry): string => {
  const head = `{"time":"${new Date(entry.timeMs).toISOString()}","server":${JSON.stringify(server)},"event":${
    JSON.stringify(entry.event)
  }`
  if (entry.fields === undefined) return head + "}\n"
  let body = ""
  for (const key in entry.fields) {
    const value = entry.fields[key]
    if (value === undefined) continue
    if (key === "line" && (typeof value === "string" || value instanceof Uint8Array)) {
      const bytes = typeof value === "string" ? Buffer.from(value, "latin1") : Buffer.from(value)
      body += `,"line":${JSON.stringify(bytes.toString("utf8"))}`
      if (!isUtf8(bytes)) body += `,"lineBase64":"${bytes.toString("base64")}"`
    } else {
      body += `,${JSON.stringify(key)}:${JSON.stringify(value)}`
    }
  }
  return head + body + "}\n"
}

const flushEvery = "50 millis"

/** Appends to `<dir>/<server>.log`, creating the directory if needed. */
export const layerFile = (options: {
  readonly dir: string
  readonly server: string
}): Layer.Layer<EventLog, PlatformError, FileSystem.FileSystem | Path.Path> =>
  Layer.scoped(
    EventLog,
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const path = yield* Path.Path
      yield* fs.makeDirectory(options.dir, { recursive: true })
      const file = yield* fs.open(path.join(options.dir, `${options.server}.log`), { flag: "a" })
      let pending: Array<PendingEntry> = []
      const flush = Effect.suspend(() => {
        if (pending.length === 0) return Effect.void
        const batch = pending
        pending = []
        let text = ""
        for (const entry of batch) text += formatEntry(options.server, entry)
        return file.writeAll(Buffer.from(text, "utf8"))
      }).pipe(
        Effect.catchAll((error) => Effect.logError(`event log of ${options.server}: write failed`, error))
      )
      yield* Effect.addFinalizer(() => flush)
      yield* flush.pipe(Effect.repeat(Schedule.spaced(flushEvery)), Effect.forkScoped)
      return EventLog.of({
        record: (event, fields) => {
          pending.push({ timeMs: Date.now(), event, fields })
        },
        flush
      })
    })
  )

/** Keeps entries in memory as formatted JSON lines, for tests. */
export const makeMemory = (server: string) =>
  Effect.sync(() => {
    const lines: Array<string> = []
    const log = EventLog.of({
      record: (event, fields) => {
        lines.push(formatEntry(server, { timeMs: Date.now(), event, fields }))
      },
      flush: Effect.void
    })
    return { log, lines } as const
  })
