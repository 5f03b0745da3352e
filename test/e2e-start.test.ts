import { execFile } from 'node:child_process'
import { rmSync } from 'node:fs'
import { promisify } from 'node:util'
import { afterAll, expect, it } from 'vitest'
import { createClickHouse } from '../lib/clickhouse.ts'
import { loadSettings } from '../lib/config.ts'
import { freePort, rows, tempDir } from './harness/engines.ts'
import { ROOT, startServerProcess, type ServerProcess } from './harness/process.ts'
import { dateIn, videoSnapshot } from './harness/snapshot.ts'

const run = promisify(execFile)
const dataDir = tempDir('cs-e2e-')
let server: ServerProcess | undefined
afterAll(() => {
  server?.kill('SIGKILL')
  rmSync(dataDir, { recursive: true, force: true })
})

/**
 * The README's path: `npm start` on embedded defaults (private redis-server, chDB),
 * a token from `npm run token`, a batch posted twice.
 */
it('serves through npm start, takes a batch with a token from npm run token, and counts a repeat as duplicates', async () => {
  const port = await freePort()
  const env: Record<string, string | undefined> = { ...process.env, DATA_DIR: dataDir, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'info' }
  delete env.REDIS_URL
  delete env.CLICKHOUSE_URL
  server = await startServerProcess({ cmd: 'npm', args: ['start'], env, port })

  const { stdout } = await run('npm', ['run', '-s', 'token', '--', '--video', 'video-e2e', '--creator', 'creator-e2e', '--viewer', 'viewer-e2e', '--ads', 'ad-e2e'], {
    cwd: ROOT,
    env: env as NodeJS.ProcessEnv,
  })
  const token = stdout.trim()
  expect(token.split('.')).toHaveLength(3)

  // The token's session starts now: keep the client times after it.
  const now = Date.now() + 2_000
  const batch = [
    { id: crypto.randomUUID(), type: 'play', ts: now, position_ms: 0 },
    { id: crypto.randomUUID(), type: 'ad_impression', ts: now + 100, position_ms: 0, ad_id: 'ad-e2e' },
    { id: crypto.randomUUID(), type: 'progress', ts: now + 1_000, position_ms: 1_000, watched_ms: 1_000 },
    { id: crypto.randomUUID(), type: 'pause', ts: now + 1_100, position_ms: 1_100 },
  ]
  const post = () =>
    fetch(`${server!.url}/v1/events`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ events: batch }) })
  // The edge's event counts are there from the start, at 0.
  const fresh = await (await fetch(`${server!.url}/metrics`)).text()
  for (const outcome of ['accepted', 'duplicate']) expect(fresh).toMatch(new RegExp(`^cs_ingest_events_total\\{outcome="${outcome}",reason=""\\} 0$`, 'm'))
  const first = await post()
  expect(first.status).toBe(200)
  expect(await first.json()).toEqual({ accepted: 4, duplicates: 0, rejected: [] })
  const again = await post()
  expect(await again.json()).toEqual({ accepted: 0, duplicates: 4, rejected: [] })

  expect((await fetch(`${server.url}/readyz`)).status).toBe(200)
  const metrics = await (await fetch(`${server.url}/metrics`)).text()
  expect(metrics).toMatch(/cs_ingest_events_total\{outcome="accepted",reason=""\} 4/)
  expect(metrics).toMatch(/cs_ingest_events_total\{outcome="duplicate",reason=""\} 4/)
  // the edge's buffer, read at the scrape: everything loaded by now or soon (at most the two batches' rows)
  expect(Number(/^cs_ingest_buffer_rows (\d+)$/m.exec(metrics)?.[1])).toBeLessThanOrEqual(8)
  expect(metrics).toMatch(/^cs_ingest_buffer_bytes \d+$/m)
  // the embedded engine's tracked memory, read from it at the scrape
  expect(Number(/^cs_clickhouse_embedded_memory_tracked_bytes (\d+)/m.exec(metrics)?.[1])).toBeGreaterThan(0)
  // and what its allocator holds resident, from jemalloc's own statistics
  expect(Number(/^cs_clickhouse_embedded_memory_resident_bytes (\d+)/m.exec(metrics)?.[1])).toBeGreaterThan(1 << 20)

  // Ctrl-C in the terminal: the whole group gets SIGINT; the server flushes and stops,
  // and stops its private redis-server with it.
  server.kill('SIGINT')
  await server.groupGone()
  expect(server.output()).toContain('"msg":"shutting down"')

  // The server has stopped and released the data folder: read what it stored.
  const ch = createClickHouse(loadSettings({ DATA_DIR: dataDir }))
  try {
    const snap = await videoSnapshot(ch, 'video-e2e')
    expect(snap.rawIds).toEqual([{ n: 4, ids: 4 }])
    // No trusted proxy: the client's address is the socket's, read from Bun's server when asked for.
    expect(await rows(ch, 'SELECT DISTINCT ip FROM raw_events WHERE video_id = {v:String}', { v: 'video-e2e' })).toEqual([{ ip: '127.0.0.1' }])
    const day = dateIn(now, 'Asia/Seoul')
    expect(snap.day).toEqual([{ period: day, views: 1, watch_ms: 1_000, ad_impressions: 1, self_view: 0, duplicate_viewer: 0, duplicate_ip: 0, unique_viewers: 1 }])
    expect(snap.adDay).toEqual([{ period: day, ad_id: 'ad-e2e', impressions: 1 }])
    expect(await rows(ch, 'SELECT count() AS n FROM schema_migrations')).not.toEqual([{ n: '0' }])
  } finally {
    await ch.close()
  }
})
