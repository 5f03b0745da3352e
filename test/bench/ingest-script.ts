/**
 * bench:ingest:script — Redis CPU per call of the edge's Redis scripts, measured by Redis
 * itself (INFO cpu), on a private redis-server with its append-only file on and off: the
 * ingest script with batches of 0, 1 and 30 events (a new session each call, 200 calls in
 * flight) and the per-IP bucket. On a quiet host it repeats within a few per cent where
 * whole-system runs do not, so it is the one to judge a change of a .lua file by (on a
 * busy host, run it several times in alternation).
 *
 *   npm run bench:ingest:script -- [--calls 20000] [--out file.json]
 *   npm run bench:ingest:script -- --callgrind [--calls 1000] [--out file.json]
 *
 * --callgrind: instead, the instructions Redis executes per call (redis-server under valgrind's
 * callgrind, append-only file on, less those of a run with no calls): the same for the same
 * script and inputs whatever else the machine does, so a change of a few per cent shows. The
 * 30-event call with a new session each time, and with sessions of 8 calls (the session's
 * decisions hash growing to 240 entries, as a player's does). Needs valgrind (Debian: valgrind).
 */
import { spawn } from 'node:child_process'
import { rmSync } from 'node:fs'
import { createRules } from '../../ingest/state/decide.ts'
import { loadSettings } from '../../lib/config.ts'
import { createRedis, waitForRedis } from '../../lib/redis.ts'
import { privateRedisArgs, startPrivateRedis } from '../../lib/redis-server.ts'
import { freePort, tempDir } from '../harness/engines.ts'
import type { PlaybackClaims } from '../../ingest/tokens/playback.ts'
import type { RuleInput } from '../../ingest/state/decide.ts'
import { num, parseFlags, printTable, writeResult } from './lib.ts'

const flags = parseFlags(process.argv.slice(2))
const callgrind = flags.has('callgrind')
const calls = num(flags, 'calls', flags.has('smoke') ? 500 : callgrind ? 1_000 : 20_000)

type Case = { name: string; events: number; ipBucket: boolean }
const cases: Case[] = [
  { name: 'ingest, 0 events', events: 0, ipBucket: false },
  { name: 'ingest, 1 event', events: 1, ipBucket: false },
  { name: 'ingest, 30 events', events: 30, ipBucket: false },
  { name: 'IP bucket', events: -1, ipBucket: true },
]

const settingsIn = (dir: string) => loadSettings({ DATA_DIR: dir, RATE_LIMIT_TOKEN_PER_SECOND: '1000000', RATE_LIMIT_TOKEN_BURST: '1000000', RATE_LIMIT_IP_PER_SECOND: '1000000', RATE_LIMIT_IP_BURST: '1000000' })

/**
 * `n` calls of case `c`, at most `inFlight` at a time; each session (token) makes `perSession`
 * calls of new events, its first event a play and its second an ad impression.
 */
async function drive(rules: ReturnType<typeof createRules>, c: Case, n: number, opts: { perSession?: number; inFlight?: number; now?: number } = {}): Promise<void> {
  const { perSession = 1, inFlight: most = 200, now = Date.now() } = opts
  let inFlight: Promise<unknown>[] = []
  for (let i = 0; i < n; i++) {
    const s = Math.floor(i / perSession)
    const ip = `10.0.${s % 250}.${(s >> 8) % 250}`
    if (c.ipBucket) inFlight.push(rules.rateLimit(ip, now))
    else {
      const claims = { vid: `v${s % 500}`, cid: 'c1', sub: `u${s}`, sid: `s${s}`, dur: 3_600_000, ads: ['ad-1'], iat: Math.floor(now / 1000) - 60, exp: Math.floor(now / 1000) + 3_600 } as PlaybackClaims
      const first = (i % perSession) * c.events
      const events: RuleInput[] = Array.from({ length: c.events }, (_, j) => {
        const k = first + j
        return { id: crypto.randomUUID(), type: k === 0 ? 'play' : k === 1 ? 'ad_impression' : 'progress', ts: now - 100_000 + k * 20, positionMs: k * 1_000, watchedMs: 1_000, adId: 'ad-1', preRejected: '' }
      })
      inFlight.push(rules.decide(`r${i}`, claims, ip, now + i, events))
    }
    if (inFlight.length >= most) {
      await Promise.all(inFlight)
      inFlight = []
    }
  }
  await Promise.all(inFlight)
}

