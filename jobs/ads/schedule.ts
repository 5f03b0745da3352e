import type { Services } from '../../lib/services.ts'
import { runAdAssignment } from './assign.ts'

function partsIn(timeZone: string, at: Date) {
  const f = new Intl.DateTimeFormat('en-US', { timeZone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' })
  const get = (type: string) => Number(f.formatToParts(at).find((p) => p.type === type)?.value)
  return { y: get('year'), m: get('month'), d: get('day'), h: get('hour'), min: get('minute'), s: get('second') }
}

/** The date (YYYY-MM-DD) in `timeZone` at `at`. */
export function dateIn(timeZone: string, at: Date): string {
  const p = partsIn(timeZone, at)
  return `${p.y}-${String(p.m).padStart(2, '0')}-${String(p.d).padStart(2, '0')}`
}

/** The next instant after `now` when the wall clock in `timeZone` reads hh:mm. */
export function nextWallClock(timeZone: string, hh: number, mm: number, now: Date): Date {
  const p = partsIn(timeZone, now)
  for (let dayOffset = 0; dayOffset <= 2; dayOffset++) {
    const wanted = Date.UTC(p.y, p.m - 1, p.d + dayOffset, hh, mm)
    // Shift by the zone's offset at that moment (twice, to settle across a DST change).
    let guess = wanted
    for (let i = 0; i < 2; i++) {
      const q = partsIn(timeZone, new Date(guess))
      guess += wanted - Date.UTC(q.y, q.m - 1, q.d, q.h, q.min, q.s)
    }
    if (guess > now.getTime()) return new Date(guess)
  }
  throw new Error(`no ${hh}:${mm} found in ${timeZone}`)
}

/**
 * Runs the ad-assignment job in-process: once at start (it is idempotent, so a
 * restart catches up) and then every day at 00:05 in SETTLEMENT_TZ, when the new
 * day's contracts begin.
 *
 * @example
 * const scheduler = scheduleAdAssignment(services, { midRollMinVideoMs: 480_000 })
 * // on shutdown
 * scheduler.stop()
 */
export function scheduleAdAssignment(services: Services, opts: { midRollMinVideoMs?: number; at?: { hour: number; minute: number } } = {}) {
  const tz = services.settings.SETTLEMENT_TZ
  const at = opts.at ?? { hour: 0, minute: 5 }
  let timer: ReturnType<typeof setTimeout> | undefined
  let stopped = false
  const run = async () => {
    try {
      await runAdAssignment(services, { date: dateIn(tz, new Date()), midRollMinVideoMs: opts.midRollMinVideoMs })
    } catch (err) {
      services.log.error('ad assignment failed', { error: err instanceof Error ? err.message : String(err) })
    }
  }
  const arm = () => {
    if (stopped) return
    const delay = nextWallClock(tz, at.hour, at.minute, new Date()).getTime() - Date.now()
    timer = setTimeout(() => void run().then(arm), delay)
    timer.unref?.()
  }
  void run().then(arm)
  return {
    stop() {
      stopped = true
      if (timer) clearTimeout(timer)
    },
  }
}
