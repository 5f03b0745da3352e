import type { BlockRanges, TablePart } from '../../lib/table-parts.ts'

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
 * The list of active parts is read again once a new load is marked (`loads`, the load
 * version of the aggregate cache) and at least every partsMaxAgeMs, so an answer from
 * here is as fresh as a query made when the request saw that load version: what the
 * open-answer cache promises.
 *
 * @example
 * const rows = openRows<StatsRow>({ maxKeys: 100_000 })
 * const parts = await rows.parts(gen, table, loads, () => activeParts(ch, table))
 * const known = await rows.lookup(gen, table, keys, parts, (names) => keysOfParts(names))
 * rows.record(gen, table, key, row, seenBlocks(listed, parts.map((p) => p.name)))
 */
export function openRows<R>(opts: { maxKeys: number; partKeysMaxRows?: number; partsMaxAgeMs?: number; now?: () => number }) {
  const partKeysMaxRows = opts.partKeysMaxRows ?? 100_000
  const now = opts.now ?? Date.now
  let generation: string | null = null
  /** Per `table|key`, least recently used first. */
  const answers = new Map<string, { row: R; seen: BlockRanges }>()
  const lists = new Map<string, { loads: string | null; at: number; parts: Promise<TablePart[]> }>()
  /** Per `table|part`, the keys the part holds rows of. */
  const partKeys = new Map<string, Set<string>>()
  const counts = { hits: 0, misses: 0 }

  const use = (gen: string) => {
    if (gen === generation) return
    answers.clear()
    lists.clear()
    partKeys.clear()
    generation = gen
  }

  return {
    /**
     * The table's active parts, read again when `loads` changes or the list is older than
     * partsMaxAgeMs (1 s). Empty when they cannot be read (then nothing is answered from here).
     */
    parts(gen: string, table: string, loads: string | null, read: () => Promise<TablePart[]>): Promise<TablePart[]> {
      use(gen)
      const cached = lists.get(table)
      if (cached && cached.loads === loads && now() - cached.at < (opts.partsMaxAgeMs ?? 1_000)) return cached.parts
      const parts = read().then(
        (list) => {
          const active = new Set(list.map((p) => `${table}|${p.name}`))
          for (const k of partKeys.keys()) if (k.startsWith(`${table}|`) && !active.has(k)) partKeys.delete(k)
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
     * are looked up in the keys each holds (`readKeys` reads those of the parts not known
     * yet, a list of keys per part, which counts only when it has as many keys as the
     * part has rows); a part without the key joins its seen blocks.
     */
    async lookup(gen: string, table: string, keys: string[], parts: TablePart[], readKeys: (names: string[]) => Promise<Map<string, string[]>>): Promise<Map<string, R>> {
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
      for (const left of unseen.values()) for (const p of left) if (!partKeys.has(`${table}|${p.name}`)) wanted.set(p.name, p)
      if (wanted.size > 0) {
        const read = await readKeys([...wanted.keys()]).catch(() => new Map<string, string[]>())
        if (gen !== generation) return out
        for (const [name, p] of wanted) {
          const held = read.get(name) ?? []
          // A part merged away before the read returns no rows: its list is not known.
          if (held.length === p.rows) partKeys.set(`${table}|${name}`, new Set(held))
        }
      }
      for (const [key, left] of unseen) {
        const a = answers.get(`${table}|${key}`)
        if (!a || !left.every((p) => partKeys.get(`${table}|${p.name}`)?.has(key) === false)) continue
        for (const p of left) a.seen.add(p.name)
        answers.delete(`${table}|${key}`)
        answers.set(`${table}|${key}`, a)
        out.set(key, a.row)
      }
      counts.hits += out.size
      counts.misses += keys.length - out.size
      return out
    },

    /** Keeps the row read for `key`, exact over the blocks `seen`; the least recently used go beyond maxKeys. */
    record(gen: string, table: string, key: string, row: R, seen: BlockRanges): void {
      use(gen)
      answers.delete(`${table}|${key}`)
      answers.set(`${table}|${key}`, { row, seen })
      if (answers.size > opts.maxKeys) answers.delete(answers.keys().next().value as string)
    },

    /** What is held (keys, the lists of parts' keys) and how many keys were answered from here or not. */
    held(): { keys: number; partLists: number; hits: number; misses: number } {
      return { keys: answers.size, partLists: partKeys.size, ...counts }
    },
  }
}

export type OpenRows<R> = ReturnType<typeof openRows<R>>
