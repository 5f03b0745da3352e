import { afterAll, beforeAll, expect, it } from 'vitest'
import { startTestEdge, type TestEdge } from '../../test/harness/edge.ts'

let t: TestEdge
beforeAll(async () => {
  t = await startTestEdge({ RATE_LIMIT_TOKEN_PER_SECOND: '100000', RATE_LIMIT_TOKEN_BURST: '100000', RATE_LIMIT_IP_PER_SECOND: '100000', RATE_LIMIT_IP_BURST: '100000' })
})
afterAll(() => t.stop())

/** A small seeded generator, so a failure can be replayed. */
function rng(seed: number) {
  let s = seed >>> 0
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32)
}

function value(r: () => number, depth = 0): unknown {
  const pick = Math.floor(r() * (depth > 2 ? 7 : 10))
  switch (pick) {
    case 0: return null
    case 1: return r() < 0.5
    case 2: return Math.floor((r() - 0.5) * 2 ** (r() * 64))
    case 3: return r() * 1e308 * (r() < 0.5 ? -1 : 1)
    case 4: return 'x'.repeat(Math.floor(r() * 300))
    case 5: return ['play', 'progress', 'pause', 'seek', 'end', 'ad_impression', 'PLAY', '', '\u0000', '💥'][Math.floor(r() * 10)]
    case 6: return crypto.randomUUID()
    case 7: return Array.from({ length: Math.floor(r() * 4) }, () => value(r, depth + 1))
    default: return Object.fromEntries(Array.from({ length: Math.floor(r() * 5) }, () => [['id', 'type', 'ts', 'position_ms', 'watched_ms', 'ad_id', '__proto__', 'constructor'][Math.floor(r() * 8)]!, value(r, depth + 1)]))
  }
}

/** Times a client may send that are valid input, however odd: each is stored, as sent or rejected for its time. */
const EDGE_TIMES = [0, 1, 999, 1_000, 99_999_999, 99_999_999_999, 999_999_999_999, 9_999_999_999_999, 99_999_999_999_999, 8.64e15, '1969-07-20T20:17:40Z', '0001-01-01T00:00:00Z', '9999-12-31T23:59:59.999Z', '2026-02-29T00:00:00Z']

/** An event that is nearly valid, with one field broken. */
function almostEvent(r: () => number): Record<string, unknown> {
  const e: Record<string, unknown> = { id: crypto.randomUUID(), type: 'progress', ts: Date.now() - 1_000, position_ms: 1_000, watched_ms: 1_000 }
  const key = ['id', 'type', 'ts', 'position_ms', 'watched_ms', 'ad_id'][Math.floor(r() * 6)]!
  e[key] = value(r)
  return e
}

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
