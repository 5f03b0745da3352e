import { afterAll, beforeAll, expect, it, vi } from 'vitest'
import { startTestServices, type TestServices } from '../test/harness/services.ts'

let s: TestServices
beforeAll(async () => {
  s = await startTestServices({ SLOW_STATEMENT_MS: '100', LOG_LEVEL: 'warn' })
})
afterAll(() => s?.stopAll())

it("names the embedded engine's slow statements in the log and counts every statement by kind", async () => {
  const lines: string[] = []
  const write = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => (lines.push(String(chunk)), true))
  try {
    await s.ch.query({ query: 'SELECT 1 AS fast', format: 'JSONEachRow' }).then((rs) => rs.json())
    await s.ch.query({ query: 'SELECT sleep(0.15) AS\n  slow', format: 'JSONEachRow' }).then((rs) => rs.json())
  } finally {
    write.mockRestore()
  }
  const slow = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'slow ClickHouse statement')
  expect(slow).toEqual([expect.objectContaining({ level: 'warn', kind: 'read', statement: 'SELECT sleep(0.15) AS slow FORMAT JSONEachRow', ms: expect.any(Number) })])
  expect(slow[0]!.ms).toBeGreaterThanOrEqual(150)
  const scraped = await s.metrics.registry.metrics()
  const count = Number(/cs_clickhouse_embedded_statement_duration_seconds_count\{kind="read"\} (\d+)/.exec(scraped)?.[1])
  expect(count).toBeGreaterThanOrEqual(2)
})
