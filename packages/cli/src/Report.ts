/**
 * What the `herd` command says to its user when something is wrong: one line
 * on stderr, `herd: ...`, and an exit status: 2 for a usage error (a bad flag
 * or argument, a bad config or environment, a server the config does not
 * name), 1 for a failure at run time (an address in use, a server that
 * cannot be reached or that closed the connection).
 */
import { Data, Effect } from "effect"

/** A command line, config or environment the user must fix: exit status 2. */
export class UsageError extends Data.TaggedError("UsageError")<{
  readonly message: string
  /** The error it was made from (a file that cannot be read, a config that does not decode), when there is one. */
  readonly cause?: unknown
}> {}

/**
 * Writes one line of herd's own to stderr. Not through `Console.error`: the
 * command line library prints its usage errors there, multi-line, and `main`
 * silences that channel to say them in one line itself.
 */
export const printLine = (message: string): Effect.Effect<void> =>
  Effect.sync(() => {
    process.stderr.write(`herd: ${message}\n`)
  })

/** `host:port`, with an IPv6 host in brackets. */
export const formatAddress = (host: string, port: number): string =>
  host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`
