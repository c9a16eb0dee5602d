/**
 * The `herd` command as a real child process, for the tests of this package:
 * spawn it, read what it prints, wait for its exit with a bound, and kill
 * whatever is left when the test's scope ends. Plus plain loopback listeners
 * and temporary folders, released the same way.
 */
import { Eventually } from "@herd/testkit"
import { Deferred, Duration, Effect, Exit } from "effect"
import type { Scope } from "effect"
import * as ChildProcess from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import * as Net from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"

export const bin = fileURLToPath(new URL("../bin/herd.mjs", import.meta.url))
export const repoRoot = fileURLToPath(new URL("../../../", import.meta.url))

/** Real-time polling (the server is another process), for up to `timeoutMs`. */
export const until = (check: () => boolean, what: string, timeoutMs = 10_000) =>
  Eventually.eventually(Effect.sync(() => check() || undefined), { timeoutMs, describe: () => what })

export const tempDir: Effect.Effect<string, never, Scope.Scope> = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "herd-cli-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

export interface Listener {
  readonly port: number
  /** Everything received, on every connection, as latin1. */
  readonly received: () => string
  /** Connections accepted so far, but for the probes of `settle`. */
  readonly connections: () => number
  /** Whether a connection has been ended or closed by the other side or by this one. */
  readonly closed: () => boolean
  /**
   * Waits for a probe connection of its own to be accepted and closed: every
   * connection made before it has been accepted (and counted) by then.
   */
  readonly settle: Effect.Effect<void>
}

/**
 * A plain listener on a free port of `host` (127.0.0.1 by default), doing
 * `onConnection` with each socket (nothing: it only reads).
 */
export const listen = (
  options: {
    readonly host?: string
    /** Keep a connection open for writing after the peer ended its side (default: end it too). */
    readonly allowHalfOpen?: boolean
    readonly onConnection?: (socket: Net.Socket) => void
  } = {}
): Effect.Effect<Listener, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<Listener & { readonly server: Net.Server; readonly sockets: Set<Net.Socket> }>((resume) => {
      const host = options.host ?? "127.0.0.1"
      let text = ""
      let connections = 0
      let probes = 0
      let closed = false
      const sockets = new Set<Net.Socket>()
      const server = Net.createServer({ allowHalfOpen: options.allowHalfOpen ?? false }, (socket) => {
        connections++
        sockets.add(socket)
        socket.on("data", (chunk: Buffer) => {
          text += chunk.toString("latin1")
        })
        socket.on("error", () => {})
        socket.on("end", () => {
          closed = true
        })
        socket.on("close", () => {
          closed = true
          sockets.delete(socket)
        })
        options.onConnection?.(socket)
      })
      server.listen(0, host, () => {
        const address = server.address()
        const port = typeof address === "object" && address !== null ? address.port : 0
        // Accepted in order: once the probe is, every connection made before it is too.
        const settle = Effect.suspend(() => {
          const before = connections
          probes++
          const probe = Net.connect({ host, port }, () => probe.destroy())
          probe.on("error", () => {})
          return until(() => connections > before, "the listener to accept a probe", 5000).pipe(Effect.orDie)
        })
        resume(Effect.succeed({
          server,
          sockets,
          port,
          received: () => text,
          connections: () => connections - probes,
          closed: () => closed,
          settle
        }))
      })
    }),
    ({ server, sockets }) =>
      Effect.async<void>((resume) => {
        // A listener's close waits for its connections: end them.
        sockets.forEach((socket) => socket.destroy())
        server.close(() => resume(Effect.void))
      })
  )

/** A port that was free a moment ago (nothing listens on it). */
export const freePort: Effect.Effect<number> = Effect.scoped(Effect.map(listen(), ({ port }) => port))

export interface Exited {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  /** When it exited (Date.now()). */
  readonly at: number
}

export interface HerdProcess {
  readonly child: ChildProcess.ChildProcessWithoutNullStreams
  readonly stdout: () => string
  readonly stderr: () => string
  /** Its exit, once its output is all read; fails past `timeoutMs`. */
  readonly exited: (timeoutMs?: number) => Effect.Effect<Exited, Error>
}

export interface SpawnOptions {
  readonly cwd?: string
  readonly env?: NodeJS.ProcessEnv
  /** A process group of its own, so that the whole tree can be signalled and killed. */
  readonly detached?: boolean
}

/**
 * Spawns `command args` (by default `node bin/herd.mjs args`); when the
 * scope ends, whatever is left of it is killed (its whole group when
 * detached).
 */
export const spawn = (
  args: ReadonlyArray<string>,
  options: SpawnOptions & { readonly command?: string } = {}
): Effect.Effect<HerdProcess, never, Scope.Scope> =>
  Effect.gen(function*() {
    const done = yield* Deferred.make<Exited>()
    const child = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const command = options.command ?? process.execPath
        const child = ChildProcess.spawn(command, options.command === undefined ? [bin, ...args] : [...args], {
          cwd: options.cwd ?? repoRoot,
          env: options.env ?? process.env,
          detached: options.detached ?? false
        })
        child.on("close", (code, signal) => Deferred.unsafeDone(done, Exit.succeed({ code, signal, at: Date.now() })))
        return child
      }),
      (child) =>
        Effect.sync(() => {
          try {
            if (options.detached === true && child.pid !== undefined) process.kill(-child.pid, "SIGKILL")
            else child.kill("SIGKILL")
          } catch {
            // Already gone.
          }
        })
    )
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString()
    })
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString()
    })
    return {
      child,
      stdout: () => stdout,
      stderr: () => stderr,
      exited: (timeoutMs = 10_000) =>
        Deferred.await(done).pipe(
          Effect.timeoutFail({
            duration: Duration.millis(timeoutMs),
            onTimeout: () => new Error(`herd ${args.join(" ")} still running after ${timeoutMs} ms: ${stdout}${stderr}`)
          })
        )
    }
  })

export interface Finished extends Exited {
  readonly stdout: string
  readonly stderr: string
  /** How long it ran, in milliseconds. */
  readonly ms: number
}

/** Runs `herd args` to its end, stdin closed at once unless `input` is given. */
export const runHerd = (
  args: ReadonlyArray<string>,
  options: SpawnOptions & { readonly input?: string; readonly timeoutMs?: number } = {}
): Effect.Effect<Finished, Error> =>
  Effect.scoped(Effect.gen(function*() {
    const started = Date.now()
    const herd = yield* spawn(args, options)
    herd.child.stdin.end(options.input ?? "")
    const exited = yield* herd.exited(options.timeoutMs)
    return { ...exited, stdout: herd.stdout(), stderr: herd.stderr(), ms: exited.at - started }
  }))

/** Quotes a word for `sh -c`. */
export const shellQuote = (word: string): string => `'${word.replaceAll("'", `'\\''`)}'`

/**
 * `herd args` with a terminal for its stdin, stdout and stderr: run under
 * `script` (util-linux), whose own stdin is the pipe the test writes to.
 * What the terminal shows comes out on `stdout()`, stderr's lines included.
 */
export const spawnInTerminal = (
  args: ReadonlyArray<string>,
  options: SpawnOptions = {}
): Effect.Effect<HerdProcess, never, Scope.Scope> =>
  spawn(
    ["-qec", [process.execPath, bin, ...args].map(shellQuote).join(" "), "/dev/null"],
    { ...options, command: "script" }
  )
