import { formatKrw } from '../../lib/money.ts'
import type { DayOutcome } from './day.ts'

/**
 * One line per settled day for people reading a terminal.
 *
 * @example
 * 2024-03-01 provisional run 12: 1,204 videos, 56,789 views 61,000 KRW; 1,200 impressions on 300 ad lines 14,400 KRW; total 75,400 KRW [checksum 4788f9b1cbe098ff, 1.2 s]
 */
export function describeOutcome(d: DayOutcome): string {
  const head = d.dry_run ? `${d.day} ${d.status} (dry run, nothing written)` : `${d.day} ${d.status} run ${d.run_id}`
  const note = d.trigger === 'cascade' ? ' recomputed because an earlier day changed;' : ''
  const same = d.unchanged ? ', same as before' : ''
  return (
    `${head}:${note} ${formatKrw(d.video_lines)} videos, ${formatKrw(d.views)} views ${formatKrw(d.video_revenue_krw)} KRW; ` +
    `${formatKrw(d.ad_impressions)} impressions on ${formatKrw(d.ad_lines)} ad lines ${formatKrw(d.ad_revenue_krw)} KRW; ` +
    `total ${formatKrw(d.total_krw)} KRW [rate card ${d.rate_card_version} ${d.pricing_mode}, checksum ${d.checksum}${same}, ${(d.duration_ms / 1000).toFixed(1)} s]`
  )
}
