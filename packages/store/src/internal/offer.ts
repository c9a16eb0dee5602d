/**
 * How an offer's answer becomes a value: `LatestRecords.offer` answers a
 * number (an id, `LOST` or a refusal code) so that the hot path allocates
 * nothing; the store's callers get an `Either` whose two `Right`s are made
 * once, and an `UnstorableRecordError` only for a refused record.
 */
import type { LocationRecord } from "@herd/protocol"
import { Data, Either } from "effect"
import type { LocationStore } from "../LocationStore.ts"
import type { LatestRecords } from "./LatestRecords.ts"
import { LOST, NOT_LATIN1 } from "./LatestRecords.ts"

/**
 * A record the store could not keep: `NotLatin1`, a field with a char past
 * U+00FF, which no wire line can make (a char is one byte on the wire, and
 * the store keeps bytes); `StoreFull`, no room left for its AT line (a
 * store's lines take at most 4 GiB, some 40 million clients), with the
 * runtime's refusal as `cause` when it was the memory that ran out. The
 * store is left as it was.
 */
export class UnstorableRecordError extends Data.TaggedError("UnstorableRecordError")<{
  readonly reason: "NotLatin1" | "StoreFull"
  readonly client: string
  readonly cause?: unknown
}> {
  override get message(): string {
    return this.reason === "NotLatin1"
      ? `record of ${JSON.stringify(this.client)}: its fields must be latin1 text, one char per byte`
      : `record of ${JSON.stringify(this.client)}: the store has no room left for another AT line`
  }
}

/**
 * What `unsafeOffer` answers: `Right(true)` if the record won and is kept,
 * `Right(false)` if the stored one is as new or newer, `Left` if it could
 * not be kept. The two answers of `Right` are made once.
 */
export type OfferResult = Either.Either<boolean, UnstorableRecordError>

/** `Right(true)`, made once: an offer allocates nothing. */
export const won: OfferResult = Either.right(true)
/** `Right(false)`, made once. */
export const lost: OfferResult = Either.right(false)

/**
 * The answer of an offer from `LatestRecords.offer`'s: an id (won), `LOST`,
 * or a refusal code; `growthFailure` is the runtime's refusal of memory, if
 * the last refusal came from it.
 */
export const offerResultOf = (answer: number, record: LocationRecord.LocationRecord, growthFailure: unknown): OfferResult => {
  if (answer >= 0) return won
  if (answer === LOST) return lost
  return Either.left(
    answer === NOT_LATIN1
      ? new UnstorableRecordError({ reason: "NotLatin1", client: record.client })
      : new UnstorableRecordError({
        reason: "StoreFull",
        client: record.client,
        ...(growthFailure === undefined ? {} : { cause: growthFailure })
      })
  )
}

/** The memory store's service over `latest` (a smaller `maxLineBytes` in tests makes a store that fills up). */
export const memoryStore = (latest: LatestRecords): LocationStore["Type"] => ({
  get: (client) => latest.get(client),
  unsafeOffer: (record, atLine) => offerResultOf(latest.offer(record, atLine), record, latest.lines.lastGrowthFailure),
  snapshot: () => latest.snapshot(),
  size: () => latest.size(),
  digest: () => latest.digest()
})
