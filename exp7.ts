import { createClickHouse } from './lib/clickhouse.ts'
import { loadSettings } from './lib/config.ts'
import { rows } from './test/harness/engines.ts'
const ch = createClickHouse(loadSettings({ DATA_DIR: 'data/bench' }))
const top = await rows<{ video_id: string; creator_id: string }>(ch, `SELECT video_id, any(creator_id) AS creator_id FROM video_stats_per_day WHERE day = '2026-12-02' GROUP BY video_id ORDER BY sum(views) DESC LIMIT 1000`)
const b = top.slice(100, 116)
const p = { c: b.map((t) => t.creator_id), v: b.map((t) => t.video_id) }
const sql = (cond: string) => `SELECT creator_id, video_id, toString(day) AS period, sum(views), groupUniqArray(_part) FROM video_stats_per_day WHERE creator_id IN {c:Array(String)} AND video_id IN {v:Array(String)} AND ${cond} GROUP BY creator_id, video_id, period`
for (const cond of ["day BETWEEN '2026-12-01' AND '2026-12-03'", "day IN ('2026-12-01','2026-12-02','2026-12-03')"]) {
  const ex = await rows<{ explain: string }>(ch, `EXPLAIN indexes = 1 ${sql(cond)}`, p)
  console.log(cond, ex.map((r) => r.explain).filter((l) => /Granules|Parts|Keys|Condition/.test(l)).join('\n'))
  for (let r = 0; r < 3; r++) { const t = performance.now(); await rows(ch, sql(cond), p); console.log((performance.now() - t).toFixed(1), 'ms') }
}
await ch.close()
