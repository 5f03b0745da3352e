/**
 * Before bench:api starts the server on the settle benchmark's data folder: registers
 * (in `videos`) every video of the aggregates, which the generator only put in the event
 * tables, as a platform has every video with views registered, and prints one JSON line with
 * the day, the bench creator's videos and the day's most watched ones, the count of active
 * videos, how many videos it registered (those an earlier run had not) and what bench:settle
 * generated them with (the ranks of videos, the creators, the bench creator), for the live
 * players of --live-events.
 *
 *   bun test/bench/api-prepare.ts <dataDir>
 */
import { createClickHouse } from '../../lib/clickhouse.ts'
import { loadSettings } from '../../lib/config.ts'
import { rows } from '../harness/engines.ts'
import { benchCreatorId, RETURNING_DEVICES, returningDevice } from './settle-data.ts'

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
  // Every video of the aggregates, in the engine (4.47M on the 100M-event day). Until the
  // thirty-eighth session only the bench creator's and the day's 1,000 most watched were, so each
  // stats request looked its video up in a table of 1,018 rows: 32 of the most watched videos in
  // 2.5–8.4 ms, against 15–25 among 4.47M (chDB alone, 7 December). Only those an earlier run did
  // not register: registering them again added a part of the same rows to `videos` each run, and
  // each part costs the lookup about 1 ms (FINAL over 4 such parts 6–7 ms against 3.6 over one, 6 December).
  const registered = async () => Number((await rows<{ n: string }>(ch, 'SELECT count() AS n FROM videos FINAL WHERE deleted = 0'))[0]!.n)
  const before = await registered()
  await ch.command({
    query: `INSERT INTO videos (video_id, creator_id, title, duration_ms, created_at, updated_at, deleted)
            SELECT video_id, creator_id, concat('bench ', video_id), 3600000, now64(3), now64(3), 0
            FROM (SELECT DISTINCT video_id, creator_id FROM video_stats_per_day)
            WHERE (video_id, creator_id) NOT IN (SELECT video_id, creator_id FROM videos FINAL WHERE deleted = 0)`,
  })
  const added = (await registered()) - before
  // One part, as a table written over months is mostly merged into.
  if (added > 0) await ch.command({ query: 'OPTIMIZE TABLE videos FINAL' })
  // The session starts' returning viewers: every other one has a stored position on its video (bench:api's starts
  // until the thirty-ninth session had none, so each start's lookup of positions found nothing: 3.5 ms for 32 viewers
  // on this day against 27 ms for 32 stored ones, chDB alone). Written once per folder, as the view writes them.
  const devices = Array.from({ length: RETURNING_DEVICES / 2 }, (_, k) => returningDevice(2 * k))
  const [p] = await rows<{ n: string }>(ch, 'SELECT count() AS n FROM resume_positions WHERE viewer_id = {first:String}', { first: devices[0] })
  if (Number(p!.n) === 0) {
    await ch.command({
      query: `INSERT INTO resume_positions (viewer_id, video_id, position_ms, updated_at)
              SELECT {devices:Array(String)}[number + 1], {top:Array(String)}[(2 * number) % length({top:Array(String)}) + 1], 1000 * (number % 3000), toDateTime64({day:Date}, 3, 'UTC') + toIntervalSecond(number)
              FROM numbers(length({devices:Array(String)}))`,
      query_params: { devices, top: top.map((v) => v.video_id), day },
    })
    // Then merged, as a table written over months mostly is: the generation leaves its positions in parts the engine
    // had not merged yet, which a server on the folder with ingest going merged (a 173 MB merge beside the first
    // endpoint of --live-events, thirty-eighth session). 17 s for the 100M-event day's 94.6M; --live-events --only stats
    // no different after it in one pair (thirty-ninth session: api-live-{unmerged,merged}-positions-dec8-s39.json).
    await ch.command({ query: 'OPTIMIZE TABLE resume_positions FINAL' })
  }
  const settings = { videos: Number(d!.ranks), creators: Number(d!.creators), creator0: creator }
  console.log(JSON.stringify({ day, active_videos: Number(d!.videos), creator_videos: mine.map((v) => v.video_id), top_videos: top.map((v) => v.video_id), registered: added, settings }))
} finally {
  await ch.close()
}
