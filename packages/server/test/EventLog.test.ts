import { FileSystem } from "@effect/platform"
import { SystemError } from "@effect/platform/Error"
import { NodeFileSystem, NodePath } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, FastCheck as fc, Layer, Logger, LogLevel, TestClock } from "effect"
import * as NodeFs from "node:fs"
import * as Os from "node:os"
import { join } from "node:path"
import { EventLog, formatEntry, layerFile } from "../src/EventLog.ts"
import { EntryWriter } from "../src/internal/EntryWriter.ts"
import type { FileOptions } from "../src/EventLog.ts"

describe("EventLog entries", () => {
  it("writes one JSON object per line with the time, server, event and fields", () => {
    const line = formatEntry("Alford", "in", { conn: 3, line: Buffer.from("IAMAT a +1+1 1") })
    expect(line).toMatch(
      /^\{"time":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z","server":"Alford","event":"in","conn":3,"line":"IAMAT a \+1\+1 1"\}\n$/
    )
  })

  it("keeps bytes that are not UTF-8 in base64 beside their text", () => {
    const entry = JSON.parse(formatEntry("A", "in", { line: Buffer.from([0x41, 0xff, 0x00]) }))
    expect(entry).toMatchObject({ line: "A\ufffd\u0000", lineBase64: "Qf8A" })
  })

  it("grows its buffer past the initial size and hands over every entry", () => {
    const writer = new EntryWriter("S", 16)
    for (let i = 0; i < 1000; i++) writer.lines(i, "127.0.0.1:5000").sent(Buffer.from(`AT S +0.000000000 c${i} +1+1 1\n`))
    const lines = writer.take().toString("utf8").trimEnd().split("\n")
    expect(lines.length).toBe(1000)
    expect(JSON.parse(lines[999] ?? "")).toMatchObject({
      event: "out",
      conn: 999,
      remote: "127.0.0.1:5000",
      line: "AT S +0.000000000 c999 +1+1 1\n"
    })
    expect(writer.size).toBe(0)
  })

  it("fills a recycled buffer again, and never one whose bytes were taken and not given back", () => {
    const writer = new EntryWriter("S", 4096)
    const log = writer.lines(1, "127.0.0.1:5000")
    log.sent(Buffer.from("first"))
    const first = writer.take()
    const firstText = first.toString("utf8")
    log.sent(Buffer.from("second"))
    const second = writer.take()
    log.sent(Buffer.from("third"))
    // Neither batch was given back: both are intact.
    expect(first.toString("utf8")).toBe(firstText)
    expect(second.toString("utf8")).toContain(`"line":"second"`)
    writer.recycle(first) // not the last taken: ignored
    writer.recycle(second)
    writer.take()
    log.sent(Buffer.from("fourth"))
    const fourth = writer.take()
    expect(fourth.buffer).toBe(second.buffer)
    expect(fourth.byteOffset).toBe(second.byteOffset)
    expect(fourth.toString("utf8")).toContain(`"line":"fourth"`)
    expect(first.toString("utf8")).toBe(firstText)
  })

  it("logs the given part of the bytes, with the connection's id and remote address", () => {
    const writer = new EntryWriter("S", 8)
    const lines = writer.lines(7, "[::1]:4000")
    lines.received(Buffer.from("xxIAMAT a +1+1 1yy"), 2, 16)
    lines.sent(Buffer.from("AT S +0 a +1+1 1"))
    const [received, sent] = writer.take().toString("utf8").trimEnd().split("\n").map((entry) => JSON.parse(entry))
    expect(received).toMatchObject({ server: "S", event: "in", conn: 7, remote: "[::1]:4000", line: "IAMAT a +1+1 1" })
    expect(sent).toMatchObject({ server: "S", event: "out", conn: 7, remote: "[::1]:4000", line: "AT S +0 a +1+1 1" })
  })

  it.effect.prop(
    "the quick path and the general one agree with JSON on any wire line, as bytes or as latin1 text",
    [fc.uint8Array({ maxLength: 40 })],
    ([bytes]) =>
      Effect.sync(() => {
        const writer = new EntryWriter("S", 8)
        const framed = Buffer.concat([Buffer.from("<"), bytes, Buffer.from(">")])
        writer.lines(1, "r").sent(framed, 1, framed.length - 1)
        writer.lines(1, "r").received(Buffer.from(bytes))
        writer.record("out", { conn: 1, line: Buffer.from(bytes) })
        writer.record("out", { conn: 1, line: Buffer.from(bytes).toString("latin1") })
        for (const text of writer.take().toString("utf8").trimEnd().split("\n")) {
          const entry = JSON.parse(text)
          expect(entry.line).toBe(Buffer.from(bytes).toString("utf8"))
          if (entry.lineBase64 !== undefined) expect(Buffer.from(entry.lineBase64, "base64")).toEqual(Buffer.from(bytes))
          else expect(Buffer.from(entry.line, "utf8")).toEqual(Buffer.from(bytes))
        }
      }),
    // A hundred writers made and read back: seconds on a loaded machine (5.2-7.7 s seen).
    30_000
  )

  it.effect.prop(
    "a WHATSAT answer logged with its body's kept escaping is the same entry as the plain one",
    [fc.uint8Array({ maxLength: 30 }), fc.string({ unit: "grapheme", maxLength: 40 })],
    ([atPart, bodyText]) =>
      Effect.sync(() => {
        const body = Buffer.from(`{\n   "name": ${JSON.stringify(bodyText)}\n}`, "utf8").toString("latin1")
        const answer = Buffer.concat([Buffer.from("<"), atPart, Buffer.from("\n" + body + "\n\n", "latin1")])
        const writer = new EntryWriter("S", 8)
        const lines = writer.lines(1, "r")
        for (let i = 0; i < 2; i++) {
          lines.sentAnswer(answer, 1, answer.length - 1, body, "OK")
          lines.sent(answer, 1, answer.length - 1)
        }
        const entries = writer.take().toString("utf8").trimEnd().split("\n").map((entry) => JSON.parse(entry))
        expect(entries).toHaveLength(4)
        for (const entry of entries) {
          expect({ ...entry, time: undefined }).toEqual({ ...entries[1], time: undefined })
        }
        const logged = entries[0].lineBase64 === undefined
          ? Buffer.from(entries[0].line, "utf8")
          : Buffer.from(entries[0].lineBase64, "base64")
        expect(logged).toEqual(answer.subarray(1, answer.length - 1))
      }),
    30_000
  )
})


describe("EntryWriter capacity", () => {
  it("drops whole entries begun at or past its capacity, counts them, and writes one log-gap on demand", () => {
    const writer = new EntryWriter("S", 64)
    writer.record("kept", { n: 1 })
    writer.capacity = writer.size
    writer.record("dropped", { n: 2 })
    writer.lines(1, "r").received(Buffer.from("dropped too"))
    writer.lines(1, "r").sentAnswer(Buffer.from("AT\nbody\n"), 0, 8, "body", "OK")
    expect(writer.dropped).toBe(3)
    writer.recordGap()
    writer.recordGap()
    const entries = writer.take().toString("utf8").trimEnd().split("\n").map((entry) => JSON.parse(entry))
    expect(entries.map((entry) => entry.event)).toEqual(["kept", "log-gap"])
    expect(entries[1]).toMatchObject({ server: "S", dropped: 3 })
    expect(Date.parse(entries[1].from)).toBeLessThanOrEqual(Date.parse(entries[1].to))
    expect(writer.dropped).toBe(0)
  })
})

// The log's file -------------------------------------------------------------

/** What the disk under the log does, switched by a test while the log runs. */
interface Disk {
  /**
   * `tear` writes the first half of what it is given, then fails, as ENOSPC
   * does part-way; `land` writes it all, then fails anyway.
   */
  writes: "work" | "fail" | "tear" | "land" | "room"
  truncates: "work" | "fail"
  opens: "work" | "fail"
  /** With `room`: the bytes the disk still takes; a write past them lands what fits, then fails. */
  room: number
}

const healthyDisk = (): Disk => ({ writes: "work", truncates: "work", opens: "work", room: 0 })

const diskError = (method: string) =>
  new SystemError({ module: "FileSystem", method, reason: "Unknown", description: "ENOSPC: no space left on device" })

const faultyFile = (file: FileSystem.File, disk: Disk): FileSystem.File => ({
  [FileSystem.FileTypeId]: FileSystem.FileTypeId,
  fd: file.fd,
  get stat() {
    return file.stat
  },
  get sync() {
    return file.sync
  },
  seek: (offset, from) => file.seek(offset, from),
  read: (buffer) => file.read(buffer),
  readAlloc: (size) => file.readAlloc(size),
  write: (buffer) => file.write(buffer),
  truncate: (length) =>
    disk.truncates === "fail"
      ? Effect.fail(diskError("truncate"))
      // What is cut off is room on the disk again.
      : Effect.zipRight(
        Effect.tap(file.stat, (info) =>
          Effect.sync(() => {
            if (disk.writes === "room") disk.room += Number(info.size) - Number(length ?? 0)
          })),
        file.truncate(length)
      ),
  writeAll: (buffer) =>
    disk.writes === "room"
      ? Effect.suspend(() => {
        const fits = Math.min(disk.room, buffer.length)
        disk.room -= fits
        const landed = file.writeAll(buffer.subarray(0, fits))
        return fits === buffer.length ? landed : Effect.zipRight(landed, Effect.fail(diskError("writeAll")))
      })
      : disk.writes === "work"
      ? file.writeAll(buffer)
      : disk.writes === "fail"
      ? Effect.fail(diskError("writeAll"))
      : disk.writes === "land"
      ? Effect.zipRight(file.writeAll(buffer), Effect.fail(diskError("writeAll")))
      : Effect.zipRight(file.writeAll(buffer.subarray(0, Math.ceil(buffer.length / 2))), Effect.fail(diskError("writeAll")))
})

/** The real file system, with the log's file going through `disk`. */
const faultyFileSystem = (disk: Disk) =>
  Layer.effect(
    FileSystem.FileSystem,
    Effect.map(FileSystem.FileSystem, (fs) =>
      FileSystem.FileSystem.of({
        ...fs,
        open: (path, options) =>
          disk.opens === "fail"
            ? Effect.fail(diskError("open"))
            : Effect.map(fs.open(path, options), (file) => faultyFile(file, disk))
      }))
  ).pipe(Layer.provide(NodeFileSystem.layer))

const tempDir = Effect.acquireRelease(
  Effect.sync(() => NodeFs.mkdtempSync(join(Os.tmpdir(), "herd-eventlog-"))),
  (dir) => Effect.sync(() => NodeFs.rmSync(dir, { recursive: true, force: true }))
)

/** A file log of server Alford in `dir`, open until the current scope closes. */
const openLog = (dir: string, disk: Disk, options: Partial<FileOptions> = {}) =>
  Layer.build(layerFile({ dir, server: "Alford", reopenOnSighup: false, ...options })).pipe(
    Effect.map(Context.get(EventLog)),
    Effect.provide(Layer.merge(faultyFileSystem(disk), NodePath.layer))
  )

const read = (file: string): string => NodeFs.existsSync(file) ? NodeFs.readFileSync(file, "utf8") : ""

/** The file's entries; a line that is not JSON, torn or glued, fails the test. */
const entriesOf = (file: string): Array<Record<string, unknown>> => {
  const text = read(file)
  if (text === "") return []
  expect(text.endsWith("\n")).toBe(true)
  return text.slice(0, -1).split("\n").map((line) => JSON.parse(line))
}

/** Collects the messages logged at level Error, by the log's fibers too. */
const collectingErrors = (errors: Array<string>) =>
  Logger.replace(
    Logger.defaultLogger,
    Logger.make(({ logLevel, message }) => {
      if (LogLevel.greaterThanEqual(logLevel, LogLevel.Error)) {
        errors.push(String(Array.isArray(message) ? message[0] : message))
      }
    })
  )

/** For tests that make the log fail on purpose: its reports are expected, not news. */
const silenced = Logger.replace(Logger.defaultLogger, Logger.none)

/** Polls `check` until it holds, failing the test past a deadline. */
const eventually = (what: string, check: () => boolean) =>
  Effect.gen(function*() {
    const deadline = Date.now() + 5000
    while (!check()) {
      if (Date.now() > deadline) return yield* Effect.die(new Error(`timed out waiting until ${what}`))
      yield* Effect.sleep("5 millis")
    }
  })

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)

