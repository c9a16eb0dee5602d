/**
 * Running the system's commands (`ip`, `iptables`) for the namespace test:
 * every call bounded in time, its failure one readable line that keeps its
 * cause.
 */
import * as Command from "@effect/platform/Command"
import { Data, Duration, Effect, Stream } from "effect"

export class NetnsTestError extends Data.TaggedError("NetnsTestError")<{
  readonly reason: "Prerequisite" | "Setup" | "Server" | "Client" | "Convergence" | "Target"
  readonly message: string
  readonly cause?: unknown
}> {}

/** An error of any kind in a few words, for the one line the test fails with. */
export const describe = (error: unknown): string => {
  if (error instanceof NetnsTestError) return error.message
  if (typeof error === "object" && error !== null && "message" in error && typeof error.message === "string") {
    return error.message
  }
  return String(error)
}

const text = <E>(stream: Stream.Stream<Uint8Array, E>) =>
  stream.pipe(Stream.decodeText(), Stream.runFold("", (all, chunk) => all + chunk))

export interface Ran {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

/** Runs a command to its end (at most `timeoutMs`), whatever its exit status. */
export const run = (command: string, args: ReadonlyArray<string>, timeoutMs = 15_000) =>
  Effect.scoped(
    Effect.gen(function*() {
      const process = yield* Command.start(Command.make(command, ...args))
      const [stdout, stderr, code] = yield* Effect.all([text(process.stdout), text(process.stderr), process.exitCode], {
        concurrency: "unbounded"
      })
      return { code, stdout, stderr } satisfies Ran
    })
  ).pipe(
    Effect.timeoutFail({
      duration: Duration.millis(timeoutMs),
      onTimeout: () => new Error(`no end within ${timeoutMs} ms`)
    }),
    Effect.mapError((cause) =>
      new NetnsTestError({ reason: "Setup", message: `${command} ${args.join(" ")}: ${describe(cause)}`, cause })
    )
  )

/** Runs a command that must succeed; its standard output. */
export const must = (command: string, args: ReadonlyArray<string>, timeoutMs?: number) =>
  run(command, args, timeoutMs).pipe(
    Effect.filterOrFail(
      (ran) => ran.code === 0,
      (ran) =>
        new NetnsTestError({
          reason: "Setup",
          message: `${command} ${args.join(" ")} exited ${ran.code}: ${(ran.stderr.trim() || ran.stdout.trim()).split("\n")[0] ?? ""}`
        })
    ),
    Effect.map((ran) => ran.stdout)
  )

/** Runs a command in cleanup: its failure is only noted, so the rest of the cleanup goes on. */
export const bestEffort = (command: string, args: ReadonlyArray<string>) =>
  run(command, args, 10_000).pipe(Effect.asVoid, Effect.catchAll(() => Effect.void))
