import type { ClickHouseClient } from './clickhouse.ts'

/**
 * The names of a MergeTree table's active parts, from system.parts. Throws where the
 * user may not read system.parts (a server's choice): callers fall back to a plain read.
 */
export async function activePartNames(ch: ClickHouseClient, table: string): Promise<string[]> {
  const rs = await ch.query({
    query: 'SELECT name FROM system.parts WHERE database = currentDatabase() AND table = {table:String} AND active',
    query_params: { table },
    format: 'JSONEachRow',
  })
  return ((await rs.json()) as { name: string }[]).map((r) => r.name)
}

/**
 * The blocks a MergeTree part holds, from its name (`<partition>_<min>_<max>_<level>[_<mutation>]`):
 * block numbers count inserts, and a merge of parts holds their blocks. Null for another shape.
 */
export function partBlocks(part: string): { partition: string; min: number; max: number } | null {
  const m = /^([^_]+)_(\d+)_(\d+)_(\d+)(?:_\d+)?$/.exec(part)
  if (!m) return null
  const min = Number(m[2])
  const max = Number(m[3])
  return Number.isSafeInteger(min) && Number.isSafeInteger(max) && min <= max ? { partition: m[1]!, min, max } : null
}
