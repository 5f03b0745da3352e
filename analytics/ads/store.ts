import { z } from 'zod'
import type { ClickHouseClient } from '../../lib/clickhouse.ts'
import { newId } from '../videos/store.ts'
import { chTime, versionAfter } from '../users/store.ts'

export const adRow = z.object({
  ad_id: z.string(),
  advertiser: z.string(),
  duration_ms: z.coerce.number(),
  contract_start: z.string(),
  contract_end: z.string(),
  created_at: z.string(),
  updated_at: z.string(),
})
export type AdRow = z.infer<typeof adRow>
export type AdFields = { advertiser: string; duration_ms: number; contract_start: string; contract_end: string }

const COLUMNS = `ad_id, advertiser, duration_ms, toString(contract_start) AS contract_start, toString(contract_end) AS contract_end, toString(created_at) AS created_at, toString(updated_at) AS updated_at`

/** The next version of an ad's row, as ClickHouse's text (see versionAfter). */
const nextVersion = (prev?: string): string => chTime(versionAfter(prev))

async function write(ch: ClickHouseClient, row: AdRow, deleted = 0): Promise<void> {
  await ch.insert({ table: 'ads', values: [{ ...row, deleted }], format: 'JSONEachRow' })
}

export async function insertAd(ch: ClickHouseClient, fields: AdFields): Promise<AdRow> {
  const now = nextVersion()
  const row = { ad_id: newId('ad'), ...fields, created_at: now, updated_at: now }
  await write(ch, row)
  return row
}

export async function getAd(ch: ClickHouseClient, adId: string): Promise<AdRow | undefined> {
  const rs = await ch.query({ query: `SELECT ${COLUMNS} FROM ads FINAL WHERE ad_id = {id:String} AND deleted = 0 LIMIT 1`, query_params: { id: adId }, format: 'JSONEachRow' })
  const [row] = await rs.json()
  return row === undefined ? undefined : adRow.parse(row)
}

/** Every ad, or those active on `activeOn`. */
export async function listAds(ch: ClickHouseClient, activeOn?: string): Promise<AdRow[]> {
  const rs =
    activeOn === undefined
      ? await ch.query({ query: `SELECT ${COLUMNS} FROM ads FINAL WHERE deleted = 0 ORDER BY contract_start, ad_id`, format: 'JSONEachRow' })
      : await ch.query({
          query: `SELECT ${COLUMNS} FROM ads FINAL WHERE deleted = 0 AND contract_start <= {on:Date} AND contract_end >= {on:Date} ORDER BY contract_start, ad_id`,
          query_params: { on: activeOn },
          format: 'JSONEachRow',
        })
  return (await rs.json()).map((r) => adRow.parse(r))
}

export async function updateAd(ch: ClickHouseClient, prior: AdRow, fields: AdFields): Promise<AdRow> {
  const row = { ...prior, ...fields, updated_at: nextVersion(prior.updated_at) }
  await write(ch, row)
  return row
}

export async function deleteAd(ch: ClickHouseClient, prior: AdRow): Promise<void> {
  await write(ch, { ...prior, updated_at: nextVersion(prior.updated_at) }, 1)
}

export const servedAd = z.object({ ad_id: z.string(), slot: z.enum(['pre_roll', 'mid_roll']), advertiser: z.string(), duration_ms: z.coerce.number() })
export type ServedAd = z.infer<typeof servedAd>

/** The ads assigned to a video and active on `date`, in slot order. */
export async function activeAssignments(ch: ClickHouseClient, videoId: string, date: string): Promise<ServedAd[]> {
  return (await activeAssignmentsOf(ch, [videoId], date)).get(videoId) ?? []
}

/** The ads assigned to each of several videos and active on `date`, in slot order, by video (in one statement; a video without any is absent). */
export async function activeAssignmentsOf(ch: ClickHouseClient, videoIds: string[], date: string): Promise<Map<string, ServedAd[]>> {
  const rs = await ch.query({
    query: `SELECT a.video_id AS video_id, a.ad_id AS ad_id, a.slot AS slot, ad.advertiser AS advertiser, ad.duration_ms AS duration_ms
            FROM (SELECT video_id, ad_id, slot FROM ad_assignments FINAL WHERE video_id IN {videos:Array(String)} AND retired_at IS NULL) AS a
            INNER JOIN (
              SELECT ad_id, advertiser, duration_ms FROM ads FINAL
              WHERE deleted = 0 AND contract_start <= {date:Date} AND contract_end >= {date:Date}
            ) AS ad ON ad.ad_id = a.ad_id
            ORDER BY video_id, slot DESC, ad_id`,
    query_params: { videos: videoIds, date },
    format: 'JSONEachRow',
  })
  const out = new Map<string, ServedAd[]>()
  for (const r of await rs.json()) {
    const { video_id, ...ad } = servedAd.extend({ video_id: z.string() }).parse(r)
    const ads = out.get(video_id) ?? []
    ads.push(ad)
    out.set(video_id, ads)
  }
  return out
}
