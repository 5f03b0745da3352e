import { spawnSync } from 'node:child_process'
import { rmSync } from 'node:fs'
import { resolve } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { tempDir } from '../test/harness/engines.ts'
import { ConfigError, loadSettings } from './config.ts'

function configError(env: Record<string, string | undefined>): ConfigError {
  try {
    loadSettings(env)
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError)
    return err as ConfigError
  }
  throw new Error(`loadSettings accepted ${JSON.stringify(env)}`)
}

describe('loadSettings', () => {
  it('fills in the defaults for an empty environment', () => {
    const s = loadSettings({})
    expect(s).toMatchObject({
      NODE_ENV: 'development',
      PORT: 8080,
      HOST: '0.0.0.0',
      DATA_DIR: './data',
      CLICKHOUSE_USER: 'default',
      CLICKHOUSE_DATABASE: 'default',
      SETTLEMENT_TZ: 'Asia/Seoul',
      LATENESS_WINDOW_HOURS: 48,
      FUTURE_TOLERANCE_SECONDS: 300,
      EVENT_DEDUP_DAYS: 7,
      RAW_EVENTS_TTL_DAYS: 400,
      TRUST_PROXY: false,
      FLUSH_MAX_ROWS: 20_000,
      FLUSH_INTERVAL_MS: 10,
      LOAD_MAX_ROWS: 50_000,
      LOAD_INTERVAL_MS: 500,
      BUFFER_MAX_ROWS: 200_000,
      BUFFER_MAX_BYTES: 64 * 1024 * 1024,
      PLAYBACK_TOKEN_ISSUER: 'creator-settlement',
      CLOCK_TOLERANCE_SECONDS: 30,
      LOG_LEVEL: 'info',
    })
    expect(s.CLICKHOUSE_URL).toBeUndefined()
    expect(s.REDIS_URL).toBeUndefined()
    expect(s.dataDir).toBe(resolve('./data'))
  })

  it('treats an empty variable as unset', () => {
    expect(loadSettings({ PORT: '', SETTLEMENT_TZ: '' })).toMatchObject({ PORT: 8080, SETTLEMENT_TZ: 'Asia/Seoul' })
  })

  it('reads numbers, booleans and time zones from their text', () => {
    const s = loadSettings({ PORT: '9000', TRUST_PROXY: 'yes', SETTLEMENT_TZ: 'UTC', DATA_DIR: '/tmp/x' })
    expect(s).toMatchObject({ PORT: 9000, TRUST_PROXY: true, SETTLEMENT_TZ: 'UTC', dataDir: '/tmp/x' })
  })

  it.each([
    ['PORT', { PORT: 'abc' }],
    ['PORT', { PORT: '70000' }],
    ['SETTLEMENT_TZ', { SETTLEMENT_TZ: 'Mars/Base' }],
    ['REDIS_URL', { REDIS_URL: 'http://x' }],
    ['CLICKHOUSE_URL', { CLICKHOUSE_URL: 'not a url' }],
    ['CLICKHOUSE_DATABASE', { CLICKHOUSE_DATABASE: 'x; DROP TABLE y' }],
    ['TRUST_PROXY', { TRUST_PROXY: 'maybe' }],
    ['EVENT_DEDUP_DAYS', { EVENT_DEDUP_DAYS: '1' }],
    ['FLUSH_MAX_ROWS', { FLUSH_MAX_ROWS: '300000' }],
    ['FLUSH_MAX_ROWS', { FLUSH_MAX_ROWS: '11', BUFFER_MAX_ROWS: '10' }],
    ['BUFFER_MAX_BYTES', { BUFFER_MAX_BYTES: '1000000' }],
    ['RATE_LIMIT_TOKEN_BURST', { RATE_LIMIT_TOKEN_PER_SECOND: '50', RATE_LIMIT_TOKEN_BURST: '10' }],
  ])('refuses a bad %s with a ConfigError naming it (%o)', (name, env) => {
    expect(configError(env).message).toMatch(new RegExp(`^\\s+${name}: `, 'm'))
  })

  // z.coerce.number turns whitespace into 0, and only '' counts as unset: PORT=" " would
  // serve on a random port instead of stopping the process.
  it('refuses a PORT that is only whitespace instead of reading it as port 0', () => {
    expect(configError({ PORT: ' ' }).message).toMatch(/^\s+PORT: /m)
  })

  it('names every bad variable at once', () => {
    const message = configError({ PORT: 'abc', SETTLEMENT_TZ: 'Mars/Base' }).message
    expect(message).toMatch(/^\s+PORT: /m)
    expect(message).toMatch(/^\s+SETTLEMENT_TZ: .*IANA/m)
  })

  it('runs ClickHouse embedded exactly when CLICKHOUSE_URL is unset', () => {
    expect(loadSettings({}).embedded).toBe(true)
    expect(loadSettings({ CLICKHOUSE_URL: 'http://clickhouse:8123' }).embedded).toBe(false)
  })
})

describe('lib/main.ts with a bad setting', () => {
  const dataDir = tempDir('cs-config-')
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }))

  it('exits non-zero with a message naming PORT', () => {
    const env: Record<string, string> = {}
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !/^(CLICKHOUSE_|REDIS_|PLAYBACK_)/.test(k)) env[k] = v
    const child = spawnSync(resolve('node_modules/.bin/bun'), ['lib/main.ts'], {
      cwd: resolve(import.meta.dirname, '..'),
      env: { ...env, PORT: 'abc', DATA_DIR: dataDir },
      encoding: 'utf8',
      timeout: 30_000,
    })
    expect(child.error).toBeUndefined()
    expect(child.signal).toBeNull()
    expect(child.status).not.toBe(0)
    expect(child.stderr).toMatch(/^\s+PORT: /m)
    expect(child.stdout).not.toMatch(/listening/)
  })
})
