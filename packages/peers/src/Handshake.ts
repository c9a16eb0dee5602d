/**
 * The extended peer handshake (README, "Catch-up by checkpoint"): a few
 * lines besides `PEER` and `AT` that two servers of this herd exchange on a
 * link, so that a link resumes where it left off and both ends can show
 * that they hold the same store.
 *
 * On the link A dialled to B:
 *
 *   A: PEER A                          (as ever)
 *   A: RESUME                          A speaks the extension (an old-style receiver drops the line, PROTOCOL.md section 7)
 *   B: SINCE <epoch> <seq>             B has applied A's records up to <seq> of A's store <epoch> ("-" 0: none)
 *   A: CATCHUP <records>               about this many records follow (B is not caught up until the MARK)
 *   A: AT ...                          the records accepted after <seq> (or all, if the epoch is not A's), then live
 *   A: CHECKPOINT <epoch> <seq>        after each slice of an incremental catch-up: every record up to <seq> is on this link
 *   A: MARK <epoch> <seq>              every record of A's store up to <seq> is now on this link
 *   A, B: DIGEST <count> <digest>      each end's store, every beat when idle: the heartbeat
 *   B: CHECKPOINT                      B is stopping: where does it stand?
 *   A: CHECKPOINT <epoch> <seq>        a MARK, once every record A sent before it is committed
 *
 * A dialler that gets no `SINCE` in time speaks the old style: full catch-up,
 * then AT lines only. A receiver says nothing unless asked (`RESUME`), so an
 * old-style dialler never hears a line on its link.
 */
import type { DurableStore, LocationStore } from "@herd/store"
import { Deferred, Duration, Effect, Fiber } from "effect"

/** The receiver's checkpoint for the sender's store: `epoch` "-" for none. */
export interface Checkpoint {
  readonly epoch: string
  readonly seq: number
}

export const noCheckpoint: Checkpoint = { epoch: "-", seq: 0 }

export type LinkLine =
  | { readonly _tag: "Since"; readonly checkpoint: Checkpoint }
  | { readonly _tag: "Mark"; readonly checkpoint: Checkpoint }
  | { readonly _tag: "Digest"; readonly digest: LocationStore.StoreDigest }
  | { readonly _tag: "CatchUp"; readonly records: number }
  | { readonly _tag: "Resume" }
  | { readonly _tag: "AskCheckpoint" }
  | { readonly _tag: "Checkpoint"; readonly checkpoint: Checkpoint }

/** An epoch is one printable token; a seq a decimal number that stays exact. */
const epochPattern = /^[\x21-\x7e]{1,64}$/
const seqPattern = /^\d{1,15}$/
const digestPattern = /^[0-9a-f]{16}$/

/** Reads a line of the handshake (without its LF); anything else is `undefined`. */
export const parseLinkLine = (line: string): LinkLine | undefined => {
  if (line === "RESUME") return resume
  if (line === "CHECKPOINT") return askCheckpoint
  const fields = line.split(" ")
  if (fields.length === 2 && fields[0] === "CATCHUP" && seqPattern.test(fields[1] ?? "")) {
    return { _tag: "CatchUp", records: Number(fields[1]) }
  }
  if (fields.length !== 3) return undefined
  const [tag, first = "", second = ""] = fields
  switch (tag) {
    case "SINCE":
    case "MARK":
    case "CHECKPOINT":
      if (!epochPattern.test(first) || !seqPattern.test(second)) return undefined
      return { _tag: checkpointTags[tag], checkpoint: { epoch: first, seq: Number(second) } }
    case "DIGEST":
      if (!seqPattern.test(first) || !digestPattern.test(second)) return undefined
      return { _tag: "Digest", digest: { count: Number(first), digest: second } }
    default:
      return undefined
  }
}

const resume: LinkLine = { _tag: "Resume" }
const askCheckpoint: LinkLine = { _tag: "AskCheckpoint" }
const checkpointTags = { SINCE: "Since", MARK: "Mark", CHECKPOINT: "Checkpoint" } as const

export const resumeLine = "RESUME\n"
export const sinceLine = (checkpoint: Checkpoint): string => `SINCE ${checkpoint.epoch} ${checkpoint.seq}\n`
export const markLine = (checkpoint: Checkpoint): string => `MARK ${checkpoint.epoch} ${checkpoint.seq}\n`
export const digestLine = (digest: LocationStore.StoreDigest): string => `DIGEST ${digest.count} ${digest.digest}\n`
export const catchUpLine = (records: number): string => `CATCHUP ${records}\n`
export const askCheckpointLine = "CHECKPOINT\n"
export const checkpointLine = (checkpoint: Checkpoint): string => `CHECKPOINT ${checkpoint.epoch} ${checkpoint.seq}\n`

