/**
 * Splits a TCP byte stream into LF-terminated lines, with a bound.
 *
 * `Stream.splitLines` and friends neither bound the line length nor keep bytes
 * as bytes; here a partial line is held as the chunks that carry it (no copy
 * until the LF arrives), and a line longer than `limit` bytes (counted without
 * the LF, as PROTOCOL.md section 2 says) is reported as soon as it is known to
 * be too long, so memory per connection never exceeds the limit plus one read.
 */
export class LineFramer {
  private partial: Array<Buffer> = []
  private partialLength = 0

  constructor(readonly limit: number) {}

  /** Bytes of an unfinished line held from earlier chunks. */
  get pendingBytes(): number {
    return this.partialLength
  }

  /**
   * Feeds one chunk. Calls `onLine` for each complete line in order, as the
   * range `bytes[start, end)` (without its LF), and answers `false` as soon as
   * a line exceeds the limit: the caller must then stop feeding this
   * connection. A line within the chunk is handed over in place: no view or
   * copy is made of it.
   */
  push(chunk: Buffer, onLine: (bytes: Buffer, start: number, end: number) => void): boolean {
    let start = 0
    let newline = chunk.indexOf(10)
    while (newline !== -1) {
      const length = this.partialLength + newline - start
      if (length > this.limit) return false
      if (this.partialLength === 0) {
        onLine(chunk, start, newline)
      } else {
        this.partial.push(chunk.subarray(start, newline))
        onLine(Buffer.concat(this.partial, length), 0, length)
        this.partial = []
        this.partialLength = 0
      }
      start = newline + 1
      newline = chunk.indexOf(10, start)
    }
    if (start < chunk.length) {
      this.partialLength += chunk.length - start
      if (this.partialLength > this.limit) return false
      // A copy, so that a slow sender's one-byte reads do not each keep a
      // whole read buffer alive.
      this.partial.push(chunk.slice(start))
    }
    return true
  }
}
