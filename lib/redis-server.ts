import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { createRedis, waitForRedis } from './redis.ts'

export type PrivateRedis = { target: { path: string } | { url: string }; stop(): Promise<void> }

/**
 * What the edge's Redis should run with beyond its defaults: the private server's arguments,
 * and the command of docker-compose.yml's Redis (test/compose.test.ts checks both agree).
 */
export const REDIS_TUNING = [
  // Sessions' decisions expire by the thousand while most keys live for hours (session state,
  // viewer windows, resume positions): at the default effort (1) Redis reclaims expired keys
  // only while they are over ~10 % of the keys with a TTL it samples, which let expired
  // decisions pile up (bench:ingest with DECISION_IDLE_MINUTES=5: no plateau in 8 minutes;
  // at 10, level after 6; see test/bench/HISTORY.md).
  '--active-expire-effort', '10',
  // A session's decisions hash gets an entry per event id, and the ingest script looks up and
  // sets a batch's ids in it at once. Redis keeps a hash of up to 128 entries as a listpack,
  // which it scans for each field: in bench:ingest that scan (memcmp, lpFind) was 23 % of
  // Redis's CPU and HSET / HMGET cost 25 / 29 µs a call; as a hash table from 16 entries on,
  // 7.9 / 7.7 µs, and Redis took 0.42 cores where it took 0.52 (see test/bench/HISTORY.md). The
  // price is memory: 140 bytes an entry against 83 (500,000 decisions in 5,000 hashes). The
  // other hashes (session state) stay smaller than 16.
  '--hash-max-listpack-entries', '16',
  // Rewriting the append-only file forks Redis, and the child reads the whole dataset and writes
  // it out: on a machine Redis shares with the edge (the embedded mode's two cores), each rewrite
  // held the edge's thread for 0.3-0.6 s and a log flush's fsync for 200-270 ms, players' p99
  // 0.8-1.5 s at 28k events/s against 140 ms with no rewrite (bench:ingest --stages-by-second,
  // test/bench/HISTORY.md). At the defaults (64 MB, then each time the file doubles) the file is
  // rewritten every 20-30 s at that rate (130 bytes an event); none before it holds 1 GB (about
  // 4.5 minutes there, replayed in about 30 s at a restart), then each time it has grown by twice
  // the dataset it was rewritten from: half as many rewrites as the default once the dataset is
  // large (each of a 632 MB base took 17 s and held the edge as long), for a file up to three
  // times the dataset and a restart that replays up to twice it.
  '--auto-aof-rewrite-min-size', '1gb',
  '--auto-aof-rewrite-percentage', '200',
]

/** True when a `redis-server` binary is on the PATH. */
export function hasRedisServer(): boolean {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0
}

/**
 * The arguments of a private `redis-server` (see startPrivateRedis), for a benchmark that runs
 * it under another program (valgrind) exactly as the edge runs it.
 */
export function privateRedisArgs(opts: { dir: string; port?: number; persist?: boolean }): string[] {
  return [
    '--port', String(opts.port ?? 0),
    '--bind', '127.0.0.1',
    '--dir', opts.dir,
    '--unixsocket', join(opts.dir, 'redis.sock'),
    '--unixsocketperm', '700',
    '--save', '',
    '--appendonly', (opts.persist ?? true) ? 'yes' : 'no',
    '--appendfsync', 'everysec',
    '--daemonize', 'no',
    '--logfile', join(opts.dir, 'redis.log'),
    ...REDIS_TUNING,
  ]
}

/**
 * Starts a private `redis-server` whose data (append-only file) lives in `dir`.
 * With `port` it listens on 127.0.0.1:port, otherwise only on a unix socket in `dir`,
 * so two instances with different data folders never collide. A server already
 * answering on that socket (left by a process killed with SIGKILL) is reused.
 *
 * @example
 * const redis = await startPrivateRedis({ dir: './data/redis' })
 */
export async function startPrivateRedis(opts: { dir: string; port?: number; persist?: boolean }): Promise<PrivateRedis> {
  mkdirSync(opts.dir, { recursive: true })
  const socket = join(opts.dir, 'redis.sock')
  const target = opts.port === undefined ? { path: socket } : { url: `redis://127.0.0.1:${opts.port}` }
  if (opts.port === undefined && existsSync(socket) && (await answers(target))) {
    return { target, stop: async () => {} }
  }
  if (!hasRedisServer())
    throw new Error('redis-server is not installed: install it (Debian: apt-get install redis-server) or set REDIS_URL')
  const child: ChildProcess = spawn('redis-server', privateRedisArgs(opts), { stdio: 'ignore' })
  let exited = false
  child.once('exit', () => (exited = true))
  const deadline = Date.now() + 10_000
  while (!(await answers(target))) {
    if (exited) throw new Error(`redis-server exited at start; see ${join(opts.dir, 'redis.log')}`)
    if (Date.now() > deadline) throw new Error('redis-server did not answer within 10 s')
    await new Promise((r) => setTimeout(r, 25))
  }
  return {
    target,
    stop: () =>
      new Promise<void>((resolve) => {
        if (exited) return resolve()
        child.once('exit', () => resolve())
        child.kill('SIGTERM')
      }),
  }
}

async function answers(target: { path: string } | { url: string }): Promise<boolean> {
  const probe = createRedis(target, { retryStrategy: () => null, lazyConnect: true, connectTimeout: 500 })
  probe.on('error', () => {})
  try {
    await probe.connect()
    await waitForRedis(probe, 500)
    return true
  } catch {
    return false
  } finally {
    probe.disconnect()
  }
}