describe("EventLog file", () => {
  it.scoped("fills a disk with less room than its batch with whole entries, and writes the rest once there is room", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const file = join(dir, "Alford.log")
      const disk = healthyDisk()
      const log = yield* openLog(dir, disk)
      // About a megabyte of entries in one batch, with 300 KB of room on the disk.
      for (const n of range(1, 10_000)) log.unsafeRecord("entry", { n, padding: "x".repeat(80) })
      disk.writes = "room"
      disk.room = 300 * 1024
      yield* log.flush
      const partly = entriesOf(file)
      expect(partly.length).toBeGreaterThan(0)
      expect(partly.map((entry) => entry.n)).toEqual(range(1, partly.length))
      disk.room = 10 * 1024 * 1024
      yield* log.flush
      const entries = entriesOf(file)
      expect(entries.map((entry) => entry.n)).toEqual(range(1, 10_000))
    }).pipe(Effect.provide(silenced)))

  it.scoped("keeps the entries of failed writes, retries them, and marks those dropped past the bound with one log-gap", () => {
    const errors: Array<string> = []
    return Effect.gen(function*() {
      const dir = yield* tempDir
      const file = join(dir, "Alford.log")
      const disk = healthyDisk()
      const maxBufferBytes = 4096
      const log = yield* openLog(dir, disk, { maxBufferBytes })
      log.unsafeRecord("before", { n: 0 })
      yield* log.flush
      disk.writes = "fail"
      for (const n of range(1, 10)) log.unsafeRecord("kept", { n })
      yield* log.flush
      yield* log.flush
      // Dropping, not pausing, while nothing can be written.
      expect(log.hasRoom()).toBe(true)
      for (const n of range(11, 200)) log.lines(n, "127.0.0.1:4000").received(Buffer.from(`IAMAT c${n} +1+1 1`))
      yield* log.flush
      expect(entriesOf(file).map((entry) => entry.n)).toEqual([0])

      disk.writes = "work"
      yield* log.flush
      log.unsafeRecord("after", { n: 201 })
      yield* log.flush

      const entries = entriesOf(file)
      const gaps = entries.filter((entry) => entry.event === "log-gap")
      expect(gaps).toHaveLength(1)
      const gap = gaps[0] ?? {}
      const dropped = Number(gap.dropped)
      expect(dropped).toBeGreaterThan(0)
      expect(Date.parse(String(gap.from))).toBeLessThanOrEqual(Date.parse(String(gap.to)))
      // Kept in order up to the bound, the gap where the dropped ones were, then what came after.
      const lastKept = 200 - dropped
      const numbered = (entry: Record<string, unknown>) => entry.event === "log-gap" ? "gap" : entry.n ?? entry.conn
      expect(entries.map(numbered)).toEqual([...range(0, lastKept), "gap", 201])
      const keptBytes = read(file).split("\n").slice(1, lastKept + 1).reduce((sum, line) => sum + line.length + 1, 0)
      expect(keptBytes).toBeLessThan(maxBufferBytes + 200)
      // Reported once for the failing period, not once per try.
      expect(errors.filter((message) => message.includes("cannot write"))).toHaveLength(1)
    }).pipe(Effect.provide(collectingErrors(errors)))
  })

  it.scoped("cuts a failed batch taken past the bound down to it, whole entries only, and counts the rest", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const file = join(dir, "Alford.log")
      const disk = healthyDisk()
      const maxBufferBytes = 2000
      const log = yield* openLog(dir, disk, { maxBufferBytes })
      // Nobody paused: the batch is three times the bound when its write fails.
      for (const n of range(1, 100)) log.unsafeRecord("unpaused", { n })
      const recordedBy = Date.now()
      // Into the next millisecond, so that the cut entries timed at the cut rather than when recorded would show.
      while (Date.now() === recordedBy) continue
      disk.writes = "fail"
      yield* log.flush
      disk.writes = "work"
      yield* log.flush
      yield* log.flush
      const entries = entriesOf(file)
      const kept = entries.filter((entry) => entry.event === "unpaused").map((entry) => entry.n)
      const gaps = entries.filter((entry) => entry.event === "log-gap")
      expect(kept.length).toBeGreaterThan(0)
      expect(kept).toEqual(range(1, kept.length))
      expect(read(file).split("\n").slice(0, kept.length).join("\n").length).toBeLessThanOrEqual(maxBufferBytes)
      expect(gaps).toHaveLength(1)
      expect(gaps[0]).toMatchObject({ dropped: 100 - kept.length })
      expect(Date.parse(String(gaps[0]?.from))).toBeLessThanOrEqual(Date.parse(String(gaps[0]?.to)))
      expect(Date.parse(String(gaps[0]?.to))).toBeLessThanOrEqual(recordedBy)
      expect(recordedBy - Date.parse(String(gaps[0]?.from))).toBeLessThan(60_000)
    }).pipe(Effect.provide(silenced)))

  it.scoped("cuts a write that failed part-way back off, so no entry is torn or glued to another", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const file = join(dir, "Alford.log")
      const disk = healthyDisk()
      const log = yield* openLog(dir, disk)
      log.unsafeRecord("before", { n: 0 })
      yield* log.flush
      const before = read(file)
      disk.writes = "tear"
      for (const n of range(1, 30)) log.unsafeRecord("torn", { n })
      yield* log.flush
      expect(read(file)).toBe(before)
      for (const n of range(31, 40)) log.unsafeRecord("torn", { n })
      yield* log.flush
      expect(read(file)).toBe(before)
      disk.writes = "work"
      yield* log.flush
      expect(entriesOf(file).map((entry) => entry.n)).toEqual(range(0, 40))
    }).pipe(Effect.provide(silenced)))

  it.scoped("when the cut fails too, completes the torn entry with the rest of its batch rather than writing it again", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const file = join(dir, "Alford.log")
      const disk = healthyDisk()
      const log = yield* openLog(dir, disk)
      log.unsafeRecord("before", { n: 0 })
      yield* log.flush
      disk.writes = "tear"
      disk.truncates = "fail"
      for (const n of range(1, 30)) log.unsafeRecord("torn", { n })
      yield* log.flush
      yield* log.flush
      // The file now ends in the middle of an entry, and cannot be cut.
      expect(read(file).endsWith("\n")).toBe(false)
      disk.writes = "work"
      yield* log.flush
      for (const n of range(31, 35)) log.unsafeRecord("after", { n })
      yield* log.flush
      expect(entriesOf(file).map((entry) => entry.n)).toEqual(range(0, 35))
    }).pipe(Effect.provide(silenced)))

  it.scoped("when a failed write had in fact landed whole and cannot be cut, does not write it again", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const file = join(dir, "Alford.log")
      const disk = healthyDisk()
      const log = yield* openLog(dir, disk)
      disk.writes = "land"
      disk.truncates = "fail"
      for (const n of range(1, 10)) log.unsafeRecord("landed", { n })
      yield* log.flush
      disk.writes = "work"
      yield* log.flush
      for (const n of range(11, 12)) log.unsafeRecord("after", { n })
      yield* log.flush
      expect(entriesOf(file).map((entry) => entry.n)).toEqual(range(1, 12))
    }).pipe(Effect.provide(silenced)))

  it.scoped("says there is no room at the bound while healthy, and calls every waiter once after the flush", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const file = join(dir, "Alford.log")
      const log = yield* openLog(dir, healthyDisk(), { maxBufferBytes: 2000 })
      let recorded = 0
      while (log.hasRoom() && recorded < 1000) log.unsafeRecord("filler", { n: ++recorded })
      expect(log.hasRoom()).toBe(false)
      expect(recorded).toBeLessThan(100)
      const calls = Array.from({ length: 5000 }, () => 0)
      calls.forEach((_, i) =>
        log.unsafeOnRoom(() => {
          calls[i] = (calls[i] ?? 0) + 1
          if (i === 7) throw new Error("a waiter's own bug")
        })
      )
      // Paused callers are what keep it bounded while healthy: nothing is dropped.
      log.unsafeRecord("filler", { n: ++recorded })
      expect(calls.every((count) => count === 0)).toBe(true)
      yield* log.flush
      expect(log.hasRoom()).toBe(true)
      expect(calls.every((count) => count === 1)).toBe(true)
      yield* log.flush
      expect(calls.every((count) => count === 1)).toBe(true)
      let calledAtOnce = false
      log.unsafeOnRoom(() => (calledAtOnce = true))
      expect(calledAtOnce).toBe(true)
      expect(entriesOf(file).map((entry) => entry.n)).toEqual(range(1, recorded))
    }))

  it.scoped("calls the waiters back when writes start failing, since waiting would not help", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const disk = healthyDisk()
      const log = yield* openLog(dir, disk, { maxBufferBytes: 1000 })
      for (let n = 0; log.hasRoom() && n < 1000; n++) log.unsafeRecord("filler", { n })
      let resumed = 0
      log.unsafeOnRoom(() => resumed++)
      disk.writes = "fail"
      yield* log.flush
      expect(resumed).toBe(1)
      expect(log.hasRoom()).toBe(true)
    }).pipe(Effect.provide(silenced)))

  it.scoped("opens the path again when the file is deleted, or moved away and a second passes", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const file = join(dir, "Alford.log")
      const log = yield* openLog(dir, healthyDisk())
      log.unsafeRecord("first")
      yield* log.flush
      NodeFs.unlinkSync(file)
      log.unsafeRecord("after delete")
      yield* log.flush
      expect(entriesOf(file).map((entry) => entry.event)).toEqual(["after delete"])

      NodeFs.renameSync(file, `${file}.1`)
      log.unsafeRecord("before the check")
      yield* log.flush
      yield* TestClock.adjust("1 second")
      log.unsafeRecord("after the check")
      yield* log.flush
      expect(entriesOf(`${file}.1`).map((entry) => entry.event)).toEqual(["after delete", "before the check"])
      expect(entriesOf(file).map((entry) => entry.event)).toEqual(["after the check"])

      NodeFs.rmSync(dir, { recursive: true, force: true })
      log.unsafeRecord("after the directory went")
      yield* log.flush
      expect(entriesOf(file).map((entry) => entry.event)).toEqual(["after the directory went"])
    }))

  it.scoped("keeps writing to the open file when reopening fails, and says so", () => {
    const errors: Array<string> = []
    return Effect.gen(function*() {
      const dir = yield* tempDir
      const file = join(dir, "Alford.log")
      const disk = healthyDisk()
      const log = yield* openLog(dir, disk)
      disk.opens = "fail"
      yield* log.reopen
      log.unsafeRecord("still here")
      yield* log.flush
      expect(entriesOf(file).map((entry) => entry.event)).toEqual(["still here"])
      expect(errors.filter((message) => message.includes("cannot reopen"))).toHaveLength(1)
    }).pipe(Effect.provide(collectingErrors(errors)))
  })

  it.scopedLive("reopens on SIGHUP, and stops listening for it when its scope closes", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const file = join(dir, "Alford.log")
      const rotated = `${file}.1`
      const listening = process.listenerCount("SIGHUP")
      yield* Effect.scoped(Effect.gen(function*() {
        const log = yield* openLog(dir, healthyDisk(), { reopenOnSighup: true })
        expect(process.listenerCount("SIGHUP")).toBe(listening + 1)
        log.unsafeRecord("before rotation")
        yield* log.flush
        NodeFs.renameSync(file, rotated)
        process.emit("SIGHUP")
        yield* eventually("the log is opened again", () => NodeFs.existsSync(file))
        log.unsafeRecord("after rotation")
        yield* log.flush
        expect(entriesOf(rotated).map((entry) => entry.event)).toEqual(["before rotation"])
        expect(entriesOf(file).map((entry) => entry.event)).toEqual(["after rotation"])
      }))
      expect(process.listenerCount("SIGHUP")).toBe(listening)
      yield* Effect.scoped(openLog(dir, healthyDisk()))
      expect(process.listenerCount("SIGHUP")).toBe(listening)
    }))

  it.scopedLive("retries on its own tick once writing works again", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const file = join(dir, "Alford.log")
      const disk = healthyDisk()
      disk.writes = "fail"
      const log = yield* openLog(dir, disk)
      for (const n of range(1, 20)) log.unsafeRecord("kept", { n })
      yield* log.flush
      disk.writes = "work"
      yield* eventually("the kept entries are written", () => entriesOf(file).length === 20)
      expect(entriesOf(file).map((entry) => entry.n)).toEqual(range(1, 20))
    }).pipe(Effect.provide(silenced)))

  it.scoped("writes everything when its scope closes, and tries only once when it cannot", () => {
    const errors: Array<string> = []
    return Effect.gen(function*() {
      const dir = yield* tempDir
      const file = join(dir, "Alford.log")
      yield* Effect.scoped(Effect.gen(function*() {
        const log = yield* openLog(dir, healthyDisk())
        for (const n of range(1, 50)) log.unsafeRecord("closing", { n })
      }))
      expect(entriesOf(file).map((entry) => entry.n)).toEqual(range(1, 50))

      const disk = healthyDisk()
      yield* Effect.scoped(Effect.gen(function*() {
        const log = yield* openLog(dir, disk)
        disk.writes = "fail"
        log.unsafeRecord("lost")
      }))
      expect(entriesOf(file)).toHaveLength(50)
      expect(errors.filter((message) => message.includes("closed with"))).toHaveLength(1)
    }).pipe(Effect.provide(collectingErrors(errors)))
  })
})

