import { LocationRecord } from "@herd/protocol"
import { DurableStore, LocationStore } from "../src/index.ts"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, FastCheck as fc, Layer, Scope, TestClock } from "effect"
import Database from "better-sqlite3"
import * as ChildProcess from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { DurableDatabase } from "../src/internal/durable.ts"
import { lost, won } from "../src/internal/offer.ts"
import { record } from "./support/records.ts"

const tempDir = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "herd-store-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)


/** The store's records as their AT lines, sorted: what two stores must agree on. */
const linesOf = (records: ReadonlyArray<LocationRecord.LocationRecord>) => records.map(LocationRecord.formatAtLine).sort()

/** Opens the store at `path`, does `use` with it, and closes it (committing). */
const withStore = <A, E>(
  options: DurableStore.DurableOptions,
  use: (store: Effect.Effect.Success<ReturnType<typeof DurableStore.makeUnscheduled>>) => Effect.Effect<A, E>
) => Effect.scoped(Effect.flatMap(DurableStore.makeUnscheduled(options), use))

describe("Durable", () => {
  it.scoped("keeps a neighbour's checkpoint with the next commit, and forgets it when told", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const path = join(dir, "store.db")
      yield* withStore({ path }, (store) =>
        Effect.gen(function*() {
          expect(store.checkpointOf("Bolden")).toBeUndefined()
          store.unsafeOffer(record("kiwi", "10"))
          store.unsafeNoteCheckpoint("Bolden", { epoch: "e1", seq: 7 })
          store.unsafeNoteCheckpoint("Parker", { epoch: "e2", seq: 3 })
          expect(store.checkpointOf("Bolden")).toStrictEqual({ epoch: "e1", seq: 7 })
          yield* store.commit
        }))
      yield* withStore({ path }, (store) =>
        Effect.gen(function*() {
          expect(store.checkpointOf("Bolden")).toStrictEqual({ epoch: "e1", seq: 7 })
          expect(store.checkpointOf("Parker")).toStrictEqual({ epoch: "e2", seq: 3 })
          // A checkpoint alone is committed too, with no record.
          store.unsafeNoteCheckpoint("Bolden", { epoch: "e1", seq: 9 })
          store.unsafeNoteCheckpoint("Parker", undefined)
          yield* store.commit
        }))
      yield* withStore({ path }, (store) =>
        Effect.sync(() => {
          expect(store.checkpointOf("Bolden")).toStrictEqual({ epoch: "e1", seq: 9 })
          expect(store.checkpointOf("Parker")).toBeUndefined()
        }))
    }))

  it.scoped("gives back after a restart the same winners, AT lines, seq numbers and epoch", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const path = join(dir, "data", "store.db")
      // A client id of UTF-8 bytes, seen as latin1 like every wire field: kept byte for byte.
      const utf8Client = Buffer.from("kiwi-\u00e9\u65e5", "utf8").toString("latin1")
      const before = yield* withStore({ path }, (store) =>
        Effect.gen(function*() {
          expect(store.unsafeOffer(record("kiwi", "10"))).toBe(won)
          expect(store.unsafeOffer(record(utf8Client, "11"))).toBe(won)
          yield* store.commit
          expect(store.unsafeOffer(record("kiwi", "12", "Bolden", "-1.5+2.25"))).toBe(won)
          expect(store.unsafeOffer(record("kiwi", "9"))).toBe(lost)
          expect(store.unsafeOffer(record("lime", "1"))).toBe(won)
          // Not committed: the close commits it.
          return {
            epoch: store.epoch,
            lines: linesOf(store.snapshot()),
            after: yield* store.recordsAfter(0),
            digest: store.digest()
          }
        }))
      // What was committed then: kiwi and the UTF-8 client (the rest was pending).
      expect(before.after.map(({ seq }) => seq)).toStrictEqual([1, 2])
      const after = yield* withStore({ path }, (store) =>
        Effect.gen(function*() {
          expect(store.get(utf8Client)).toStrictEqual(record(utf8Client, "11"))
          expect(store.size()).toBe(3)
          return {
            epoch: store.epoch,
            lines: linesOf(store.snapshot()),
            after: yield* store.recordsAfter(0),
            lastSeq: store.lastSeq(),
            digest: store.digest()
          }
        }))
      expect(after.epoch).toBe(before.epoch)
      expect(after.lines).toStrictEqual(before.lines)
      expect(after.lines).toStrictEqual(linesOf([
        record(utf8Client, "11"),
        record("kiwi", "12", "Bolden", "-1.5+2.25"),
        record("lime", "1")
      ]))
      // The close committed the rest: kiwi's newer record moved to seq 3, lime took 4.
      expect(after.after.map(({ seq }) => seq)).toStrictEqual([2, 3, 4])
      expect(after.lastSeq).toBe(4)
      expect(after.digest).toStrictEqual(before.digest)
      expect(after.digest).toStrictEqual(LocationStore.digestOf([
        record(utf8Client, "11"),
        record("kiwi", "12", "Bolden", "-1.5+2.25"),
        record("lime", "1")
      ]))
      const other = yield* withStore({ path: join(dir, "other.db") }, (store) => Effect.succeed(store.epoch))
      expect(other).not.toBe(before.epoch)
    }))

  it.scoped("lists the records accepted after a seq, in order, from the database", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      yield* withStore({ path: join(dir, "store.db") }, (store) =>
        Effect.gen(function*() {
          store.unsafeOffer(record("a", "1"))
          store.unsafeOffer(record("b", "1"))
          yield* store.commit
          const first = store.lastSeq()
          expect(first).toBe(2)
          store.unsafeOffer(record("c", "1"))
          store.unsafeOffer(record("b", "2"))
          store.unsafeOffer(record("a", "0"))
          // Not committed yet: recordsAfter reads what is committed, and committedNow commits the rest.
          expect(store.pendingCount()).toBe(2)
          expect(yield* store.recordsAfter(first)).toStrictEqual([])
          yield* store.committedNow
          expect(yield* store.recordsAfter(first)).toStrictEqual([
            { seq: 3, record: record("c", "1") },
            { seq: 4, record: record("b", "2") }
          ])
          expect(store.pendingCount()).toBe(0)
          // b's first record was replaced: its old seq lists nothing.
          expect(yield* store.recordsAfter(0)).toStrictEqual([
            { seq: 1, record: record("a", "1") },
            { seq: 3, record: record("c", "1") },
            { seq: 4, record: record("b", "2") }
          ])
          expect(yield* store.recordsAfter(1, 1)).toStrictEqual([{ seq: 3, record: record("c", "1") }])
          expect(yield* store.recordsAfter(4)).toStrictEqual([])
        }))
    }))

  it.scoped("with sync always, whenCommitted completes once the records are committed, without a schedule", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const path = join(dir, "store.db")
      yield* withStore({ path, sync: "always" }, (store) =>
        Effect.gen(function*() {
          yield* store.whenCommitted
          store.unsafeOffer(record("kiwi", "1"))
          store.unsafeOffer(record("lime", "1"))
          expect(store.pendingCount()).toBe(2)
          yield* store.whenCommitted
          expect(store.pendingCount()).toBe(0)
          expect(store.lastSeq()).toBe(2)
          // Another handle on the file sees them: they are in the database, not only in memory.
          const other = DurableDatabase.open({ path, sync: "batch", retainDays: undefined }, 0)
          expect(linesOf(other.latest.snapshot())).toStrictEqual(linesOf([record("kiwi", "1"), record("lime", "1")]))
          other.unsafeClose()
        }))
    }))

  it.scoped("a failing commit calls back its waiters as failed at once, and the writer keeps its records and tries again", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const path = join(dir, "store.db")
      // Another connection, which takes the table away: every write fails until it is back.
      const other = yield* Effect.acquireRelease(Effect.sync(() => new Database(path)), (db) => Effect.sync(() => db.close()))
      yield* withStore({ path, sync: "always" }, (store) =>
        Effect.gen(function*() {
          other.exec("ALTER TABLE records RENAME TO records_away")
          store.unsafeOffer(record("kiwi", "1"))
          const outcome = yield* Effect.async<string>((resume) =>
            store.unsafeOnCommitted(
              () => resume(Effect.succeed("committed")),
              (error) => resume(Effect.succeed(`failed: ${error.message}`))
            )
          )
          expect(outcome).toMatch(/^failed: .*records/)
          // Without a failure callback, the callback itself answers: no one waits past one attempt.
          const plain = yield* Effect.async<string>((resume) => store.unsafeOnCommitted(() => resume(Effect.succeed("called"))))
          expect(plain).toBe("called")
          expect(store.lastSeq()).toBe(0)
          other.exec("ALTER TABLE records_away RENAME TO records")
          // The writer tries again by itself: the record gets committed with no new offer.
          const deadline = Date.now() + 10_000
          while (store.lastSeq() === 0 && Date.now() < deadline) yield* Effect.promise(() => new Promise((r) => setTimeout(r, 20)))
          expect(store.lastSeq()).toBe(1)
          yield* store.whenCommitted
        }))
      yield* withStore({ path }, (store) => Effect.sync(() => expect(linesOf(store.snapshot())).toStrictEqual(linesOf([record("kiwi", "1")]))))
    }), { timeout: 30_000 })

  it.scoped("commits every commitIntervalMs, and on close", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const path = join(dir, "store.db")
      const scope = yield* Scope.make()
      const store = yield* DurableStore.make({ path, commitIntervalMs: 5 }).pipe(Scope.extend(scope))
      store.unsafeOffer(record("kiwi", "1"))
      const committed = yield* Effect.fork(store.whenCommitted)
      yield* TestClock.adjust("4 millis")
      expect(store.pendingCount()).toBe(1)
      yield* TestClock.adjust("1 millis")
      yield* committed.await
      expect(store.pendingCount()).toBe(0)
      store.unsafeOffer(record("lime", "1"))
      yield* Scope.close(scope, Exit.void)
      yield* withStore({ path }, (reopened) =>
        Effect.sync(() =>
          expect(linesOf(reopened.snapshot())).toStrictEqual(linesOf([record("kiwi", "1"), record("lime", "1")]))
        ))
    }))

  it.scoped("forgets records older than retainDays by their client time, on open and when asked", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const path = join(dir, "store.db")
      const day = 86_400
      const now = 1_700_000_000
      yield* TestClock.setTime(now * 1000)
      yield* withStore({ path }, (store) =>
        Effect.sync(() => {
          store.unsafeOffer(record("old", String(now - 3 * day)))
          store.unsafeOffer(record("older", `${now - 5 * day}.999999999`))
          store.unsafeOffer(record("recent", String(now - day)))
          store.unsafeOffer(record("fresh", `${now}.5`))
        }))
      yield* withStore({ path, retainDays: 2 }, (store) =>
        Effect.gen(function*() {
          expect(store.snapshot().map(({ client }) => client).sort()).toStrictEqual(["fresh", "recent"])
          store.unsafeOffer(record("late", String(now - 10 * day)))
          yield* TestClock.adjust(`${1.5 * day} seconds`)
          expect(yield* store.expire).toBe(2)
          expect(store.snapshot().map(({ client }) => client)).toStrictEqual(["fresh"])
          expect(store.digest()).toStrictEqual(LocationStore.digestOf(store.snapshot()))
          // A forgotten client can come back.
          store.unsafeOffer(record("recent", String(now + day)))
        }))
      yield* withStore({ path }, (store) =>
        Effect.sync(() => expect(store.snapshot().map(({ client }) => client).sort()).toStrictEqual(["fresh", "recent"])))
    }))

  it.scoped("serves LocationStore and DurableStore from one layer, which commits as it closes", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const path = join(dir, "store.db")
      const epoch = yield* Effect.gen(function*() {
        const store = yield* LocationStore.LocationStore
        const durable = yield* DurableStore.DurableStore
        expect(store.unsafeOffer(record("kiwi", "1"))).toBe(won)
        expect(durable.pendingCount()).toBe(1)
        return durable.epoch
      }).pipe(Effect.provide(DurableStore.layer({ path })), Effect.scoped)
      const reopened = yield* Effect.gen(function*() {
        const store = yield* LocationStore.LocationStore
        const durable = yield* DurableStore.DurableStore
        return { lines: linesOf(store.snapshot()), epoch: durable.epoch }
      }).pipe(Effect.provide(Layer.fresh(DurableStore.layer({ path }))), Effect.scoped)
      expect(reopened).toStrictEqual({ lines: linesOf([record("kiwi", "1")]), epoch })
    }))

  it.scoped("opens a database with rows that are no AT line: it leaves them out and deletes them", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const path = join(dir, "store.db")
      yield* withStore({ path }, (store) => Effect.sync(() => store.unsafeOffer(record("kiwi", "1"))))
      const raw = DurableDatabase.open({ path, sync: "batch", retainDays: undefined }, 0)
      const insert = raw.db.prepare("INSERT INTO records (seq, client, line, time_s) VALUES (?, ?, ?, 0)")
      for (const [seq, line] of [[7, "AT a b c d"], [8, "AT a b  c d e"], [9, "IAMAT a b c d e"], [10, "AT a b c d e "]] as const) {
        insert.run(seq, `bad-${seq}`, Buffer.from(line, "latin1"))
      }
      raw.unsafeClose()
      yield* withStore({ path }, (store) =>
        Effect.gen(function*() {
          expect(linesOf(store.snapshot())).toStrictEqual(linesOf([record("kiwi", "1")]))
          expect((yield* store.recordsAfter(0)).map(({ seq }) => seq)).toStrictEqual([1])
        }))
    }))

  const arbitraryRecord = fc.record({
    client: fc.constantFrom("a", "b", "c", "d", "e"),
    time: fc.tuple(fc.integer({ min: 0, max: 5 }), fc.constantFrom("", ".5", ".000000001")).map(
      ([seconds, fraction]) => `${seconds}${fraction}`
    ),
    origin: fc.constantFrom("Alford", "Bolden", "Welsh"),
    location: fc.constantFrom("+1+1", "+1.5-2", "-90+180")
  }).map(({ client, location, origin, time }) => record(client, time, origin, location))

  type Step =
    | { readonly _tag: "offer"; readonly record: LocationRecord.LocationRecord }
    | { readonly _tag: "commit" }
    | { readonly _tag: "crash" }
    | { readonly _tag: "restart" }

  const arbitraryStep: fc.Arbitrary<Step> = fc.oneof(
    { weight: 6, arbitrary: arbitraryRecord.map((record) => ({ _tag: "offer" as const, record })) },
    { weight: 2, arbitrary: fc.constant({ _tag: "commit" as const }) },
    { weight: 1, arbitrary: fc.constant({ _tag: "crash" as const }) },
    { weight: 1, arbitrary: fc.constant({ _tag: "restart" as const }) }
  )

  const winnersOf = (offers: ReadonlyArray<LocationRecord.LocationRecord>) => {
    const winners = new Map<string, LocationRecord.LocationRecord>()
    for (const offered of offers) {
      const known = winners.get(offered.client)
      if (known === undefined || LocationRecord.isNewer(offered, known)) winners.set(offered.client, offered)
    }
    return linesOf([...winners.values()])
  }

  it.scoped.prop(
    "offers, commits, crashes and restarts leave the winners of the offers that were committed",
    [fc.array(arbitraryStep, { maxLength: 40 })],
    ([steps]) =>
      Effect.gen(function*() {
        const dir = yield* tempDir
        const path = join(dir, "store.db")
        const open = () => DurableDatabase.open({ path, sync: "batch", retainDays: undefined }, 0)
        // Handles dropped by a crash: left open (never committed, never closed) until the case is done.
        const dropped: Array<DurableDatabase> = []
        yield* Effect.addFinalizer(() => Effect.sync(() => dropped.forEach((handle) => handle.db.close())))
        let store = open()
        const epoch = store.epoch
        let committed: Array<LocationRecord.LocationRecord> = []
        let offered: Array<LocationRecord.LocationRecord> = []
        let committedSeq = 0
        for (const step of steps) {
          switch (step._tag) {
            case "offer":
              store.unsafeOffer(step.record)
              offered.push(step.record)
              break
            case "commit":
              store.unsafeCommit()
              committed = [...committed, ...offered]
              offered = []
              committedSeq = store.lastSeq()
              break
            case "crash":
              store.unsafeDrop()
              dropped.push(store)
              store = open()
              offered = []
              break
            case "restart":
              store.unsafeClose()
              store = open()
              committed = [...committed, ...offered]
              offered = []
              committedSeq = store.lastSeq()
              break
          }
          if (step._tag !== "offer") {
            expect(linesOf(store.latest.snapshot())).toStrictEqual(winnersOf(committed))
            expect(store.latest.digest()).toStrictEqual(LocationStore.digestOf(store.latest.snapshot()))
            expect(store.lastSeq()).toBe(committedSeq)
            expect(store.epoch).toBe(epoch)
          }
        }
        expect(linesOf(store.latest.snapshot())).toStrictEqual(winnersOf([...committed, ...offered]))
        store.unsafeClose()
      }),
    { fastCheck: { numRuns: 60 }, timeout: 30_000 }
  )

  it.scoped("after a real kill -9, every record whose commit was reported is there", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const path = join(dir, "store.db")
      const fixture = fileURLToPath(new URL("./fixtures/offer-until-killed.ts", import.meta.url))
      const repoRoot = fileURLToPath(new URL("../../../", import.meta.url))
      const reported = yield* Effect.async<Array<string>, Error>((resume) => {
        const child = ChildProcess.spawn(
          process.execPath,
          ["--conditions=@herd/source", "--import", "tsx", fixture, path],
          { cwd: repoRoot, stdio: ["ignore", "pipe", "pipe"] }
        )
        let out = ""
        let err = ""
        let killed = false
        child.stdout.on("data", (chunk: Buffer) => {
          out += chunk.toString("latin1")
          // Killed mid-way: while it offers, commits and prints.
          if (!killed && out.length > 200_000) {
            killed = true
            child.kill("SIGKILL")
          }
        })
        child.stderr.on("data", (chunk: Buffer) => {
          err += chunk.toString()
        })
        child.once("exit", (_code, signal) => {
          if (signal !== "SIGKILL") return resume(Effect.fail(new Error(`the child exited by itself: ${err}`)))
          // Only whole lines: the last may be cut by the kill.
          resume(Effect.succeed(out.split("\n").slice(0, -1)))
        })
        return Effect.sync(() => child.kill("SIGKILL"))
      })
      expect(reported.length).toBeGreaterThan(1000)
      yield* withStore({ path }, (store) =>
        Effect.sync(() => {
          const stored = new Set(store.snapshot().map(LocationRecord.formatAtLine))
          const missing = reported.filter((line) => !stored.has(line))
          expect(missing).toStrictEqual([])
          expect(store.lastSeq()).toBe(store.size())
        }))
    }), { timeout: 60_000 })
})
