import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { engineTurnsOf } from '../../lib/clickhouse.ts'
import { rows as select, startTestClickHouse, type TestClickHouse } from '../../test/harness/engines.ts'
import type { PlaybackClaims } from '../tokens/playback.ts'
import { encodeRows, insertRawEvents, parseRow, rowContext, rowText, time } from './rows.ts'
import { eventSchema } from './schema.ts'

const claims = { vid: 'v"1\\', cid: 'c\n1', sub: 'viewer ☃\t', sid: 's-1', dur: 600_000, ads: ['ad "x"'], iat: 1, exp: 2 } as unknown as PlaybackClaims
const ctx = rowContext({ claims, ip: '10.0.0.1', now: 1_732_180_000_123 })
const id = '6f1c1a8e-4a8e-4b8e-8a8e-1a8e4a8e4b8e'

describe('raw_events rows as text', () => {
  it('are one TabSeparated line each, every value escaped, ended with the flush token', () => {
    const ad = eventSchema.parse({ id, type: 'ad_impression', ts: 1_732_179_999_000, position_ms: 0, ad_id: 'ad "x"\n\\\t\r\0' })
    const rows = [
      rowText(ctx, { kind: 'event', event: ad, decision: { outcome: 'counted', reason: '', credited: 0 } }),
      rowText(ctx, { kind: 'invalid', raw: { type: 'pl\tay', note: 'tab\there\u2028\\' }, reason: 'invalid_event' }),
    ]
    const given = [...rows]
    const text = encodeRows(rows, 'tok-1')
    expect(rows).toEqual(given) // the flush's rows are left as they were
    const lines = text.split('\n')
    expect(lines).toHaveLength(3)
    expect(lines.at(-1)).toBe('')
    for (const l of lines.slice(0, -1)) expect(l.split('\t')).toHaveLength(18)
    const [a, b] = lines.slice(0, -1).map(parseRow)
    expect(a).toEqual({
      event_id: id, event_time: 1_732_179_999_000, type: 'ad_impression', outcome: 'counted', reason: '', position_ms: 0, watched_ms: 0, credited_watch_ms: 0,
      ad_id: 'ad "x"\n\\\t\r\0', payload: '', received_at: 1_732_180_000_123, video_id: 'v"1\\', creator_id: 'c\n1', viewer_id: 'viewer ☃\t', session_id: 's-1', ip: '10.0.0.1',
      video_duration_ms: 600_000, insert_token: 'tok-1',
    })
    expect(b).toMatchObject({ type: 'pl\tay', outcome: 'rejected', reason: 'invalid_event', event_time: 1_732_180_000_123, insert_token: 'tok-1' })
    expect(JSON.parse(b!.payload)).toEqual({ type: 'pl\tay', note: 'tab\there\u2028\\' })
  })

  it('never carry a value the engine cannot parse, and a flush without rows is empty', () => {
    const e = eventSchema.parse({ id, type: 'progress', ts: 1_732_179_999_000, position_ms: 5, watched_ms: 1_000 })
    const row = parseRow(encodeRows([rowText(ctx, { kind: 'event', event: e, decision: { outcome: 'counted', reason: '', credited: Number.NaN } })], 't').slice(0, -1))
    expect(row).toMatchObject({ credited_watch_ms: 0, watched_ms: 1_000, position_ms: 5 })
    expect(encodeRows([], 'tok')).toBe('')
  })

  it('carry times as epoch seconds with three decimals, before 1970 as 0, and read older logs\' bare milliseconds back', () => {
    expect([1_732_180_000_123, 99_999_999_999, 1_000, 999, 5, 0, -1, -14_182_940_000, Number.NaN].map(time)).toEqual([
      '1732180000.123', '99999999.999', '1.000', '0.999', '0.005', '0.000', '0.000', '0.000', '0.000',
    ])
    // Where t / 1000 rounds (near 2^53), and times one after another in and across seconds.
    expect([8.64e15, 8_639_999_999_999_999, Number.MAX_SAFE_INTEGER, 1_732_180_000_999, 1_732_180_001_000, 1_732_180_000_999].map(time)).toEqual([
      '8640000000000.000', '8639999999999.999', '9007199254740.991', '1732180000.999', '1732180001.000', '1732180000.999',
    ])
    for (let i = 0; i < 10_000; i++) {
      const t = Math.floor(Math.random() * 2 ** (Math.random() * 53))
      const text = String(t).padStart(4, '0')
      expect(time(t), String(t)).toBe(`${text.slice(0, -3)}.${text.slice(-3)}`)
    }
    const line = encodeRows([rowText(ctx, { kind: 'invalid', raw: {}, reason: 'invalid_event' })], 't').slice(0, -1)
    expect(line.split('\t')[1]).toBe('1732180000.123')
    const older = line.split('\t').map((v, i) => (i === 1 || i === 10 ? '1732180000123' : v)).join('\t')
    expect(parseRow(older)).toMatchObject({ event_time: 1_732_180_000_123, received_at: 1_732_180_000_123 })
  })
})

describe('a load into raw_events (embedded)', () => {
  let e: TestClickHouse
  beforeAll(async () => (e = await startTestClickHouse()))
  afterAll(() => e.stop())

  it('takes its turn in the engine after the reads under way: a read sent while it waits runs first', async () => {
    const video = `v-${crypto.randomUUID()}`
    const at = rowContext({ claims: { ...claims, vid: video } as PlaybackClaims, ip: '10.0.0.1', now: Date.now() })
    const play = eventSchema.parse({ id: crypto.randomUUID(), type: 'play', ts: Date.now() - 30_000, position_ms: 0 })
    const token = crypto.randomUUID()
    const stored = () => select(e.ch, 'SELECT count() AS n FROM raw_events WHERE video_id = {v:String}', { v: video })
    // A read under way for 150 ms: less than the 200 ms a load waits at most, so the load is still
    // held when the read sent below is answered (a statement released to the engine meanwhile would
    // wait for it beside that read, and which of them goes first is the engine's lock's choice).
    const turns = engineTurnsOf(e.ch)!
    const slow = select(e.ch, 'SELECT sleep(0.15) AS s')
    await vi.waitFor(() => expect(turns.state).toEqual({ reads: 1, waiting: 0 }), { interval: 1, timeout: 5_000 })
    const load = insertRawEvents(e.ch, encodeRows([rowText(at, { kind: 'event', event: play, decision: { outcome: 'counted', reason: '', credited: 0 } })], token), token)
    // Held by its turn, not sent to the engine (fails without the turns: nothing ever waits).
    await vi.waitFor(() => expect(turns.state).toEqual({ reads: 1, waiting: 1 }), { interval: 1, timeout: 5_000 })
    // In the engine's own order this read would come after the load and find its row.
    expect(await stored()).toEqual([{ n: '0' }])
    await Promise.all([slow, load])
    expect(await stored()).toEqual([{ n: '1' }])
  })
})
