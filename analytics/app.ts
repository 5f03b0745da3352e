import type { Context } from 'hono'
import { Hono } from 'hono'
import type { ClickHouseClient } from '../lib/clickhouse.ts'
import { onError } from '../lib/errors.ts'
import type { AppEnv, Services } from '../lib/services.ts'
import { loadAccessSecret } from './auth/access-token.ts'
import { createAuth } from './auth/middleware.ts'
import { createOAuthProviders } from './auth/providers.ts'
import { createRefreshTokens } from './auth/refresh-token.ts'
import { authRoutes } from './auth/routes.ts'
import { createAggregateCache } from './cache/aggregate-cache.ts'
import { createAnalystClickHouse } from './clickhouse/analyst-client.ts'
import type { AnalyticsDeps, AnalyticsEnv } from './context.ts'
import { loadAnalyticsSettings } from './settings.ts'
import { userRoutes } from './users/routes.ts'
import { videoRoutes } from './videos/routes.ts'
import { playbackRoutes } from './playback/routes.ts'
import { adRoutes } from './ads/routes.ts'
import { statsRoutes } from './stats/routes.ts'
import { topRoutes } from './top/routes.ts'
import { settlementRoutes } from './settlements/routes.ts'
import { clickhouseRoutes } from './clickhouse/routes.ts'
import { docsRoutes, type OpenApiExtras } from './docs/routes.ts'
import { adminRoutes } from './admin/routes.ts'

export type AnalyticsOptions = {
  /** Environment to read the analytics settings from (default process.env). */
  env?: Record<string, string | undefined>
  /** The caller's IP; default: X-Forwarded-For when TRUST_PROXY, else the socket address from `c.env` (`{ ip }` as lib/main.ts passes it, Bun's server, or @hono/node-server's socket). */
  clientIp?: (c: Context) => string | undefined
  /** Routes of other apps to describe in /openapi.json (e.g. the edge's POST /v1/events). */
  openapi?: OpenApiExtras
  /** The clock deciding which days are closed and how old a cached answer is (default: the system clock). */
  now?: () => Date
}

function socketAddress(c: Context): string | undefined {
  const env: unknown = c.env
  if (typeof env !== 'object' || env === null) return undefined
  // lib/main.ts passes { ip } (the edge's bindings).
  if ('ip' in env && typeof env.ip === 'string') return env.ip
  // Bun.serve passes the server as env: server.requestIP(request).
  if ('requestIP' in env && typeof env.requestIP === 'function') {
    const addr: unknown = env.requestIP(c.req.raw)
    if (typeof addr === 'object' && addr !== null && 'address' in addr && typeof addr.address === 'string') return addr.address
  }
  // @hono/node-server passes { incoming, outgoing }.
  if ('incoming' in env && typeof env.incoming === 'object' && env.incoming !== null && 'socket' in env.incoming) {
    const socket = env.incoming.socket
    if (typeof socket === 'object' && socket !== null && 'remoteAddress' in socket && typeof socket.remoteAddress === 'string') return socket.remoteAddress
  }
  return undefined
}

/**
 * Builds the analytics API and what it holds open.
 *
 * @example
 * const analytics = createAnalytics(services)
 * root.route('/', analytics.app)
 * // on shutdown
 * await analytics.close()
 */
export function createAnalytics(services: Services, opts: AnalyticsOptions = {}): { app: Hono<AppEnv>; close(): Promise<void> } {
  const settings = loadAnalyticsSettings(opts.env ?? process.env)
  let analystCh: ClickHouseClient | undefined
  const access = {
    key: loadAccessSecret({ secret: settings.ACCESS_TOKEN_SECRET, dataDir: services.settings.dataDir }),
    issuer: settings.ACCESS_TOKEN_ISSUER,
    ttlSeconds: settings.ACCESS_TOKEN_TTL_SECONDS,
  }
  const deps: AnalyticsDeps = {
    services,
    settings,
    access,
    auth: createAuth(access),
    refresh: createRefreshTokens(services.redis, settings.REFRESH_TOKEN_TTL_DAYS * 86_400),
    providers: createOAuthProviders(settings),
    clientIp: (c) => {
      const custom = opts.clientIp?.(c)
      if (custom) return custom
      if (services.settings.TRUST_PROXY) {
        const first = c.req.header('x-forwarded-for')?.split(',')[0]?.trim()
        if (first) return first
      }
      return socketAddress(c) ?? 'unknown'
    },
    analystClickHouse: () => (analystCh ??= createAnalystClickHouse(services.settings, settings)),
    aggregateCache: createAggregateCache(services.redis, services.metrics.registry),
    now: opts.now ?? (() => new Date()),
  }

  // No app-wide middleware: this app is mounted at the root beside the ingest edge.
  const api = new Hono<AnalyticsEnv>()
  api.route('/v1', authRoutes(deps))
  api.route('/v1', userRoutes(deps))
  api.route('/v1', videoRoutes(deps))
  api.route('/v1', playbackRoutes(deps))
  api.route('/v1', statsRoutes(deps))
  api.route('/v1', topRoutes(deps))
  api.route('/v1', settlementRoutes(deps))
  api.route('/v1', adRoutes(deps))
  api.route('/v1', adminRoutes(deps))
  api.route('/', clickhouseRoutes(deps))
  api.route('/', docsRoutes(api, opts.openapi))

  const app = new Hono<AppEnv>()
  app.onError(onError)
  app.route('/', api)
  return {
    app,
    async close() {
      await analystCh?.close()
    },
  }
}

/**
 * The analytics API as one Hono app: every `/v1/` route except `POST /v1/events`,
 * plus `/clickhouse`, `/openapi.json` and `/docs`.
 *
 * @example
 * root.route('/', createAnalyticsApp(services))
 */
export function createAnalyticsApp(services: Services, opts: AnalyticsOptions = {}): Hono<AppEnv> {
  return createAnalytics(services, opts).app
}
