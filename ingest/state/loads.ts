import type { Redis } from '../../lib/redis.ts'

/** Hash: edge id -> "<published at ms>:<oldest unloaded ms, or 0>", one field per edge. */
export const EDGE_LOADS_KEY = 'cs:{edges}:loads'

/**
 * Whether every edge's loads into ClickHouse are current, which a lookup of event ids in
 * raw_events relies on: an id decided before a session's decisions expired in Redis is
 * in raw_events once every load of its time has landed. Each edge publishes its oldest
 * entry not yet loaded (see Wal.oldestMs) every second; an edge not heard from for
 * `staleMs` may hold anything, so it counts as behind until it publishes again or is
 * retired (it retires itself when it stops with nothing left to load). Where ClickHouse is
 * this process's own (embedded mode, `shared: false`) no other edge loads into it: only
 * this edge's log counts, and nothing is published.
 *
 * @example
 * const loads = createLoadWatch(redis, { edgeId: wal.edgeId(), oldestUnloaded: () => wal.oldestMs() })
 * setInterval(() => loads.publish(), 1000)
 * if (!(await loads.current())) refuse()
 */
export function createLoadWatch(redis: Redis, opts: { edgeId: string; oldestUnloaded(): number | undefined; shared?: boolean; maxLagMs?: number; staleMs?: number }) {
  const maxLagMs = opts.maxLagMs ?? 10_000
  const staleMs = opts.staleMs ?? 30_000
  const shared = opts.shared ?? true
  return {
    async publish(now = Date.now()): Promise<void> {
      if (shared) await redis.hset(EDGE_LOADS_KEY, opts.edgeId, `${now}:${Math.floor(opts.oldestUnloaded() ?? 0)}`)
    },
    /** Takes this edge off the list (it stopped with nothing left to load). */
    async retire(): Promise<void> {
      if (shared) await redis.hdel(EDGE_LOADS_KEY, opts.edgeId)
    },
    /** True when no edge, this one included, has anything older than `maxLagMs` still to load. */
    async current(now = Date.now()): Promise<boolean> {
      const own = opts.oldestUnloaded()
      if (own !== undefined && own < now - maxLagMs) return false
      if (!shared) return true
      for (const [edge, value] of Object.entries(await redis.hgetall(EDGE_LOADS_KEY))) {
        if (edge === opts.edgeId) continue
        const [at, oldest] = value.split(':').map(Number)
        if (!(at! >= now - staleMs)) return false
        if (oldest! > 0 && oldest! < now - maxLagMs) return false
      }
      return true
    },
  }
}

export type LoadWatch = ReturnType<typeof createLoadWatch>
