import { Data, Effect } from "effect"

export class NotYet extends Data.TaggedError("NotYet")<{ readonly message: string }> {}

/**
 * Checks `condition` every few milliseconds of real time until it holds, or
 * fails after `timeoutMs` with `describe()`: for waiting on what another
 * server does (a flood arriving, a link coming up) without sleeping on luck.
 */
export const eventually = <A>(
  condition: Effect.Effect<A | undefined>,
  options: { readonly timeoutMs?: number; readonly describe?: () => string } = {}
): Effect.Effect<A, NotYet> =>
  Effect.gen(function*() {
    const deadline = Date.now() + (options.timeoutMs ?? 5000)
    while (true) {
      const result = yield* condition
      if (result !== undefined) return result
      if (Date.now() > deadline) {
        return yield* new NotYet({
          message: `not within ${options.timeoutMs ?? 5000} ms: ${options.describe?.() ?? "condition"}`
        })
      }
      yield* pause
    }
  })

/** A short real-time pause, the same under TestClock. */
const pause = Effect.async<void>((resume) => {
  const timer = setTimeout(() => resume(Effect.void), 2)
  return Effect.sync(() => clearTimeout(timer))
})
