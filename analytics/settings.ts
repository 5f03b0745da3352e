import { z } from 'zod'
import { bool, ConfigError, int, parseEnv } from '../lib/config.ts'

const emailList = z
  .string()
  .transform((s) => s.split(',').map((e) => e.trim().toLowerCase()).filter((e) => e.length > 0))
  .pipe(z.array(z.email()))

/**
 * Settings of the analytics API that lib/config.ts does not hold (yet). Parsed
 * once from the environment when the app is created; a bad value stops start-up
 * with a message naming the variable.
 */
export const analyticsSettingsSchema = z.object({
  NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
  /** Verified emails that get role admin on login. */
  ADMIN_EMAILS: emailList.default([]),
  /** Verified emails that get role analyst on login. */
  ANALYST_EMAILS: emailList.default([]),
  /** Local login without a provider, for demos and tests. Default: on outside production; refused in production. */
  DEV_LOGIN: bool.optional(),
  /** HS256 secret (at least 32 bytes) for access tokens. Unset: generated under DATA_DIR/keys/access-token.secret. */
  ACCESS_TOKEN_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
  ACCESS_TOKEN_ISSUER: z.string().min(1).default('creator-settlement'),
  ACCESS_TOKEN_TTL_SECONDS: int(60, 24 * 3600).default(900),
  REFRESH_TOKEN_TTL_DAYS: int(1, 365).default(30),
  /** Secure flag on auth cookies. Default: on in production. */
  COOKIE_SECURE: bool.optional(),
  GOOGLE_CLIENT_ID: z.string().min(1).optional(),
  GOOGLE_CLIENT_SECRET: z.string().min(1).optional(),
  GOOGLE_REDIRECT_URI: z.url().optional(),
  KAKAO_CLIENT_ID: z.string().min(1).optional(),
  KAKAO_CLIENT_SECRET: z.string().min(1).optional(),
  KAKAO_REDIRECT_URI: z.url().optional(),
  /** Stand-in for the providers' hosts (tests, local demos): https://<host>/<path> is fetched as <base>/<host>/<path>. Refused in production. */
  OAUTH_PROVIDER_BASE_URL: z.url().optional(),
  /** Playback sessions a single IP may start per minute. */
  PLAY_RATE_LIMIT_PER_MINUTE: int(1, 1_000_000).default(60),
  /** Videos at least this long also get mid-roll ads. */
  MID_ROLL_MIN_VIDEO_MS: int(0, 7 * 24 * 3600 * 1000).default(8 * 60 * 1000),
  ANALYST_MAX_EXECUTION_SECONDS: int(1, 3600).default(30),
  ANALYST_MAX_RESULT_ROWS: int(1, 1_000_000_000).default(1_000_000),
  ANALYST_MAX_RESULT_BYTES: int(1024, 10 * 1024 ** 3).default(256 * 1024 ** 2),
  /**
   * Memory one analyst query may take in the engine; sorts and GROUP BYs past a quarter of it
   * go to disk. Embedded, the engine is the server's own process, which ingests too: a GROUP BY
   * of the 100M-event day's 20M viewers took it from 262 to 3,484 MiB of RSS, and to 755 with
   * this bound (7.7 s against 3.9).
   */
  ANALYST_MAX_MEMORY_BYTES: int(16 * 1024 ** 2, 256 * 1024 ** 3).default(1024 ** 3),
  /** Server mode: a read-only ClickHouse user for /clickhouse (default: the main user with readonly=1 per query). */
  CLICKHOUSE_ANALYST_USER: z.string().min(1).optional(),
  CLICKHOUSE_ANALYST_PASSWORD: z.string().default(''),
  /** How long stats and top answers of closed periods (past the lateness window) stay in the Redis cache; 0 turns that cache off. */
  CLOSED_PERIOD_CACHE_TTL_SECONDS: int(0, 30 * 86_400).default(86_400),
  /** How long a platform-wide top of a period still open is reused (the staleness an admin or analyst may see); 0: always queried. */
  PLATFORM_TOP_OPEN_CACHE_TTL_SECONDS: int(0, 300).default(5),
  /**
   * How long a process may reuse a stats or top answer over open periods while no load has
   * reached ClickHouse since it was computed (the edges mark each load in Redis); bounds
   * the reuse should a mark be lost. 0: always queried.
   */
  OPEN_PERIOD_REUSE_MAX_MS: int(0, 60_000).default(10_000),
  /**
   * Most unique viewers of open periods a process keeps in sets (16 to 32 bytes each), so
   * that the stats of a busy video read only the states loaded since its last read
   * instead of merging all of them again. 0: every read merges them in ClickHouse.
   */
  OPEN_VIEWER_SETS_MAX: int(0, 1_000_000_000).default(8_000_000),
  /**
   * Most rows of open periods (a video's day, week or month) a process keeps by the blocks
   * of the table they were read from (about 600 bytes each), so that the stats of a
   * video no load has touched since query nothing. 0: every read of an open period is a query.
   */
  OPEN_ROWS_MAX: int(0, 10_000_000).default(50_000),
  /**
   * Most unique viewers those kept rows hold as sets of their own (16 to 32 bytes each), so
   * that a load's new rows of a video advance its kept row instead of a query. 0: a row
   * a load touched is read again.
   */
  OPEN_ROWS_VIEWERS_MAX: int(0, 1_000_000_000).default(2_000_000),
  /**
   * How long a stats read that finds no batch running waits for concurrent reads to join
   * its query (a burst of requests reaches it a few milliseconds apart): one query for the
   * burst instead of a lone one and then the rest. 0: it goes at once.
   */
  STATS_BATCH_GATHER_MS: int(0, 50).default(3),
  /**
   * After STATS_BATCH_GATHER_MS, how long at most (from the batch's first read) it also
   * waits for the stats requests that were under way when that read came to join it (a
   * cold burst of 32 reaches the batcher over 4 to 22 ms). At or below
   * STATS_BATCH_GATHER_MS: no such wait.
   */
  STATS_BATCH_GATHER_MAX_MS: int(0, 200).default(20),
})

export type AnalyticsSettings = z.infer<typeof analyticsSettingsSchema> & { devLogin: boolean; cookieSecure: boolean }

/**
 * Parses the analytics settings, or throws a ConfigError naming every bad variable.
 *
 * @example
 * const s = loadAnalyticsSettings({ ...process.env, ADMIN_EMAILS: 'ops@example.com' })
 */
export function loadAnalyticsSettings(env: Record<string, string | undefined> = process.env): AnalyticsSettings {
  const s = parseEnv(analyticsSettingsSchema, env)
  const production = s.NODE_ENV === 'production'
  if (production && s.DEV_LOGIN === true) throw new ConfigError('invalid settings:\n  DEV_LOGIN: dev-login cannot be enabled when NODE_ENV=production')
  if (production && s.OAUTH_PROVIDER_BASE_URL) throw new ConfigError('invalid settings:\n  OAUTH_PROVIDER_BASE_URL: a stand-in provider cannot be used when NODE_ENV=production')
  return { ...s, devLogin: s.DEV_LOGIN ?? !production, cookieSecure: s.COOKIE_SECURE ?? production }
}
