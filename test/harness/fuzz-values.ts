/** Seeded random input for fuzz tests: odd JSON values and nearly valid playback events. */

/** The benchmarks' seeded generator, so a failure can be replayed. */
export { rng } from '../bench/lib.ts'

/** Any JSON-like value, weighted towards the shapes and names of playback events. */
export function value(r: () => number, depth = 0): unknown {
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
export const EDGE_TIMES = [0, 1, 999, 1_000, 99_999_999, 99_999_999_999, 999_999_999_999, 9_999_999_999_999, 99_999_999_999_999, 8.64e15, '1969-07-20T20:17:40Z', '0001-01-01T00:00:00Z', '9999-12-31T23:59:59.999Z', '2026-02-29T00:00:00Z']

/** An event that is nearly valid, with one field broken. */
export function almostEvent(r: () => number): Record<string, unknown> {
  const e: Record<string, unknown> = { id: crypto.randomUUID(), type: 'progress', ts: Date.now() - 1_000, position_ms: 1_000, watched_ms: 1_000 }
  const key = ['id', 'type', 'ts', 'position_ms', 'watched_ms', 'ad_id'][Math.floor(r() * 6)]!
  e[key] = value(r)
  return e
}
