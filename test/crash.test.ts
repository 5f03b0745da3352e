import { rmSync } from 'node:fs'
import { afterAll, expect, it } from 'vitest'
import { createClickHouse } from '../lib/clickhouse.ts'
import { loadSettings } from '../lib/config.ts'
import { loadPlaybackKeys } from '../ingest/tokens/keys.ts'
import { signPlaybackToken } from '../ingest/tokens/playback.ts'
import { freePort, rows, startTestRedis, tempDir, type TestRedis } from './harness/engines.ts'
import { BUN, startServerProcess, testServerEnv, type ServerProcess } from './harness/process.ts'

/**
 * The real Bun server takes concurrent batches and is killed with SIGKILL twice
 * mid-load. Clients retry every batch without a 200 (as players do) until it gets
 * one. Afterwards every event is stored exactly once, every acknowledged one is
 * there, and the aggregates agree with the raw table.
 */
const SESSIONS = 48
const BATCHES = 12
const EVENTS_PER_BATCH = 25

let redis: TestRedis | undefined
let server: ServerProcess | undefined
const dataDir = tempDir('cs-crash-')
afterAll(async () => {
  server?.kill('SIGKILL')
  await redis?.stop()
  rmSync(dataDir, { recursive: true, force: true })
})

it('stores every acknowledged event exactly once across SIGKILL and restart', async () => {
  redis = await startTestRedis()
  const port = await freePort()
  const env = testServerEnv(
    { dataDir, port, redisUrl: redis.url },
    {
      INFLIGHT_LEASE_MS: '1500',
      FLUSH_INTERVAL_MS: '20',
      RATE_LIMIT_IP_PER_SECOND: '1000000',
      RATE_LIMIT_IP_BURST: '1000000',
      RATE_LIMIT_TOKEN_PER_SECOND: '1000',
      RATE_LIMIT_TOKEN_BURST: '1000',
    },
  )
  const settings = loadSettings(env)
  const keys = await loadPlaybackKeys(settings) // written once; the server reads the same file
  const start = () => startServerProcess({ cmd: BUN, args: ['lib/main.ts'], env, port })
  server = await start()

  const now = Date.now()
  const sessions = await Promise.all(
    Array.from({ length: SESSIONS }, async (_, i) => {
      const { token } = await signPlaybackToken(keys, { issuer: settings.PLAYBACK_TOKEN_ISSUER, ttlSeconds: 3600, now: new Date(now - 600_000) }, {
        viewerId: `viewer-${i}`, videoId: `video-${i % 6}`, creatorId: 'creator-1', sessionId: crypto.randomUUID(), adIds: [], durationMs: 3_600_000,
      })
      const batches = Array.from({ length: BATCHES }, (_, b) =>
        Array.from({ length: EVENTS_PER_BATCH }, (_, k) => {
          const n = b * EVENTS_PER_BATCH + k
          const ts = now - 500_000 + n * 1_000
          return n === 0
            ? { id: crypto.randomUUID(), type: 'play', ts, position_ms: 0 }
            : { id: crypto.randomUUID(), type: 'progress', ts, position_ms: n * 1_000, watched_ms: 1_000 }
        }),
      )
      return { token, batches }
    }),
  )

  const acked = new Set<string>()
  // Resolves once `acked` holds at least `target` ids (checked whenever acks are added).
  let waiting: { target: number; resolve(): void } | undefined
  const ackedReach = (target: number) => new Promise<void>((resolve) => (acked.size >= target ? resolve() : (waiting = { target, resolve })))
  const ackedBeforeLastKill = new Set<string>()
  let statuses: Record<string, number> = {}
  let stopAt = Date.now() + 120_000
  const runSession = async (s: (typeof sessions)[number]) => {
    for (const batch of s.batches) {
      for (;;) {
        if (Date.now() > stopAt) throw new Error('a batch was never acknowledged')
        let wait = 50
        try {
          const res = await fetch(`http://127.0.0.1:${port}/v1/events`, {
            method: 'POST',
            headers: { authorization: `Bearer ${s.token}`, 'content-type': 'application/json' },
            body: JSON.stringify({ events: batch }),
          })
          statuses[res.status] = (statuses[res.status] ?? 0) + 1
          if (res.status === 200) {
            const body = await res.json()
            expect(body.rejected).toEqual([])
            expect(body.accepted + body.duplicates).toBe(batch.length)
            for (const e of batch) acked.add(e.id)
            if (waiting && acked.size >= waiting.target) {
              waiting.resolve()
              waiting = undefined
            }
            break
          }
          expect([503]).toContain(res.status)
          wait = Number(res.headers.get('retry-after') ?? 1) * 1000
          await res.body?.cancel()
        } catch (err) {
          if (err instanceof Error && err.name === 'AssertionError') throw err
          statuses.network_error = (statuses.network_error ?? 0) + 1
        }
        // A player's back-off before it sends the same batch again (Retry-After, or 50 ms
        // while the server is down): part of the traffic under test, not a wait for a state.
        await new Promise((r) => setTimeout(r, wait))
      }
    }
  }

  const load = Promise.all(sessions.map(runSession))
  for (let kill = 0; kill < 2; kill++) {
    const target = ((kill + 1) * SESSIONS * BATCHES * EVENTS_PER_BATCH) / 4
    await ackedReach(target)
    server.kill('SIGKILL')
    await server.exited
    for (const id of acked) ackedBeforeLastKill.add(id)
    server = await start()
  }
  await load
  server.kill('SIGTERM')
  expect(await server.exited).toBe(0)

  // The server is gone: open its data folder here and count.
  const ch = createClickHouse(settings)
  try {
    const sent = sessions.flatMap((s) => s.batches.flat().map((e) => e.id))
    const counts = await rows<{ id: string; n: string }>(ch, 'SELECT toString(event_id) AS id, count() AS n FROM raw_events GROUP BY event_id')
    const byId = new Map(counts.map((r) => [r.id, Number(r.n)]))
    expect(sent.filter((id) => byId.get(id) !== 1)).toEqual([])
    expect(byId.size).toBe(sent.length)
    expect([...ackedBeforeLastKill].every((id) => byId.get(id) === 1)).toBe(true)
    expect(acked.size).toBe(sent.length)
    const [agg] = await rows<{ views: string; watch: string }>(ch, 'SELECT sum(views) AS views, sum(watch_ms) AS watch FROM video_stats_per_day')
    const [raw] = await rows<{ views: string; watch: string }>(
      ch,
      "SELECT countIf(type = 'play' AND outcome = 'counted') AS views, sumIf(credited_watch_ms, type = 'progress' AND outcome = 'counted') AS watch FROM raw_events",
    )
    expect(agg).toEqual(raw)
    // Six videos, all traffic from one address: three counted views each (SPEC §5).
    expect(Number(agg!.views)).toBe(6 * 3)
    console.log(`crash test: ${sent.length} events, statuses ${JSON.stringify(statuses)}`)
  } finally {
    await ch.close()
  }
})
