import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { insertEvents, type EventRow } from '../../test/analytics/events.ts'
import { emptyTables, inPartsOfTheirOwn, PERIODS, plays, TABLES } from '../../test/analytics/top-fixtures.ts'
import { rows, startTestClickHouse, startTestRedis, type TestClickHouse, type TestRedis } from '../../test/harness/engines.ts'
import { createAggregateCache } from '../cache/aggregate-cache.ts'
import { largestRows, rowsAtLeast, thresholdHints, thresholdKey, topSource, topVideos, type TopGrain, type TopMetric } from './queries.ts'
import { createTopReader } from './reader.ts'
import { countingCalls } from '../../test/harness/counting.ts'

let t: TestClickHouse
let redis: TestRedis
beforeAll(async () => {
  ;[t, redis] = await Promise.all([startTestClickHouse(), startTestRedis()])
})
afterAll(async () => {
  await Promise.all([t.stop(), redis.stop()])
})

/** A deterministic generator, so a failure can be replayed. */
function rng(seed: number) {
  let x = seed
  return () => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) / 2 ** 32)
}

/** Plays and watch time of `videos` videos on 2 March (Seoul), Zipf-like, in `batches` inserts (a part each). */
async function load(prefix: string, seed: number, videos: number, events: number, batches: number): Promise<void> {
  const random = rng(seed)
  for (let b = 0; b < batches; b++) {
    const batch: EventRow[] = []
    for (let i = 0; i < events / batches; i++) {
      const v = Math.floor(videos ** random()) - 1 // heavier on the first videos
      const at = `2026-03-0${random() < 0.8 ? 2 : 3} 0${Math.floor(random() * 9)}:00:00`
      const common = { video_id: `${prefix}-v${v}`, creator_id: `${prefix}-c${v % 7}`, viewer_id: `w${i}`, at }
      batch.push(random() < 0.6 ? { ...common, type: 'play' } : { ...common, type: 'progress', credited_watch_ms: 1000 * Math.floor(1 + random() * 30) })
    }
    await insertEvents(t.ch, batch)
  }
}

/** The same ranking by an independent formulation: a GROUP BY over every row of the period. */
async function reference(grain: TopGrain, metric: TopMetric, limit: number, prefix: string) {
  const [table, period] = TABLES[grain]
  const m = metric === 'views' ? 'views' : 'watch_ms'
  return rows<{ video_id: string; views: string; watch_ms: string }>(
    t.ch,
    `SELECT video_id, sum(views) AS views, sum(watch_ms) AS watch_ms FROM ${table}
     WHERE ${period} = {p:Date} AND startsWith(video_id, {prefix:String}) GROUP BY video_id HAVING views > 0 OR watch_ms > 0
     ORDER BY ${m} DESC, video_id LIMIT {limit:UInt32}`,
    { p: PERIODS[grain], prefix: `${prefix}-`, limit },
  ).then((r) => r.map((x) => [x.video_id, Number(x.views), Number(x.watch_ms)]))
}

