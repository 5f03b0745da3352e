import type { Settings } from '../../lib/config.ts'
import { addDays, nextPeriod, periodEnd, today, type Grain } from '../http/dates.ts'

export type ClosingRules = Pick<Settings, 'SETTLEMENT_TZ' | 'LATENESS_WINDOW_HOURS' | 'FUTURE_TOLERANCE_SECONDS' | 'INSERT_TIMEOUT_MS'>

/**
 * The last closed day at `now`: the last day (in SETTLEMENT_TZ) no event can still be
 * added to. The edge rejects events older than LATENESS_WINDOW_HOURS, so a day closes
 * that long after it ends; on top of that, FUTURE_TOLERANCE_SECONDS (the clock skew the
 * edge allows for) covers the edge's clock running behind this process's, and
 * INSERT_TIMEOUT_MS the insert of an event accepted at the last moment. After that a
 * closed day changes only if the edge repairs a flush that failed (see
 * bumpAggregatesGeneration).
 *
 * @example
 * lastClosedDay(settings, new Date('2026-03-04T00:00:00Z')) // '2026-03-01' with the defaults
 */
export function lastClosedDay(rules: ClosingRules, now: Date): string {
  const margin = rules.LATENESS_WINDOW_HOURS * 3_600_000 + rules.FUTURE_TOLERANCE_SECONDS * 1000 + rules.INSERT_TIMEOUT_MS
  // Events may still arrive with times on the day holding this instant: the day before it is the last closed one.
  return addDays(today(rules.SETTLEMENT_TZ, new Date(now.getTime() - margin)), -1)
}

/** True when every day of the period of `grain` starting at `start` is closed. */
export function isClosedPeriod(grain: Grain, start: string, lastClosed: string): boolean {
  return periodEnd(grain, start) <= lastClosed
}

/**
 * Which of the consecutive periods of `grain` listed by periodsBetween are closed: a
 * period is when the next one starts no later than the day after `lastClosed`.
 */
export function closedPeriods(grain: Grain, periods: readonly string[], lastClosed: string): boolean[] {
  const firstOpen = addDays(lastClosed, 1)
  return periods.map((p, i) => (periods[i + 1] ?? nextPeriod(grain, p)) <= firstOpen)
}
