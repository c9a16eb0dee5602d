/**
 * The herd wire format: lines into typed commands, records into AT lines, the
 * ordering of records, and exact skew arithmetic.
 */
export type { At, Blank, Command, Iamat, Invalid, Peer, Whatsat } from "./Command.ts"
export type { LocationRecord } from "./LocationRecord.ts"
export { contentEnd, makeParser, parseLine } from "./Parse.ts"
export { layer, make, Protocol } from "./Protocol.ts"
export { coordinatesOf, formatAtLine, isNewer, recordOf } from "./Record.ts"
export { formatPlacesJson, formatWhatsatReply, invalidReply, makeBodyPrinter, printedPlacesBody } from "./Reply.ts"
export { compareTimes, isLaterThan, receiveTime, skewOf, timeLimit } from "./Time.ts"
export type { ReceiveTime, TimeLimit } from "./Time.ts"
