/**
 * What bench:ingest reads of the server's private Redis: its RSS (largest in each 10 s, the
 * peak, growth per accepted event), INFO used_memory at 10 s, 20 s, ... (live keys, without
 * the allocator's pages not given back), and a census of its keys by kind at the end.
 */
import { Redis } from 'ioredis'
import { procStatusKb } from './lib.ts'

/** What kind of key each Redis key is (ingest/state/keys.ts), from its name. */
const KEY_KINDS: [string, RegExp][] = [
  ['session decisions', /:s:[^:]+:ev$/],
  ['session state', /:s:[^:]+:st$/],
  ['session token bucket', /:s:[^:]+:rl$/],
  ['request loaded marks', /:c:[^:]+$/],
  ['resume positions', /:r:[^:]+$/],
  ['viewer windows', /:(vw|aw:[^:]+):[^:]+$/],
  ['IP windows and buckets', /(:ip:[^:]+|^cs:\{ip:[^}]+\}:rl)$/],
  ['live view counters', /:views$/],
]

export type RedisKeyCensus = { keys: number; sampled_share_by_kind: Record<string, number> }

/**
 * Watches the Redis of process `pid` listening on `socket` (none when `pid` is undefined).
 * `sample()` is called with the bench's RSS sampler; `finish()` after the load.
 */
export function watchRedis(pid: number | undefined, socket: string, startedAt: number) {
  const rssStartKb = pid ? (procStatusKb(pid, 'VmRSS') ?? 0) : 0
  let peakRssKb = rssStartKb
  const rssByTenSeconds: number[] = []
  const usedByTenSeconds: number[] = []
  const client = pid ? new Redis({ path: socket, lazyConnect: true, maxRetriesPerRequest: 1 }) : undefined
  /** A numeric field of an INFO answer (NaN when absent). */
  const infoField = (info: string | undefined, name: string) => Number(info?.match(new RegExp(`^${name}:(\\d+)`, 'm'))?.[1] ?? NaN)
  const toMib = (bytes: number) => (Number.isFinite(bytes) ? Math.round(bytes / 1024 / 1024) : undefined)
  const usedMib = async (): Promise<number | undefined> => toMib(infoField(await client?.info('memory').catch(() => undefined), 'used_memory'))
  const usedSampler = setInterval(() => {
    const slot = Math.round((performance.now() - startedAt) / 10_000) - 1 // taken at 10 s, 20 s, ...
    void usedMib().then((mib) => {
      if (mib !== undefined) usedByTenSeconds[slot] = mib
    })
  }, 10_000)

  /** Redis's keys: how many, and a sample of RANDOMKEY classified by kind (share of keys). */
  async function census(samples = 2_000): Promise<RedisKeyCensus | undefined> {
    if (!client) return undefined
    const keys = await client.dbsize()
    const counts: Record<string, number> = {}
    for (let i = 0; i < samples && keys > 0; i++) {
      const key = await client.randomkey()
      if (key === null) break
      const kind = KEY_KINDS.find(([, re]) => re.test(key))?.[0] ?? 'other'
      counts[kind] = (counts[kind] ?? 0) + 1
    }
    const n = Object.values(counts).reduce((a, b) => a + b, 0)
    return { keys, sampled_share_by_kind: Object.fromEntries(Object.entries(counts).sort((a, b) => b[1] - a[1]).map(([k, c]) => [k, +(c / n).toFixed(3)])) }
  }

  let usedAtEndMib: number | undefined
  let usedAtEndBytes: number | undefined
  let aofAtEndBytes: number | undefined
  let keysAtEnd: RedisKeyCensus | undefined
  return {
    /** Takes Redis's RSS now (the bench's sampler calls it every 250 ms). */
    sample(): void {
      if (!pid) return
      const rss = procStatusKb(pid, 'VmRSS') ?? 0
      peakRssKb = Math.max(peakRssKb, rss)
      const slot = Math.floor((performance.now() - startedAt) / 10_000)
      rssByTenSeconds[slot] = Math.max(rssByTenSeconds[slot] ?? 0, Math.round(rss / 1024))
    },
    /** After the load, with the server still up: used_memory and the census of keys. */
    async atEnd(): Promise<void> {
      // One INFO for every figure (memory and persistence).
      const info = await client?.info().catch(() => undefined)
      usedAtEndMib = toMib(infoField(info, 'used_memory'))
      usedAtEndBytes = infoField(info, 'used_memory') - infoField(info, 'used_memory_startup')
      aofAtEndBytes = infoField(info, 'aof_current_size')
      keysAtEnd = await census()
    },
    stop(): void {
      clearInterval(usedSampler)
      client?.disconnect()
    },
    figures(accepted: number) {
      return {
        redis_peak_rss_mib: Math.round(peakRssKb / 1024),
        redis_rss_mib_by_10s: Array.from(rssByTenSeconds, (v) => v ?? 0),
        /** INFO used_memory: what Redis's keys take, without the allocator's pages not given back to the system. */
        redis_used_memory_mib_by_10s: Array.from(usedByTenSeconds, (v) => v ?? 0),
        redis_used_memory_mib_at_end: usedAtEndMib ?? null,
        redis_keys_at_end: keysAtEnd ?? null,
        /** What Redis grew by per acknowledged event: the state it keeps for each (see DECISION_IDLE_MINUTES). */
        redis_rss_bytes_per_accepted_event: accepted > 0 ? Math.round(((peakRssKb - rssStartKb) * 1024) / accepted) : null,
        /** used_memory above what Redis takes empty, per acknowledged event, at the end (before any record expired). */
        redis_used_bytes_per_accepted_event: accepted > 0 && Number.isFinite(usedAtEndBytes) ? Math.round(usedAtEndBytes! / accepted) : null,
        /** The append-only file's size at the end per acknowledged event (what a rewrite starts from is the file since the last one). */
        redis_aof_bytes_per_accepted_event: accepted > 0 && Number.isFinite(aofAtEndBytes) ? Math.round(aofAtEndBytes! / accepted) : null,
      }
    },
  }
}
