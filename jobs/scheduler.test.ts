import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestServices, type TestServices } from '../test/harness/services.ts'
import { clockAt, putViews } from '../test/settlement/fixtures.ts'
import { lastRunAt, nextRunAt, startScheduler } from './scheduler.ts'
import { acquireSettlementLock } from './settlement/lock.ts'
import { listRuns, settledDays } from './settlement/runs.ts'

let s: TestServices
const statuses = async () => (await settledDays(s.ch)).map((d) => `${d.day} ${d.status}`)

beforeAll(async () => {
  s = await startTestServices({ LOG_LEVEL: 'error' })
  for (const day of ['2024-03-01', '2024-03-02', '2024-03-03', '2024-03-04', '2024-03-07']) await putViews(s.ch, { day, video: 'v', views: 10 })
})
afterAll(() => s?.stopAll())

describe('settlement scheduler', () => {
  it('runs next at 00:30 in Asia/Seoul', () => {
    expect(nextRunAt('Asia/Seoul', new Date('2024-03-05T00:29:00+09:00')).toISOString()).toBe('2024-03-04T15:30:00.000Z')
    expect(nextRunAt('Asia/Seoul', new Date('2024-03-05T00:30:00+09:00')).toISOString()).toBe('2024-03-05T15:30:00.000Z')
    expect(nextRunAt('Asia/Seoul', new Date('2024-03-05T23:00:00+09:00')).toISOString()).toBe('2024-03-05T15:30:00.000Z')
    // the instant it was last due, the pass that settled since then is not repeated
    expect(lastRunAt('Asia/Seoul', new Date('2024-03-05T00:29:00+09:00')).toISOString()).toBe('2024-03-03T15:30:00.000Z')
    expect(lastRunAt('Asia/Seoul', new Date('2024-03-05T00:30:00+09:00')).toISOString()).toBe('2024-03-04T15:30:00.000Z')
    expect(lastRunAt('Asia/Seoul', new Date('2024-03-05T23:00:00+09:00'), { hour: 23, minute: 30 }).toISOString()).toBe('2024-03-04T14:30:00.000Z')
  })

  it('waits while another runner holds the lock', async () => {
    const lock = await acquireSettlementLock(s.redis, { ttlMs: 30_000 })
    const scheduler = startScheduler(s, { now: clockAt('2024-03-05T00:30:00+09:00') })
    await scheduler.idle()
    scheduler.stop()
    await lock.release()
    expect(await listRuns(s.ch)).toEqual([])
  })

  it('settles yesterday at start and finalizes the days past the window, a few days per lock hold', async () => {
    const scheduler = startScheduler(s, { now: clockAt('2024-03-05T00:30:00+09:00'), maxDaysPerPass: 3 })
    await scheduler.idle()
    scheduler.stop()
    expect(await statuses()).toEqual(['2024-03-01 final', '2024-03-02 final', '2024-03-03 provisional', '2024-03-04 provisional'])
  })

  it('catches up missed nights at the next start', async () => {
    const scheduler = startScheduler(s, { now: clockAt('2024-03-09T08:00:00+09:00') })
    await scheduler.idle()
    scheduler.stop()
    expect(await statuses()).toEqual([
      '2024-03-01 final',
      '2024-03-02 final',
      '2024-03-03 final',
      '2024-03-04 final',
      '2024-03-05 final',
      '2024-03-06 final',
      '2024-03-07 provisional',
      '2024-03-08 provisional',
    ])
    const triggers = new Set((await listRuns(s.ch)).map((r) => r.trigger))
    expect([...triggers]).toEqual(['scheduler'])
  })

  it('settles nothing again at a restart after the night\'s pass, and everything due the next night', async () => {
    const before = await listRuns(s.ch, { limit: 1000 })
    const restart = startScheduler(s, { now: clockAt('2024-03-09T09:00:00+09:00') })
    await restart.idle()
    restart.stop()
    expect(await listRuns(s.ch, { limit: 1000 })).toEqual(before)

    const night = startScheduler(s, { now: clockAt('2024-03-10T00:30:00+09:00') })
    await night.idle()
    night.stop()
    const added = (await listRuns(s.ch, { limit: 1000 })).filter((r) => !before.some((b) => b.run_id === r.run_id))
    expect(added.map((r) => `${r.day} ${r.status}`).sort()).toEqual(['2024-03-07 final', '2024-03-08 provisional', '2024-03-09 provisional'])
    expect(await statuses()).toEqual(expect.arrayContaining(['2024-03-07 final', '2024-03-08 provisional', '2024-03-09 provisional']))
  })
})
