/**
 * The default herd (PROTOCOL.md section 1): five servers on loopback and the
 * links between them, each with its admin endpoint (metrics, health,
 * status, the live map) on the HTTP port 100 above its own. `herd up` runs it when there is no `--config` and no
 * `herd.config.ts` in the working folder, so an installed command needs no
 * file of ours; this repository's `herd.config.ts` default-exports it.
 */
import type { HerdConfig } from "@herd/server"

export const defaultHerd = {
  servers: {
    Alford: { host: "127.0.0.1", port: 11800, httpPort: 11900 },
    Bolden: { host: "127.0.0.1", port: 11801, httpPort: 11901 },
    Hamilton: { host: "127.0.0.1", port: 11802, httpPort: 11902 },
    Parker: { host: "127.0.0.1", port: 11803, httpPort: 11903 },
    Welsh: { host: "127.0.0.1", port: 11804, httpPort: 11904 }
  },
  links: [
    ["Alford", "Parker"],
    ["Alford", "Welsh"],
    ["Bolden", "Parker"],
    ["Bolden", "Welsh"],
    ["Hamilton", "Parker"]
  ],
  // No provider named: offline without an API key, Google (New) with one.
  places: { timeoutMs: 5000, cacheTtlMs: 30000 },
  logDir: "logs",
  lineLimit: 8192,
  reconnect: { initialMs: 50, capMs: 5000 }
} satisfies HerdConfig.HerdConfigInput
