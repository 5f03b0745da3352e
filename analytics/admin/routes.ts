import { Hono } from 'hono'
import { describeRoute } from 'hono-openapi'
import { z } from 'zod'
import { runAdAssignment } from '../../jobs/ads/assign.ts'
import type { AnalyticsDeps, AnalyticsEnv } from '../context.ts'
import { isoDate, today } from '../http/dates.ts'
import { v } from '../http/validate.ts'

const tags = ['jobs (admin)']
const runBody = z.object({ date: isoDate.optional().describe('Day to run for (default today in SETTLEMENT_TZ)') })

/** `/v1/admin/jobs/...`: run or rerun jobs by hand (role admin). */
export function adminRoutes(deps: AnalyticsDeps) {
  const { services } = deps
  return new Hono<AnalyticsEnv>().post(
    '/admin/jobs/ad-assignment/runs',
    describeRoute({ tags, summary: 'Run the ad-assignment job for a day (idempotent; skipped while another run holds the lock)' }),
    deps.auth.require('admin'),
    v('json', runBody),
    async (c) => {
      const date = c.req.valid('json').date ?? today(services.settings.SETTLEMENT_TZ)
      return c.json(await runAdAssignment(services, { date, midRollMinVideoMs: deps.settings.MID_ROLL_MIN_VIDEO_MS }))
    },
  )
}
