import { createClickHouse } from './lib/clickhouse.ts'
import { loadSettings } from './lib/config.ts'
import { rows } from './test/harness/engines.ts'
const ch = createClickHouse(loadSettings({ DATA_DIR: 'data/bench' }))
const top = await rows<{ video_id: string; creator_id: string }>(ch, `SELECT video_id, any(creator_id) AS creator_id FROM video_stats_per_day WHERE day = '2026-12-02' GROUP BY video_id ORDER BY sum(views) DESC LIMIT 1000`)
const b = top.slice(100, 116)
const p = { c: b.map((t) => t.creator_id), v: b.map((t) => t.video_id) }
const W = "creator_id IN {c:Array(String)} AND video_id IN {v:Array(String)} AND day BETWEEN '2026-12-01' AND '2026-12-03'"
const base = `SELECT creator_id, video_id, toString(day) AS period, sum(views), sum(watch_ms), sum(ad_impressions), sum(excluded_self_view), sum(excluded_duplicate_viewer), sum(excluded_duplicate_ip), groupUniqArray(_part) FROM video_stats_per_day WHERE ${W} GROUP BY creator_id, video_id, period`
const variants: Record<string, string> = {
  base,
  threads1: base + ' SETTINGS max_threads = 1',
  nocondcache: base + ' SETTINGS use_query_condition_cache = 0',
  noprewhere: base + ' SETTINGS optimize_move_to_prewhere = 0',
  noparts: base.replace(', groupUniqArray(_part)', ''),
  onlykeys: `SELECT creator_id, video_id FROM video_stats_per_day WHERE ${W}`,
  explainonly: `EXPLAIN ESTIMATE ${base}`,
}
for (let r = 0; r < 4; r++) {
  const line: string[] = []
  for (const [name, q] of Object.entries(variants)) { const t = performance.now(); await rows(ch, q, p); line.push(`${name} ${(performance.now() - t).toFixed(1)}`) }
  console.log(line.join(' | '))
}
await ch.close()
