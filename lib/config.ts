import { resolve } from 'node:path'
import { z } from 'zod'

/** A yes/no setting: true, false, 1, 0, yes, no. */
export const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes')

/** A whole-number setting within [min, max]; blank or partly numeric text is refused. */
export const int = (min: number, max: number) =>
  z.union([z.number(), z.string().regex(/^\s*-?\d+\s*$/, 'must be a whole number').transform(Number)]).pipe(z.number().int().min(min).max(max))

const timeZone = z.string().refine((tz) => {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz })
    return true
  } catch {
    return false
  }
}, 'must be an IANA time zone such as Asia/Seoul')

/**
 * Every setting of the system, read from the environment once at start-up.
 * The README's settings table is generated from the same names and defaults.
 */
export const settingsSchema = z.object({
  NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
  PORT: int(0, 65535).default(8080),
  HOST: z.string().min(1).default('0.0.0.0'),
  DATA_DIR: z.string().min(1).default('./data'),
  /** Unset: embedded chDB under DATA_DIR/clickhouse. Set: a ClickHouse server over HTTP. */
  CLICKHOUSE_URL: z.url().optional(),
  CLICKHOUSE_USER: z.string().default('default'),
  CLICKHOUSE_PASSWORD: z.string().default(''),
  CLICKHOUSE_DATABASE: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be a plain identifier').default('default'),
  /** Unset: a private redis-server is started with its data under DATA_DIR/redis. */
  REDIS_URL: z.string().regex(/^rediss?:\/\//, 'must start with redis:// or rediss://').optional(),
  /** Under Bun the edge sends its per-request scripts through Bun's own Redis client (`bun`), else through ioredis. */
  EDGE_REDIS_CLIENT: z.enum(['bun', 'ioredis']).default('bun'),
  SETTLEMENT_TZ: timeZone.default('Asia/Seoul'),
  LATENESS_WINDOW_HOURS: int(1, 24 * 30).default(48),
  /** Local time (HH:MM in SETTLEMENT_TZ) of the nightly settlement of the previous day. */
  SETTLEMENT_RUN_AT: z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'must be HH:MM (24 h)').default('00:30'),
  /** Expiry of the settlement lock in Redis; the runner renews it every third of this. */
  SETTLEMENT_LOCK_TTL_SECONDS: int(5, 3600).default(60),
  /**
   * Lines of one kind (videos, or video and ad pairs, counted with uniq in the day's
   * aggregates) one settlement statement writes at most; a larger day is written in several,
   * each over a share of the videos, so that embedded reads wait for one of them at most and
   * a server's GROUP BY stays bounded.
   */
  SETTLEMENT_STATEMENT_ROWS: int(1, 1_000_000_000).default(500_000),
  FUTURE_TOLERANCE_SECONDS: int(0, 3600).default(300),
  VIEW_DEDUP_WINDOW_MINUTES: int(1, 24 * 60).default(30),
  MAX_VIEWS_PER_IP: int(1, 1_000_000).default(3),
  EVENT_DEDUP_DAYS: int(7, 365).default(7),
  /**
   * How long Redis keeps a session's event decisions after its last batch. A later retry
   * of an event decided before then is looked up in raw_events instead.
   */
  DECISION_IDLE_MINUTES: int(5, 7 * 24 * 60).default(30),
  /** How long Redis keeps a viewer's resume position after its last change; ClickHouse keeps it for good. */
  RESUME_CACHE_HOURS: int(1, 24 * 365).default(24),
  RAW_EVENTS_TTL_DAYS: int(1, 36_500).default(400),
  RATE_LIMIT_TOKEN_PER_SECOND: int(1, 1_000_000).default(20),
  RATE_LIMIT_TOKEN_BURST: int(1, 1_000_000).default(40),
  RATE_LIMIT_IP_PER_SECOND: int(1, 10_000_000).default(200),
  RATE_LIMIT_IP_BURST: int(1, 10_000_000).default(400),
  /** Trust the first X-Forwarded-For address (only behind a proxy that sets it). */
  TRUST_PROXY: bool.default(false),
  FLUSH_MAX_ROWS: int(1, 1_000_000).default(20_000),
  FLUSH_INTERVAL_MS: int(1, 60_000).default(10),
  BUFFER_MAX_ROWS: int(1, 10_000_000).default(200_000),
  /**
   * Bytes of those rows' text at most (counted a byte a character: twice that in memory for
   * text beyond Latin-1). Rows are ~300 bytes, but an invalid event keeps up to 4 KiB of its
   * payload: at 200,000 such rows the edge took 1.5 GiB. At least 8 MiB: the largest batch
   * must fit (see ingest/events/ingest.ts, reservedBytes).
   */
  BUFFER_MAX_BYTES: int(8 * 1024 * 1024, 2 ** 40).default(64 * 1024 * 1024),
  /** How long a batch waits for room in a full buffer, in order of arrival, before it gets 503 (0: at once). */
  BUFFER_WAIT_MS: int(0, 30_000).default(1_000),
  /**
   * Most event batches the edge takes in at once (from reading the body to the answer); more wait
   * in order of arrival (at most INGEST_MAX_WAITING of them), up to BUFFER_WAIT_MS, then get 503
   * (see ingest/admission.ts).
   */
  INGEST_MAX_IN_PROGRESS: int(1, 1_000_000).default(400),
  /**
   * Most event batches waiting for a place among INGEST_MAX_IN_PROGRESS; one more is answered
   * 503 at once, with Retry-After 2, before its token is checked or its body read (see
   * ingest/admission.ts and shed in ingest/app.ts).
   */
  INGEST_MAX_WAITING: int(0, 1_000_000).default(200),
  /** Write-ahead log of the edge's flushes; one folder per edge process. Default DATA_DIR/wal. */
  WAL_DIR: z.string().min(1).optional(),
  WAL_REPAIR_INTERVAL_MS: int(100, 3_600_000).default(5_000),
  /** Most rows the loader puts into ClickHouse in one insert (one block: at most 1,000,000). */
  LOAD_MAX_ROWS: int(1, 1_000_000).default(50_000),
  /** Least time between the starts of two loads, so that inserts are few and large. */
  LOAD_INTERVAL_MS: int(1, 60_000).default(500),
  INSERT_TIMEOUT_MS: int(100, 120_000).default(10_000),
  /** The embedded engine's statements that take at least this long are logged (a warning with the statement's text; 0: every one). */
  SLOW_STATEMENT_MS: int(0, 3_600_000).default(1_000),
  /** How long an undecided in-flight batch owns its events before a retry may take them over. */
  INFLIGHT_LEASE_MS: int(1_000, 600_000).default(60_000),
  PLAYBACK_TOKEN_ISSUER: z.string().min(1).default('creator-settlement'),
  PLAYBACK_TOKEN_TTL_SECONDS: int(60, 7 * 24 * 3600).default(6 * 3600),
  /** JWK set (JSON) of playback signing keys; the first key signs, all verify. Unset: generated under DATA_DIR/keys. */
  PLAYBACK_JWKS: z.string().optional(),
  PLAYBACK_JWKS_FILE: z.string().optional(),
  CLOCK_TOLERANCE_SECONDS: int(0, 600).default(30),
  LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
})

