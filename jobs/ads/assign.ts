import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { z } from 'zod'
import type { ClickHouseClient } from '../../lib/clickhouse.ts'
import { defineScripts } from '../../lib/redis.ts'
import type { Services } from '../../lib/services.ts'

/** Videos at least this long get a mid-roll slot too (MID_ROLL_MIN_VIDEO_MS). */
export const DEFAULT_MID_ROLL_MIN_VIDEO_MS = 8 * 60 * 1000

export type AdAssignmentOptions = {
  /** The day (YYYY-MM-DD, SETTLEMENT_TZ) whose active contracts count. */
  date: string
  /** Only this video (used when a video is registered). */
  videoId?: string
  /** Only this ad (used when an ad is created or changed). */
  adId?: string
  midRollMinVideoMs?: number
  /** Videos a statement takes at most when the scope is not one video (ASSIGNMENT_PAGE_VIDEOS). */
  pageVideos?: number
}

/**
 * Videos (by id) one pass of a run takes at most: each statement's sets (the videos times the
 * active ads, and their active assignments) are bounded by this many times the ads, not by the
 * platform. In one pass over every video, the 100M-event day's 4.47M registered videos with 3
 * active ads took 1.0 GiB to assign (26.8M assignments) and 1.9 GiB to find nothing left to
 * assign, growing with every ad (thirty-ninth session, test/bench/HISTORY.md).
 */
export const ASSIGNMENT_PAGE_VIDEOS = 50_000

export type AdAssignmentResult = { date: string; retired: number; assigned: number; status: 'ok' | 'skipped' }

const LOCK_KEY = 'cs:{job:ad-assignment}:lock'
const LOCK_MS = 10 * 60 * 1000
const scripts = { csReleaseLock: { file: fileURLToPath(new URL('./lock.lua', import.meta.url)), numberOfKeys: 1 } }

// The pass's videos: ids after {after} up to {upto} (no bound when ''); the passes of a run cover every id once.
const IN_PAGE = "video_id > {after:String} AND ({upto:String} = '' OR video_id <= {upto:String})"

// Active assignments whose ad is gone, outside its contract on {date}, or whose video was removed.
const STALE = `
  SELECT a.video_id AS video_id, a.ad_id AS ad_id, a.slot AS slot, a.assigned_at AS assigned_at
  FROM (SELECT video_id, ad_id, slot, assigned_at FROM ad_assignments FINAL
        WHERE retired_at IS NULL AND ({video:String} = '' OR video_id = {video:String}) AND ({ad:String} = '' OR ad_id = {ad:String}) AND ${IN_PAGE}) AS a
  LEFT JOIN (SELECT ad_id AS id, contract_start, contract_end, deleted FROM ads FINAL) AS ad ON ad.id = a.ad_id
  LEFT JOIN (SELECT video_id AS id, deleted FROM videos FINAL WHERE ${IN_PAGE}) AS vd ON vd.id = a.video_id
  WHERE ad.id = '' OR ad.deleted = 1 OR ad.contract_end < {date:Date} OR ad.contract_start > {date:Date} OR vd.id = '' OR vd.deleted = 1`

// (video, ad, slot) triples that should run on {date} and have no active assignment.
const MISSING = `
  SELECT v.video_id AS video_id, ad.ad_id AS ad_id, slot
  FROM (SELECT video_id, duration_ms FROM videos FINAL WHERE deleted = 0 AND ({video:String} = '' OR video_id = {video:String}) AND ${IN_PAGE}) AS v
  CROSS JOIN (SELECT ad_id FROM ads FINAL
              WHERE deleted = 0 AND contract_start <= {date:Date} AND contract_end >= {date:Date} AND ({ad:String} = '' OR ad_id = {ad:String})) AS ad
  ARRAY JOIN if(v.duration_ms >= {mid_roll_min:UInt64}, ['pre_roll', 'mid_roll'], ['pre_roll']) AS slot
  WHERE (video_id, ad_id, slot) NOT IN (SELECT video_id, ad_id, slot FROM ad_assignments FINAL WHERE retired_at IS NULL AND ${IN_PAGE})`

async function count(ch: ClickHouseClient, select: string, params: Record<string, unknown>): Promise<number> {
  const rs = await ch.query({ query: `SELECT count() AS n FROM (${select})`, query_params: params, format: 'JSONEachRow' })
  const [row] = await rs.json()
  return z.object({ n: z.coerce.number() }).parse(row).n
}

