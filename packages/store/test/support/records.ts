import type { LocationRecord } from "@herd/protocol"

/** A record as a server named `origin` would make it, with a zero skew: the fields a test varies first. */
export const record = (client: string, time: string, origin = "Alford", location = "+34.068930-118.445127"): LocationRecord.LocationRecord => ({
  origin,
  skew: "+0.000000000",
  client,
  location,
  time
})