async function measure(persist: boolean, c: Case): Promise<number> {
  const dir = tempDir('cs-bench-script-')
  const server = await startPrivateRedis({ dir, persist })
  const redis = createRedis(server.target)
  try {
    await waitForRedis(redis)
    const rules = createRules(redis, settingsIn(dir))
    const cpu = async () => {
      const info = await redis.info('cpu')
      return Number(/used_cpu_user:([\d.]+)/.exec(info)![1]) + Number(/used_cpu_sys:([\d.]+)/.exec(info)![1])
    }
    const before = await cpu()
    await drive(rules, c, calls)
    return ((await cpu()) - before) * 1e6 / calls
  } finally {
    redis.disconnect()
    await server.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}

/** Instructions redis-server executes for `n` calls of `c` (under callgrind, append-only file on), start and stop included. */
async function instructions(c: Case, n: number, perSession: number): Promise<number> {
  const dir = tempDir('cs-bench-script-')
  const port = await freePort()
  const args = ['--tool=callgrind', `--callgrind-out-file=${dir}/callgrind.out`, 'redis-server', ...privateRedisArgs({ dir, port })]
  const child = spawn('valgrind', args, { stdio: ['ignore', 'ignore', 'pipe'] })
  let log = ''
  child.stderr.on('data', (d: Buffer) => (log += d.toString()))
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve))
  const redis = createRedis({ url: `redis://127.0.0.1:${port}` })
  redis.on('error', () => {})
  try {
    await waitForRedis(redis, 60_000)
    // The same inputs every run: a fixed clock (ids are random, which callgrind's count barely sees).
    await drive(createRules(redis, settingsIn(dir)), c, n, { perSession, inFlight: 50, now: 1_764_000_000_000 })
    await redis.call('SHUTDOWN', 'NOSAVE').catch(() => {}) // the connection closes as it answers
    await exited
    const collected = /Collected : (\d+)/.exec(log)?.[1]
    if (!collected) throw new Error(`no instruction count from callgrind:\n${log.slice(-2000)}`)
    return Number(collected)
  } finally {
    redis.disconnect()
    child.kill('SIGKILL')
    rmSync(dir, { recursive: true, force: true })
  }
}

if (callgrind) {
  const c = cases.find((x) => x.events === 30)!
  const empty = await instructions(c, 0, 1)
  const figures: Record<string, { instructions_per_call: number }> = {}
  for (const perSession of [1, 8]) {
    const name = perSession === 1 ? 'ingest, 30 events, a new session each call' : `ingest, 30 events, sessions of ${perSession} calls`
    figures[name] = { instructions_per_call: Math.round(((await instructions(c, calls, perSession)) - empty) / calls) }
  }
  printTable(`bench:ingest:script --callgrind — instructions Redis executes per call (append-only file on), ${calls} calls each`, Object.entries(figures).map(([k, v]) => [k, v.instructions_per_call.toLocaleString('en-US')]))
  const file = writeResult('ingest-script-callgrind', { command: `npm run bench:ingest:script -- ${process.argv.slice(2).join(' ')}`.trim(), settings: { calls, instructions_at_start_and_stop: empty }, figures }, flags.get('out'))
  console.log(`\nwritten ${file}`)
} else {
  const figures: Record<string, { aof_us_per_call: number; no_aof_us_per_call: number }> = {}
  for (const c of cases) {
    figures[c.name] = { aof_us_per_call: +(await measure(true, c)).toFixed(1), no_aof_us_per_call: +(await measure(false, c)).toFixed(1) }
  }
  printTable(`bench:ingest:script — Redis CPU per call (µs), ${calls} calls each`, Object.entries(figures).map(([k, v]) => [k, `${v.aof_us_per_call} with the append-only file, ${v.no_aof_us_per_call} without`]))
  const file = writeResult('ingest-script', { command: `npm run bench:ingest:script -- ${process.argv.slice(2).join(' ')}`.trim(), settings: { calls }, figures }, flags.get('out'))
  console.log(`\nwritten ${file}`)
}
