import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { insertEvents } from '../../test/analytics/events.ts'
import { emptyTables, inPartsOfTheirOwn, plays, rankWhileInserting } from '../../test/analytics/top-fixtures.ts'
import { countingCalls } from '../../test/harness/counting.ts'
import { rows, startTestClickHouse, type TestClickHouse } from '../../test/harness/engines.ts'
import { thresholdHints, topVideos } from './queries.ts'

// The platform top's threshold read and the parts it counts: rows spread over parts, parts
// inserted during a ranking, other days' parts (see top.test.ts for the rest of the top).

let t: TestClickHouse
beforeAll(async () => {
  t = await startTestClickHouse()
})
afterAll(async () => {
  await t.stop()
})

describe("the platform top's count of parts", () => {
  it('finds a video whose views are spread over parts, each under the threshold', async () => {
    await inPartsOfTheirOwn(t.ch, async () => {
      await insertEvents(t.ch, [100, 110, 120, 130, 140].flatMap((n, i) => plays(`top${i}`, n)))
      // 4 parts of 31 views: 124 in all, third; each row is under the fifth total (110).
      for (let i = 0; i < 4; i++) await insertEvents(t.ch, plays('spread', 31))
      let how = ''
      const got = await topVideos(t.ch, { metric: 'views', grain: 'day', date: '2026-03-02', limit: 5 }, { onRead: (h) => (how = h) })
      expect(how).toBe('threshold')
      expect(got.rows.map((r) => [r.video_id, r.views])).toEqual([
        ['top4', 140],
        ['top3', 130],
        ['spread', 124],
        ['top2', 120],
        ['top1', 110],
      ])
    })
  })

  it('ranks again with room for more parts when one was inserted during the ranking, and stays exact', async () => {
    await inPartsOfTheirOwn(t.ch, async () => {
      // Five videos of 100 to 140 views and a sixth of 50, one part.
      await insertEvents(t.ch, [...[100, 110, 120, 130, 140].flatMap((n, i) => plays(`top${i}`, n)), ...plays('late', 50)])
      // During the first ranking, 60 more views of the sixth in a part of their own: it counted
      // one part (a row of at least 100 to be read), so it misses the sixth's 110 views in
      // rows of 50 and 60; the second counts two and room for 8 more, and ranks it fourth.
      const got = await rankWhileInserting(t.ch, async (ranking) => {
        if (ranking === 1) await insertEvents(t.ch, plays('late', 60))
      })
      expect([got.rankings, got.how]).toEqual([2, 'threshold'])
      expect(got.rows).toEqual([
        ['top4', 140],
        ['top3', 130],
        ['top2', 120],
        ['late', 110],
        ['top1', 110],
      ])
    })
  })

  it('titles a ranking by threshold from the read of the parts after it: the latest title of each video, one round trip to the engine less', async () => {
    await inPartsOfTheirOwn(t.ch, async () => {
      await insertEvents(t.ch, [...[100, 110, 120, 130, 140].flatMap((n, i) => plays(`named${i}`, n)), ...plays('named-late', 50)])
      // Every video registered but named0; named4 renamed since (the latest title wins).
      const video = (id: string, title: string, at: string) => ({ video_id: id, creator_id: 'c', title, duration_ms: 60_000, created_at: '2026-03-01 00:00:00.000', updated_at: at })
      await t.ch.insert({
        table: 'videos',
        format: 'JSONEachRow',
        values: [
          ...[1, 2, 3, 4].map((i) => video(`named${i}`, `Video ${i}`, '2026-03-01 00:00:00.000')),
          video('named4', 'Video 4, renamed', '2026-03-01 00:00:01.000'),
          video('named-late', 'Late', '2026-03-01 00:00:00.000'),
        ],
      })
      const hints = thresholdHints()
      const queries: unknown[] = []
      const top = async (opts: Parameters<typeof topVideos>[2] = {}) => {
        queries.length = 0
        const got = await topVideos(countingCalls(t.ch, 'query', queries), { metric: 'views', grain: 'day', date: '2026-03-02', limit: 5 }, { hints, ...opts })
        return got.rows.map((r) => [r.video_id, r.views, r.title])
      }
      const reads: string[] = []
      expect(await top({ onRead: (how) => reads.push(how) })).toEqual([
        ['named4', 140, 'Video 4, renamed'],
        ['named3', 130, 'Video 3'],
        ['named2', 120, 'Video 2'],
        ['named1', 110, 'Video 1'],
        ['named0', 100, ''],
      ])
      // By the kept threshold: the parts before, the ranking, the parts after with the titles.
      await top({ onRead: (how) => reads.push(how) })
      expect(reads).toEqual(['threshold', 'hint'])
      expect(queries).toHaveLength(3)
      // Ranked again after an insert during the ranking: the titles are those of the second ranking's videos.
      let rankings = 0
      const again = await top({ beforeRanking: async () => void (++rankings === 1 && (await insertEvents(t.ch, plays('named-late', 60)))) })
      expect(rankings).toBe(2)
      expect(again).toEqual([
        ['named4', 140, 'Video 4, renamed'],
        ['named3', 130, 'Video 3'],
        ['named2', 120, 'Video 2'],
        ['named-late', 110, 'Late'],
        ['named1', 110, 'Video 1'],
      ])
    })
  })

  it("counts the parts of the period's partition only: other days' parts, before or during the ranking, change nothing", async () => {
    await inPartsOfTheirOwn(t.ch, async () => {
      await insertEvents(t.ch, [100, 110, 120, 130, 140].flatMap((n, i) => plays(`top${i}`, n)))
      // Ten parts of another day before, ten more during the first ranking: the day's ranking still
      // counts its one part (its rows of at least the fifth total are exactly the five), and is read once.
      const other = (video: string) => insertEvents(t.ch, [{ type: 'play', video_id: video, creator_id: 'c', viewer_id: 'w', at: '2026-03-03 01:00:00' }])
      for (let i = 0; i < 10; i++) await other(`other${i}`)
      const got = await rankWhileInserting(t.ch, async (ranking) => {
        if (ranking === 1) for (let i = 0; i < 10; i++) await other(`during${i}`)
      })
      expect([got.rankings, got.how]).toEqual([1, 'threshold'])
      expect(got.rows).toEqual([
        ['top4', 140],
        ['top3', 130],
        ['top2', 120],
        ['top1', 110],
        ['top0', 100],
      ])
      const [parts] = await rows<{ n: string }>(t.ch, "SELECT count() AS n FROM system.parts WHERE database = currentDatabase() AND active AND table = 'video_stats_per_day' AND partition = '2026-03-03'")
      expect(parts!.n).toBe('20')
    })
  })

  it('reads the whole period when more parts were inserted meanwhile than it allowed for, and stays exact', async () => {
    await emptyTables(t.ch)
    // Five videos of 100 to 140 views, one part.
    await insertEvents(t.ch, [100, 110, 120, 130, 140].flatMap((n, i) => plays(`top${i}`, n)))
    await t.ch.command({ query: 'OPTIMIZE TABLE video_stats_per_day FINAL' })
    // Meanwhile, during each of the two rankings, ten inserts of 7 views each for another video:
    // each row is under 100 / (11 parts + 8 allowed), so the threshold alone would miss it, and
    // its 140 views rank it second.
    const got = await rankWhileInserting(t.ch, async () => {
      for (let i = 0; i < 10; i++) await insertEvents(t.ch, plays('late', 7))
    })
    expect([got.rankings, got.how]).toEqual([2, 'whole period'])
    expect(got.rows).toEqual([
      ['late', 140],
      ['top4', 140],
      ['top3', 130],
      ['top2', 120],
      ['top1', 110],
    ])
  })
})
