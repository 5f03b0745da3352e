import { createHash, randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { z } from 'zod'
import { keys } from '../../ingest/state/keys.ts'
import type { ClickHouseClient } from '../../lib/clickhouse.ts'
import { ApiError } from '../../lib/errors.ts'
import { defineScripts, type Redis } from '../../lib/redis.ts'
import type { ServedAd } from '../ads/store.ts'
import { playbackLookups } from './lookups.ts'

const scripts = { csPlayRateLimit: { file: fileURLToPath(new URL('./play-ratelimit.lua', import.meta.url)), numberOfKeys: 1 } }

/** Anonymous device ids: `d_` and 22 base64url characters. */
export const DEVICE_ID = /^d_[A-Za-z0-9_-]{22}$/

export function newDeviceId(): string {
  return `d_${randomBytes(16).toString('base64url')}`
}

/** Counts a session start from `ip`; a 429 with Retry-After past `perMinute`. */
export async function limitPlayStarts(redis: Redis, ip: string, perMinute: number): Promise<void> {
  defineScripts(redis, scripts)
  const run: unknown = Reflect.get(redis, 'csPlayRateLimit')
  if (typeof run !== 'function') throw new Error('play rate-limit script is not loaded')
  const reply: unknown = await run.call(redis, `cs:{play:${ip}}:rl`, 60)
  const [n, ttl] = z.tuple([z.number(), z.number()]).parse(reply)
  if (n > perMinute) throw new ApiError('RATE_LIMITED', `too many playback sessions from this address; retry in ${ttl} s`, { retryAfterSeconds: Math.max(ttl, 1) })
}

/** One pre-roll and one mid-roll ad for the session, rotating among the assigned ones by session. */
export function pickAds(assigned: ServedAd[], sessionId: string): ServedAd[] {
  const pick = (slot: ServedAd['slot']) => {
    const pool = assigned.filter((a) => a.slot === slot)
    if (pool.length === 0) return []
    const h = createHash('sha256').update(`${sessionId}:${slot}`).digest().readUInt32BE(0)
    return [pool[h % pool.length]!]
  }
  return [...pick('pre_roll'), ...pick('mid_roll')]
}

const resumeValue = /^(\d+):(\d+)$/

/**
 * The viewer's resume position: the edge's Redis key (freshest; it expires), else what was
 * written back to ClickHouse; whichever event is later wins.
 */
export async function resumePosition(ch: ClickHouseClient, redis: Redis, videoId: string, viewerId: string): Promise<{ position_ms: number; updated_at: string | null }> {
  // The stored one read with the concurrent starts' (see lookups.ts).
  const [live, stored] = await Promise.all([redis.get(keys.resume(videoId, viewerId)), playbackLookups(ch).storedPosition(viewerId, videoId)])
  const m = live === null ? null : resumeValue.exec(live)
  const fromRedis = m ? { at: Number(m[1]), position_ms: Number(m[2]) } : undefined
  const best = [fromRedis, stored].filter((x) => x !== undefined).sort((a, b) => b.at - a.at)[0]
  return best ? { position_ms: best.position_ms, updated_at: new Date(best.at).toISOString() } : { position_ms: 0, updated_at: null }
}
