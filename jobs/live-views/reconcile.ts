import { fileURLToPath } from 'node:url'
import { keys } from '../../ingest/state/keys.ts'
import { defineScripts, type Redis } from '../../lib/redis.ts'
import type { Services } from '../../lib/services.ts'

type RebaseRedis = Redis & { csRebaseViews(key: string, seen: string, total: string): Promise<number> }

export type ReconcileResult = { videos: number; corrected: number }

/**
 * Makes the live view counters in Redis agree with ClickHouse, the record of truth,
 * for every video with counted views in the last `days` days. Counters drift when
 * Redis loses data or a decided event is never stored; increments made while the
 * job runs are kept.
 *
 * @example
 * await reconcileLiveViews(services, { days: 2 })
 */
export async function reconcileLiveViews(services: Pick<Services, 'ch' | 'redis' | 'settings'>, opts: { days?: number; batch?: number } = {}): Promise<ReconcileResult> {
  const { ch, redis } = services
  defineScripts(redis, { csRebaseViews: { file: fileURLToPath(new URL('./rebase.lua', import.meta.url)), numberOfKeys: 1 } })
  const r = redis as RebaseRedis
  const rs = await ch.query({
    query: `SELECT DISTINCT video_id FROM video_stats_per_day
            WHERE day >= toDate(now(), {tz:String}) - {days:UInt32} AND views > 0`,
    query_params: { tz: services.settings.SETTLEMENT_TZ, days: opts.days ?? 2 },
    format: 'JSONEachRow',
  })
  const videos = ((await rs.json()) as { video_id: string }[]).map((v) => v.video_id)
  let corrected = 0
  const size = opts.batch ?? 1_000
  for (let i = 0; i < videos.length; i += size) {
    const chunk = videos.slice(i, i + size)
    const seen = await r.mget(...chunk.map((v) => keys.liveViews(v)))
    const totals = await ch.query({
      query: 'SELECT video_id, toString(sum(views)) AS total FROM video_stats_per_month WHERE video_id IN {videos:Array(String)} GROUP BY video_id',
      query_params: { videos: chunk },
      format: 'JSONEachRow',
    })
    const byVideo = new Map(((await totals.json()) as { video_id: string; total: string }[]).map((t) => [t.video_id, t.total]))
    for (const [j, video] of chunk.entries()) {
      const total = byVideo.get(video) ?? '0'
      const before = seen[j] ?? '0'
      if (before === total) continue
      await r.csRebaseViews(keys.liveViews(video), before, total)
      corrected++
    }
  }
  return { videos: videos.length, corrected }
}
