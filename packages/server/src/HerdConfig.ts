/**
 * The herd's configuration: one schema for `herd.config.ts`, `--config PATH`
 * and library users alike (ARCHITECTURE.md, "Configuration"). A bad value
 * fails at start with a message that names the field, e.g.
 * `links[2][1]: unknown server "Parkr"`.
 */
import { PlacesConfig } from "@herd/places"
import { Context, Effect, Either, ParseResult, Schema } from "effect"

const Port = Schema.Int.pipe(Schema.between(0, 65535, { message: () => "must be an integer from 0 to 65535" }))
const PositiveInt = Schema.Int.pipe(Schema.positive({ message: () => "must be a positive integer" }))

/** Server names travel in AT and PEER lines: one token of printable ASCII. */
const ServerName = Schema.String.pipe(
  Schema.pattern(/^[\x21-\x7e]{1,255}$/, { message: () => "must be 1 to 255 printable ASCII characters" })
)

export const ServerAddress = Schema.Struct({
  host: Schema.optionalWith(Schema.String, { default: () => "127.0.0.1" }),
  port: Port,
  /** The server's HTTP endpoint (metrics, health, status, the live map), on its host; off when absent. */
  httpPort: Schema.optional(Port)
})
export type ServerAddress = typeof ServerAddress.Type

export const ReconnectConfig = Schema.Struct({
  initialMs: Schema.optionalWith(PositiveInt, { default: () => 50 }),
  capMs: Schema.optionalWith(PositiveInt, { default: () => 5000 })
})

export const LimitsConfig = Schema.Struct({
  /** Client connections open at once; past it a new one is closed at once. */
  maxConnections: Schema.optionalWith(PositiveInt, { default: () => 10_000 }),
  /** A partial line held open longer than this closes its connection (slow-loris). */
  partialLineTimeoutMs: Schema.optionalWith(PositiveInt, { default: () => 30_000 }),
  /** Reply bytes waiting for a slow reader before the server stops reading from it (checked after every line). */
  pendingReplyBytes: Schema.optionalWith(PositiveInt, { default: () => 256 * 1024 }),
  /** How far ahead of the server's clock a client time may be (PROTOCOL.md section 3). */
  maxClientAheadMs: Schema.optionalWith(PositiveInt, { default: () => 600_000 })
})

export const LogConfig = Schema.Struct({
  /** How much of the wire the log keeps: every line (`full`), in short (`summary`) or none (`off`). */
  wire: Schema.optionalWith(Schema.Literal("full", "summary", "off"), { default: () => "full" as const }),
  /** The size past which a server's log file is rotated. */
  maxBytes: Schema.optionalWith(PositiveInt, { default: () => 100 * 1024 * 1024 }),
  /** Rotated files kept besides the current one. */
  keep: Schema.optionalWith(Schema.Int.pipe(Schema.between(0, 1000, { message: () => "must be an integer from 0 to 1000" })), {
    default: () => 5
  })
})

export const StoreConfig = Schema.Struct({
  /** `durable` keeps the store in `<dataDir>/<server>.db` (SQLite); `memory` loses it when the server stops. */
  kind: Schema.optionalWith(Schema.Literal("durable", "memory"), { default: () => "durable" as const }),
  /**
   * `batch`: records are committed every few milliseconds (a crash loses at
   * most the last commit interval); `always`: an IAMAT is answered only once
   * its record is committed and fsynced.
   */
  sync: Schema.optionalWith(Schema.Literal("batch", "always"), { default: () => "batch" as const }),
  /** Forget a client not heard from for this many days, by its own client time (default: keep forever). */
  retainDays: Schema.optional(Schema.Number.pipe(Schema.positive({ message: () => "must be a positive number" })))
})

export const TlsConfig = Schema.Struct({
  /** The folder `herd certs --out` wrote: the herd CA's certificate and each server's key and certificate. */
  dir: Schema.String,
  /** Whether a client may speak plain TCP (`optional`) or must speak TLS (`required`) on the server's port. */
  clients: Schema.optionalWith(Schema.Literal("optional", "required"), { default: () => "optional" as const })
})

