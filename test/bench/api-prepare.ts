/**
 * Before bench:api starts the server on the settle benchmark's data folder: registers
 * (in `videos`) the bench creator's videos and the day's most watched ones, which the
 * generator only put in the event tables, and prints one JSON line with the day, those
 * video ids, the count of active videos, how many videos it registered (those an earlier run
 * had not) and what bench:settle generated them with (the ranks of videos, the creators, the
 * bench creator), for the live players of --live-events.
 *
 *   bun test/bench/api-prepare.ts <dataDir>
 */
import { createClickHouse } from '../../lib/clickhouse.ts'
import { loadSettings } from '../../lib/config.ts'
import { getVideos } from '../../analytics/videos/store.ts'
import { rows } from '../harness/engines.ts'
import { benchCreatorId } from './settle-data.ts'

const dataDir = process.argv[2]!
const ch = createClickHouse(loadSettings({ DATA_DIR: dataDir }))
try {
  // The generated day is the one with the most rows (live players of an earlier run may have added today).
  const [d] = await rows<{ generated: string; videos: string; ranks: string; creators: string }>(
    ch,
    `SELECT toString(day) AS generated, uniqExact(video_id) AS videos, max(toUInt64OrZero(substring(video_id, 2))) + 1 AS ranks, uniqExact(creator_id) AS creators
     FROM video_stats_per_day WHERE day = (SELECT day FROM video_stats_per_day GROUP BY day ORDER BY count() DESC LIMIT 1) GROUP BY day`,
  )
  const day = d!.generated
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
  // Only the videos an earlier run did not register: registering them again each run added a
  // part of the same rows to `videos` per run, and each part costs the video lookup about 1 ms
  // (FINAL over 4 such parts 6–7 ms against 3.6 over one, chDB alone, 6 December).
  for (const v of await getVideos(ch, [...all.keys()])) if (all.get(v.video_id) === v.creator_id) all.delete(v.video_id)
  const now = new Date().toISOString().replace('T', ' ').replace('Z', '')
  if (all.size > 0)
    await ch.insert({
      table: 'videos',
      values: [...all].map(([video_id, creator_id]) => ({ video_id, creator_id, title: `bench ${video_id}`, duration_ms: 3_600_000, created_at: now, updated_at: now, deleted: 0 })),
      format: 'JSONEachRow',
    })
  const settings = { videos: Number(d!.ranks), creators: Number(d!.creators), creator0: creator }
  console.log(JSON.stringify({ day, active_videos: Number(d!.videos), creator_videos: mine.map((v) => v.video_id), top_videos: top.map((v) => v.video_id), registered: all.size, settings }))
} finally {
  await ch.close()
}
