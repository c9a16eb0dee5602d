/**
 * What the scenarios need of the hosts the herd runs on, whether five
 * network namespaces (Hosts.ts) or, where the machine cannot make them,
 * loopback with stalling proxies between the servers (Loopback.ts).
 */
import type { Effect } from "effect"
import type { NetnsTestError } from "./Shell.ts"

export interface Address {
  readonly host: string
  readonly port: number
  readonly httpPort: number
}

export interface Network {
  readonly kind: "namespaces" | "loopback"
  /** One line: what the hosts are. */
  readonly description: string
  /** Where the test reaches a server (its port and admin endpoint). */
  readonly addressOf: (name: string) => Address
  /** The `servers` of one server's config: itself where it listens, each other server where it dials it. */
  readonly viewOf: (name: string) => Record<string, Address>
  /** What runs a process on a server's host, before `node ...`. */
  readonly launcherOf: (name: string) => ReadonlyArray<string>
  /** Cuts a server off from every other (its links stall, they do not close); the test still reaches it. */
  readonly partition: (name: string) => Effect.Effect<void, NetnsTestError>
  readonly heal: (name: string) => Effect.Effect<void, NetnsTestError>
  /** Starts counting the bytes `name` receives from `from` on both their links. */
  readonly countLinkBytes: (name: string, from: string) => Effect.Effect<void, NetnsTestError>
  /** The bytes counted so far, and what they are. */
  readonly linkBytes: (name: string) => Effect.Effect<number, NetnsTestError>
  readonly bytesAre: string
}
