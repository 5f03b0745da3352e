import type { ClickHouseClient } from './clickhouse.ts'

/**
 * The active parts of MergeTree table `{table}` in the partitions `kept` (a fixed condition
 * on system.parts' `partition`, as it writes a Date key's: YYYY-MM-DD), or every active part
 * of a table without a partition key.
 */
const activePartsIn = (kept: string) =>
  `FROM system.parts WHERE database = currentDatabase() AND table = {table:String} AND active AND (partition_id = 'all' OR ${kept})`

/** The names of the active parts of partition `{partition}` of table `{table}` (see activePartsIn). */
export const PARTITION_PARTS_SQL = `SELECT name ${activePartsIn('partition = {partition:String}')}`

/** The names of the active parts of one partition (see PARTITION_PARTS_SQL; throws as activeParts does). */
export async function partitionPartNames(ch: ClickHouseClient, table: string, partition: string): Promise<string[]> {
  const rs = await ch.query({ query: PARTITION_PARTS_SQL, query_params: { table, partition }, format: 'JSONEachRow' })
  return ((await rs.json()) as { name: string }[]).map((r) => r.name)
}

/**
 * At most how many parts were inserted into a partition between two readings of its
 * active parts (`before`, then `after`): block numbers count the table's inserts (each
 * insert into a partition makes one part, numbered above every block the table had), so
 * every block of `after` above the highest of `before` may be one. A merge adds no block;
 * blocks of other partitions within a merged part's range are counted too (a bound).
 */
export function insertedBetween(before: string[], after: string[]): number {
  const high = Math.max(0, ...before.map((n) => partBlocks(n)?.max ?? 0))
  let n = 0
  for (const name of after) {
    const b = partBlocks(name)
    if (b === null) return Infinity
    if (b.max > high) n += b.max - Math.max(b.min, high + 1) + 1
  }
  return n
}

/**
 * The blocks a MergeTree part holds, from its name (`<partition>_<min>_<max>_<level>[_<mutation>]`):
 * block numbers count inserts, and a merge of parts holds their blocks. Null for another shape.
 */
export function partBlocks(part: string): { partition: string; min: number; max: number } | null {
  const known = parsedParts.get(part)
  if (known !== undefined) return known
  const m = /^([^_]+)_(\d+)_(\d+)_(\d+)(?:_\d+)?$/.exec(part)
  const min = Number(m?.[2])
  const max = Number(m?.[3])
  const blocks = m && Number.isSafeInteger(min) && Number.isSafeInteger(max) && min <= max ? Object.freeze({ partition: m[1]!, min, max }) : null
  // A table has tens of active parts, each looked at for every key read: parsed once (a CPU profile of the API under live ingest gave this parse 2 %).
  if (parsedParts.size >= PARSED_PARTS_MAX) parsedParts.clear()
  parsedParts.set(part, blocks)
  return blocks
}
const PARSED_PARTS_MAX = 10_000
const parsedParts = new Map<string, Readonly<{ partition: string; min: number; max: number }> | null>()

/**
 * The active parts of a MergeTree table with their row counts, from system.parts: those of
 * its partitions from `from` on (a Date partition key's value, YYYY-MM-DD; every part of a
 * table without a partition key). Throws where the user may not read system.parts (a
 * server's choice): callers fall back to a plain read.
 */
export async function activeParts(ch: ClickHouseClient, table: string, from: string): Promise<TablePart[]> {
  const rs = await ch.query({
    query: `SELECT name, rows ${activePartsIn('partition >= {from:String}')}`,
    query_params: { table, from },
    format: 'JSONEachRow',
  })
  return ((await rs.json()) as { name: string; rows: string | number }[]).map((r) => ({ name: r.name, rows: Number(r.rows) }))
}
export type TablePart = { name: string; rows: number }

/**
 * A set of blocks of a table, per partition, as merged ranges: what a reader has seen
 * of it. A part is covered when all its blocks are in the set.
 */
export class BlockRanges {
  private readonly ranges = new Map<string, [number, number][]>()

  /** Whether every block of the part is in the set (false for a name of another shape). */
  covers(part: string): boolean {
    const b = partBlocks(part)
    return b !== null && (this.ranges.get(b.partition) ?? []).some(([lo, hi]) => lo <= b.min && b.max <= hi)
  }

  /** Whether some block of the part is in the set (true for a name of another shape: nothing is known of it). */
  overlaps(part: string): boolean {
    const b = partBlocks(part)
    return b === null || (this.ranges.get(b.partition) ?? []).some(([lo, hi]) => lo <= b.max && b.min <= hi)
  }

  /** The blocks of the part not in the set, as ranges [min, max] in order (none for a name of another shape). */
  missing(part: string): [number, number][] {
    return this.split(part).missing
  }

  /** The blocks of the part in the set, as ranges [min, max] in order (none for a name of another shape). */
  present(part: string): [number, number][] {
    return this.split(part).present
  }

  private split(part: string): { present: [number, number][]; missing: [number, number][] } {
    const out = { present: [] as [number, number][], missing: [] as [number, number][] }
    const b = partBlocks(part)
    if (b === null) return out
    let from = b.min
    for (const [lo, hi] of this.ranges.get(b.partition) ?? []) {
      if (hi < from || lo > b.max) continue
      if (lo > from) out.missing.push([from, lo - 1])
      out.present.push([Math.max(lo, from), Math.min(hi, b.max)])
      from = Math.max(from, hi + 1)
    }
    if (from <= b.max) out.missing.push([from, b.max])
    return out
  }

  /** Whether every block of this set is in `other`. */
  within(other: BlockRanges): boolean {
    for (const [partition, ranges] of this.ranges) {
      const outer = other.ranges.get(partition) ?? []
      if (!ranges.every(([lo, hi]) => outer.some(([a, b]) => a <= lo && hi <= b))) return false
    }
    return true
  }

  /** A copy that changes apart from this set. */
  clone(): BlockRanges {
    const copy = new BlockRanges()
    for (const [partition, ranges] of this.ranges) copy.ranges.set(partition, ranges.map(([lo, hi]) => [lo, hi]))
    return copy
  }

  /** Adds the part's blocks (nothing for a name of another shape). */
  add(part: string): void {
    const b = partBlocks(part)
    if (b === null) return
    const sorted = [...(this.ranges.get(b.partition) ?? []), [b.min, b.max] as [number, number]].sort((x, y) => x[0] - y[0])
    const merged: [number, number][] = []
    for (const r of sorted) {
      const last = merged.at(-1)
      if (last && r[0] <= last[1] + 1) last[1] = Math.max(last[1], r[1])
      else merged.push([r[0], r[1]])
    }
    this.ranges.set(b.partition, merged)
  }
}

/**
 * The blocks of `before` (parts active before a read of one key's rows) that the read
 * saw all of the key's rows in: those of the parts that held its rows (`listed`), and
 * those of parts of `before` that overlap none of them. Such a part, or the part it was
 * merged into by the time of the read, held no row of the key (the tables are
 * append-only), so a later merge of it adds nothing to the key.
 */
export function seenBlocks(listed: string[], before: string[]): BlockRanges {
  const rowsIn = new BlockRanges()
  const seen = new BlockRanges()
  for (const p of listed) {
    rowsIn.add(p)
    seen.add(p)
  }
  // A listed part of another shape may hold any block: then no other part counts as seen.
  if (listed.every((p) => partBlocks(p) !== null)) for (const p of before) if (!rowsIn.overlaps(p)) seen.add(p)
  return seen
}
