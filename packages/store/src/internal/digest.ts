/**
 * The digest of a store: how many records it holds and the sum, mod 2^64,
 * of the FNV-1a 64 hash of each record's AT line bytes. A sum does not
 * depend on the order records arrived in, and a replaced or forgotten
 * record's hash is taken off again, so two stores that hold the same winners
 * have the same digest, kept up to date in O(1) per record changed (a
 * store hashes the records changed since its last digest when asked).
 *
 * 64-bit values are kept as two unsigned 32-bit halves: BigInt would
 * allocate on every record.
 */

/** What `digest()` answers: the record count and the sum of hashes as 16 hex digits. */
export interface StoreDigest {
  readonly count: number
  readonly digest: string
}

const offsetHi = 0xcbf29ce4
const offsetLo = 0x84222325

/**
 * FNV-1a 64 of `bytes[from, to)`, written to `out[at]` (high half) and
 * `out[at + 1]` (low half). The prime is 2^40 + 0x1b3, so a multiply is
 * the low half times 0x1b3 (in 16-bit pieces, to stay exact in 32-bit
 * integers), the high half times 0x1b3, and the low half shifted into the
 * high one.
 */
export const fnv1a64Into = (bytes: Uint8Array, from: number, to: number, out: Uint32Array, at: number): void => {
  let hi = offsetHi | 0
  let lo = offsetLo | 0
  for (let i = from; i < to; i++) {
    lo ^= bytes[i] ?? 0
    const low = (lo & 0xffff) * 0x1b3
    const middle = (low >>> 16) + (lo >>> 16) * 0x1b3
    hi = (Math.imul(hi, 0x1b3) + (middle >>> 16) + (lo << 8)) | 0
    lo = (middle << 16) | (low & 0xffff)
  }
  out[at] = hi
  out[at + 1] = lo
}

const hex = (half: number): string => (half >>> 0).toString(16).padStart(8, "0")

/** A running count and sum of 64-bit hashes. */
export class Digest {
  private count = 0
  private hi = 0
  private lo = 0

  add(hi: number, lo: number): void {
    const sum = this.lo + (lo >>> 0)
    this.lo = sum >>> 0
    this.hi = (this.hi + (hi >>> 0) + (sum > 0xffffffff ? 1 : 0)) >>> 0
    this.count++
  }

  subtract(hi: number, lo: number): void {
    const difference = this.lo - (lo >>> 0)
    this.lo = difference >>> 0
    this.hi = (this.hi - (hi >>> 0) - (difference < 0 ? 1 : 0)) >>> 0
    this.count--
  }

  value(): StoreDigest {
    return { count: this.count, digest: hex(this.hi) + hex(this.lo) }
  }
}
