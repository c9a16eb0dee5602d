/**
 * @herd/admin: the HTTP endpoint of a herd server: Prometheus metrics,
 * readiness, status and a live map of the herd.
 */
export * as AdminServer from "./AdminServer.ts"
export * as Positions from "./Positions.ts"
export * as Prometheus from "./Prometheus.ts"
export * as Status from "./Status.ts"
