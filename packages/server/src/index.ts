/**
 * @herd/server: one server of a herd: its config, its listener and
 * connections, its event log, metrics and TLS.
 */

/** The `HerdServer` service and its layers: a server of the config, with its store, links and Places. */
export * as HerdServer from "./HerdServer.ts"

/** The herd config: its schema, the `HerdConfig` service, decoding with errors that name the field. */
export * as HerdConfig from "./HerdConfig.ts"

/** Loading a herd config from a `.ts`, `.mts`, `.js`, `.mjs` or `.json` file. */
export * as ConfigFile from "./ConfigFile.ts"

/** The `EventLog` service: the server's JSON-lines log (wire lines, events), in a file or in memory. */
export * as EventLog from "./EventLog.ts"

/** What a server counts, and its Prometheus metrics. */
export * as Metrics from "./Metrics.ts"

/** Which addresses a server may listen on without TLS (loopback, or `--insecure`). */
export * as Exposure from "./Exposure.ts"

/** A herd's certificates and TLS dialling. */
export * as Tls from "./Tls.ts"
