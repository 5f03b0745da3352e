import { Hono } from 'hono'
import { describeRoute } from 'hono-openapi'
import { ApiError } from '../../lib/errors.ts'
import { principalOf } from '../auth/middleware.ts'
import { accessTokenFor } from '../auth/session.ts'
import type { AnalyticsDeps, AnalyticsEnv } from '../context.ts'
import { effectiveRoles, getUser, grantRole, publicUser } from './store.ts'

const tags = ['users']

/** `/v1/me` and `/v1/me/creator`. */
export function userRoutes(deps: AnalyticsDeps) {
  const { ch } = deps.services
  const me = async (userId: string) => {
    const user = await getUser(ch, userId)
    if (!user) throw new ApiError('UNAUTHORIZED', 'the user of this access token no longer exists')
    return user
  }
  return new Hono<AnalyticsEnv>()
    .get('/me', describeRoute({ tags, summary: 'The logged-in user and their roles' }), deps.auth.require(), async (c) => {
      const user = await me(principalOf(c).userId)
      return c.json(publicUser(user, effectiveRoles(user, deps.settings)))
    })
    .post(
      '/me/creator',
      describeRoute({ tags, summary: 'Become a creator (may register videos); returns an access token that carries the role' }),
      deps.auth.require(),
      async (c) => {
        const user = await grantRole(ch, await me(principalOf(c).userId), 'creator')
        return c.json(await accessTokenFor(deps, user))
      },
    )
}
