/**
 * What an earlier run of this test left when it could not clean up (killed
 * with SIGKILL, a second Ctrl-C): the servers it started, found by the
 * bundle copy only that run used (its pid in the name), that copy, and its
 * temporary directory. A live run's (its pid alive) are left alone.
 */
import { Effect } from "effect"
import { readdirSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

export const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    // EPERM: alive, someone else's.
    return typeof error === "object" && error !== null && "code" in error && error.code === "EPERM"
  }
}

export const pinnedBundleName = (pid: number) => `herd-netns-${pid}.mjs`
export const tempPrefix = (pid: number) => `herd-netns-${pid}-`

const deadRuns = (names: ReadonlyArray<string>, pattern: RegExp): Array<{ readonly name: string; readonly pid: number }> =>
  names.flatMap((name) => {
    const match = pattern.exec(name)
    const pid = Number(match?.[1])
    return match === null || !Number.isInteger(pid) || pid === process.pid || isAlive(pid) ? [] : [{ name, pid }]
  })

const list = (dir: string): Array<string> => {
  try {
    return readdirSync(dir)
  } catch {
    return []
  }
}

export const removeRunLeftovers = (repository: string) =>
  Effect.sync(() => {
    const dist = join(repository, "packages/cli/dist")
    const bundles = deadRuns(list(dist), /^herd-netns-(\d+)\.mjs$/)
    const removed: Array<string> = []
    if (bundles.length > 0) {
      const stale = new Set(bundles.map((bundle) => join(dist, bundle.name)))
      for (const entry of list("/proc")) {
        if (!/^\d+$/.test(entry)) continue
        let args: Array<string> = []
        try {
          args = readFileSync(join("/proc", entry, "cmdline"), "utf8").split("\0")
        } catch {
          continue
        }
        if (!args.some((arg) => stale.has(arg))) continue
        try {
          process.kill(Number(entry), "SIGKILL")
          removed.push(`process ${entry}`)
        } catch {
          // Gone meanwhile.
        }
      }
      for (const bundle of stale) rmSync(bundle, { force: true })
      removed.push(`${stale.size} pinned bundle(s)`)
    }
    for (const dir of deadRuns(list(tmpdir()), /^herd-netns-(\d+)-/)) {
      rmSync(join(tmpdir(), dir.name), { recursive: true, force: true })
      removed.push(join(tmpdir(), dir.name))
    }
    return removed
  })
