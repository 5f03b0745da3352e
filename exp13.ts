import { createClickHouse } from './lib/clickhouse.ts'
import { loadSettings } from './lib/config.ts'
import { rows } from './test/harness/engines.ts'
const ch = createClickHouse(loadSettings({ DATA_DIR: process.argv[2]! }))
const top = await rows<{ video_id: string; creator_id: string }>(ch, `SELECT video_id, any(creator_id) AS creator_id FROM video_stats_per_day WHERE day = '2026-12-02' GROUP BY video_id ORDER BY sum(views) DESC LIMIT 1000`)
let seed = 3; const rnd = (n: number) => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % n
const W = "creator_id IN {c:Array(String)} AND video_id IN {v:Array(String)} AND day BETWEEN '2026-12-01' AND '2026-12-03'"
const sums = `SELECT creator_id, video_id, toString(day) AS period, sum(views), sum(watch_ms), sum(ad_impressions), sum(excluded_self_view), sum(excluded_duplicate_viewer), sum(excluded_duplicate_ip), groupUniqArray(_part) FROM video_stats_per_day WHERE ${W} GROUP BY creator_id, video_id, period`
const merged = sums.replace('groupUniqArray(_part)', 'uniqExactMerge(unique_viewers)')
const out: Record<string, number[]> = { sums: [], merged: [] }
for (let r = 0; r < 40; r++) {
  const b = Array.from({ length: 16 }, () => top[rnd(1000)]!)
  const p = { c: b.map((t) => t.creator_id), v: b.map((t) => t.video_id) }
  for (const [name, q] of [['sums', sums], ['merged', merged]] as const) { const t = performance.now(); await rows(ch, q, p); out[name]!.push(performance.now() - t) }
}
const q = (a: number[], f: number) => a.sort((x, y) => x - y)[Math.floor(f * (a.length - 1))]!.toFixed(1)
console.log(process.argv[2], Object.entries(out).map(([k, a]) => `${k} p50 ${q(a, 0.5)} p90 ${q(a, 0.9)}`).join(' | '))
await ch.close()
