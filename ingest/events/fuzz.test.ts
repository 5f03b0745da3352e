import { afterAll, beforeAll, expect, it } from 'vitest'
import { startTestEdge, type TestEdge } from '../../test/harness/edge.ts'
import { almostEvent, EDGE_TIMES, rng, value } from '../../test/harness/fuzz-values.ts'

let t: TestEdge
beforeAll(async () => {
  t = await startTestEdge({ RATE_LIMIT_TOKEN_PER_SECOND: '100000', RATE_LIMIT_TOKEN_BURST: '100000', RATE_LIMIT_IP_PER_SECOND: '100000', RATE_LIMIT_IP_BURST: '100000' })
})
afterAll(() => t.stop())

it('answers any body with 200 or a 4xx problem, never a 5xx', async () => {
  const r = rng(20261121)
  const token = await t.token({ videoId: 'fuzz', adIds: ['ad-1'] }, { now: new Date(Date.now() - 60_000) })
  const seen = new Map<number, number>()
  for (let i = 0; i < 400; i++) {
    const kind = Math.floor(r() * 5)
    const body =
      kind === 0 ? JSON.stringify(value(r))
      : kind === 1 ? JSON.stringify({ events: Array.from({ length: 1 + Math.floor(r() * 5) }, () => value(r)) })
      : kind === 2 ? JSON.stringify({ events: Array.from({ length: 1 + Math.floor(r() * 5) }, () => almostEvent(r)) })
      : kind === 3 ? JSON.stringify({ events: [almostEvent(r)] }).slice(0, Math.floor(r() * 60)) // truncated JSON
      : JSON.stringify({ events: [{ ...almostEvent(r), ts: EDGE_TIMES[Math.floor(r() * EDGE_TIMES.length)] }] }) // valid but for its time, maybe
    const res = await t.app.request('/v1/events', { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body }, { ip: '10.9.0.1' })
    seen.set(res.status, (seen.get(res.status) ?? 0) + 1)
    expect(res.status, body).toBeLessThan(500)
    const json = await res.json()
    if (res.status === 200) {
      expect(json.accepted + json.duplicates + json.rejected.length).toBeGreaterThan(0)
      for (const rej of json.rejected) expect(rej.reason).toMatch(/^[a-z_]+$/)
    } else {
      expect(res.headers.get('content-type')).toBe('application/problem+json')
      expect(json.detail).toEqual(expect.any(String))
    }
  }
  // The generator reached both the envelope checks and the per-event checks.
  expect(seen.get(200)).toBeGreaterThan(50)
  expect(seen.get(400)).toBeGreaterThan(50)
  // And every row of what it accepted or rejected loads: one that does not parse would hold
  // back its load and every load after it (a ts of 0 once did).
  expect(await t.edge.loader.drain(20_000)).toBe(true)
})
