/**
 * What the bench's sections share to read a process and print a figure:
 * one copy each, for bench/run.ts, bench/admin.ts and bench/durable.ts.
 */
import { readFileSync } from "node:fs"

/** CPU seconds (user + system, every thread) a process has used so far, from /proc (clock ticks of 10 ms). */
export const cpuSecondsOf = (pid: number): number => {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^.*\) /, "").split(" ")
  // After the command: utime and stime are fields 14 and 15 of the line (1-based), 12 and 13 here.
  return (Number(fields[11]) + Number(fields[12])) / 100
}

/** VmRSS and VmHWM (its peak) of a process, in bytes (Linux). */
export const memoryOf = (pid: number): { readonly rss: number; readonly peak: number } => {
  const status = readFileSync(`/proc/${pid}/status`, "utf8")
  const field = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN) * 1024
  return { rss: field("VmRSS"), peak: field("VmHWM") }
}

export const median = (values: ReadonlyArray<number>): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = sorted.length >> 1
  return sorted.length % 2 === 1 ? (sorted[middle] ?? NaN) : ((sorted[middle - 1] ?? NaN) + (sorted[middle] ?? NaN)) / 2
}

/** A count with thousands separators: 431,984. */
export const grouped = (n: number): string => Math.round(n).toLocaleString("en-US")

export const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(1)} MiB`

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))
