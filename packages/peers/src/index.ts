/**
 * @herd/peers: the links of a server to its neighbours: dialling, the
 * handshake, catch-up and flooding (PROTOCOL.md section 7).
 */

/** The `PeerLinks` service: one supervised, retrying link per neighbour, and `unsafeFlood`. */
export * as PeerLinks from "./PeerLinks.ts"

/** The lines and rules of the extended handshake: `RESUME`, `SINCE`, `MARK`, `DIGEST`, checkpoints. */
export * as Handshake from "./Handshake.ts"

/** One socket's listeners, writes, back-pressure and close, with every callback guarded: for connections and links alike. */
export * as SocketAdapter from "./SocketAdapter.ts"
