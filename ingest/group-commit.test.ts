import { describe, expect, it } from 'vitest'
import { createGroupCommit, FlushError, type GroupCommitOptions } from './group-commit.ts'

type Row = { req: string; n: number }
type Insert = { rows: Row[]; token: string }

/** A real in-memory store: records every insert, optionally failing the first `failures` calls. */
function store(opts: { failures?: number } = {}) {
  const inserts: Insert[] = []
  const attempts: Insert[] = []
  const events: string[] = []
  let failures = opts.failures ?? 0
  return {
    inserts,
    attempts,
    events,
    async insert(rows: Row[], token: string) {
      attempts.push({ rows, token })
      if (failures > 0) {
        failures--
        throw new Error('clickhouse is down')
      }
      inserts.push({ rows, token })
      events.push(`insert ${rows.length}`)
    },
  }
}

function groupCommit(s: ReturnType<typeof store>, opts: Partial<GroupCommitOptions<Row, string>> = {}) {
  return createGroupCommit<Row, string>({ maxRows: 100, intervalMs: 5, maxBufferedRows: 1_000, insert: s.insert, ...opts })
}

const request = (req: string, count: number): Row[] => Array.from({ length: count }, (_, n) => ({ req, n }))

/** Reserves and submits one request's rows, as the edge does. */
function send(gc: ReturnType<typeof groupCommit>, req: string, count: number): Promise<void> {
  if (!gc.reserve(count)) throw new Error(`no room for ${req}`)
  return gc.submit(request(req, count), req)
}

/** Which requests each insert held, in order, e.g. [['a','a','b'], ...] collapsed to ['a','b']. */
const requestsPerInsert = (inserts: Insert[]) => inserts.map((i) => [...new Set(i.rows.map((r) => r.req))])

