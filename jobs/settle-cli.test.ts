import { spawn, spawnSync } from 'node:child_process'
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestRedis, tempDir, type TestRedis } from '../test/harness/engines.ts'
import { addDays, dayIn } from './settlement/calendar.ts'

const ROOT = resolve(import.meta.dirname, '..')
let redis: TestRedis
let dataDir: string

function cli(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  const env = { ...process.env, DATA_DIR: dataDir, REDIS_URL: redis.url, LOG_LEVEL: 'error' }
  const child = spawn(join(ROOT, 'node_modules/.bin/bun'), ['jobs/settle-cli.ts', ...args], { cwd: ROOT, env })
  let out = ''
  let err = ''
  child.stdout.on('data', (d) => (out += d))
  child.stderr.on('data', (d) => (err += d))
  return new Promise((r) => child.once('exit', (code) => r({ code, out, err })))
}

beforeAll(async () => {
  redis = await startTestRedis()
  dataDir = tempDir('cs-settle-cli-')
})
afterAll(async () => {
  await redis?.stop()
  rmSync(dataDir, { recursive: true, force: true })
})

describe('npm run settle without a running server', () => {
  const today = dayIn('Asia/Seoul', new Date())

  it('explains its options when they are wrong', async () => {
    for (const args of [[], ['--date'], ['--date', '2024-02-30'], ['--date', '2024-01-01', '--from', '2024-01-01'], ['--from', '2024-01-01'], ['--bogus']]) {
      const r = await cli(args)
      expect(r.code, args.join(' ')).toBe(2)
      expect(r.err).toContain('usage: npm run settle')
    }
  })

  it('refuses a day that has not ended', async () => {
    const r = await cli(['--date', today])
    expect(r.code).toBe(1)
    expect(r.err).toContain(`day ${today} has not ended yet in Asia/Seoul`)
  })

  it('opens the engine itself and settles yesterday, also past a stale server.json', async () => {
    const dead = spawnSync('true').pid
    mkdirSync(join(dataDir, 'run'), { recursive: true })
    writeFileSync(join(dataDir, 'run', 'server.json'), JSON.stringify({ pid: dead, port: 1, internalToken: 'gone' }))
    const r = await cli(['--date', addDays(today, -1), '--json'])
    expect(r.err).toBe('')
    expect(r.code).toBe(0)
    expect(JSON.parse(r.out)).toMatchObject({ day: addDays(today, -1), status: 'provisional', video_lines: 0, total_krw: 0, trigger: 'cli' })
  })
})
