import { createClickHouse } from './lib/clickhouse.ts'
import { loadSettings } from './lib/config.ts'
import { rows } from './test/harness/engines.ts'
import { videoStatsMany, type StatsQuery } from './analytics/stats/queries.ts'
import { viewerSets } from './analytics/stats/viewer-sets.ts'
const ch = createClickHouse(loadSettings({ DATA_DIR: 'data/bench' }))
const top = await rows<{ video_id: string; creator_id: string }>(ch, `SELECT video_id, any(creator_id) AS creator_id FROM video_stats_per_day WHERE day = '2026-12-02' GROUP BY video_id ORDER BY sum(views) DESC LIMIT 1000`)
const sets = viewerSets({ maxViewers: 8_000_000 })
const qs = (vs: typeof top, open: boolean): StatsQuery[] => vs.map((v) => ({ videoId: v.video_id, creatorId: v.creator_id, grain: 'day', from: '2026-12-01', to: '2026-12-03', ...(open ? { open: { from: '2026-12-01', generation: 'g' } } : {}) }))
let t = performance.now()
for (let i = 0; i < 1000; i += 50) await videoStatsMany(ch, qs(top.slice(i, i + 50), true), sets)
console.log('build all 1000', (performance.now() - t).toFixed(0), 'ms', sets.held())
let seed = 1; const rnd = (n: number) => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % n
const old: number[] = [], neu: number[] = []
for (let r = 0; r < 40; r++) {
  const batch = Array.from({ length: 16 }, () => top[rnd(1000)]!)
  t = performance.now(); await videoStatsMany(ch, qs(batch, false)); old.push(performance.now() - t)
  t = performance.now(); await videoStatsMany(ch, qs(batch, true), sets); neu.push(performance.now() - t)
}
const q = (a: number[], p: number) => a.sort((x, y) => x - y)[Math.floor(p * (a.length - 1))]!.toFixed(1)
console.log('random 16 of top 1000: old p50', q(old, 0.5), 'p90', q(old, 0.9), 'max', q(old, 1), '| sets p50', q(neu, 0.5), 'p90', q(neu, 0.9), 'max', q(neu, 1))
await ch.close()