/**
 * How long a stopping server waits for its neighbours' answers to
 * `CHECKPOINT`: a commit's time under load, with room to spare. A neighbour
 * that does not answer in time leaves the checkpoint its last `MARK` gave.
 */
export const checkpointWaitMs = 2000

/**
 * Waits for `done`, at most `ms`, inside a finalizer. A finalizer runs
 * uninterruptibly, and one that runs because its fiber was interrupted (a
 * SIGTERM) would take that interruption at once if its wait were made
 * interruptible: so the bound is a timer of its own, in a fiber of its own.
 */
export const awaitAtMost = (done: Deferred.Deferred<void>, ms: number): Effect.Effect<void> =>
  Effect.gen(function*() {
    const timer = yield* Effect.forkDaemon(Effect.interruptible(
      Effect.sleep(Duration.millis(ms)).pipe(Effect.zipRight(Deferred.succeed(done, undefined)))
    ))
    yield* Deferred.await(done)
    yield* Fiber.interruptFork(timer)
  })

/** How often each end of an extended link says `DIGEST` (its heartbeat). */
export const beatMs = 1000
/** Silence on an extended link past this many beats: the other end is gone, whatever TCP says. */
export const silentBeats = 3

/**
 * Whether a beat that comes `sinceLastMs` after the one before is late by
 * more than half a beat: the process itself stood still, and silence
 * measured across that stall says nothing of the neighbour.
 */
export const isLate = (sinceLastMs: number): boolean => sinceLastMs > beatMs * 1.5

/**
 * Judges, beat by beat, whether two ends of a link hold different stores
 * for longer than records take to flow: only digests that both stayed the
 * same for `stableBeats` beats in a row, yet differ, are a divergence (under
 * a steady load both change every beat, and are never compared).
 */
export class DivergenceWatch {
  private lastTheirs: LocationStore.StoreDigest | undefined
  private lastOurs: LocationStore.StoreDigest | undefined
  private stable = 0

  constructor(readonly stableBeats = 5) {}

  /** One beat's digests: answers whether they now count as diverged. */
  observe(theirs: LocationStore.StoreDigest, ours: LocationStore.StoreDigest): boolean {
    const unchanged = this.lastTheirs !== undefined && this.lastOurs !== undefined &&
      sameDigest(theirs, this.lastTheirs) && sameDigest(ours, this.lastOurs)
    this.lastTheirs = theirs
    this.lastOurs = ours
    if (sameDigest(theirs, ours) || !unchanged) {
      this.stable = 0
      return false
    }
    this.stable++
    return this.stable >= this.stableBeats
  }

  reset(): void {
    this.stable = 0
    this.lastTheirs = undefined
    this.lastOurs = undefined
  }
}

/**
 * Where a receiver stands with each neighbour's store: the checkpoints it
 * answers `SINCE` with. A durable store keeps them in the same commit as
 * the records they cover; in memory they last as long as the process.
 */
export interface Checkpoints {
  readonly get: (peer: string) => Checkpoint
  /** The neighbour's `MARK`: every record of its store up to `checkpoint.seq` has been applied here. */
  readonly unsafeNote: (peer: string, checkpoint: Checkpoint) => void
  /** Forgets the checkpoint: the next link from `peer` sends everything. */
  readonly unsafeForget: (peer: string) => void
}

export const makeMemoryCheckpoints = (): Checkpoints => {
  const byPeer = new Map<string, Checkpoint>()
  return {
    get: (peer) => byPeer.get(peer) ?? noCheckpoint,
    unsafeNote: (peer, checkpoint) => {
      byPeer.set(peer, checkpoint)
    },
    unsafeForget: (peer) => {
      byPeer.delete(peer)
    }
  }
}

/** The checkpoints a durable store keeps, in the commits of the records they cover (they outlive a restart). */
export const durableCheckpoints = (durable: DurableStore.DurableStoreService): Checkpoints => ({
  get: (peer) => durable.checkpointOf(peer) ?? noCheckpoint,
  unsafeNote: (peer, checkpoint) => durable.unsafeNoteCheckpoint(peer, checkpoint),
  unsafeForget: (peer) => durable.unsafeNoteCheckpoint(peer, undefined)
})

export const sameDigest = (a: LocationStore.StoreDigest, b: LocationStore.StoreDigest): boolean => a.count === b.count && a.digest === b.digest
