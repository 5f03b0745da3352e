import type { Services } from '../../lib/services.ts'
import type { Day } from './calendar.ts'
import { bumpSettlementVersion } from './version.ts'
import { foldFinalRun, settleOneDay, type DayContext, type DayOutcome, type DayTask } from './day.ts'
import { acquireSettlementLock, type SettlementLock } from './lock.ts'
import { planSettlement, type Plan, type SettleRequest } from './plan.ts'
import { visibleRunsOf } from './queries.ts'
import { getRun, settledDays, unfinishedRuns, writeRun } from './runs.ts'

export type { DayOutcome } from './day.ts'
export type { SettleRequest } from './plan.ts'

export type SettlementServices = Pick<Services, 'ch' | 'redis' | 'settings' | 'log' | 'metrics'>

export type SettleOptions = {
  /** The clock (tests move it). */
  now?: () => Date
  /** Expiry of the Redis lock; renewed every third of it while the run lives. Default 60 s. */
  lockTtlMs?: number
  /** Called as each day commits (or, in a dry run, is priced). */
  onDay?: (outcome: DayOutcome) => void
  /** Test hook between writing a day's video lines and its ad lines: throw to simulate a crash. */
  afterVideoLines?: (day: Day) => Promise<void>
  /** Keys of one kind one line statement takes in at most; default SETTLEMENT_STATEMENT_ROWS. */
  statementRows?: number
}

export type SettleResult = {
  /** Every day run, in order: the requested ones, then the later provisional days recomputed because an earlier day changed. */
  days: DayOutcome[]
  /** Days still due after this run (the scheduler's bounded catch-up continues with them). */
  remaining: number
}

/** A planned run holding the lock: `run()` executes it (calling `onDay` as each day commits), `close()` releases the lock. */
export type SettlementSession = { plan: Plan; run(onDay?: (outcome: DayOutcome) => void): Promise<SettleResult>; close(): Promise<void> }

/**
 * Takes the lock (except for a dry run), repairs what a killed run left, and plans the
 * request. Throws a SettlementError, before anything is written, when the request
 * breaks a rule; the HTTP route answers those with a problem before it starts streaming.
 */
export async function beginSettlement(services: SettlementServices, req: SettleRequest, opts: SettleOptions = {}): Promise<SettlementSession> {
  const { ch, settings, log, metrics } = services
  const now = opts.now ?? (() => new Date())
  const dryRun = req.kind !== 'due' && req.dryRun === true
  const lock: SettlementLock | null = dryRun ? null : await acquireSettlementLock(services.redis, { ttlMs: opts.lockTtlMs ?? settings.SETTLEMENT_LOCK_TTL_SECONDS * 1000 })
  try {
    let settled = await settledDays(ch)
    if (lock) {
      await repair(services, settled, now)
      settled = await settledDays(ch)
    }
    const plan = await planSettlement(ch, req, settled, { timeZone: settings.SETTLEMENT_TZ, windowHours: settings.LATENESS_WINDOW_HOURS, now: now() })
    const ctx: DayContext = { ch, settled, now, assertHeld: lock ? () => lock.assertHeld() : async () => {}, afterVideoLines: opts.afterVideoLines, statementRows: opts.statementRows ?? settings.SETTLEMENT_STATEMENT_ROWS }
    const runDay = async (task: DayTask, onDay?: (outcome: DayOutcome) => void): Promise<DayOutcome> => {
      try {
        const outcome = await settleOneDay(ctx, task, plan.dryRun)
        // Readers cache settlement answers by this version (a lost bump is bounded by their TTL)
        // and read the visible runs published with it: the settled days this runner keeps as
        // they commit (under the lock, no one else commits), as settlement_days now holds them.
        if (!plan.dryRun)
          await bumpSettlementVersion(services.redis, visibleRunsOf(ctx.settled), lock?.fence).catch((err) => log.warn('could not bump the settlement version', { error: String(err) }))
        metrics.jobRuns.inc({ job: 'settlement', status: plan.dryRun ? 'dry_run' : 'committed' })
        log.info(plan.dryRun ? 'settlement dry run' : 'settlement day committed', { ...outcome })
        opts.onDay?.(outcome)
        onDay?.(outcome)
        return outcome
      } catch (err) {
        metrics.jobRuns.inc({ job: 'settlement', status: 'failed' })
        log.error('settlement day failed', { day: task.day, status: task.status, error: err instanceof Error ? err.message : String(err) })
        throw err
      }
    }
    return {
      plan,
      async run(onDay) {
        const days: DayOutcome[] = []
        for (const task of plan.tasks) days.push(await runDay(task, onDay))
        // Later provisional days priced their tiers on the lifetime counts this run may have changed.
        const last = plan.tasks.at(-1)?.day
        if (!plan.dryRun && last !== undefined && days.some((d) => !d.unchanged)) {
          for (const later of settled.filter((s) => s.day > last && s.status === 'provisional'))
            days.push(await runDay({ day: later.day, status: 'provisional', trigger: 'cascade' }, onDay))
        }
        return { days, remaining: plan.remaining }
      },
      async close() {
        await lock?.release()
      },
    }
  } catch (err) {
    await lock?.release()
    throw err
  }
}

/**
 * Settles what `req` asks, under the lock, in order, and recomputes the later
 * provisional days that depend on a changed day.
 *
 * @example
 * await settle(services, { kind: 'days', from: '2024-03-01', to: '2024-03-01' })
 * await settle(services, { kind: 'finalize-due' })
 */
export async function settle(services: SettlementServices, req: SettleRequest, opts: SettleOptions = {}): Promise<SettleResult> {
  const session = await beginSettlement(services, req, opts)
  try {
    return await session.run()
  } finally {
    await session.close()
  }
}

/** Under the lock no other run is alive: close the records of killed runs and finish folding final days. */
async function repair(services: SettlementServices, settled: Awaited<ReturnType<typeof settledDays>>, now: () => Date): Promise<void> {
  const { ch, log } = services
  for (const run of await unfinishedRuns(ch)) {
    await writeRun(ch, { ...run, state: 'failed', revision: 2, finished_at: now().toISOString(), error: 'abandoned: the run ended before it committed (process killed or lock lost)' })
    log.warn('settlement run abandoned', { run_id: run.run_id, day: run.day })
  }
  for (const day of settled.filter((s) => s.status === 'final' && !s.folded)) {
    const run = await getRun(ch, day.run_id)
    if (run) await foldFinalRun(ch, run, settled)
  }
}
