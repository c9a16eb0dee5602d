/**
 * Splits a TCP byte stream into LF-terminated lines, with a bound.
 *
 * `Stream.splitLines` and friends neither bound the line length nor keep bytes
 * as bytes; here a partial line is held as the chunks that carry it (no copy
 * until the LF arrives), and a line longer than `limit` bytes (counted without
 * the LF, as PROTOCOL.md section 2 says) is known as soon as it is too long,
 * so memory per connection never exceeds the limit plus one read.
 *
 * What happens to a line that is too long depends on the other side: a
 * client's connection is closed (the caller is told, `tooLong`); a
 * neighbour's link skips the line to its LF without holding it (section 7:
 * closing a link over one line would only make catch-up resend it).
 */
/** Where a framer hands each complete line: answers whether to go on to the next. */
export interface LineSink {
  onLine(bytes: Buffer, start: number, end: number): boolean
}

export class LineFramer {
  private partial: Array<Buffer> = []
  private partialLength = 0
  /** Set while the rest of a too-long line is skipped, up to its LF. */
  private skipping = false
  /** When set, a too-long line is reported here and skipped instead of ending the stream. */
  private onSkipped: (() => void) | undefined

  constructor(readonly limit: number) {}

  /** Bytes of an unfinished line held from earlier chunks. */
  get pendingBytes(): number {
    return this.partialLength
  }

  /** From now on, a line over the limit is skipped to its LF and reported to `onSkipped`. */
  skipTooLongLines(onSkipped: () => void): void {
    this.onSkipped = onSkipped
  }

  /**
   * Feeds one chunk. Calls `sink.onLine` for each complete line in order, as the
   * range `bytes[start, end)` (without its LF); a line within the chunk is
   * handed over in place, with no view or copy made of it. `onLine` answers
   * whether to go on: `false` stops right after that line.
   *
   * Answers how many bytes of the chunk were taken: all of them, or fewer
   * when `onLine` stopped (the caller feeds the rest later), or `tooLong` as
   * soon as a line exceeds the limit, unless too-long lines are skipped: the
   * caller must then stop feeding this connection.
   */
  push(chunk: Buffer, sink: LineSink): number {
    let start = 0
    let newline = chunk.indexOf(10)
    if (this.skipping) {
      if (newline === -1) return chunk.length
      this.skipping = false
      start = newline + 1
      newline = chunk.indexOf(10, start)
    }
    while (newline !== -1) {
      const length = this.partialLength + newline - start
      let goOn = true
      if (length > this.limit) {
        if (this.onSkipped === undefined) return tooLong
        this.dropPartial()
        this.onSkipped()
      } else if (this.partialLength === 0) {
        goOn = sink.onLine(chunk, start, newline)
      } else {
        this.partial.push(chunk.subarray(start, newline))
        const line = Buffer.concat(this.partial, length)
        this.dropPartial()
        goOn = sink.onLine(line, 0, length)
      }
      start = newline + 1
      if (!goOn) return start
      newline = chunk.indexOf(10, start)
    }
    if (start < chunk.length) {
      this.partialLength += chunk.length - start
      if (this.partialLength > this.limit) {
        if (this.onSkipped === undefined) return tooLong
        this.dropPartial()
        this.skipping = true
        this.onSkipped()
        return chunk.length
      }
      // A copy, so that a slow sender's one-byte reads do not each keep a
      // whole read buffer alive.
      this.partial.push(chunk.slice(start))
    }
    return chunk.length
  }

  private dropPartial(): void {
    this.partial = []
    this.partialLength = 0
  }
}

/** What `push` answers when a line is over the limit and too-long lines are not skipped. */
export const tooLong = -1
