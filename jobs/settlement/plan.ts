import { z } from 'zod'
import type { ClickHouseClient } from '../../lib/clickhouse.ts'
import { addDays, dayIn, daysBetween, lastDayPastWindow, parseDay, windowClosesAt, type Day } from './calendar.ts'
import type { DayTask } from './day.ts'
import { SettlementError } from './errors.ts'
import type { RunTrigger, SettledDay } from './runs.ts'
import { firstDataDayBefore } from './sql.ts'

/**
 * What to settle.
 * - `days`: the days from `from` to `to`, in order, provisional (inside the lateness
 *   window) or, with `finalize`, final (past it).
 * - `finalize-due`: every day past the lateness window that is not final yet.
 * - `due` (the scheduler): every day not final up to yesterday, each final or
 *   provisional as its window says, at most `maxDays` of them.
 */
export type SettleRequest =
  | { kind: 'days'; from: Day; to: Day; finalize?: boolean; dryRun?: boolean; trigger?: RunTrigger }
  | { kind: 'finalize-due'; dryRun?: boolean; trigger?: RunTrigger }
  /**
   * Every day not final up to yesterday. With `settledSince`, the leading days already settled
   * (with the status they are due) by runs started at or after it, each after the day before
   * it, are left out: the pass of that time settled them (a restart does not settle them again).
   */
  | { kind: 'due'; maxDays?: number; trigger?: RunTrigger; settledSince?: Date }

export type Plan = { tasks: DayTask[]; dryRun: boolean; remaining: number }

type Clock = { timeZone: string; windowHours: number; now: Date }

const firstRow = z.object({ n: z.coerce.number(), first: z.string() })

async function firstDataDay(ch: ClickHouseClient, before: Day): Promise<Day | null> {
  const rs = await ch.query({ query: firstDataDayBefore, query_params: { before }, format: 'JSONEachRow' })
  const row = firstRow.parse((await rs.json())[0])
  return row.n === 0 ? null : row.first
}

/** The first day that is not final: the day after the last final one, or where settlement starts. */
async function firstOpenDay(ch: ClickHouseClient, settled: SettledDay[], today: Day): Promise<Day | null> {
  const lastFinal = settled.filter((s) => s.status === 'final').at(-1)
  if (lastFinal) return addDays(lastFinal.day, 1)
  if (settled[0]) return settled[0].day
  return firstDataDay(ch, today)
}

/**
 * How many of `days` (consecutive, from the first open day) lead the list already settled, with
 * the status they are due, by runs started at or after `sinceMs`, each run after the day
 * before's: lifetime counts carry from day to day, so once one day is settled again every
 * later day is too.
 */
function settledAlready(days: Day[], settled: SettledDay[], lastPast: Day, sinceMs: number): number {
  const byDay = new Map(settled.map((s) => [s.day, s]))
  // The day before the first is final: a run of the first day older than its final run is stale.
  let runBefore = days[0] === undefined ? 0 : (byDay.get(addDays(days[0], -1))?.run_id ?? 0)
  let n = 0
  for (const day of days) {
    const s = byDay.get(day)
    const due = day <= lastPast ? 'final' : 'provisional'
    if (s === undefined || s.status !== due || s.started_ms < sinceMs || s.run_id <= runBefore) break
    runBefore = s.run_id
    n++
  }
  return n
}

/**
 * Turns a request into the days to run, in order, with their status; refuses with a
 * SettlementError (and a message saying what to do instead) anything that would break
 * the rules: future days, final days, days out of order, finality inside the window.
 */