export type Settings = z.infer<typeof settingsSchema> & {
  /** DATA_DIR made absolute. */
  dataDir: string
  /** True when ClickHouse runs embedded (chDB) in this process. */
  embedded: boolean
}

export class ConfigError extends Error {
  override name = 'ConfigError'
}

/**
 * Parses the environment into typed settings, or throws a ConfigError that names
 * every bad variable.
 *
 * @example
 * const settings = loadSettings({ ...process.env, PORT: '9000' })
 */
export function loadSettings(env: Record<string, string | undefined> = process.env): Settings {
  const s = parseEnv(settingsSchema, env)
  if (s.RATE_LIMIT_TOKEN_BURST < s.RATE_LIMIT_TOKEN_PER_SECOND)
    throw new ConfigError('invalid settings:\n  RATE_LIMIT_TOKEN_BURST: must be at least RATE_LIMIT_TOKEN_PER_SECOND')
  if (s.FLUSH_MAX_ROWS > s.BUFFER_MAX_ROWS)
    throw new ConfigError('invalid settings:\n  FLUSH_MAX_ROWS: must not exceed BUFFER_MAX_ROWS')
  return { ...s, dataDir: resolve(s.DATA_DIR), embedded: s.CLICKHOUSE_URL === undefined }
}

/**
 * Parses environment variables with a schema (empty values count as unset), or
 * throws a ConfigError naming every bad variable.
 */
export function parseEnv<S extends z.ZodType>(schema: S, env: Record<string, string | undefined>): z.infer<S> {
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''))
  const parsed = schema.safeParse(present)
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`)
    throw new ConfigError(`invalid settings:\n${lines.join('\n')}`)
  }
  return parsed.data
}

/** Like loadSettings, but prints the problem and exits: for process entry points. */
export function loadSettingsOrExit(env: Record<string, string | undefined> = process.env): Settings {
  try {
    return loadSettings(env)
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message)
      process.exit(2)
    }
    throw err
  }
}
