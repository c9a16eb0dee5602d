/**
 * @herd/testkit: a herd in one process, for our tests and for users'.
 */

/** A line client over loopback TCP: send lines, read replies, with bounded waits. */
export * as LineClient from "./LineClient.ts"

/** One server in the test's process, on a free port, with fixed Places answers. */
export * as SingleServer from "./SingleServer.ts"

/** A herd of servers in the test's process, linked as a topology says. */
export * as TestHerd from "./TestHerd.ts"

/** `eventually`: retry a check on the Effect clock until it holds, for what a herd does in its own time. */
export * as Eventually from "./Eventually.ts"