/**
 * Retires and assigns for one scope, without the job lock (the scope is one video or one ad, or the
 * caller holds the lock): one video in one pass, else the videos in passes of `pageVideos` by id.
 */
export async function assignAds(ch: ClickHouseClient, opts: AdAssignmentOptions): Promise<Omit<AdAssignmentResult, 'status'>> {
  const now = new Date().toISOString().replace('T', ' ').replace('Z', '')
  const scope = { date: opts.date, video: opts.videoId ?? '', ad: opts.adId ?? '', mid_roll_min: opts.midRollMinVideoMs ?? DEFAULT_MID_ROLL_MIN_VIDEO_MS, now }
  const page = opts.pageVideos ?? ASSIGNMENT_PAGE_VIDEOS
  let retired = 0
  let assigned = 0
  for (let after = ''; ; ) {
    const upto = opts.videoId === undefined ? await pageEnd(ch, after, page) : ''
    const params = { ...scope, after, upto }
    const stale = await count(ch, STALE, params)
    if (stale > 0) {
      await ch.command({
        query: `INSERT INTO ad_assignments (video_id, ad_id, slot, assigned_at, retired_at, updated_at)
                SELECT video_id, ad_id, slot, assigned_at, {now:DateTime64(3, 'UTC')}, {now:DateTime64(3, 'UTC')} FROM (${STALE})`,
        query_params: params,
      })
    }
    const missing = await count(ch, MISSING, params)
    if (missing > 0) {
      await ch.command({
        query: `INSERT INTO ad_assignments (video_id, ad_id, slot, assigned_at, retired_at, updated_at)
                SELECT video_id, ad_id, slot, {now:DateTime64(3, 'UTC')}, NULL, {now:DateTime64(3, 'UTC')} FROM (${MISSING})`,
        query_params: params,
      })
    }
    retired += stale
    assigned += missing
    if (upto === '') return { date: opts.date, retired, assigned }
    after = upto
  }
}

/** The id that ends a pass of `page` videos after `after` ('' for the last pass: no bound, so assignments of ids past every video's are in it). */
async function pageEnd(ch: ClickHouseClient, after: string, page: number): Promise<string> {
  const rs = await ch.query({
    // Versions of a video count apart (no FINAL: read in the key's order, it stops at the page's end), so a pass may take fewer.
    query: 'SELECT video_id FROM videos WHERE video_id > {after:String} ORDER BY video_id LIMIT 1 OFFSET {skip:UInt64}',
    query_params: { after, skip: page - 1 },
    format: 'JSONEachRow',
  })
  const [row] = (await rs.json()) as { video_id: string }[]
  return row?.video_id ?? ''
}

/**
 * The daily ad-assignment job: retires assignments of ads whose contract ended (or
 * that were removed) and assigns every ad active on `date` to every video (pre-roll;
 * mid-roll too for long videos). Idempotent: a second run of the same day changes
 * nothing. Two runners never overlap (Redis lock); a second one is `skipped`.
 *
 * @example
 * await runAdAssignment(services, { date: '2026-03-01' })
 */
export async function runAdAssignment(services: Services, opts: AdAssignmentOptions): Promise<AdAssignmentResult> {
  const { redis, ch, metrics, log } = services
  defineScripts(redis, scripts)
  const token = randomBytes(16).toString('hex')
  if ((await redis.set(LOCK_KEY, token, 'PX', LOCK_MS, 'NX')) !== 'OK') {
    metrics.jobRuns.inc({ job: 'ad_assignment', status: 'skipped' })
    return { date: opts.date, retired: 0, assigned: 0, status: 'skipped' }
  }
  try {
    const result = await assignAds(ch, opts)
    metrics.jobRuns.inc({ job: 'ad_assignment', status: 'ok' })
    log.info('ad assignment done', result)
    return { ...result, status: 'ok' }
  } catch (err) {
    metrics.jobRuns.inc({ job: 'ad_assignment', status: 'failed' })
    throw err
  } finally {
    const release: unknown = Reflect.get(redis, 'csReleaseLock')
    if (typeof release === 'function') await release.call(redis, LOCK_KEY, token)
  }
}