describe("EventLog rotation and wire logging", () => {
  it.scoped("rotates the file before a flush would take it past maxFileBytes, keeping `keep` old files", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const file = join(dir, "Alford.log")
      const log = yield* openLog(dir, healthyDisk(), { maxFileBytes: 4000, keep: 2 })
      let n = 0
      for (let flushes = 0; flushes < 40; flushes++) {
        for (let i = 0; i < 10; i++) log.unsafeRecord("entry", { n: ++n })
        yield* log.flush
      }
      const names = NodeFs.readdirSync(dir).sort()
      expect(names).toEqual(["Alford.log", "Alford.log.1", "Alford.log.2"])
      for (const name of names) expect(NodeFs.statSync(join(dir, name)).size).toBeLessThanOrEqual(4000)
      // Oldest first across the files kept: the newest entries, in order, none torn.
      const kept = [`${file}.2`, `${file}.1`, file].flatMap((path) => entriesOf(path).map((entry) => entry.n))
      expect(kept).toEqual(range(n - kept.length + 1, n))
      expect(kept.length).toBeGreaterThan(40)
    }))

  it("in summary, logs a WHATSAT answer as its AT line and the Places status, not the body", () => {
    const writer = new EntryWriter("S", 64, "summary")
    const body = `{\n   "results": [ "a long body" ],\n   "status": "OK"\n}`
    const answer = Buffer.from(`AT S +0.000000000 c +1+1 1\n${body}\n\n`, "latin1")
    const lines = writer.lines(1, "r")
    lines.sentAnswer(answer, 0, answer.length - 1, body, "OK")
    lines.received(Buffer.from("WHATSAT c 10 5"))
    const entries = writer.take().toString("utf8").trimEnd().split("\n").map((entry) => JSON.parse(entry))
    expect(entries[0]).toMatchObject({ event: "out", line: "AT S +0.000000000 c +1+1 1", status: "OK" })
    expect(entries[1]).toMatchObject({ event: "in", line: "WHATSAT c 10 5" })
  })

  it("off, logs no wire line and every other entry", () => {
    const writer = new EntryWriter("S", 64, "off")
    const lines = writer.lines(1, "r")
    lines.received(Buffer.from("IAMAT c +1+1 1"))
    lines.sent(Buffer.from("AT S +0.000000000 c +1+1 1"))
    writer.record("open", { conn: 1 })
    const entries = writer.take().toString("utf8").trimEnd().split("\n").map((entry) => JSON.parse(entry))
    expect(entries.map((entry) => entry.event)).toEqual(["open"])
  })
})
