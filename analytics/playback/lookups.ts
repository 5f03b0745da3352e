import { TupleParam } from '@clickhouse/client'
import { z } from 'zod'
import type { ClickHouseClient } from '../../lib/clickhouse.ts'
import { activeAssignmentsOf, type ServedAd } from '../ads/store.ts'
import { batcher } from '../http/batch.ts'
import { verifiedTokens } from '../../lib/verified-tokens.ts'

/**
 * What a session start reads from the engine, in batches: the concurrent starts' served ads
 * in one statement, their viewers' stored resume positions in another (chDB runs one
 * statement at a time: each start reading its own gave 57.6 starts a second to 32 clients
 * of returning viewers, p99 694 ms, over the 100M-event day; 1,249 and 84 ms so; test/bench/
 * HISTORY.md, thirty-eighth session).
 * A video's served ads are kept ADS_KEPT_MS (they change when the daily job runs or an
 * admin changes an ad: a start may serve the ads of up to that long before); resume
 * positions are never kept (each read after its request came, as fresh as a statement of
 * its own).
 */

/** How long a lookup that finds no batch running waits for concurrent ones to join it (as the video lookup does). */
const GATHER_MS = 3
/** How long, and for how many videos and dates, a video's served ads are kept. */
const ADS_KEPT_MS = 10_000
const ADS_KEPT_MAX = 20_000

type Lookups = {
  servedAds(videoId: string, date: string): Promise<ServedAd[]>
  storedPosition(viewerId: string, videoId: string): Promise<StoredPosition | undefined>
}
/** A resume position as written back to ClickHouse: the position and its event's time (epoch ms). */
export type StoredPosition = { position_ms: number; at: number }

const byClient = new WeakMap<ClickHouseClient, Lookups>()

/** The batched lookups of one client (one set per client, shared by its requests). */
export function playbackLookups(ch: ClickHouseClient): Lookups {
  let lookups = byClient.get(ch)
  if (lookups) return lookups
  const ads = batcher(
    async (items: { videoId: string; date: string }[]) => {
      // One statement a date (a batch holds one, but for a start across midnight).
      const found = new Map<string, Map<string, ServedAd[]>>()
      for (const date of new Set(items.map((i) => i.date))) found.set(date, await activeAssignmentsOf(ch, [...new Set(items.filter((i) => i.date === date).map((i) => i.videoId))], date))
      return items.map((i) => found.get(i.date)!.get(i.videoId) ?? [])
    },
    { gatherMs: GATHER_MS },
  )
  const positions = batcher(
    async (pairs: [string, string][]) => {
      const found = await storedPositions(ch, pairs)
      return pairs.map(([viewer, video]) => found.get(pairKey(viewer, video)))
    },
    { gatherMs: GATHER_MS },
  )
  // Values kept until a time, the oldest out first past a bound: the keep of verified tokens.
  const kept = verifiedTokens<ServedAd[]>(ADS_KEPT_MAX)
  lookups = {
    async servedAds(videoId, date) {
      const key = JSON.stringify([videoId, date])
      const hit = kept.get(key, Date.now())
      if (hit) return hit
      const until = Date.now() + ADS_KEPT_MS
      const found = await ads({ videoId, date })
      kept.keep(key, found, until)
      return found
    },
    storedPosition: (viewerId, videoId) => positions([viewerId, videoId]),
  }
  byClient.set(ch, lookups)
  return lookups
}

const pairKey = (viewerId: string, videoId: string) => JSON.stringify([viewerId, videoId])
const storedRow = z.object({ viewer_id: z.string(), video_id: z.string(), position_ms: z.coerce.number(), at: z.coerce.number() })

/** The stored resume positions of several (viewer, video) pairs, in one statement, keyed by pairKey (a pair without one is absent). */
export async function storedPositions(ch: ClickHouseClient, pairs: [string, string][]): Promise<Map<string, StoredPosition>> {
  const rs = await ch.query({
    // viewer_id narrows the primary key (viewer_id, video_id) to the viewers' rows.
    query: `SELECT viewer_id, video_id, argMax(position_ms, updated_at) AS position_ms, toUnixTimestamp64Milli(max(updated_at)) AS at
            FROM resume_positions
            WHERE viewer_id IN {viewers:Array(String)} AND (viewer_id, video_id) IN {pairs:Array(Tuple(String, String))}
            GROUP BY viewer_id, video_id`,
    query_params: { viewers: [...new Set(pairs.map((p) => p[0]))], pairs: pairs.map((p) => new TupleParam(p)) },
    format: 'JSONEachRow',
  })
  return new Map((await rs.json()).map((r) => storedRow.parse(r)).map((r) => [pairKey(r.viewer_id, r.video_id), { position_ms: r.position_ms, at: r.at }]))
}
