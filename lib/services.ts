import type { ClickHouseClient } from './clickhouse.ts'
import type { Settings } from './config.ts'
import type { Logger } from './log.ts'
import type { Metrics } from './metrics.ts'
import type { Redis } from './redis.ts'
import type { PlaybackKeys } from '../ingest/tokens/keys.ts'
import type { PlaybackVerifier } from '../ingest/tokens/playback.ts'

/**
 * What every app and job is given instead of importing singletons: the settings,
 * the engines' clients, and the process-wide helpers. Put in Hono's context as
 * `c.get('services')`.
 */
export type Services = {
  settings: Settings
  ch: ClickHouseClient
  redis: Redis
  log: Logger
  metrics: Metrics
  playbackKeys: PlaybackKeys
  verifyPlaybackToken: PlaybackVerifier
}

/** Hono environment shared by the apps: the services and the request id. */
export type AppEnv = { Variables: { services: Services; requestId: string } }