describe('the platform top of a period', () => {
  it('keeps one row per video in each part of the aggregate tables, which the threshold read relies on', async () => {
    await load('inv', 1, 50, 2_000, 3)
    for (const [table, period] of Object.values(TABLES)) {
      const [dup] = await rows<{ n: string }>(t.ch, `SELECT count() AS n FROM (SELECT _part, ${period}, creator_id, video_id FROM ${table} GROUP BY ALL HAVING count() > 1)`)
      expect(Number(dup!.n), table).toBe(0)
    }
  })

  it('reads the largest rows and the rows above a threshold from the projection ordered by the metric, in every part', async () => {
    await emptyTables(t.ch)
    // Enough videos for the day's parts to span many granules, of which the projection spares most.
    await load('proj', 3, 40_000, 40_000, 2)
    for (const grain of ['day', 'week', 'month'] as const) {
      const [table] = TABLES[grain]
      const [parts] = await rows<{ n: string }>(t.ch, 'SELECT count() AS n FROM system.parts WHERE database = currentDatabase() AND active AND table = {t:String}', { t: table })
      expect(Number(parts!.n), table).toBeGreaterThan(0)
      for (const metric of ['views', 'watch_time'] as const) {
        const source = topSource(grain, metric)
        const name = `by_${source.metric}`
        // Every active part carries the projection (parts inserted before the migration got it materialized).
        const [built] = await rows<{ n: string }>(t.ch, 'SELECT count() AS n FROM system.projection_parts WHERE database = currentDatabase() AND active AND table = {t:String} AND name = {p:String}', { t: table, p: name })
        expect(built!.n, `${table} ${name}`).toBe(parts!.n)
        // The engine picks a projection by the granules it spares: the reads must run from it
        // (the query fails otherwise) and give what the table gives (the largest rows as many:
        // which of equal rows come last is the engine's choice).
        const run = async (sql: string, settings: Record<string, string>) => {
          const rs = await t.ch.query({ query: sql, query_params: { period: PERIODS[grain], least: 3, n: 30 }, format: 'JSONEachRow', clickhouse_settings: settings })
          return rs.json()
        }
        const fromProjection = { force_optimize_projection_name: name }
        const above = `${rowsAtLeast(source)} ORDER BY creator_id, video_id`
        const aboveFromTable = await run(above, { optimize_use_projections: '0' })
        expect(aboveFromTable.length, `${grain} ${metric}`).toBeGreaterThan(0)
        expect(await run(above, fromProjection), `${grain} ${metric}`).toEqual(aboveFromTable)
        expect((await run(largestRows(source), fromProjection)).length, `${grain} ${metric}`).toBe((await run(largestRows(source), { optimize_use_projections: '0' })).length)
      }
    }
  })

  it('is exact when read by the threshold: every grain, metric and length against a GROUP BY of the whole period', async () => {
    // Each dataset in its own tables' rows (a prefix per dataset), spread over several parts.
    let byThreshold = 0
    for (const seed of [11, 12, 13]) {
      await emptyTables(t.ch)
      const prefix = `s${seed}`
      await load(prefix, seed, 400, 6_000, 6)
      for (const grain of ['day', 'week', 'month'] as const)
        for (const metric of ['views', 'watch_time'] as const)
          for (const limit of [1, 5, 20]) {
            const got = await topVideos(t.ch, { metric, grain, date: PERIODS[grain], limit }, { onRead: (how) => (byThreshold += how === 'threshold' ? 1 : 0) })
            expect(got.rows.map((r) => [r.video_id, r.views, r.watch_ms]), `${seed} ${grain} ${metric} ${limit}`).toEqual(await reference(grain, metric, limit, prefix))
          }
    }
    expect(byThreshold).toBe(3 * 3 * 2 * 3)
  })

  it('ranks again by the threshold kept from the last ranking, exact as the data grow', async () => {
    await emptyTables(t.ch)
    const hints = thresholdHints()
    const reads: string[] = []
    const top = async (limit: number) => {
      const got = await topVideos(t.ch, { metric: 'views', grain: 'day', date: '2026-03-02', limit }, { hints, onRead: (how) => reads.push(how) })
      expect(got.rows.map((r) => [r.video_id, r.views, r.watch_ms]), `limit ${limit}`).toEqual(await reference('day', 'views', limit, 'h'))
    }
    await load('h', 21, 400, 6_000, 6)
    await top(5)
    await top(20)
    expect(reads).toEqual(['threshold', 'threshold'])
    // More of the same day, and a newcomer that overtakes the first: the kept thresholds still hold.
    await load('h', 22, 400, 3_000, 3)
    await insertEvents(t.ch, plays('h-new', 400))
    await top(5)
    await top(20)
    expect(reads.slice(2)).toEqual(['hint', 'hint'])
    expect(hints.size).toBe(2)
  })

  it('reads a threshold of its own when a kept one is not met, and stays exact', async () => {
    await inPartsOfTheirOwn(t.ch, async () => {
      // Five videos of 91 to 95 views in one part, and one of 4 x 70 = 280 views over four parts.
      await insertEvents(t.ch, [91, 92, 93, 94, 95].flatMap((n, i) => plays(`top${i}`, n)))
      for (let i = 0; i < 4; i++) await insertEvents(t.ch, plays('spread', 70))
      // A hint of 1,000 (as if the totals had fallen since, after a repair): its rows threshold,
      // 1,000 / (5 parts + 8 allowed), leaves out every row of 'spread', which ranks first.
      const hints = thresholdHints()
      hints.set(JSON.stringify(['video_stats_per_day', '2026-03-02', 'views', 5]), 1_000)
      const reads: string[] = []
      const got = await topVideos(t.ch, { metric: 'views', grain: 'day', date: '2026-03-02', limit: 5 }, { hints, onRead: (how) => reads.push(how) })
      expect(reads).toEqual(['threshold'])
      expect(got.rows.map((r) => [r.video_id, r.views])).toEqual([
        ['spread', 280],
        ['top4', 95],
        ['top3', 94],
        ['top2', 93],
        ['top1', 92],
      ])
      // The hint is now the fifth total, and met.
      expect(hints.get(JSON.stringify(['video_stats_per_day', '2026-03-02', 'views', 5]))).toBe(92)
    })
  })

  it('drops a kept threshold that was not met when no threshold of its own replaces it', async () => {
    await emptyTables(t.ch)
    // Three videos only: a top of five is read whole, so no threshold replaces the kept one.
    await insertEvents(t.ch, [10, 20, 30].flatMap((n, i) => plays(`few${i}`, n)))
    const hints = thresholdHints()
    const key = JSON.stringify(['video_stats_per_day', '2026-03-02', 'views', 5])
    hints.set(key, 1_000)
    const reads: string[] = []
    const got = await topVideos(t.ch, { metric: 'views', grain: 'day', date: '2026-03-02', limit: 5 }, { hints, onRead: (how) => reads.push(how) })
    expect(got.rows.map((r) => [r.video_id, r.views])).toEqual([['few2', 30], ['few1', 20], ['few0', 10]])
    expect(reads).toEqual(['whole period'])
    expect(hints.get(key)).toBeUndefined()
  })

  it('writes a top missed by concurrent requests to Redis once, and answers each of them', async () => {
    await emptyTables(t.ch)
    await load('w', 41, 200, 3_000, 2)
    const cache = createAggregateCache(redis.client)
    const writes: unknown[] = []
    const counting = countingCalls(cache, 'set', writes)
    const reads: string[] = []
    const read = createTopReader({
      ch: t.ch,
      cache: counting,
      rules: { SETTLEMENT_TZ: 'Asia/Seoul', LATENESS_WINDOW_HOURS: 48, FUTURE_TOLERANCE_SECONDS: 300, INSERT_TIMEOUT_MS: 10_000 },
      now: () => new Date('2026-03-02T12:00:00Z'),
      closedTtlSeconds: 0,
      platformOpenTtlSeconds: 5,
      onRead: (how) => reads.push(how),
    })
    await redis.client.flushdb()
    const answers = await Promise.all(Array.from({ length: 8 }, (_, i) => read({ metric: 'views', grain: 'day', date: '2026-03-02', limit: 3 + (i % 3) })))
    expect(reads).toHaveLength(1)
    expect(writes.filter((k) => String(k).includes('top:platform'))).toHaveLength(1)
    const expected = await reference('day', 'views', 5, 'w')
    answers.forEach((a, i) => {
      expect(a.outcome).toBe('miss')
      expect(a.rows.map((r) => [r.video_id, r.views, r.watch_ms])).toEqual(expected.slice(0, 3 + (i % 3)))
    })
    // The entry written answers the next request.
    expect((await read({ metric: 'views', grain: 'day', date: '2026-03-02', limit: 5 })).outcome).toBe('hit')
  })

  it('keeps thresholds in Redis, so that another process (or one just started) ranks by the last one read', async () => {
    await emptyTables(t.ch)
    await load('r', 31, 400, 6_000, 6)
    const reader = (reads: string[]) =>
      createTopReader({
        ch: t.ch,
        cache: createAggregateCache(redis.client),
        rules: { SETTLEMENT_TZ: 'Asia/Seoul', LATENESS_WINDOW_HOURS: 48, FUTURE_TOLERANCE_SECONDS: 300, INSERT_TIMEOUT_MS: 10_000 },
        // 2 March is open at this clock, and an open platform top is not kept (TTL 0): each read ranks.
        now: () => new Date('2026-03-02T12:00:00Z'),
        closedTtlSeconds: 0,
        platformOpenTtlSeconds: 0,
        onRead: (how) => reads.push(how),
      })
    const q = { metric: 'views', grain: 'day', date: '2026-03-02', limit: 5 } as const
    const first: string[] = []
    const a = await reader(first)(q)
    expect(first).toEqual(['threshold'])
    const fifth = (await reference('day', 'views', 5, 'r'))[4]![1]
    expect(a.rows.at(-1)!.views).toBe(fifth)
    expect(Number(await redis.client.get(`top-threshold:${thresholdKey(q)}`))).toBe(fifth)
    // Another reader (process), its memory empty: the threshold comes from Redis.
    const second: string[] = []
    const b = await reader(second)(q)
    expect(second).toEqual(['hint'])
    expect(b.rows.map((r) => [r.video_id, r.views, r.watch_ms])).toEqual(await reference('day', 'views', 5, 'r'))
    // A threshold in Redis that is not met (totals fell) is read anew, and replaced there.
    await redis.client.set(`top-threshold:${thresholdKey(q)}`, '1000000')
    const third: string[] = []
    const c = await reader(third)(q)
    expect(third).toEqual(['threshold'])
    expect(c.rows).toEqual(b.rows)
    expect(Number(await redis.client.get(`top-threshold:${thresholdKey(q)}`))).toBe(fifth)
  })

  it('keeps at most the given number of hints, the oldest out first', () => {
    const hints = thresholdHints(2)
    hints.set('a', 1)
    hints.set('b', 2)
    hints.set('a', 3)
    hints.set('c', 4)
    expect([hints.get('a'), hints.get('b'), hints.get('c'), hints.size]).toEqual([3, undefined, 4, 2])
    hints.drop('a')
    expect([hints.get('a'), hints.size]).toEqual([undefined, 1])
  })
})
