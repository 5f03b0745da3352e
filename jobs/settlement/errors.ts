import type { ErrorCode } from '../../lib/errors.ts'

/** Why a settlement request was refused, and the API error each maps to. */
export const settlementErrorCodes = {
  /** Not a YYYY-MM-DD calendar date, or a range that runs backwards. */
  BAD_DATE: 'BAD_REQUEST',
  /** The day has not ended yet in SETTLEMENT_TZ. */
  FUTURE_DAY: 'UNPROCESSABLE',
  /** The day is final; a final day never changes. */
  DAY_FINAL: 'CONFLICT',
  /** The day is past the lateness window and must be settled with `finalize`. */
  PAST_WINDOW: 'UNPROCESSABLE',
  /** `finalize` was asked for a day still inside the lateness window. */
  WITHIN_WINDOW: 'UNPROCESSABLE',
  /** An earlier day must be settled (or finalized) first: tiers depend on cumulative counts. */
  OUT_OF_ORDER: 'UNPROCESSABLE',
  /** No rate card is effective on the day. */
  NO_RATE_CARD: 'UNPROCESSABLE',
  /** A rate card that cannot be stored as given. */
  BAD_RATE_CARD: 'BAD_REQUEST',
  /** A listing's `after` that is not a key of that listing. */
  BAD_CURSOR: 'BAD_REQUEST',
  /** Another settlement run holds the lock. */
  LOCKED: 'CONFLICT',
  /** The lock expired under this run (the engine stalled); the run was abandoned before commit. */
  LOCK_LOST: 'CONFLICT',
} as const satisfies Record<string, ErrorCode>

export type SettlementErrorCode = keyof typeof settlementErrorCodes

/**
 * An expected refusal of the settlement job, with a message meant for the operator.
 *
 * @example
 * throw new SettlementError('DAY_FINAL', 'day 2024-01-02 is final and never changes')
 */
export class SettlementError extends Error {
  override name = 'SettlementError'
  constructor(
    readonly code: SettlementErrorCode,
    message: string,
  ) {
    super(message)
  }
}
