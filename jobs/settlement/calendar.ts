import { SettlementError } from './errors.ts'

/** A calendar day in SETTLEMENT_TZ, written YYYY-MM-DD. */
export type Day = string

const DAY = /^(\d{4})-(\d{2})-(\d{2})$/
const MS_PER_DAY = 86_400_000

/**
 * Checks that `text` is a real calendar date written YYYY-MM-DD.
 *
 * @throws SettlementError BAD_DATE
 */
export function parseDay(text: string): Day {
  const m = DAY.exec(text)
  if (m) {
    const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])]
    const t = new Date(Date.UTC(y, mo - 1, d))
    if (y >= 1970 && y <= 2148 && t.getUTCMonth() === mo - 1 && t.getUTCDate() === d) return text
  }
  throw new SettlementError('BAD_DATE', `not a calendar date (YYYY-MM-DD between 1970 and 2148): ${JSON.stringify(text)}`)
}

/** The day `n` days after (or before, for negative `n`) `day`. */
export function addDays(day: Day, n: number): Day {
  return new Date(Date.parse(`${day}T00:00:00Z`) + n * MS_PER_DAY).toISOString().slice(0, 10)
}

/** Days from `from` to `to`, both included, in order. */
export function daysBetween(from: Day, to: Day): Day[] {
  const out: Day[] = []
  for (let d = from; d <= to; d = addDays(d, 1)) out.push(d)
  return out
}

const formatters = new Map<string, Intl.DateTimeFormat>()

function wallClock(instant: number, timeZone: string): number {
  let f = formatters.get(timeZone)
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric' })
    formatters.set(timeZone, f)
  }
  const p = Object.fromEntries(f.formatToParts(new Date(instant)).map((x) => [x.type, x.value]))
  return Date.UTC(Number(p.year), Number(p.month) - 1, Number(p.day), Number(p.hour), Number(p.minute), Number(p.second))
}

/** The day it is at `now` in `timeZone`. */
export function dayIn(timeZone: string, now: Date): Day {
  return new Date(wallClock(now.getTime(), timeZone)).toISOString().slice(0, 10)
}

/** The instant `day` starts (midnight, or the first instant after a DST gap) in `timeZone`. */
export function startOfDay(day: Day, timeZone: string): Date {
  const wall = Date.parse(`${day}T00:00:00Z`)
  let t = wall - (wallClock(wall, timeZone) - wall)
  // Once more, in case the offset at the first guess differs from the offset at midnight.
  t = wall - (wallClock(t, timeZone) - t)
  return new Date(t)
}

/** When the lateness window of `day` closes: the end of the day plus `hours`. From then on the day can be final. */
export function windowClosesAt(day: Day, timeZone: string, hours: number): Date {
  return new Date(startOfDay(addDays(day, 1), timeZone).getTime() + hours * 3_600_000)
}

/** The last day whose lateness window has closed at `now`. */
export function lastDayPastWindow(timeZone: string, hours: number, now: Date): Day {
  let d = addDays(dayIn(timeZone, now), -1 - Math.ceil(hours / 24))
  while (windowClosesAt(addDays(d, 1), timeZone, hours).getTime() <= now.getTime()) d = addDays(d, 1)
  while (windowClosesAt(d, timeZone, hours).getTime() > now.getTime()) d = addDays(d, -1)
  return d
}
