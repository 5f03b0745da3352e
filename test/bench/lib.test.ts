import { expect, it } from 'vitest'
import { cacheStatus } from '../../analytics/cache/aggregate-cache.ts'
import { answerViewers, cacheOutcome, slowStatements } from './lib.ts'

it("reads the server's slow-statement warnings from its output, slowest first", () => {
  const line = (ms: number, statement: string) => JSON.stringify({ time: '2026-12-06T16:00:00.000Z', level: 'warn', msg: 'slow ClickHouse statement', kind: 'read', ms, waited_ms: 0, query_id: `q${ms}`, statement })
  const output = [
    'listening on http://127.0.0.1:1',
    line(1200, 'SELECT 1'),
    JSON.stringify({ level: 'warn', msg: 'something else', ms: 99999 }),
    line(9880, 'SELECT 2'),
    line(3000, 'SELECT 3').slice(0, 40),
  ].join('\n')
  expect(slowStatements(output)).toEqual([
    { kind: 'read', ms: 9880, waited_ms: 0, query_id: 'q9880', statement: 'SELECT 2' },
    { kind: 'read', ms: 1200, waited_ms: 0, query_id: 'q1200', statement: 'SELECT 1' },
  ])
})

it('names what the cache did from the Cache-Status header the endpoints write', () => {
  expect(cacheOutcome(cacheStatus('hit'))).toBe('hit')
  expect(cacheOutcome(cacheStatus('miss', true))).toBe('miss')
  expect(cacheOutcome(cacheStatus('partial'))).toBe('partial')
  expect(cacheOutcome(cacheStatus('bypass'))).toBe('bypass')
  expect(cacheOutcome(cacheStatus('unavailable'))).toBe('unavailable')
  expect(cacheOutcome(null)).toBe('none')
})

it("adds up a stats answer's unique viewers over its periods, 0 for any other answer", () => {
  const body = (x: unknown) => new TextEncoder().encode(JSON.stringify(x)).buffer as ArrayBuffer
  expect(answerViewers(body({ video_id: 'v', rows: [{ period: '2026-12-05', unique_viewers: 3 }, { period: '2026-12-06', unique_viewers: 40 }] }))).toBe(43)
  expect(answerViewers(body({ rows: [{ period: '2026-12-06', views: 5 }] }))).toBe(0)
  expect(answerViewers(body({ error: 'forbidden' }))).toBe(0)
  expect(answerViewers(new TextEncoder().encode('not json').buffer as ArrayBuffer)).toBe(0)
})
