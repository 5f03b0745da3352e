import { randomUUID } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { keys } from '../../ingest/state/keys.ts'
import { BACKGROUND_QUERY_PREFIX } from '../../lib/engine-turns.ts'
import { defineScripts, type Redis } from '../../lib/redis.ts'
import type { Services } from '../../lib/services.ts'

type RebaseRedis = Redis & { csRebaseViews(key: string, seen: string, total: string): Promise<number> }

export type ReconcileResult = { videos: number; corrected: number }

/** Videos with views in the last {days} days (in {tz}); {parts} / {part}: one share of them, by a hash of the id. */
const RECENT = `FROM video_stats_per_day WHERE day >= toDate(now(), {tz:String}) - {days:UInt32} AND views > 0`
const IN_PART = '({parts:UInt32} = 1 OR cityHash64(video_id) % {parts:UInt32} = {part:UInt32})'

/**
 * Makes the live view counters in Redis agree with ClickHouse, the record of truth,
 * for every video with counted views in the last `days` days. Counters drift when
 * Redis loses data or a decided event is never stored; increments made while the
 * job runs are kept.
 *
 * The videos are taken in shares of at most `shareVideos` (by a hash of the id), each read
 * with its creator, and checked `batch` at a time: the counters read, then the lifetime totals
 * of just those videos, by creator and video as the stats tables are ordered (a video's views
 * all carry its creator, as the stats endpoints also assume). Until 7 December every video
 * id came into memory at once and each batch's totals were looked up by video alone, a scan of
 * the monthly table: on the 100M-event day (1.53M videos with views) the process took 1.2 GiB
 * and a pass 1,533 statements of 115 ms, about 3 minutes of the engine every 10; now 96k ids a
 * share and 17 ms a batch (test/bench/HISTORY.md, thirty-sixth session). Its statements take
 * their turn after the reads under way (embedded: see lib/engine-turns.ts).
 *
 * A counter under its total is raised at once. One over it may only be ahead by views still
 * in flight (counted in Redis, not yet loaded: under live ingest every active video's are), so
 * its total is read again `settleMs` after the counter was, longer than loads take to land:
 * every view counted by the first read and stored is in the total by then, so the counter as
 * first read is over that total by views never stored, and is lowered by that much, keeping
 * what was counted since (rebase.lua, given the first read). Lowered at once, it stepped back
 * by its views in flight until the next pass raised it again; lowered only when nothing was
 * counted on it between the reads (until 7 December), a video never quiet for `settleMs`
 * kept its excess.
 *
 * @example
 * await reconcileLiveViews(services, { days: 2 })
 */
export async function reconcileLiveViews(
  services: Pick<Services, 'ch' | 'redis' | 'settings'>,
  opts: { days?: number; batch?: number; shareVideos?: number; settleMs?: number; beforeRecheck?: () => Promise<void> } = {},
): Promise<ReconcileResult> {
  const { ch, redis } = services
  defineScripts(redis, { csRebaseViews: { file: fileURLToPath(new URL('./rebase.lua', import.meta.url)), numberOfKeys: 1 } })
  const r = redis as RebaseRedis
  const recent = { tz: services.settings.SETTLEMENT_TZ, days: opts.days ?? 2 }
  const background = () => `${BACKGROUND_QUERY_PREFIX}live-views-${randomUUID()}`
  const counted = await ch.query({ query: `SELECT uniq(video_id) AS n ${RECENT}`, query_params: recent, format: 'JSONEachRow', query_id: background() })
  const [{ n } = { n: 0 }] = (await counted.json()) as { n: string | number }[]
  const parts = Math.max(1, Math.ceil(Number(n) / (opts.shareVideos ?? 100_000)))
  const size = opts.batch ?? 1_000

  /** The lifetime totals of these videos, by video. */
  const totalsOf = async (chunk: [creator: string, video: string][]) => {
    const totals = await ch.query({
      query: `SELECT video_id, toString(sum(views)) AS total FROM video_stats_per_month
              WHERE creator_id IN {creators:Array(String)} AND video_id IN {videos:Array(String)} GROUP BY video_id`,
      query_params: { creators: [...new Set(chunk.map(([creator]) => creator))], videos: chunk.map(([, video]) => video) },
      format: 'JSONEachRow',
      query_id: background(),
    })
    return new Map(((await totals.json()) as { video_id: string; total: string }[]).map((t) => [t.video_id, t.total]))
  }
  /** Each video's counter, read first (what is counted meanwhile is kept on top: rebase.lua), and its total. */
  const check = async (chunk: [creator: string, video: string][]) => {
    const seen = await r.mget(...chunk.map(([, video]) => keys.liveViews(video)))
    const byVideo = await totalsOf(chunk)
    return chunk.map(([creator, video], j) => ({ creator, video, before: seen[j] ?? '0', total: byVideo.get(video) ?? '0' }))
  }
  // Each batch's rebases sent together (the client pipelines them): after Redis lost its data
  // every counter differs, and one awaited call each took 1.53M round trips.
  const rebase = (fixes: { video: string; before: string; total: string }[]) => Promise.all(fixes.map((f) => r.csRebaseViews(keys.liveViews(f.video), f.before, f.total)))

  let videos = 0
  let corrected = 0
  const over: { creator: string; video: string; before: string }[] = []
  /** When the last counter found over its total was read: every one of them is looked at again settleMs after it. */
  let lastOverAt = 0
  for (let part = 0; part < parts; part++) {
    const listed = await ch.query({
      query: `SELECT DISTINCT creator_id, video_id ${RECENT} AND ${IN_PART}`,
      query_params: { ...recent, parts, part },
      format: 'JSONCompactEachRow',
      query_id: background(),
    })
    const share = (await listed.json()) as [creator: string, video: string][]
    videos += share.length
    for (let i = 0; i < share.length; i += size) {
      const readAt = Date.now()
      const checked = await check(share.slice(i, i + size))
      const under = checked.filter((c) => BigInt(c.total) > BigInt(c.before))
      await rebase(under)
      corrected += under.length
      for (const c of checked) if (BigInt(c.total) < BigInt(c.before)) (lastOverAt = readAt), over.push(c)
    }
  }
  if (over.length > 0) {
    const wait = lastOverAt + (opts.settleMs ?? 30_000) - Date.now()
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
    await opts.beforeRecheck?.()
    for (let i = 0; i < over.length; i += size) {
      const first = over.slice(i, i + size)
      const totals = await totalsOf(first.map((o) => [o.creator, o.video]))
      // The counter as first read over the total now: by that much for certain, whatever was counted since.
      const lower = first.map((o) => ({ ...o, total: totals.get(o.video) ?? '0' })).filter((c) => BigInt(c.total) < BigInt(c.before))
      await rebase(lower)
      corrected += lower.length
    }
  }
  return { videos, corrected }
}
