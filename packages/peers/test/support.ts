import type { LocationRecord } from "@herd/protocol"

/** A record of Alford's for `client` at client time `time`. */
export const record = (client: string, time: string): LocationRecord.LocationRecord => ({
  origin: "Alford",
  skew: "+0.000000000",
  client,
  location: "+1+1",
  time
})
