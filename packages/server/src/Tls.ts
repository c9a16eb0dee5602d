/**
 * The TLS of a herd (PROTOCOL.md section 10): the certificates of `tls.dir`
 * and their names, loading them into secure contexts, the identity a peer's
 * certificate proves, and dialling a server or a peer over TLS. What a
 * server does with the first bytes of an accepted socket (the sniff, its
 * handshake) stays in `internal/Tls.ts`.
 */
export {
  accept,
  authorizePeer,
  caCertFile,
  caKeyFile,
  clientContext,
  defaultHandshakeTimeout,
  dial,
  dialPeer,
  load,
  peerIdentity,
  serverFiles,
  serverNamesOf,
  serverUri,
  TlsError
} from "./internal/Tls.ts"
export type { Accepted, Credentials, DialOptions, PeerIdentity, TlsErrorReason } from "./internal/Tls.ts"
