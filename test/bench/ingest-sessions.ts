/**
 * The playback sessions of bench:ingest's players, shared by its two generators
 * (ingest-load.ts in Bun, ingest-load-wrk.ts for wrk): a video by Zipf popularity, its
 * creator and ad, a share of self-views, a client address, and the signed token.
 */
import { readFileSync } from 'node:fs'
import { importPlaybackJwks } from '../../ingest/tokens/keys.ts'
import { signPlaybackToken } from '../../ingest/tokens/playback.ts'
import type { LoadConfig } from './ingest-load.ts'
import { rng, zipf } from './lib.ts'

export type Session = { token: string; videoId: string; creatorId: string; adId: string; ip: string }

/** The generator's seeded random numbers and a maker of the next session (in the same order for the same seed). */
export async function sessionMaker(cfg: LoadConfig): Promise<{ random: () => number; next(): Promise<Session> }> {
  const keys = await importPlaybackJwks(readFileSync(cfg.jwksFile, 'utf8'), cfg.jwksFile)
  const random = rng(cfg.seed)
  const pickVideo = zipf(cfg.videos, cfg.zipfS, random)
  async function next(): Promise<Session> {
    const v = pickVideo()
    const videoId = `v${v}`
    const creatorId = v % cfg.creators === 0 && cfg.creator0 ? cfg.creator0 : `c${v % cfg.creators}`
    const self = random() < cfg.selfViewShare
    const viewerId = self ? creatorId : `u${Math.floor(random() * 10_000_000)}`
    const adId = `ad-${v % 50}`
    const { token } = await signPlaybackToken(keys, { issuer: cfg.issuer, ttlSeconds: 3600 }, { viewerId, videoId, creatorId, sessionId: crypto.randomUUID(), adIds: [adId], durationMs: 3_600_000 })
    const ipIndex = Math.floor(random() * cfg.ips)
    return { token, videoId, creatorId, adId, ip: `10.${(ipIndex >> 16) & 255}.${(ipIndex >> 8) & 255}.${ipIndex & 255}` }
  }
  return { random, next }
}

/**
 * How many sessions a run needs when the players send `closedLoopRate` events/s in a closed
 * loop, or (paced) what their think time allows with half again for room, over the run and 5 s
 * more: a session is 3-12 batches of 10-50 events, 7.5 of 30 on average.
 */
export function sessionsFor(cfg: LoadConfig, closedLoopRate: number): number {
  const rate = cfg.thinkMs === 0 ? closedLoopRate : (cfg.sessions / (cfg.thinkMs / 1000)) * 30 * 1.5
  return Math.ceil((rate * (cfg.seconds + 5)) / (30 * 7.5))
}
