import { BlockRanges, partBlocks, type TablePart } from '../../lib/table-parts.ts'
import { addUniqExactState, Uint64Set } from './viewer-sets.ts'

/** A key's row in one part: what it adds to the key's sums, and its unique-viewer state (the bytes of a `uniqExact` state). */
export type PartRow = { sums: Record<string, number>; state: Uint8Array }
/**
 * The unique viewers of a kept row as a set, and the blocks whose states it holds (a
 * viewer set's entry has this shape: `live` false once its store dropped it).
 */
export type RowViewers = { viewers: Uint64Set; ranges: BlockRanges; live?: boolean; grew?: (added: number) => void }

/**
 * Answers of open periods kept by the blocks they were read from, so that a read of
 * data that has not changed for a key queries nothing.
 *
 * A process keeps, per (table, key) it has read (a key is a video's period), the row it
 * read and the blocks of the table that row is exact over (see seenBlocks in
 * lib/table-parts.ts). Under live ingest every load adds a part, and most of a day's
 * videos have no row in it: a part that holds no row of a key adds nothing to it, so its
 * blocks join the key's seen blocks and the row stays exact. What each new part holds is
 * read once for every key (its keys, at most partKeysMaxRows rows; a small part of a load
 * or of a merge of loads), not once per key. A key is answered from here when every
 * active part of the table is seen for it; a key with a row in a part not seen (or a part
 * too large to list) is read from the table again, as is every key after a new
 * generation (a rewrite of the tables numbers their blocks anew).
 *
 * Under live ingest most loads hold a row of a busy video, so what a new part holds is
 * read whole (its rows' sums and unique-viewer states, not just its keys), and a kept row
 * that has its unique viewers as a set is advanced by the new parts that hold it: their
 * sums add, their states join the set. Sums are not idempotent: a part that merged blocks
 * the row has seen with new ones adds only the rows of the new blocks, from the parts
 * that held them (kept for a while after they were merged away, at most
 * retiredMaxRows rows), and sends the key to ClickHouse when those are not known. The
 * set must hold no blocks beyond those of the row (a viewer set shared with a newer
 * read). Sets are kept for rows of at most maxViewers values in all, least recently used
 * out first; a row without one is read again as before.
 *
 * The list of active parts is read again once a new load is marked (`loads`, the load
 * version of the aggregate cache) and at least every partsMaxAgeMs, so an answer from
 * here is as fresh as a query made when the request saw that load version: what the
 * open-answer cache promises.
 *
 * A row is kept only by a read that listed the parts before it. A read of keys never read
 * under the generation, with no list at hand (read, or being read, under the same load
 * version and fresh), lists nothing: it notes its keys, and their next read lists the
 * parts and keeps their rows. In embedded chDB, which runs one query at a time, the list
 * is a query before the rows' (4-5 ms), and a burst of videos nobody has read (the first
 * after a start or a rewrite of the tables) mostly holds keys read once; under steady
 * reads the list is at hand, and a key is kept on its first read.
 *
 * @example
 * const rows = openRows<StatsRow>({ maxKeys: 100_000 })
 * // Keys never read and no list at hand: query their rows alone, then rows.note(gen, table, key) each.
 * const lists = rows.listed(gen, table, loads) || keys.some((k) => rows.readBefore(gen, table, k))
 * const parts = await rows.parts(gen, table, loads, () => activeParts(ch, table, openFrom))
 * const known = await rows.lookup(gen, table, keys, parts, (names) => rowsOfParts(names))
 * rows.record(gen, table, key, row, seenBlocks(listed, parts.map((p) => p.name)), viewers)
 */
