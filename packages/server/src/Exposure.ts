/**
 * The safe default (PROTOCOL.md section 10, like Redis's protected mode): a
 * server refuses to listen on an address other than loopback without `tls`,
 * unless the operator says `--insecure` (or `insecure: true`). Without TLS
 * anyone who can reach the port can flood records into the whole herd, and
 * every location crosses the network in clear.
 *
 * The admin endpoint (`httpPort`) is plain HTTP with no authentication, and
 * its status and map show every client's location: beyond loopback it too
 * needs `--insecure`, with `tls` or without (put it behind a proxy that
 * authenticates, or reach it over an SSH tunnel, otherwise).
 *
 * A pure check, for the command line and for library users alike.
 */
import { Data, Either } from "effect"
import * as Net from "node:net"
import type { HerdConfigValue } from "./HerdConfig.ts"

export class ExposureError extends Data.TaggedError("ExposureError")<{
  /** The first server that would be exposed. */
  readonly server: string
  readonly host: string
  readonly message: string
}> {}

/**
 * Whether `host` is a loopback address: 127.0.0.0/8 (also written as an
 * IPv4-mapped IPv6 address), ::1, or `localhost`. Anything else, the
 * unspecified 0.0.0.0 and :: included, reaches (or may reach) other
 * machines.
 */
export const isLoopback = (host: string): boolean => {
  const bare = host.trim().toLowerCase().replace(/^\[(.*)\]$/, "$1")
  if (bare === "localhost" || bare === "localhost.") return true
  switch (Net.isIP(bare)) {
    case 4:
      return bare.startsWith("127.")
    case 6: {
      if (bare === "::1" || bare === "0:0:0:0:0:0:0:1") return true
      const mapped = /^(?:0{0,4}:){0,5}:?ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(bare)
      return mapped !== null && mapped[1] !== undefined && mapped[1].startsWith("127.")
    }
    default:
      return false
  }
}

/**
 * Fails, naming the server, its host and `--insecure`, when one of `names`
 * would listen on an address other than loopback while the config has no
 * `tls`, or would serve its admin endpoint there, and neither
 * `config.insecure` nor `insecure` allows it.
 */
export const check = (
  config: Pick<HerdConfigValue, "servers" | "tls" | "insecure">,
  names: ReadonlyArray<string>,
  insecure = false
): Either.Either<void, ExposureError> => {
  if (config.insecure || insecure) return Either.void
  for (const name of names) {
    const address = Object.hasOwn(config.servers, name) ? config.servers[name] : undefined
    if (address === undefined || isLoopback(address.host)) continue
    if (address.httpPort !== undefined) {
      return Either.left(
        new ExposureError({
          server: name,
          host: address.host,
          message:
            `${name}'s admin endpoint (httpPort ${address.httpPort}) would listen on ${address.host}, beyond loopback: it is plain HTTP with no authentication and shows every client's location; drop httpPort, or pass --insecure (insecure: true) to serve it anyway`
        })
      )
    }
    if (config.tls !== undefined) continue
    return Either.left(
      new ExposureError({
        server: name,
        host: address.host,
        message:
          `${name} would listen on ${address.host}, beyond loopback, without tls: anyone who reaches it could rewrite the herd's locations; set tls (herd certs), or pass --insecure (insecure: true) to serve in clear`
      })
    )
  }
  return Either.void
}
