import { createClickHouse } from './lib/clickhouse.ts'
import { loadSettings } from './lib/config.ts'
import { rows } from './test/harness/engines.ts'
import { videoStatsMany, type StatsQuery } from './analytics/stats/queries.ts'
import { viewerSets } from './analytics/stats/viewer-sets.ts'
const ch = createClickHouse(loadSettings({ DATA_DIR: 'data/bench' }))
const top = await rows<{ video_id: string; creator_id: string }>(ch, `SELECT video_id, any(creator_id) AS creator_id FROM video_stats_per_day WHERE day = '2026-12-02' GROUP BY video_id ORDER BY sum(views) DESC LIMIT 12`)
const sets = viewerSets({ maxViewers: 8_000_000 })
const qs = (open: boolean): StatsQuery[] => top.map((v) => ({ videoId: v.video_id, creatorId: v.creator_id, grain: 'day', from: '2026-12-01', to: '2026-12-03', ...(open ? { open: { from: '2026-12-01', generation: 'g' } } : {}) }))
const time = async (label: string, f: () => Promise<unknown>) => { const t = performance.now(); await f(); console.log(label, (performance.now() - t).toFixed(1), 'ms') }
for (let r = 0; r < 4; r++) {
  await time('old merged', () => videoStatsMany(ch, qs(false)))
  await time('sets', () => videoStatsMany(ch, qs(true), sets))
  await time('parts only', () => rows(ch, "SELECT name FROM system.parts WHERE database = currentDatabase() AND table = 'video_stats_per_day' AND active"))
  await time('sums+parts', () => rows(ch, `SELECT creator_id, video_id, toString(day) AS period, sum(views), groupUniqArray(_part) FROM video_stats_per_day WHERE creator_id IN {c:Array(String)} AND video_id IN {v:Array(String)} AND day BETWEEN '2026-12-01' AND '2026-12-03' GROUP BY creator_id, video_id, period`, { c: top.map((t) => t.creator_id), v: top.map((t) => t.video_id) }))
  await time('sums only', () => rows(ch, `SELECT creator_id, video_id, toString(day) AS period, sum(views) FROM video_stats_per_day WHERE creator_id IN {c:Array(String)} AND video_id IN {v:Array(String)} AND day BETWEEN '2026-12-01' AND '2026-12-03' GROUP BY creator_id, video_id, period`, { c: top.map((t) => t.creator_id), v: top.map((t) => t.video_id) }))
  console.log(sets.held())
}
await ch.close()
