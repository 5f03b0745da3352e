import { createHash } from 'node:crypto'
import type { RedisTarget } from './redis.ts'

/** A script's text and its SHA1, as EVALSHA names it (see scriptOf). */
export type Script = { lua: string; sha: string }

/** Runs a Lua script (EVALSHA, loading it where the server lacks it) with string arguments. */
export type ScriptRunner = {
  run(script: Script, numberOfKeys: number, args: string[]): Promise<unknown>
  /**
   * As `run`, but while other calls are waiting for Redis's answer, sent at the end of this turn of
   * the event loop (setImmediate) with the other calls made for it in the turn, in the order made;
   * with none waiting, at once (Nagle's rule: a busy edge batches, an idle one does not wait).
   * Bun's client writes the calls of one tick together; each HTTP request's handler runs in a tick
   * of its own, so its first call would go alone: one write, and on Redis's side one read and one
   * reply, a call. Measured with the IP bucket's script from 400 connections (a probe, 6 December,
   * alternating every 5 s): Redis 7.6–8.9 µs of CPU a call against 11.3–15.0 sent at once, the
   * calling process 26–34 µs a request against 30–40. Always deferred, 3,000 paced players' p99
   * rose (test/bench/HISTORY.md, nineteenth session).
   */
  runSoon(script: Script, numberOfKeys: number, args: string[]): Promise<unknown>
  close(): void
}

type BunRedis = {
  send(command: string, args: string[]): Promise<unknown>
  connect(): Promise<void>
  close(): void
  readonly connected: boolean
  onclose: ((err: Error) => void) | null
}

/** A script of this text. */
export function scriptOf(lua: string): Script {
  return { lua, sha: createHash('sha1').update(lua).digest('hex') }
}

/**
 * The edge's per-request Redis scripts through Bun's own Redis client, which costs about
 * 0.8 µs of CPU a command where ioredis costs 12–14 µs under Bun (test/bench/HISTORY.md).
 * It behaves as createRedis's ioredis client does where the edge relies on it: a command
 * sent while disconnected fails at once (no offline queue: the edge answers 503), the
 * connection is made again for as long as the process runs (Bun's client gives up after
 * its retries; a new one then takes over), a command fails after `timeoutMs` (one sweeper
 * for all, not a timer each), and a script the server does not have (NOSCRIPT: a restarted
 * Redis) is loaded and the call made once more.
 * Undefined outside Bun (the tests run under Node): callers then use ioredis.
 *
 * @example
 * const fast = createBunScripts({ path: '/data/redis/redis.sock' })
 * await fast?.run(scriptOf(lua), 1, ['key', 'arg'])
 */
export function createBunScripts(target: RedisTarget, opts: { timeoutMs?: number; reconnectMs?: number; maxRetries?: number } = {}): ScriptRunner | undefined {
  const RedisClient = (globalThis as { Bun?: { RedisClient?: new (url: string, options: object) => BunRedis } }).Bun?.RedisClient
  if (!RedisClient) return undefined
  const url = 'url' in target ? target.url : `redis+unix://${target.path}`
  const timeoutMs = opts.timeoutMs ?? 5_000
  const reconnectMs = opts.reconnectMs ?? 500
  let closed = false
  let client: BunRedis
  /** The first connection attempt of the current client: commands sent before it ends wait for it. */
  let connecting: Promise<void>
  let reopening = false
  /** A new client after a pause: the current one gave up reconnecting, or never connected. */
  const reopen = (old: BunRedis) => {
    if (closed || reopening || old !== client) return
    reopening = true
    setTimeout(() => {
      reopening = false
      if (closed) return
      old.close()
      open()
    }, reconnectMs).unref?.()
  }
  const open = () => {
    const c = new RedisClient(url, { enableOfflineQueue: false, autoReconnect: true, connectionTimeout: 2_000, ...(opts.maxRetries === undefined ? {} : { maxRetries: opts.maxRetries }) })
    client = c
    c.onclose = () => reopen(c)
    connecting = c.connect().catch(() => reopen(c))
  }
  open()

  const pending = new Set<{ at: number; reject(err: Error): void }>()
  const sweeper = setInterval(() => {
    const now = performance.now()
    for (const p of pending) if (now - p.at > timeoutMs) p.reject(new Error(`Redis command timed out after ${timeoutMs} ms`))
  }, Math.min(250, timeoutMs))
  sweeper.unref?.()

  const send = async (command: string, args: string[]): Promise<unknown> => {
    // After close(), every call is refused alike: sent at once, or queued for the end of its turn.
    if (closed) throw new Error('Redis client closed')
    if (!client.connected) await connecting
    return sendNow(command, args)
  }
  const sendNow = (command: string, args: string[]): Promise<unknown> =>
    new Promise((resolve, reject) => {
      const entry = {
        at: performance.now(),
        reject: (err: Error) => {
          pending.delete(entry)
          reject(err)
        },
      }
      pending.add(entry)
      client.send(command, args).then(
        (v) => {
          pending.delete(entry)
          resolve(v)
        },
        (err: unknown) => entry.reject(err instanceof Error ? err : new Error(String(err))),
      )
    })

  const run: ScriptRunner['run'] = async (script, numberOfKeys, args) => {
    const argv = [String(numberOfKeys), ...args]
    try {
      return await send('EVALSHA', [script.sha, ...argv])
    } catch (err) {
      if (!(err instanceof Error && /NOSCRIPT/.test(err.message))) throw err
      await send('SCRIPT', ['LOAD', script.lua])
      return await send('EVALSHA', [script.sha, ...argv])
    }
  }
  /** Calls made with runSoon in this turn, sent at its end. */
  let soon: (() => void)[] = []
  const sendSoon = () => {
    const calls = soon
    soon = []
    for (const call of calls) call()
  }

  return {
    run,
    runSoon(script, numberOfKeys, args) {
      if (pending.size === 0 && soon.length === 0) return run(script, numberOfKeys, args)
      return new Promise((resolve, reject) => {
        if (soon.length === 0) setImmediate(sendSoon)
        soon.push(() => void run(script, numberOfKeys, args).then(resolve, reject))
      })
    },
    close() {
      closed = true
      clearInterval(sweeper)
      for (const p of pending) p.reject(new Error('Redis client closed'))
      client.close()
    },
  }
}
