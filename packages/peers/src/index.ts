export { defaultMaxPendingRecords, layer, layerAlone, make, PeerLinks } from "./PeerLinks.ts"
export type { LinkCounters, LinkEvent, Neighbour, PeerLinksOptions } from "./PeerLinks.ts"
export * as SocketAdapter from "./SocketAdapter.ts"
export * as Handshake from "./Handshake.ts"
