// pbf 3 ships no types. This declares only the reader's part that
// gazetteer.ts uses (see node_modules/pbf/index.js).
declare module "pbf" {
  class Pbf {
    constructor(buffer: Uint8Array)
    /** The read position, in bytes. */
    pos: number
    readonly length: number
    readVarint(): number
    readSVarint(): number
    /** Reads a length-prefixed message, calling `readField` for each field; a field it leaves unread is skipped. */
    readMessage<T>(readField: (tag: number, result: T, pbf: Pbf) => void, result: T): T
  }
  export = Pbf
}
