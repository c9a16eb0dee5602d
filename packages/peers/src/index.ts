export { defaultMaxPendingRecords, layer, layerAlone, make, PeerLinks } from "./PeerLinks.ts"
export type { LinkEvent, Neighbour, PeerLinksOptions } from "./PeerLinks.ts"
export * as SocketAdapter from "./SocketAdapter.ts"
