/**
 * The `herd` command's answers to a user's mistakes, as a real process:
 * exit status 2, one line on stderr starting `herd: ` (a bad config: its
 * `path: message` lines under it), nothing on stdout, and never a stack or
 * an internal error dump. And its help: plain text unless stdout is a
 * terminal and NO_COLOR is unset.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import type { Finished } from "./support.ts"
import { runHerd, spawnInTerminal, tempDir } from "./support.ts"

const expectUsageError = (run: Finished, message: string | RegExp) => {
  expect(run.code, run.stderr).toBe(2)
  expect(run.stdout).toBe("")
  expect(run.stderr).toMatch(/^herd: [^\n]+\n$/)
  expect(run.stderr).not.toMatch(/\bat .*:\d+|_tag|Error:/)
  if (typeof message === "string") expect(run.stderr).toBe(`herd: ${message}\n`)
  else expect(run.stderr).toMatch(message)
}

describe("usage errors", () => {
  it.scopedLive("a missing, unknown or misused command, flag or argument", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const config = join(dir, "herd.json")
      writeFileSync(config, JSON.stringify({ servers: { Alford: { port: 0 }, Bolden: { port: 0 } } }))
      const runs = yield* Effect.all({
        none: runHerd([]),
        unknownCommand: runHerd(["serv", "Alford"]),
        missingName: runHerd(["serve", "--config", config]),
        unknownFlag: runHerd(["serve", "Alford", "--bogus", "--config", config]),
        flagForName: runHerd(["serve", "--bogus"]),
        missingValue: runHerd(["up", "--config"]),
        missingFile: runHerd(["up", "--config", join(dir, "nowhere.json")]),
        unknownServer: runHerd(["serve", "Nope", "--config", config])
      }, { concurrency: 3 })
      expectUsageError(runs.none, "no command given: use serve, up or client (herd --help tells more)")
      expectUsageError(runs.unknownCommand, /^herd: Invalid subcommand for herd - use one of 'serve', 'up', 'client'/)
      expectUsageError(runs.missingName, /^herd: Missing argument <name>/)
      expectUsageError(runs.unknownFlag, /^herd: Received unknown argument: '--bogus'/)
      expectUsageError(runs.flagForName, /^herd: expected <name>, got --bogus/)
      expectUsageError(runs.missingValue, /^herd: Received unknown argument: '--config'/)
      expectUsageError(runs.missingFile, /^herd: Path '.*nowhere\.json' must exist/)
      expectUsageError(runs.unknownServer, `no server "Nope" in ${config} (its servers: Alford, Bolden)`)
    }), 60_000)

  it.scopedLive("a bad config: every problem named, one a line, and exit 2", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const config = join(dir, "herd.json")
      writeFileSync(config, JSON.stringify({
        servers: { Alford: { port: 11800 }, Bolden: { port: 11800 }, Parker: { port: 70000 } },
        links: [["Alford", "Parkr"]]
      }))
      const run = yield* runHerd(["up", "--config", config])
      expect(run).toMatchObject({
        code: 2,
        stdout: "",
        stderr: [
          `herd: config ${config}:`,
          "servers.Parker.port: must be an integer from 0 to 65535",
          ""
        ].join("\n")
      })
      writeFileSync(config, JSON.stringify({
        servers: { Alford: { port: 11800 }, Bolden: { port: 11800 } },
        links: [["Alford", "Parkr"]]
      }))
      expect(yield* runHerd(["up", "--config", config])).toMatchObject({
        code: 2,
        stdout: "",
        stderr: [
          `herd: config ${config}:`,
          `links[0][1]: unknown server "Parkr"`,
          "servers.Bolden: same address as servers.Alford (127.0.0.1:11800)",
          ""
        ].join("\n")
      })
    }), 30_000)

  it.scopedLive("a bad value in the environment", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const config = join(dir, "herd.json")
      writeFileSync(config, JSON.stringify({ servers: { Alford: { port: 0 } }, logDir: join(dir, "logs"), dataDir: join(dir, "data") }))
      const run = yield* runHerd(["serve", "Alford", "--config", config], {
        env: { ...process.env, HERD_PLACES_PROVIDER: "nonsense" }
      })
      expectUsageError(
        run,
        `HERD_PLACES_PROVIDER: "nonsense" is not a provider: use "offline", "google" or "google-legacy"`
      )
    }), 30_000)
})

describe("--help", () => {
  it.scopedLive("is plain text when stdout is not a terminal, or NO_COLOR is set", () =>
    Effect.gen(function*() {
      const { NO_COLOR: _, ...colourful } = process.env
      const [piped, terminal, noColor] = yield* Effect.all([
        runHerd(["--help"], { env: colourful }),
        Effect.scoped(Effect.flatMap(spawnInTerminal(["serve", "--help"], { env: colourful }), (herd) =>
          Effect.map(herd.exited(), (exit) => ({ ...exit, stdout: herd.stdout() })))),
        Effect.scoped(Effect.flatMap(spawnInTerminal(["serve", "--help"], { env: { ...colourful, NO_COLOR: "1" } }), (herd) =>
          Effect.map(herd.exited(), (exit) => ({ ...exit, stdout: herd.stdout() }))))
      ], { concurrency: 3 })
      expect(piped.code).toBe(0)
      expect(piped.stdout).toContain("COMMANDS")
      expect(piped.stdout).toContain("client [--config file] [--tls] [--ca file] <server>")
      expect(piped.stdout).not.toContain("\x1b")
      // On a terminal, colours (so the two checks around this one can fail).
      expect(terminal.code).toBe(0)
      expect(terminal.stdout).toContain("\x1b[")
      expect(noColor.code).toBe(0)
      expect(noColor.stdout).toContain("serve [--config file] [--insecure] <name>")
      expect(noColor.stdout).not.toContain("\x1b")
    }), 30_000)
})
