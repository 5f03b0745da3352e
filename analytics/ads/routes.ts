import { Hono } from 'hono'
import { describeRoute } from 'hono-openapi'
import { z } from 'zod'
import { ApiError } from '../../lib/errors.ts'
import { apiInstant } from '../../lib/instants.ts'
import type { AnalyticsDeps, AnalyticsEnv } from '../context.ts'
import { table } from '../http/csv.ts'
import { isoDate } from '../http/dates.ts'
import { v } from '../http/validate.ts'
import { runAdAssignmentForAd } from './assignment.ts'
import { deleteAd, getAd, insertAd, listAds, updateAd, type AdRow } from './store.ts'

const tags = ['ads (admin)']

const adFields = z.object({
  advertiser: z.string().trim().min(1).max(200),
  duration_ms: z.number().int().min(1).max(10 * 60 * 1000).describe('Length of the ad (ms)'),
  contract_start: isoDate.describe('First day the ad runs (SETTLEMENT_TZ)'),
  contract_end: isoDate.describe('Last day the ad runs (SETTLEMENT_TZ)'),
})
const contractInOrder = (a: { contract_start?: string; contract_end?: string }) => !a.contract_start || !a.contract_end || a.contract_start <= a.contract_end
const contractIssue = { message: 'contract_start must not be after contract_end', path: ['contract_end'] }
const createAdBody = adFields.refine(contractInOrder, contractIssue)
const patchAdBody = adFields.partial().refine(contractInOrder, contractIssue)
const adIdParam = z.object({ id: z.string().min(1).max(64) })
const listQuery = z.object({ active_on: isoDate.optional().describe('Only ads whose contract covers this day'), format: z.enum(['json', 'csv']).default('json') })

const columns = ['ad_id', 'advertiser', 'duration_ms', 'contract_start', 'contract_end', 'created_at', 'updated_at'] as const
/** An ad as the API answers it: its times in RFC 3339 (lib/instants.ts; the store keeps ClickHouse's text, which it writes back). */
const publicAd = (ad: AdRow): AdRow => ({ ...ad, created_at: apiInstant(ad.created_at), updated_at: apiInstant(ad.updated_at) })

/** `/v1/ads`: ads and their contracts (role admin). Changes re-run the assignment of that ad at once. */
export function adRoutes(deps: AnalyticsDeps) {
  const { ch } = deps.services
  const admin = deps.auth.require('admin')
  const found = async (id: string): Promise<AdRow> => {
    const ad = await getAd(ch, id)
    if (!ad) throw new ApiError('NOT_FOUND', `no ad with id ${id}`)
    return ad
  }
  return new Hono<AnalyticsEnv>()
    .get('/ads', describeRoute({ tags, summary: 'List ads' }), admin, v('query', listQuery), async (c) => {
      const q = c.req.valid('query')
      return table(c, { format: q.format, columns, rows: (await listAds(ch, q.active_on)).map(publicAd), filename: 'ads' })
    })
    .post('/ads', describeRoute({ tags, summary: 'Create an ad; if its contract covers today it is assigned to every video', responses: { 201: { description: 'The ad' } } }), admin, v('json', createAdBody), async (c) => {
      const ad = await insertAd(ch, c.req.valid('json'))
      await runAdAssignmentForAd(deps, ad.ad_id)
      return c.json(publicAd(ad), 201)
    })
    .get('/ads/:id', describeRoute({ tags, summary: 'One ad' }), admin, v('param', adIdParam), async (c) => c.json(publicAd(await found(c.req.valid('param').id))))
    .patch('/ads/:id', describeRoute({ tags, summary: 'Change an ad or its contract' }), admin, v('param', adIdParam), v('json', patchAdBody), async (c) => {
      const prior = await found(c.req.valid('param').id)
      const next = { ...prior, ...c.req.valid('json') }
      if (next.contract_start > next.contract_end) throw new ApiError('INVALID_BODY', 'invalid json: contract_end: contract_start must not be after contract_end')
      const ad = await updateAd(ch, prior, next)
      await runAdAssignmentForAd(deps, ad.ad_id)
      return c.json(publicAd(ad))
    })
    .delete('/ads/:id', describeRoute({ tags, summary: 'Remove an ad; its assignments are retired', responses: { 204: { description: 'Removed' } } }), admin, v('param', adIdParam), async (c) => {
      await deleteAd(ch, await found(c.req.valid('param').id))
      await runAdAssignmentForAd(deps, c.req.valid('param').id)
      return c.body(null, 204)
    })
}
