/**
 * Before bench:api starts the server on the settle benchmark's data folder: registers
 * (in `videos`) the bench creator's videos and the day's most watched ones, which the
 * generator only put in the event tables, and prints one JSON line with the day, those
 * video ids and the count of active videos.
 *
 *   bun test/bench/api-prepare.ts <dataDir>
 */
import { createClickHouse } from '../../lib/clickhouse.ts'
import { loadSettings } from '../../lib/config.ts'
import { rows } from '../harness/engines.ts'
import { benchCreatorId } from './settle-data.ts'

const dataDir = process.argv[2]!
const ch = createClickHouse(loadSettings({ DATA_DIR: dataDir }))
try {
  const [d] = await rows<{ day: string; videos: string }>(ch, 'SELECT toString(max(day)) AS day, uniqExact(video_id) AS videos FROM video_stats_per_day')
  const day = d!.day
  const creator = benchCreatorId()
  const mine = await rows<{ video_id: string; creator_id: string }>(
    ch,
    'SELECT DISTINCT video_id, creator_id FROM video_stats_per_day WHERE creator_id = {c:String} LIMIT 10000',
    { c: creator },
  )
  const top = await rows<{ video_id: string; creator_id: string }>(
    ch,
    'SELECT video_id, any(creator_id) AS creator_id FROM video_stats_per_day WHERE day = {day:Date} GROUP BY video_id ORDER BY sum(views) DESC LIMIT 1000',
    { day },
  )
  const all = new Map([...mine, ...top].map((v) => [v.video_id, v.creator_id]))
  const now = new Date().toISOString().replace('T', ' ').replace('Z', '')
  await ch.insert({
    table: 'videos',
    values: [...all].map(([video_id, creator_id]) => ({ video_id, creator_id, title: `bench ${video_id}`, duration_ms: 3_600_000, created_at: now, updated_at: now, deleted: 0 })),
    format: 'JSONEachRow',
  })
  console.log(JSON.stringify({ day, active_videos: Number(d!.videos), creator_videos: mine.map((v) => v.video_id), top_videos: top.map((v) => v.video_id) }))
} finally {
  await ch.close()
}
