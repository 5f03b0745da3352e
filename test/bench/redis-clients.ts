/**
 * bench:redis-clients — what the edge's Redis client costs its process: an EVALSHA the size
 * of an ingest call (8 keys, 30 packed events) through ioredis and through Bun's native
 * RedisClient, with 200 calls in flight, in alternation. Prints calls/s and the process's CPU
 * per call (Bun's client is not used by the edge; this says what switching would save).
 *
 *   npm run bench:redis-clients [-- --calls 20000 --rounds 4 --in-flight 200] [--smoke] [--out file.json]
 */
import { rmSync } from 'node:fs'
import { Redis } from 'ioredis'
import { startPrivateRedis } from '../../lib/redis-server.ts'
import { freePort, tempDir } from '../harness/engines.ts'
import { num, parseFlags, printTable, writeResult } from './lib.ts'

const flags = parseFlags(process.argv.slice(2))
const smoke = flags.has('smoke')
const calls = num(flags, 'calls', smoke ? 500 : 20_000)
const rounds = num(flags, 'rounds', smoke ? 1 : 4)
const inFlight = num(flags, 'in-flight', 200)
const port = await freePort()
const redisDir = tempDir('cs-bench-redis-clients-')
const server = await startPrivateRedis({ dir: redisDir, port, persist: false })
const lua = "redis.call('HSET', KEYS[1], 'x', ARGV[1]); return {'ok', 'n|counted||1000'}"
const io = new Redis({ port })
const sha = (await io.script('LOAD', lua)) as string
const payload = Array.from({ length: 30 }, (_, i) => `${crypto.randomUUID()}\x1fprogress\x1f${Date.now()}\x1f${i * 1000}\x1f1000\x1f\x1f0`).join('\x1e')
const keys = Array.from({ length: 8 }, (_, i) => `cs:{v:bench}:k${i}`)
const args = ['req-1', Date.now(), 'viewer', 'creator', 0, 3_600_000, 60_000, 3, 3600, 1000, 2000, 1, 'ad-1', payload, 86_400, 1800, 30_000, '']
const bun = new Bun.RedisClient(`redis://127.0.0.1:${port}`)
await bun.connect()
const bunArgs = [sha, String(keys.length), ...keys, ...args.map(String)]

async function measure(call: () => Promise<unknown>): Promise<{ calls_per_second: number; cpu_us_per_call: number }> {
  for (let i = 0; i < (smoke ? 50 : 2_000); i++) await call() // warm-up
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  let started = 0
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (started < calls) {
        started++
        await call()
      }
    }),
  )
  const cpu = process.cpuUsage(cpu0)
  return { calls_per_second: Math.round((calls / (performance.now() - t0)) * 1000), cpu_us_per_call: +((cpu.user + cpu.system) / calls).toFixed(1) }
}

const runs: { client: string; round: number; calls_per_second: number; cpu_us_per_call: number }[] = []
try {
  for (let round = 1; round <= rounds; round++) {
    runs.push({ client: 'ioredis', round, ...(await measure(() => io.evalsha(sha, keys.length, ...keys, ...args))) })
    runs.push({ client: 'Bun.RedisClient', round, ...(await measure(() => bun.send('EVALSHA', bunArgs))) })
  }
} finally {
  io.disconnect()
  bun.close()
  await server.stop()
  rmSync(redisDir, { recursive: true, force: true })
}
printTable(
  `bench:redis-clients — EVALSHA of an ingest call, ${calls} calls, ${inFlight} in flight`,
  runs.map((r) => [`${r.client} (round ${r.round}): calls/s; process CPU per call (µs)`, `${r.calls_per_second}; ${r.cpu_us_per_call}`]),
)
const file = writeResult('redis-clients', { command: `npm run bench:redis-clients -- ${process.argv.slice(2).join(' ')}`.trim(), settings: { calls, rounds, in_flight: inFlight, smoke }, figures: { runs } }, flags.get('out'))
console.log(`\nwritten ${file}`)
