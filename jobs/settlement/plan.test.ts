import { describe, expect, it } from 'vitest'
import type { ClickHouseClient } from '../../lib/clickhouse.ts'
import { planSettlement } from './plan.ts'
import type { SettledDay } from './runs.ts'

// With settled days the plan of due days reads nothing from ClickHouse; a call would throw here.
const noEngine = new Proxy({}, { get: () => () => Promise.reject(new Error('the plan read ClickHouse')) }) as ClickHouseClient
const clock = { timeZone: 'Asia/Seoul', windowHours: 48, now: new Date('2024-03-10T09:00:00+09:00') }
const since = new Date('2024-03-10T00:30:00+09:00')
const at = (iso: string) => new Date(iso).getTime()
const day = (d: string, run_id: number, status: 'final' | 'provisional', started: string): SettledDay => ({ day: d, run_id, status, folded: status === 'final', checksum: '', started_ms: at(started) })
const due = async (settled: SettledDay[], settledSince?: Date) =>
  (await planSettlement(noEngine, { kind: 'due', trigger: 'test', settledSince }, settled, clock)).tasks.map((t) => `${t.day} ${t.status}`)

describe('due days', () => {
  // 10 March, 09:00 in Seoul: 7 March is the last day past its 48 h window (closed at midnight); 8 and 9 March are provisional.
  const night = [
    day('2024-03-07', 10, 'final', '2024-03-10T00:30:00+09:00'),
    day('2024-03-08', 11, 'provisional', '2024-03-10T00:30:01+09:00'),
    day('2024-03-09', 12, 'provisional', '2024-03-10T00:30:02+09:00'),
  ]

  it('are every day not final up to yesterday, without settledSince', async () => {
    expect(await due(night)).toEqual(['2024-03-08 provisional', '2024-03-09 provisional'])
  })

  it('leave out what a pass since then settled, and nothing after a day settled before it', async () => {
    expect(await due(night, since)).toEqual([])
    // The night's pass stopped before 8 March: 8 and 9 March are due (9 March's recent run counted the old 8 March).
    const stopped = [night[0]!, day('2024-03-08', 5, 'provisional', '2024-03-09T00:30:00+09:00'), night[2]!]
    expect(await due(stopped, since)).toEqual(['2024-03-08 provisional', '2024-03-09 provisional'])
  })

  it('settle again a day whose run is older than the run of the day before it', async () => {
    // 8 March settled again by hand (run 14) after the pass: 9 March's run 12 counted the old 8 March.
    const rerun = [night[0]!, day('2024-03-08', 14, 'provisional', '2024-03-10T08:00:00+09:00'), night[2]!]
    expect(await due(rerun, since)).toEqual(['2024-03-09 provisional'])
    // 7 March's final run newer than 8 March's provisional one (finalized by hand after the pass): from 8 March on.
    const late = [day('2024-03-07', 15, 'final', '2024-03-10T08:30:00+09:00'), night[1]!, night[2]!]
    expect(await due(late, since)).toEqual(['2024-03-08 provisional', '2024-03-09 provisional'])
  })

  it('settle a day due final even when its provisional run is recent', async () => {
    const later = { ...clock, now: new Date('2024-03-11T01:00:00+09:00') }
    const tasks = (await planSettlement(noEngine, { kind: 'due', trigger: 'test', settledSince: since }, night, later)).tasks
    // 8 March's window closed at midnight on 11 March: due final, and every day after it again.
    expect(tasks.map((t) => `${t.day} ${t.status}`)).toEqual(['2024-03-08 final', '2024-03-09 provisional', '2024-03-10 provisional'])
  })
})