const HerdConfigFields = Schema.Struct({
  servers: Schema.Record({ key: ServerName, value: ServerAddress }),
  links: Schema.optionalWith(Schema.Array(Schema.Tuple(Schema.String, Schema.String)), { default: () => [] }),
  places: Schema.optionalWith(PlacesConfig.PlacesConfig, { default: () => ({}) }),
  logDir: Schema.optionalWith(Schema.String, { default: () => "logs" }),
  log: Schema.optionalWith(LogConfig, { default: () => Schema.decodeSync(LogConfig)({}) }),
  dataDir: Schema.optionalWith(Schema.String, { default: () => "data" }),
  store: Schema.optionalWith(StoreConfig, { default: () => Schema.decodeSync(StoreConfig)({}) }),
  lineLimit: Schema.optionalWith(PositiveInt, { default: () => 8192 }),
  reconnect: Schema.optionalWith(ReconnectConfig, { default: () => Schema.decodeSync(ReconnectConfig)({}) }),
  limits: Schema.optionalWith(LimitsConfig, { default: () => Schema.decodeSync(LimitsConfig)({}) }),
  /** Mutual TLS between the servers, and TLS for clients that ask for it; plain TCP when absent. */
  tls: Schema.optional(TlsConfig),
  /** Serve on an address other than loopback without `tls`, knowingly (like Redis's protected mode off). */
  insecure: Schema.optionalWith(Schema.Boolean, { default: () => false })
})

export const HerdConfigSchema = HerdConfigFields.pipe(
  Schema.filter((config) => {
    const issues: Array<Schema.FilterIssue> = []
    config.links.forEach((link, index) => {
      link.forEach((name, end) => {
        if (!Object.hasOwn(config.servers, name)) {
          issues.push({ path: ["links", index, end], message: `unknown server ${JSON.stringify(name)}` })
        }
      })
      if (link[0] === link[1]) issues.push({ path: ["links", index], message: "links a server to itself" })
    })
    if (Object.keys(config.servers).length === 0) issues.push({ path: ["servers"], message: "names no server" })
    issues.push(...sharedAddresses(config.servers))
    return issues
  })
)

/**
 * Two servers on one host and port: the second could never listen. The host
 * is compared as written (any case, an IPv6 address with or without
 * brackets); port 0 asks for any free port, so it is never shared.
 */
const sharedAddresses = (servers: { readonly [name: string]: ServerAddress }): Array<Schema.FilterIssue> => {
  const first = new Map<string, string>()
  const issues: Array<Schema.FilterIssue> = []
  for (const [name, { host, port }] of Object.entries(servers)) {
    if (port === 0) continue
    const bare = host.toLowerCase().replace(/^\[(.*)\]$/, "$1")
    const address = `${bare.includes(":") ? `[${bare}]` : bare}:${port}`
    const taken = first.get(address)
    if (taken === undefined) first.set(address, name)
    else {
      issues.push({
        path: ["servers", name],
        message: `same address as ${formatPath(["servers", taken])} (${address})`
      })
    }
  }
  return issues
}

export type HerdConfigInput = typeof HerdConfigSchema.Encoded
export type HerdConfigValue = typeof HerdConfigSchema.Type

export class HerdConfig extends Context.Tag("@herd/server/HerdConfig")<HerdConfig, HerdConfigValue>() {}

export class HerdConfigError extends Schema.TaggedError<HerdConfigError>()("HerdConfigError", {
  source: Schema.String,
  message: Schema.String,
  /** What the file's loader or parser threw, or the schema's `ParseError`, when that is what went wrong. */
  cause: Schema.optional(Schema.Defect)
}) {}

/**
 * Every problem of a config, one per line: `path: message`. An optional field
 * is a union with `undefined`, which adds a second, useless "Expected
 * undefined" issue at the same path: the first issue of each path is kept.
 */
const describeIssues = (error: ParseResult.ParseError): string => {
  const byPath = new Map<string, string>()
  for (const issue of ParseResult.ArrayFormatter.formatErrorSync(error)) {
    const path = issue.path.length === 0 ? "config" : formatPath(issue.path)
    if (!byPath.has(path)) byPath.set(path, issue.message)
  }
  return [...byPath].map(([path, message]) => `${path}: ${message}`).join("\n")
}

const formatPath = (path: ReadonlyArray<PropertyKey>): string =>
  path.map((key, index) =>
    typeof key === "number"
      ? `[${key}]`
      : /^[A-Za-z_$][\w$]*$/.test(String(key))
      ? `${index === 0 ? "" : "."}${String(key)}`
      : `[${JSON.stringify(String(key))}]`
  ).join("")

/** Checks a value against the schema; `source` names where it came from. */
export const decodeConfig = (input: unknown, source: string): Effect.Effect<HerdConfigValue, HerdConfigError> =>
  Either.match(Schema.decodeUnknownEither(HerdConfigSchema, { errors: "all", onExcessProperty: "error" })(input), {
    onLeft: (error) => Effect.fail(new HerdConfigError({ source, message: describeIssues(error), cause: error })),
    onRight: Effect.succeed
  })

/** The neighbours of `name` in the config's links. */
export const neighboursOf = (config: HerdConfigValue, name: string): ReadonlyArray<string> => {
  const neighbours = new Set<string>()
  for (const [a, b] of config.links) {
    if (a === name) neighbours.add(b)
    if (b === name) neighbours.add(a)
  }
  return [...neighbours]
}
