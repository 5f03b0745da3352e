import { rmSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createClickHouse, type ClickHouseClient } from '../lib/clickhouse.ts'
import { rows, tempDir, testSettings } from '../test/harness/engines.ts'
import { rebuildTables } from './rebuild.ts'

let dataDir: string
let ch: ClickHouseClient

/** `ch` with every statement inserting what it selects block by block, each a part of its own, as a large copy is. */
function insertingInSmallParts(client: ClickHouseClient): ClickHouseClient {
  const small = { max_block_size: '500', min_insert_block_size_rows: '1', min_insert_block_size_bytes: '1' }
  return new Proxy(client, {
    get(target, key) {
      if (key === 'command') return (p: Parameters<ClickHouseClient['command']>[0]) => target.command({ ...p, clickhouse_settings: { ...p.clickhouse_settings, ...small } })
      const value: unknown = Reflect.get(target, key, target)
      return typeof value === 'function' ? value.bind(target) : value
    },
  })
}

beforeAll(() => {
  dataDir = tempDir('cs-ch-rebuild-merges-')
  ch = createClickHouse(testSettings(dataDir))
})

afterAll(async () => {
  await ch?.close()
  rmSync(dataDir, { recursive: true, force: true })
})

describe('rebuildTables: a copy that merges while it is made', () => {
  it('rebuilds a table whose equal keys the copy merges away while it is inserted, every key read as before', async () => {
    // 40 versions of each of 500 keys, in 40 parts the table does not merge: 20,000 rows, 500 as read.
    await ch.command({ query: 'CREATE TABLE positions (k String, v UInt64) ENGINE = ReplacingMergeTree(v) ORDER BY k' })
    await ch.command({ query: 'SYSTEM STOP MERGES positions' })
    for (let version = 1; version <= 40; version++)
      await ch.command({ query: 'INSERT INTO positions SELECT toString(number), {v:UInt64} FROM numbers(500)', query_params: { v: version } })
    const stored = async (table: string) => (await rows<{ n: string }>(ch, `SELECT count() AS n FROM ${table}`))[0]!.n
    expect(await stored('positions')).toBe('20000')
    const before = await rows(ch, 'SELECT k, v FROM positions FINAL ORDER BY k')
    expect(before).toHaveLength(500)

    // The copy is inserted as 40 or more parts, which the engine merges as they come (each merge
    // joining equal keys): counted row for row, the copy held fewer rows than the table.
    await rebuildTables(insertingInSmallParts(ch), {
      tables: [{ name: 'positions', engine: 'ReplacingMergeTree(v) ORDER BY k SETTINGS index_granularity = 1024', rebuiltWhen: 'index_granularity = 1024' }],
      views: [],
    })
    const [engine] = await rows<{ engine_full: string }>(ch, "SELECT engine_full FROM system.tables WHERE database = currentDatabase() AND name = 'positions'")
    expect(engine!.engine_full).toContain('index_granularity = 1024')
    expect(await rows(ch, 'SELECT k, v FROM positions FINAL ORDER BY k')).toEqual(before)
    expect(before.every((r) => (r as { v: string }).v === '40')).toBe(true)
    expect(await rows(ch, "SELECT name FROM system.tables WHERE database = currentDatabase() AND name = 'positions__rebuild'")).toEqual([])
  })
})
