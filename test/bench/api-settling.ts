/**
 * bench:api --settling: the day settled again through the server's own job route while a
 * warm loop runs, as the nightly job (or a rerun after late events) does on a live
 * server. Embedded, the engine runs one statement at a time, so the answers the caches
 * do not hold wait for the job's statements; the warm loop's p99 shows how long.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'

export type SettlingResult = { ms: number; outcome: string; run_id: number | null; unchanged: boolean | null }

/**
 * Starts settling `day` again (POST /internal/jobs/settle with the token the server
 * wrote to DATA_DIR/run/server.json); `done()` waits for the run and tells how long it took
 * and how it ended (the stream's last event: `done`, or the error's code).
 */
export function startSettling(opts: { url: string; dataDir: string; day: string }): { done(): Promise<SettlingResult> } {
  const { internalToken } = JSON.parse(readFileSync(join(opts.dataDir, 'run', 'server.json'), 'utf8')) as { internalToken: string }
  const t0 = performance.now()
  const running = (async (): Promise<SettlingResult> => {
    const res = await fetch(`${opts.url}/internal/jobs/settle`, {
      method: 'POST',
      headers: { authorization: `Bearer ${internalToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ date: opts.day }),
    })
    const text = await res.text()
    const ms = Math.round(performance.now() - t0)
    if (!res.ok) return { ms, outcome: `HTTP ${res.status}: ${text.slice(0, 200)}`, run_id: null, unchanged: null }
    const events = text
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as { type: string; code?: string; day?: { run_id: number; unchanged: boolean } })
    const day = events.find((e) => e.type === 'day')?.day
    const last = events.filter((e) => e.type !== 'heartbeat').at(-1)
    return { ms, outcome: last?.type === 'error' ? `error ${last.code}` : (last?.type ?? 'nothing'), run_id: day?.run_id ?? null, unchanged: day?.unchanged ?? null }
  })()
  return { done: () => running }
}
