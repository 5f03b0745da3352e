import { assignAds } from '../../jobs/ads/assign.ts'
import type { AnalyticsDeps } from '../context.ts'
import { today } from '../http/dates.ts'
import { activeAssignments, type ServedAd } from './store.ts'

/** Assigns today's active ads to a freshly registered video and returns them. */
export async function runAdAssignmentForVideo(deps: AnalyticsDeps, videoId: string): Promise<ServedAd[]> {
  const date = today(deps.services.settings.SETTLEMENT_TZ)
  await assignAds(deps.services.ch, { date, videoId, midRollMinVideoMs: deps.settings.MID_ROLL_MIN_VIDEO_MS })
  return activeAssignments(deps.services.ch, videoId, date)
}

/** Brings one ad's assignments in line with its contract after it was created, changed or removed. */
export async function runAdAssignmentForAd(deps: AnalyticsDeps, adId: string): Promise<void> {
  await assignAds(deps.services.ch, { date: today(deps.services.settings.SETTLEMENT_TZ), adId, midRollMinVideoMs: deps.settings.MID_ROLL_MIN_VIDEO_MS })
}
