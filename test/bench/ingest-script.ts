/**
 * bench:ingest:script — Redis CPU per call of the edge's Redis scripts, measured by Redis
 * itself (INFO cpu), on a private redis-server with its append-only file on and off: the
 * ingest script with batches of 0, 1 and 30 events (a new session each call, 200 calls in
 * flight) and the per-IP bucket. On a quiet host it repeats within a few per cent where
 * whole-system runs do not, so it is the one to judge a change of a .lua file by (on a
 * busy host, run it several times in alternation).
 *
 *   npm run bench:ingest:script -- [--calls 20000] [--out file.json]
 */
import { rmSync } from 'node:fs'
import { createRules } from '../../ingest/state/decide.ts'
import { loadSettings } from '../../lib/config.ts'
import { createRedis, waitForRedis } from '../../lib/redis.ts'
import { startPrivateRedis } from '../../lib/redis-server.ts'
import { tempDir } from '../harness/engines.ts'
import type { PlaybackClaims } from '../../ingest/tokens/playback.ts'
import type { RuleInput } from '../../ingest/state/decide.ts'
import { num, parseFlags, printTable, writeResult } from './lib.ts'

const flags = parseFlags(process.argv.slice(2))
const calls = num(flags, 'calls', flags.has('smoke') ? 500 : 20_000)

type Case = { name: string; events: number; ipBucket: boolean }
const cases: Case[] = [
  { name: 'ingest, 0 events', events: 0, ipBucket: false },
  { name: 'ingest, 1 event', events: 1, ipBucket: false },
  { name: 'ingest, 30 events', events: 30, ipBucket: false },
  { name: 'IP bucket', events: -1, ipBucket: true },
]

async function measure(persist: boolean, c: Case): Promise<number> {
  const dir = tempDir('cs-bench-script-')
  const server = await startPrivateRedis({ dir, persist })
  const redis = createRedis(server.target)
  try {
    await waitForRedis(redis)
    const settings = loadSettings({ DATA_DIR: dir, RATE_LIMIT_TOKEN_PER_SECOND: '1000000', RATE_LIMIT_TOKEN_BURST: '1000000', RATE_LIMIT_IP_PER_SECOND: '1000000', RATE_LIMIT_IP_BURST: '1000000' })
    const rules = createRules(redis, settings)
    const cpu = async () => {
      const info = await redis.info('cpu')
      return Number(/used_cpu_user:([\d.]+)/.exec(info)![1]) + Number(/used_cpu_sys:([\d.]+)/.exec(info)![1])
    }
    const now = Date.now()
    const before = await cpu()
    let inFlight: Promise<unknown>[] = []
    for (let i = 0; i < calls; i++) {
      const ip = `10.0.${i % 250}.${(i >> 8) % 250}`
      if (c.ipBucket) inFlight.push(rules.rateLimit(ip, now))
      else {
        const claims = { vid: `v${i % 500}`, cid: 'c1', sub: `u${i}`, sid: `s${i}`, dur: 3_600_000, ads: ['ad-1'], iat: Math.floor(now / 1000) - 60, exp: 0 } as PlaybackClaims
        const events: RuleInput[] = Array.from({ length: c.events }, (_, k) => ({
          id: crypto.randomUUID(), type: k === 0 ? 'play' : k === 1 ? 'ad_impression' : 'progress', ts: now - 1_000 + k, positionMs: k * 1_000, watchedMs: 1_000, adId: 'ad-1', preRejected: '',
        }))
        inFlight.push(rules.decide(`r${i}`, claims, ip, now, events))
      }
      if (inFlight.length >= 200) {
        await Promise.all(inFlight)
        inFlight = []
      }
    }
    await Promise.all(inFlight)
    return ((await cpu()) - before) * 1e6 / calls
  } finally {
    redis.disconnect()
    await server.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}

const figures: Record<string, { aof_us_per_call: number; no_aof_us_per_call: number }> = {}
for (const c of cases) {
  figures[c.name] = { aof_us_per_call: +(await measure(true, c)).toFixed(1), no_aof_us_per_call: +(await measure(false, c)).toFixed(1) }
}
printTable(`bench:ingest:script — Redis CPU per call (µs), ${calls} calls each`, Object.entries(figures).map(([k, v]) => [k, `${v.aof_us_per_call} with the append-only file, ${v.no_aof_us_per_call} without`]))
const file = writeResult('ingest-script', { command: `npm run bench:ingest:script -- ${process.argv.slice(2).join(' ')}`.trim(), settings: { calls }, figures }, flags.get('out'))
console.log(`\nwritten ${file}`)
