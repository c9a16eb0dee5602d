/**
 * The deadlines of a server's connections (each session's earliest, a
 * closing connection's linger), kept on the
 * Effect `Clock`: one sweeper fiber per server checks them on a schedule,
 * so a test drives them with `TestClock.adjust` and never sleeps for them.
 *
 * A deadline fires at most one sweep late (`sweepEvery`); every limit it
 * serves is a second or more, so that is well within its slack. Setting and
 * clearing one is a `Set` operation, cheap enough for every read.
 */
import { Clock, Effect, Schedule } from "effect"

/** A deadline set: when it falls due, and what then happens. */
export interface Deadline {
  readonly dueNs: bigint
  readonly fire: () => void
}

export class Deadlines {
  private readonly pending = new Set<Deadline>()
  /** Set once the sweeper has stopped: deadlines are Node timers from then on. */
  private timers: Map<Deadline, ReturnType<typeof setTimeout>> | undefined

  /** The Effect clock's time now, for a deadline's `dueNs`. */
  constructor(readonly nowNs: () => bigint) {}

  /** Calls `fire` once, about `afterMs` from now, unless the deadline is cleared first. */
  set(afterMs: number, fire: () => void): Deadline {
    return this.setAt(this.nowNs() + BigInt(afterMs) * 1_000_000n, fire)
  }

  /** Calls `fire` once, at about `dueNs` on the clock, unless the deadline is cleared first. */
  setAt(dueNs: bigint, fire: () => void): Deadline {
    const deadline = { dueNs, fire }
    if (this.timers === undefined) this.pending.add(deadline)
    else this.startTimer(deadline, Number((dueNs - this.nowNs()) / 1_000_000n))
    return deadline
  }

  clear(deadline: Deadline | undefined): void {
    if (deadline === undefined) return
    this.pending.delete(deadline)
    const timer = this.timers?.get(deadline)
    if (timer !== undefined) {
      clearTimeout(timer)
      this.timers?.delete(deadline)
    }
  }

  /**
   * The server is stopping and its sweeper with it: what is still pending
   * (a closing connection's linger, mostly) goes on as Node timers that do
   * not keep the process alive, so no socket waits forever.
   */
  handOver(): void {
    this.timers = new Map()
    const nowNs = this.nowNs()
    for (const deadline of this.pending) this.startTimer(deadline, Number((deadline.dueNs - nowNs) / 1_000_000n))
    this.pending.clear()
  }

  private startTimer(deadline: Deadline, afterMs: number): void {
    const timer = setTimeout(() => {
      this.timers?.delete(deadline)
      deadline.fire()
    }, Math.max(0, afterMs))
    timer.unref()
    this.timers?.set(deadline, timer)
  }

  /** Fires every deadline that is due; one that throws does not stop the others. */
  sweep(nowNs: bigint): void {
    for (const deadline of this.pending) {
      if (deadline.dueNs > nowNs) continue
      this.pending.delete(deadline)
      try {
        deadline.fire()
      } catch {
        // Each `fire` guards its own connection; nothing is left to do here.
      }
    }
  }

  get size(): number {
    return this.pending.size
  }
}

/** How often the sweeper looks. */
export const sweepEvery = "100 millis"

/**
 * The deadlines of one server and their sweeper, a fiber of the current
 * scope: it stops with the server.
 */
export const makeDeadlines = Effect.gen(function*() {
  const clock = yield* Effect.clock
  const deadlines = new Deadlines(() => clock.unsafeCurrentTimeNanos())
  yield* Effect.addFinalizer(() => Effect.sync(() => deadlines.handOver()))
  yield* Clock.currentTimeNanos.pipe(
    Effect.map((nowNs) => deadlines.sweep(nowNs)),
    Effect.repeat(Schedule.spaced(sweepEvery)),
    Effect.forkScoped
  )
  return deadlines
})