describe('createGroupCommit', () => {
  it('writes rows from concurrent submits together in one insert', async () => {
    const s = store()
    const gc = groupCommit(s)
    await Promise.all([send(gc, 'a', 3), send(gc, 'b', 2), send(gc, 'c', 4)])
    expect(s.inserts).toHaveLength(1)
    expect(s.inserts[0]!.rows).toEqual([...request('a', 3), ...request('b', 2), ...request('c', 4)])
    await gc.flush()
    expect(gc.bufferedRows).toBe(0)
  })

  it('flushes at maxRows without waiting for the interval', async () => {
    const s = store()
    // An interval no test would wait for: only reaching maxRows can trigger this flush.
    const gc = groupCommit(s, { maxRows: 10, intervalMs: 60_000 })
    await Promise.all([send(gc, 'a', 6), send(gc, 'b', 4)])
    expect(s.inserts.map((i) => i.rows.length)).toEqual([10])
  })

  it('flushes a small batch once the interval passes', async () => {
    const s = store()
    const gc = groupCommit(s, { maxRows: 1_000, intervalMs: 5 })
    const done = send(gc, 'a', 1)
    expect(s.attempts).toHaveLength(0)
    await done
    expect(s.inserts.map((i) => i.rows)).toEqual([request('a', 1)])
  })

  it('never splits a request across inserts, and gives an oversized request an insert of its own', async () => {
    const s = store()
    const gc = groupCommit(s, { maxRows: 10, intervalMs: 5 })
    await Promise.all([send(gc, 'a', 4), send(gc, 'b', 4), send(gc, 'c', 4), send(gc, 'd', 25), send(gc, 'e', 1)])
    const perInsert = requestsPerInsert(s.inserts)
    for (const req of ['a', 'b', 'c', 'd', 'e']) expect(perInsert.filter((reqs) => reqs.includes(req)), req).toHaveLength(1)
    for (const i of s.inserts) if (i.rows.length > 10) expect(new Set(i.rows.map((r) => r.req)).size).toBe(1)
    expect(s.inserts.flatMap((i) => i.rows)).toEqual([...request('a', 4), ...request('b', 4), ...request('c', 4), ...request('d', 25), ...request('e', 1)])
  })

  it('refuses to reserve beyond maxBufferedRows, and release gives the room back', async () => {
    const s = store()
    const gc = groupCommit(s, { maxBufferedRows: 10 })
    expect(gc.reserve(6)).toBe(true)
    expect(gc.reserve(5)).toBe(false)
    expect(gc.reserve(4)).toBe(true)
    expect(gc.reserve(1)).toBe(false)
    expect(gc.bufferedRows).toBe(10)
    gc.release(4)
    expect(gc.bufferedRows).toBe(6)
    expect(gc.reserve(4)).toBe(true)
    gc.release(4)
    // Submitted rows hold their room until they are stored.
    const done = gc.submit(request('a', 6), 'a')
    expect(gc.reserve(5)).toBe(false)
    await done
    // The room comes back when the batch is settled, a few microtasks after its requests resolve.
    await gc.flush()
    expect(gc.bufferedRows).toBe(0)
    expect(gc.reserve(10)).toBe(true)
  })

  it('holds requests for room in order of arrival, and gives it to them as rows settle or the backlog shrinks', async () => {
    const s = store()
    let backlog = 0
    const gc = groupCommit(s, { maxBufferedRows: 10, backlogRows: () => backlog })
    expect(gc.reserve(8)).toBe(true)
    const order: string[] = []
    const first = gc.waitForRoom(5, 5_000).then((ok) => (order.push('first'), ok))
    const second = gc.waitForRoom(2, 5_000).then((ok) => (order.push('second'), ok))
    // Room for 2 is there, but not ahead of the requests already waiting.
    expect(gc.reserve(1)).toBe(false)
    gc.release(8)
    expect(await first).toBe(true)
    expect(await second).toBe(true)
    expect(order).toEqual(['first', 'second'])
    expect(gc.bufferedRows).toBe(7)
    // Rows held downstream (the loader's backlog) count too; room comes back as it shrinks.
    backlog = 3
    const third = gc.waitForRoom(1, 5_000)
    let settled = false
    void third.then(() => (settled = true))
    await new Promise((r) => setImmediate(r))
    expect(settled).toBe(false)
    backlog = 0
    expect(await third).toBe(true)
    expect(gc.bufferedRows).toBe(8)
    // Submitted rows give their room back once their batch is stored.
    gc.release(8)
    expect(gc.reserve(10)).toBe(true)
    const fourth = gc.waitForRoom(4, 5_000)
    await gc.submit(request('a', 10), 'a')
    expect(await fourth).toBe(true)
    expect(gc.bufferedRows).toBe(4)
  })

  it('refuses a request whose wait ran out, and at once one that could never fit or may not wait', async () => {
    const s = store()
    const gc = groupCommit(s, { maxBufferedRows: 10 })
    const never = gc.waitForRoom(11, 5_000)
    // Not queued: it holds nobody up.
    expect(gc.reserve(1)).toBe(true)
    expect(await never).toBe(false)
    gc.release(1)
    expect(gc.reserve(10)).toBe(true)
    expect(await gc.waitForRoom(1, 0)).toBe(false)
    const started = performance.now()
    expect(await gc.waitForRoom(1, 30)).toBe(false)
    expect(performance.now() - started).toBeGreaterThanOrEqual(29)
    // Nobody waits any more, and nothing was claimed by those refused.
    gc.release(10)
    expect(gc.bufferedRows).toBe(0)
    expect(gc.reserve(10)).toBe(true)
  })

  it('bounds the bytes of the rows\' text too: an estimate reserved, the actual kept until the batch settles, the backlog counted', async () => {
    const s = store()
    let backlogBytes = 0
    const gc = groupCommit(s, { maxBufferedRows: 1_000, maxBufferedBytes: 1_000, backlogBytes: () => backlogBytes })
    // Few rows, but large ones: the byte bound refuses first.
    expect(gc.reserve(2, 600)).toBe(true)
    expect(gc.reserve(2, 500)).toBe(false)
    expect(gc.bufferedBytes).toBe(600)
    // The rows came out at 250 bytes: the rest of the estimate comes back at once.
    gc.release(0, 350)
    expect(gc.bufferedBytes).toBe(250)
    expect(gc.reserve(2, 700)).toBe(true)
    gc.release(2, 700)
    // Longer than estimated: taken anyway (a negative release), and the bound counts it.
    gc.release(0, -100)
    expect(gc.bufferedBytes).toBe(350)
    // A request that waits gets room once the submitted batch has settled and given its bytes back.
    const waiting = gc.waitForRoom(1, 5_000, 800)
    await gc.submit(request('a', 2), 'a', 350)
    expect(await waiting).toBe(true)
    expect(gc.bufferedBytes).toBe(800)
    gc.release(1, 800)
    // Bytes held downstream count against the bound; a request larger than the bound is refused at once.
    backlogBytes = 900
    expect(gc.reserve(1, 200)).toBe(false)
    backlogBytes = 0
    expect(gc.reserve(1, 200)).toBe(true)
    gc.release(1, 200)
    expect(await gc.waitForRoom(1, 5_000, 1_001)).toBe(false)
    expect(gc.bufferedBytes).toBe(0)
    expect(gc.bufferedRows).toBe(0)
  })

  it('retries a failing insert with the same token, then rejects every waiter of the batch with FlushError', async () => {
    const s = store({ failures: Infinity })
    const failures: { metas: string[]; error: unknown }[] = []
    const commits: string[][] = []
    const gc = groupCommit(s, {
      attempts: 2,
      afterCommit: async (metas) => void commits.push(metas),
      afterFailure: async (metas, error) => void failures.push({ metas, error }),
    })
    const results = await Promise.allSettled([send(gc, 'a', 2), send(gc, 'b', 3)])
    expect(s.attempts).toHaveLength(2)
    expect(new Set(s.attempts.map((a) => a.token)).size).toBe(1)
    expect(s.attempts[1]!.rows).toEqual(s.attempts[0]!.rows)
    for (const r of results) {
      expect(r.status).toBe('rejected')
      expect((r as PromiseRejectedResult).reason).toBeInstanceOf(FlushError)
      expect((r as PromiseRejectedResult).reason.message).toMatch(/clickhouse is down/)
    }
    expect(failures).toHaveLength(1)
    expect(failures[0]!.metas).toEqual(['a', 'b'])
    expect((failures[0]!.error as Error).message).toBe('clickhouse is down')
    expect(commits).toEqual([])
    await gc.flush()
    expect(gc.bufferedRows).toBe(0)
  })

  it('succeeds on a retry with the same token after a transient failure', async () => {
    const s = store({ failures: 1 })
    const gc = groupCommit(s, { attempts: 3 })
    await send(gc, 'a', 2)
    expect(s.attempts).toHaveLength(2)
    expect(s.attempts[0]!.token).toBe(s.attempts[1]!.token)
    expect(s.inserts).toHaveLength(1)
  })

  it('uses a fresh token for every batch', async () => {
    const s = store()
    const gc = groupCommit(s)
    await send(gc, 'a', 1)
    await send(gc, 'b', 1)
    expect(s.inserts).toHaveLength(2)
    expect(s.inserts[0]!.token).not.toBe(s.inserts[1]!.token)
  })

  it('calls afterCommit with the batch before the submit promise resolves', async () => {
    const s = store()
    const gc = groupCommit(s, {
      afterCommit: async (metas) => {
        await Promise.resolve()
        s.events.push(`committed ${metas.join(',')}`)
      },
    })
    await Promise.all([send(gc, 'a', 1).then(() => s.events.push('resolved a')), send(gc, 'b', 1).then(() => s.events.push('resolved b'))])
    expect(s.events).toEqual(['insert 2', 'committed a,b', 'resolved a', 'resolved b'])
  })

  it('still resolves the requests when afterCommit fails, since their rows are stored', async () => {
    const s = store()
    const gc = groupCommit(s, { afterCommit: async () => Promise.reject(new Error('redis is down')) })
    await expect(send(gc, 'a', 1)).resolves.toBeUndefined()
    expect(s.inserts).toHaveLength(1)
  })

  it('reports each flush to onFlush with its row count and outcome', async () => {
    const s = store({ failures: 1 })
    const flushes: [number, boolean][] = []
    const gc = groupCommit(s, { attempts: 1, onFlush: (rows, seconds, ok) => void (expect(seconds).toBeGreaterThanOrEqual(0), flushes.push([rows, ok])) })
    await expect(send(gc, 'a', 2)).rejects.toBeInstanceOf(FlushError)
    await send(gc, 'b', 3)
    expect(flushes).toEqual([
      [2, false],
      [3, true],
    ])
  })

  it('flush() drains everything queued without waiting for the interval', async () => {
    const s = store()
    const gc = groupCommit(s, { maxRows: 5, intervalMs: 60_000 })
    const settled: string[] = []
    const pending = ['a', 'b', 'c', 'd'].map((req) => send(gc, req, 2).then(() => void settled.push(req)))
    await gc.flush()
    expect(settled.sort()).toEqual(['a', 'b', 'c', 'd'])
    expect(s.inserts.flatMap((i) => i.rows)).toHaveLength(8)
    expect(gc.bufferedRows).toBe(0)
    await Promise.all(pending)
  })

  it('flush() with nothing queued returns at once', async () => {
    const s = store()
    const gc = groupCommit(s)
    await gc.flush()
    expect(s.attempts).toEqual([])
  })

  it('takes submits that arrive during an insert into the next insert', async () => {
    let release!: () => void
    const gate = new Promise<void>((r) => (release = r))
    const s = store()
    const gc = groupCommit(s, {
      maxRows: 2,
      insert: async (rows, token) => {
        if (s.attempts.length === 0) await gate
        await s.insert(rows, token)
      },
    })
    const first = send(gc, 'a', 2)
    // The first insert is now waiting on the gate: these queue behind it.
    const later = [send(gc, 'b', 1), send(gc, 'c', 1)]
    release()
    await Promise.all([first, ...later])
    expect(requestsPerInsert(s.inserts)).toEqual([['a'], ['b', 'c']])
  })
})
