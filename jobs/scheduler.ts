import type { Services } from '../lib/services.ts'
import { addDays, dayIn, startOfDay } from './settlement/calendar.ts'
import { SettlementError } from './settlement/errors.ts'
import { settle, type SettleOptions } from './settlement/job.ts'

export type SchedulerOptions = {
  /** The clock (tests fix it). */
  now?: () => Date
  /** Local time of the nightly run in SETTLEMENT_TZ. Default SETTLEMENT_RUN_AT (00:30). */
  at?: RunTime
  /** Days settled under one hold of the lock when catching up; the pass then takes the lock again for the next ones. Default 31. */
  maxDaysPerPass?: number
  /** Wait before trying again after a failed pass or while another runner holds the lock. Default 5 min. */
  retryMs?: number
  settle?: Pick<SettleOptions, 'lockTtlMs'>
}

export type Scheduler = {
  stop(): void
  /** Resolves when no pass is running (for shutdown and tests). */
  idle(): Promise<void>
}

type RunTime = { hour: number; minute: number }
const DEFAULT_RUN_AT: RunTime = { hour: 0, minute: 30 }
/** The instant of `at` local time on `day` in `timeZone`. */
const runAtOn = (timeZone: string, day: string, at: RunTime): Date => new Date(startOfDay(day, timeZone).getTime() + (at.hour * 60 + at.minute) * 60_000)

/** The next instant at `at` local time in `timeZone` strictly after `now`. */
export function nextRunAt(timeZone: string, now: Date, at: RunTime = DEFAULT_RUN_AT): Date {
  for (let day = dayIn(timeZone, now); ; day = addDays(day, 1)) {
    const t = runAtOn(timeZone, day, at)
    if (t.getTime() > now.getTime()) return t
  }
}

/** The latest instant at or before `now` at which the nightly run was due. */
export function lastRunAt(timeZone: string, now: Date, at: RunTime = DEFAULT_RUN_AT): Date {
  for (let day = dayIn(timeZone, now); ; day = addDays(day, -1)) {
    const t = runAtOn(timeZone, day, at)
    if (t.getTime() <= now.getTime()) return t
  }
}

const MAX_TIMER_MS = 3_600_000

/**
 * Runs settlement in the all-in-one process: at start it catches up every day not
 * final up to yesterday that no pass has settled since the last SETTLEMENT_RUN_AT (a missed
 * night; a restart after the night's pass settles nothing again), then every night at
 * SETTLEMENT_RUN_AT in SETTLEMENT_TZ it settles the previous day, recomputes the provisional
 * days and finalizes the days whose lateness window has closed. A pass that meets the lock
 * (`npm run settle` running) or fails is tried again later.
 *
 * @example
 * const scheduler = startScheduler(services)
 * process.on('SIGTERM', () => scheduler.stop())
 */
export function startScheduler(services: Services, opts: SchedulerOptions = {}): Scheduler {
  const now = opts.now ?? (() => new Date())
  const tz = services.settings.SETTLEMENT_TZ
  const [hour, minute] = services.settings.SETTLEMENT_RUN_AT.split(':').map(Number) as [number, number]
  const runAt = opts.at ?? { hour, minute }
  const retryMs = opts.retryMs ?? 300_000
  let stopped = false
  let timer: ReturnType<typeof setTimeout> | undefined
  let current: Promise<void> | undefined

  const arm = (at: Date) => {
    if (stopped) return
    const wait = Math.max(0, Math.min(at.getTime() - now().getTime(), MAX_TIMER_MS))
    // Wakes at least hourly and compares with the clock, so a suspended machine or a clock change does not skip a night.
    timer = setTimeout(() => (now().getTime() >= at.getTime() ? start() : arm(at)), wait)
    timer.unref?.()
  }

  const pass = async () => {
    try {
      for (;;) {
        // What a pass since the last due time settled is not settled again (a restart, a retry).
        const settledSince = lastRunAt(tz, now(), runAt)
        const result = await settle(services, { kind: 'due', maxDays: opts.maxDaysPerPass ?? 31, trigger: 'scheduler', settledSince }, { now, ...opts.settle })
        if (result.days.length > 0) services.log.info('settlement pass done', { days: result.days.map((d) => `${d.day} ${d.status}`), remaining: result.remaining })
        if (result.remaining === 0 || stopped) break
      }
      arm(nextRunAt(tz, now(), runAt))
    } catch (err) {
      const locked = err instanceof SettlementError && err.code === 'LOCKED'
      services.log[locked ? 'info' : 'error']('settlement pass did not run', { error: err instanceof Error ? err.message : String(err), retry_in_ms: retryMs })
      arm(new Date(now().getTime() + retryMs))
    }
  }

  const start = () => {
    if (stopped || current) return
    current = pass().finally(() => (current = undefined))
  }

  start()
  return {
    stop() {
      stopped = true
      clearTimeout(timer)
    },
    async idle() {
      while (current) await current
    },
  }
}
