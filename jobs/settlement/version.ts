import { fileURLToPath } from 'node:url'
import type { Result } from 'ioredis'
import { z } from 'zod'
import { defineScripts, type Redis } from '../../lib/redis.ts'
import type { Day } from './calendar.ts'
import type { VisibleRuns } from './queries.ts'

declare module 'ioredis' {
  interface RedisCommander<Context> {
    settlementPublish(version: string, snapshot: string, lock: string, runs: string, lockValue: string, ttlSeconds: number): Result<number, Context>
    settlementRemember(snapshot: string, version: string, runs: string, ttlSeconds: number): Result<number, Context>
  }
}

/** Counter bumped whenever a settlement run commits: what readers cache settlement answers by. */
export const SETTLEMENT_VERSION_KEY = 'cs:settlement:version'
/**
 * The visible runs (jobs/settlement/queries.ts's visibleRuns) at a version: "<version>\n<JSON>".
 * Written with the bump by the run that committed, or by the first reader of a version that
 * found none; a reader of another version reads them from ClickHouse.
 */
export const SETTLEMENT_VISIBLE_KEY = 'cs:settlement:visible'
/** How long a snapshot is kept (a version's readers after that read ClickHouse once and keep it again). */
const SNAPSHOT_TTL_SECONDS = 86_400

const scripts = {
  settlementPublish: { file: fileURLToPath(new URL('./publish.lua', import.meta.url)), numberOfKeys: 3 },
  settlementRemember: { file: fileURLToPath(new URL('./remember.lua', import.meta.url)), numberOfKeys: 1 },
}

/** The lock a commit was made under (jobs/settlement/lock.ts): its key and the value its holder set. */
export type SettlementFence = { key: string; value: string }

/**
 * After a commit: bumps the version and, in the same step, publishes `visible` (the runs as
 * they stand after the commit) for it, if `fence` (the lock the commit was made under) is still held.
 * Without `visible`, or with the lock lost, the version is bumped all the same and readers read
 * the runs from ClickHouse.
 */
export async function bumpSettlementVersion(redis: Redis, visible?: VisibleRuns, fence?: SettlementFence): Promise<void> {
  defineScripts(redis, scripts)
  await redis.settlementPublish(SETTLEMENT_VERSION_KEY, SETTLEMENT_VISIBLE_KEY, fence?.key ?? SETTLEMENT_VISIBLE_KEY, visible ? encodeVisibleRuns(visible) : '', fence?.value ?? '', SNAPSHOT_TTL_SECONDS)
}

/** The current version, or null when Redis cannot say (callers then skip their cache). */
export async function settlementVersion(redis: Redis): Promise<string | null> {
  try {
    return (await redis.get(SETTLEMENT_VERSION_KEY)) ?? '0'
  } catch {
    return null
  }
}

/** The visible runs published for `version`, or undefined (none for it, or Redis cannot say). */
export async function publishedVisibleRuns(redis: Redis, version: string): Promise<VisibleRuns | undefined> {
  const stored = await redis.get(SETTLEMENT_VISIBLE_KEY).catch(() => null)
  if (stored === null || !stored.startsWith(`${version}\n`)) return undefined
  return decodeVisibleRuns(stored.slice(version.length + 1))
}

/**
 * Keeps the runs a reader read from ClickHouse at `version` for the other readers of it,
 * unless those of that version or a later one are there already. Best effort.
 */
export async function rememberVisibleRuns(redis: Redis, version: string, visible: VisibleRuns): Promise<void> {
  defineScripts(redis, scripts)
  await redis.settlementRemember(SETTLEMENT_VISIBLE_KEY, version, encodeVisibleRuns(visible), SNAPSHOT_TTL_SECONDS).catch(() => 0)
}

const Stored = z.object({ runs: z.array(z.tuple([z.iso.date(), z.number().int().nonnegative()])), lastFinal: z.string() })

export function encodeVisibleRuns(visible: VisibleRuns): string {
  return JSON.stringify({ runs: [...visible.runs], lastFinal: visible.lastFinal })
}

/** Undefined for text that is not a snapshot (the reader then reads ClickHouse). */
export function decodeVisibleRuns(text: string): VisibleRuns | undefined {
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    return undefined
  }
  const parsed = Stored.safeParse(json)
  return parsed.success ? { runs: new Map(parsed.data.runs.map(([day, run]) => [day as Day, run])), lastFinal: parsed.data.lastFinal } : undefined
}
