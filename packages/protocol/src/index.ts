/**
 * The herd wire format: lines into typed commands, records into AT lines, the
 * ordering of records, and exact skew arithmetic.
 */
export type { At, Blank, Command, Iamat, Invalid, Peer, Whatsat } from "./Command.ts"
export type { LocationRecord } from "./LocationRecord.ts"
export { contentEnd, parseLine } from "./Parse.ts"
export { layer, Protocol } from "./Protocol.ts"
export { coordinatesOf, formatAtLine, isNewer, recordOf } from "./Record.ts"
export { formatPlacesJson, formatWhatsatReply, invalidReply, printedPlacesBody } from "./Reply.ts"
export { compareTimes, isLaterThan, skewOf } from "./Time.ts"
