import type { Context } from 'hono'
import type { AppEnv, Services } from '../lib/services.ts'
import type { ClickHouseClient } from '../lib/clickhouse.ts'
import type { AccessTokenConfig, Principal } from './auth/access-token.ts'
import type { Auth } from './auth/middleware.ts'
import type { OAuthProviders } from './auth/providers.ts'
import type { RefreshTokens } from './auth/refresh-token.ts'
import type { AggregateCache } from './cache/aggregate-cache.ts'
import type { AnalyticsSettings } from './settings.ts'

/** Hono environment of the analytics routes: the shared one plus the caller, when authenticated. */
export type AnalyticsEnv = { Variables: AppEnv['Variables'] & { principal?: Principal } }

/** Everything the analytics routes are built with, made once by createAnalyticsApp. */
export type AnalyticsDeps = {
  services: Services
  settings: AnalyticsSettings
  access: AccessTokenConfig
  auth: Auth
  refresh: RefreshTokens
  providers: OAuthProviders
  /** The caller's IP address (rate limits). */
  clientIp(c: Context): string
  /** The read-only ClickHouse client of /clickhouse, opened on first use. */
  analystClickHouse(): ClickHouseClient
  /** Stats and top answers of closed periods, in Redis. */
  aggregateCache: AggregateCache
  /** The clock that decides which days are closed and what is fresh (tests set it). */
  now(): Date
}