export async function planSettlement(ch: ClickHouseClient, req: SettleRequest, settled: SettledDay[], clock: Clock): Promise<Plan> {
  const today = dayIn(clock.timeZone, clock.now)
  const yesterday = addDays(today, -1)
  const lastPast = lastDayPastWindow(clock.timeZone, clock.windowHours, clock.now)
  const trigger = req.trigger ?? 'cli'

  if (req.kind !== 'days') {
    const start = await firstOpenDay(ch, settled, today)
    const end = req.kind === 'due' ? yesterday : lastPast
    let days = start === null || start > end ? [] : daysBetween(start, end)
    if (req.kind === 'due' && req.settledSince !== undefined) days = days.slice(settledAlready(days, settled, lastPast, req.settledSince.getTime()))
    const max = req.kind === 'due' ? (req.maxDays ?? days.length) : days.length
    const dryRun = req.kind === 'finalize-due' && req.dryRun === true
    // A dry run writes nothing, so it is exact only for days whose previous day is settled already.
    const settledBefore = new Set(settled.map((s) => addDays(s.day, 1)))
    const exact = dryRun ? days.findIndex((d, i) => i > 0 && !settledBefore.has(d)) : -1
    const limit = Math.min(max, exact === -1 ? days.length : exact)
    const tasks = days.slice(0, limit).map((day): DayTask => ({ day, status: day <= lastPast ? 'final' : 'provisional', trigger }))
    return { tasks, dryRun, remaining: days.length - tasks.length }
  }

  const from = parseDay(req.from)
  const to = parseDay(req.to)
  if (from > to) throw new SettlementError('BAD_DATE', `the range runs backwards: --from ${from} is after --to ${to}`)
  if (to >= today)
    throw new SettlementError('FUTURE_DAY', `day ${from >= today ? from : today} has not ended yet in ${clock.timeZone} (today is ${today}); the latest day that can be settled is ${yesterday}`)
  const byDay = new Map(settled.map((s) => [s.day, s]))
  const days = daysBetween(from, to)
  const first = settled[0]?.day
  const last = settled.at(-1)?.day
  if (first === undefined || last === undefined) {
    const earliest = await firstDataDay(ch, from)
    if (earliest !== null)
      throw new SettlementError('OUT_OF_ORDER', `the aggregates hold data from ${earliest}, before ${from}; lifetime counts need every day settled in order: npm run settle -- --from ${earliest} --to ${to}`)
  } else {
    if (from < first) throw new SettlementError('OUT_OF_ORDER', `settlement started on ${first}; ${from} comes before it and cannot be settled any more`)
    const next = addDays(last, 1)
    if (from > next)
      throw new SettlementError('OUT_OF_ORDER', `day ${next} is not settled yet and the lifetime counts of ${from} depend on it: npm run settle -- --from ${next} --to ${to}`)
    const prev = addDays(from, -1)
    if (req.finalize && prev >= first && byDay.get(prev)?.status !== 'final')
      throw new SettlementError('OUT_OF_ORDER', `day ${prev} is not final yet; days become final in order (npm run settle -- --finalize finalizes every day past the window)`)
  }
  for (const day of days) {
    const current = byDay.get(day)
    if (current?.status === 'final')
      throw new SettlementError('DAY_FINAL', `day ${day} is final (run ${current.run_id}) and a final day never changes; nothing was run`)
    const closes = windowClosesAt(day, clock.timeZone, clock.windowHours)
    const past = closes.getTime() <= clock.now.getTime()
    if (req.finalize && !past)
      throw new SettlementError('WITHIN_WINDOW', `day ${day} stays provisional until its lateness window closes at ${closes.toISOString()}; it can be finalized after that`)
    if (!req.finalize && past)
      throw new SettlementError('PAST_WINDOW', `the lateness window of day ${day} closed at ${closes.toISOString()}; settle it as final with --finalize`)
  }

  if (req.dryRun) {
    const settledOrFirst = (d: Day) => byDay.has(addDays(d, -1)) || (d === from && (first === undefined || addDays(d, -1) < first))
    const gap = days.find((d) => !settledOrFirst(d))
    if (gap !== undefined)
      throw new SettlementError('OUT_OF_ORDER', `a dry run prices each day against the settled days before it, and ${addDays(gap, -1)} is not settled; dry-run up to ${addDays(gap, -1)} only`)
  }
  const status = req.finalize ? 'final' : 'provisional'
  return { tasks: days.map((day) => ({ day, status, trigger })), dryRun: req.dryRun === true, remaining: 0 }
}