export function openRows<R>(opts: {
  maxKeys: number
  /** A row advanced by new parts' rows: their sums added, its unique viewers now `viewers`. */
  advance?: (row: R, add: Record<string, number>[], viewers: number) => R
  /** Most unique viewers held in the kept rows' own sets (a viewer set's entry is not counted here); 0: none kept. */
  maxViewers?: number
  partKeysMaxRows?: number
  /** Most rows of parts merged away whose rows are kept (see above). */
  retiredMaxRows?: number
  partsMaxAgeMs?: number
  now?: () => number
}) {
  const partKeysMaxRows = opts.partKeysMaxRows ?? 100_000
  const maxViewers = opts.advance ? (opts.maxViewers ?? 2_000_000) : 0
  const now = opts.now ?? Date.now
  let generation: string | null = null
  /** Per `table|key`, least recently used first; `owned`: a set of this store's, counted in `held.viewers`. */
  const answers = new Map<string, { row: R; seen: BlockRanges; viewers?: RowViewers; owned?: boolean }>()
  /** Per `table|key` read once and not kept (see note), oldest first, at most maxKeys. */
  const noted = new Set<string>()
  /** Tables with a key read under this generation. */
  const readTables = new Set<string>()
  const lists = new Map<string, { loads: string | null; at: number; parts: Promise<TablePart[]> }>()
  /** The table's list of parts, read or being read under load version `loads` within partsMaxAgeMs, or undefined. */
  const freshList = (table: string, loads: string | null) => {
    const cached = lists.get(table)
    return cached && cached.loads === loads && now() - cached.at < (opts.partsMaxAgeMs ?? 1_000) ? cached : undefined
  }
  /** Per `table|part`, the rows the part holds, by key. */
  const partRows = new Map<string, Map<string, PartRow>>()
  /** The same for parts since merged away, oldest first, at most retiredMaxRows rows in all. */
  const retired = new Map<string, Map<string, PartRow>>()
  let retiredRows = 0
  const retire = (k: string, rows: Map<string, PartRow>) => {
    retired.set(k, rows)
    retiredRows += rows.size
    for (const [old, r] of retired) {
      if (retiredRows <= (opts.retiredMaxRows ?? 200_000)) break
      retired.delete(old)
      retiredRows -= r.size
    }
  }
  /**
   * Known parts of the table (active or merged away) that together hold exactly the given
   * runs of blocks of a partition, or undefined: for each run, the widest known part that
   * starts it and ends within it, then the next.
   */
  const cover = (table: string, partition: string, runs: [number, number][]): Map<string, PartRow>[] | undefined => {
    const known: { min: number; max: number; rows: Map<string, PartRow> }[] = []
    for (const source of [partRows, retired])
      for (const [k, rows] of source) {
        if (!k.startsWith(`${table}|`)) continue
        const kb = partBlocks(k.slice(table.length + 1))
        if (kb && kb.partition === partition) known.push({ min: kb.min, max: kb.max, rows })
      }
    const out: Map<string, PartRow>[] = []
    for (const [lo, hi] of runs) {
      for (let at = lo; at <= hi; ) {
        let best: (typeof known)[number] | undefined
        for (const k of known) if (k.min === at && k.max <= hi && (!best || k.max > best.max)) best = k
        if (!best) return undefined
        out.push(best.rows)
        at = best.max + 1
      }
    }
    return out
  }
  const counts = { hits: 0, advanced: 0, misses: 0 }
  const held = { viewers: 0 }

  const use = (gen: string) => {
    if (gen === generation) return
    answers.clear()
    noted.clear()
    readTables.clear()
    lists.clear()
    partRows.clear()
    retired.clear()
    retiredRows = 0
    held.viewers = 0
    generation = gen
  }
  const dropViewers = (a: { viewers?: RowViewers; owned?: boolean }) => {
    if (a.owned && a.viewers) held.viewers -= a.viewers.viewers.size
    a.viewers = undefined
    a.owned = false
  }
  /** The key advanced by the parts that hold it, or undefined when that cannot be exact. */
  const advanced = (a: { row: R; seen: BlockRanges; viewers?: RowViewers; owned?: boolean }, key: string, left: TablePart[], table: string): R | undefined => {
    const v = a.viewers
    if (!opts.advance || !v || v.live === false) return undefined
    const holding = left.filter((p) => partRows.get(`${table}|${p.name}`)!.has(key))
    // The set may hold the states of no blocks the row has not seen once advanced.
    const after = a.seen.clone()
    for (const p of left) after.add(p.name)
    if (!v.ranges.within(after)) return undefined
    // A part of new blocks only adds its row; one that merged seen blocks with new ones adds
    // the rows of the parts that held the new blocks, or, when those are not known (a load
    // merged before any read saw it), its own row less those of the parts that held the seen
    // blocks. States join the set either way (a union takes a state twice unchanged).
    const adds: PartRow[] = []
    for (const p of holding) {
      const own = partRows.get(`${table}|${p.name}`)!.get(key)!
      const b = partBlocks(p.name)
      if (!a.seen.overlaps(p.name)) adds.push(own)
      else if (b === null) return undefined
      else {
        const added = cover(table, b.partition, a.seen.missing(p.name))
        if (added)
          for (const rows of added) {
            const row = rows.get(key)
            if (row) adds.push(row)
          }
        else {
          const taken = cover(table, b.partition, a.seen.present(p.name))
          if (!taken) return undefined
          const sums = { ...own.sums }
          for (const rows of taken) for (const [c, n] of Object.entries(rows.get(key)?.sums ?? {})) sums[c] = (sums[c] ?? 0) - n
          if (Object.values(sums).some((n) => n < 0)) return undefined
          adds.push({ sums, state: own.state })
        }
      }
    }
    const before = v.viewers.size
    for (const add of adds) addUniqExactState(add.state, v.viewers)
    for (const p of holding) v.ranges.add(p.name)
    if (a.owned) held.viewers += v.viewers.size - before
    else v.grew?.(v.viewers.size - before)
    return opts.advance(a.row, adds.map((r) => r.sums), v.viewers.size)
  }

  return {
    /**
     * The table's active parts, read again when `loads` changes or the list is older than
     * partsMaxAgeMs (1 s). Empty when they cannot be read (then nothing is answered from here).
     */
    parts(gen: string, table: string, loads: string | null, read: () => Promise<TablePart[]>): Promise<TablePart[]> {
      use(gen)
      const cached = freshList(table, loads)
      if (cached) return cached.parts
      const parts = read().then(
        (list) => {
          const active = new Set(list.map((p) => `${table}|${p.name}`))
          for (const [k, rows] of partRows)
            if (k.startsWith(`${table}|`) && !active.has(k)) {
              partRows.delete(k)
              retire(k, rows)
            }
          return list
        },
        () => {
          lists.delete(table)
          return []
        },
      )
      lists.set(table, { loads, at: now(), parts })
      return parts
    },

    /**
     * The rows of `keys` known exact over every part of `parts`. Parts not seen for a key
     * are looked up in the rows each holds (`readRows` reads those of the parts not known
     * yet, by key, which count only when there are as many as the part has rows); a part
     * without the key joins its seen blocks, and parts with it advance a row that has
     * its viewers as a set (see above).
     */
    async lookup(gen: string, table: string, keys: string[], parts: TablePart[], readRows: (names: string[]) => Promise<Map<string, Map<string, PartRow>>>): Promise<Map<string, R>> {
      use(gen)
      const out = new Map<string, R>()
      if (parts.length === 0) return out
      const unseen = new Map<string, TablePart[]>()
      for (const key of keys) {
        const a = answers.get(`${table}|${key}`)
        if (!a) continue
        const left = parts.filter((p) => !a.seen.covers(p.name))
        if (left.every((p) => p.rows <= partKeysMaxRows)) unseen.set(key, left)
      }
      const wanted = new Map<string, TablePart>()
      for (const left of unseen.values()) for (const p of left) if (!partRows.has(`${table}|${p.name}`)) wanted.set(p.name, p)
      if (wanted.size > 0) {
        const read = await readRows([...wanted.keys()]).catch(() => new Map<string, Map<string, PartRow>>())
        if (gen !== generation) return out
        for (const [name, p] of wanted) {
          const rows = read.get(name) ?? new Map<string, PartRow>()
          // A part merged away before the read returns no rows: what it holds is not known.
          if (rows.size === p.rows) partRows.set(`${table}|${name}`, rows)
        }
      }
      let advancedNow = 0
      for (const [key, left] of unseen) {
        const a = answers.get(`${table}|${key}`)
        if (!a || !left.every((p) => partRows.has(`${table}|${p.name}`))) continue
        let row = a.row
        if (left.some((p) => partRows.get(`${table}|${p.name}`)!.has(key))) {
          const next = advanced(a, key, left, table)
          if (next === undefined) continue
          row = a.row = next
          advancedNow++
        }
        for (const p of left) a.seen.add(p.name)
        answers.delete(`${table}|${key}`)
        answers.set(`${table}|${key}`, a)
        out.set(key, row)
      }
      counts.hits += out.size - advancedNow
      counts.advanced += advancedNow
      counts.misses += keys.length - out.size
      return out
    },

    /**
     * Keeps the row read for `key`, exact over the blocks `seen`, with its unique viewers as
     * a set when given (`own`: a set of this store's, within maxViewers in all); the least
     * recently used go beyond maxKeys.
     */
    record(gen: string, table: string, key: string, row: R, seen: BlockRanges, viewers?: RowViewers, own = true): void {
      use(gen)
      readTables.add(table)
      noted.delete(`${table}|${key}`)
      const old = answers.get(`${table}|${key}`)
      if (old) {
        dropViewers(old)
        answers.delete(`${table}|${key}`)
      }
      const keep = viewers !== undefined && (!own || viewers.viewers.size <= maxViewers) && maxViewers > 0
      answers.set(`${table}|${key}`, keep ? { row, seen, viewers, owned: own } : { row, seen })
      if (keep && own) held.viewers += viewers.viewers.size
      if (answers.size > opts.maxKeys) {
        const first = answers.keys().next().value as string
        dropViewers(answers.get(first)!)
        answers.delete(first)
      }
      // Sets of the least recently used rows go first; their rows stay, read again when a part holds them.
      for (const a of answers.values()) {
        if (held.viewers <= maxViewers) break
        if (a.owned) dropViewers(a)
      }
    },

    /** Whether a row of `key` is kept (read before under this generation), whether or not it can still be answered. */
    kept(gen: string, table: string, key: string): boolean {
      use(gen)
      return answers.has(`${table}|${key}`)
    },

    /** Whether `key` was read before under this generation: its row kept, or the read noted. */
    readBefore(gen: string, table: string, key: string): boolean {
      use(gen)
      return answers.has(`${table}|${key}`) || noted.has(`${table}|${key}`)
    },

    /** Notes a read of `key` whose row is not kept (a key's first read, made without the table's list of parts). */
    note(gen: string, table: string, key: string): void {
      use(gen)
      const k = `${table}|${key}`
      readTables.add(table)
      noted.delete(k)
      noted.add(k)
      if (noted.size > opts.maxKeys) noted.delete(noted.values().next().value as string)
    },

    /** Whether the table's list of parts is at hand (read or being read, under load version `loads` and fresh): a read may use it at no cost. */
    listed(gen: string, table: string, loads: string | null): boolean {
      use(gen)
      return freshList(table, loads) !== undefined
    },

    /** Whether any key of `table` was read under this generation (kept or noted): then a read will likely list its parts. */
    holds(gen: string, table: string): boolean {
      return gen === generation && readTables.has(table)
    },

    /** Whether rows keep their unique viewers as sets (then a read should bring the states along). */
    keepsViewers(): boolean {
      return maxViewers > 0
    },

    /** What is held (keys, the lists of parts' rows, values of the rows' own sets) and how many keys were answered from here (as kept, or advanced) or not. */
    held(): { keys: number; partLists: number; viewers: number; hits: number; advanced: number; misses: number } {
      return { keys: answers.size, partLists: partRows.size, viewers: held.viewers, ...counts }
    },
  }
}

export type OpenRows<R> = ReturnType<typeof openRows<R>>

/**
 * A kept row's own viewer set: the merged state of the parts it was read from (none for
 * a key without rows), or nothing when the read did not take the state along or the state
 * does not hold the row's `uniqueViewers`.
 */
export function ownViewers(state: Uint8Array | undefined, uniqueViewers: number, parts: string[]): RowViewers | undefined {
  if (state === undefined && (parts.length > 0 || uniqueViewers > 0)) return undefined
  const viewers = new Uint64Set()
  if (state) addUniqExactState(state, viewers)
  if (viewers.size !== uniqueViewers) return undefined
  const ranges = new BlockRanges()
  for (const p of parts) ranges.add(p)
  return { viewers, ranges }
}
