import { BlockRanges } from '../../lib/table-parts.ts'

/**
 * Exact unique viewers of open periods without merging every state again on every read.
 *
 * A row of the aggregate tables holds a video's viewers of one period as a `uniqExact`
 * state: the set of `cityHash64(viewer_id)`. Reading such a column builds each state's
 * hash set in the engine, so the stats of a day's most watched video cost a set of
 * hundreds of thousands of viewers on every request, though between two loads only a
 * few small parts have been added. Here a process keeps, per (table, creator, video,
 * period) it was asked for and that had many viewers when last read, the union of the
 * states it has read, and which blocks of the table those came from: a part named `<partition>_<min>_<max>_<level>` holds what
 * was inserted in blocks min..max, and a union is unchanged by a state read twice, so a
 * part whose blocks are all covered adds nothing, and a merge of parts already read is
 * never read again. Each read then takes only the states of parts inserted since.
 *
 * The aggregate tables are append-only (merges only, never mutations); a migration that
 * rewrites one (block numbers start again) bumps the aggregates generation, and entries
 * are kept under the generation they were built at.
 */

/**
 * A set of unsigned 64-bit values (two 32-bit halves): open addressing with linear
 * probing in one Int32Array, at most half full (16 to 32 bytes a value). The values are
 * hashes (cityHash64) already, so the slot is taken from their bits. The value 0 marks an
 * empty slot and is kept apart.
 */
export class Uint64Set {
  // Int32 halves: values at or above 2^31 as Uint32 are not small integers to the JIT.
  private table: Int32Array
  private mask: number
  private count = 0
  private zero = false

  constructor(expected = 8) {
    let cap = 16
    while (cap < expected * 2) cap *= 2
    this.table = new Int32Array(cap * 2)
    this.mask = cap - 1
  }

  get size(): number {
    return this.count + (this.zero ? 1 : 0)
  }

  /** Memory held by the table, in bytes. */
  get bytes(): number {
    return this.table.byteLength
  }

  /** Adds the value `hi * 2^32 + lo`; true when it was not there. */
  add(lo: number, hi: number): boolean {
    lo |= 0
    hi |= 0
    if (lo === 0 && hi === 0) {
      const added = !this.zero
      this.zero = true
      return added
    }
    if ((this.count + 1) * 4 > this.table.length) this.grow()
    return this.put(lo, hi)
  }

  has(lo: number, hi: number): boolean {
    lo |= 0
    hi |= 0
    if (lo === 0 && hi === 0) return this.zero
    const { table, mask } = this
    for (let i = (lo ^ hi) & mask; table[2 * i] !== 0 || table[2 * i + 1] !== 0; i = (i + 1) & mask) if (table[2 * i] === lo && table[2 * i + 1] === hi) return true
    return false
  }

  private put(lo: number, hi: number): boolean {
    const table = this.table
    const mask = this.mask
    let i = (lo ^ hi) & mask
    let a = table[2 * i]!
    let b = table[2 * i + 1]!
    while (a !== 0 || b !== 0) {
      if (a === lo && b === hi) return false
      i = (i + 1) & mask
      a = table[2 * i]!
      b = table[2 * i + 1]!
    }
    table[2 * i] = lo
    table[2 * i + 1] = hi
    this.count++
    return true
  }

  /** Makes room for `more` values beyond those held, so that adding them grows the table once at most. */
  reserve(more: number): void {
    let length = this.table.length
    while ((this.count + more) * 4 > length) length *= 2
    if (length > this.table.length) this.grow(length)
  }

  private grow(length = this.table.length * 2): void {
    const old = this.table
    this.table = new Int32Array(length)
    this.mask = length / 2 - 1
    this.count = 0
    for (let i = 0; i < old.length; i += 2) if (old[i] !== 0 || old[i + 1] !== 0) this.put(old[i]!, old[i + 1]!)
  }
}

/** Reads an unsigned LEB128 varint (ClickHouse's VarUInt) at `at`; returns the value and the next offset. */
export function readVarUInt(buf: Uint8Array, at: number): [number, number] {
  let value = 0
  let scale = 1
  for (let i = 0; i < 9; i++) {
    if (at >= buf.length) throw new RangeError('truncated varint')
    const b = buf[at++]!
    value += (b & 0x7f) * scale
    if ((b & 0x80) === 0) return [value, at]
    scale *= 128
  }
  throw new RangeError('varint longer than 9 bytes')
}

/**
 * Adds the values of a serialized `uniqExact(UInt64)` state (its bytes from
 * `CAST(state AS String)`: a VarUInt count, then each value as 8 bytes little-endian)
 * to `into`. Throws on bytes of another shape.
 */
export function addUniqExactState(state: Uint8Array, into: Uint64Set): void {
  const [n, start] = readVarUInt(state, 0)
  if (start + n * 8 !== state.length) throw new RangeError(`not a uniqExact(UInt64) state: ${n} values in ${state.length} bytes`)
  const view = new DataView(state.buffer, state.byteOffset, state.byteLength)
  into.reserve(n)
  for (let at = start; at < state.length; at += 8) into.add(view.getInt32(at, true), view.getInt32(at + 4, true))
}

/** `live`: still in the store (its values count towards maxViewers); `grew`: to be told of values added to it from outside (see open-rows.ts). */
type Entry = { viewers: Uint64Set; ranges: BlockRanges; live: boolean; grew: (added: number) => void }

/**
 * The per-process store of viewer sets, for keys that had at least `minViewers` unique
 * viewers when last read, least recently used first out once they hold
 * more than `maxViewers` values in all (16 to 32 bytes each). A set larger than that on
 * its own is still built for the read that needs it and dropped after.
 *
 * @example
 * const sets = viewerSets({ maxViewers: 4_000_000 })
 * const set = sets.entry(generation, key)
 * const missing = sets.missing(set, parts) // parts whose states must still be read
 * sets.add(set, part, stateBytes); set.viewers.size
 */
export function viewerSets(opts: { maxViewers: number; minViewers?: number }) {
  const entries = new Map<string, Entry>()
  let generation: string | null = null
  let held = 0
  const minViewers = opts.minViewers ?? 10_000
  /** The unique viewers each key had when last read, least recently noted first. */
  const known = new Map<string, number>()

  /** Moves to generation `gen`: a new one drops every set and what was known of the old. */
  const use = (gen: string) => {
    if (gen === generation) return
    for (const e of entries.values()) e.live = false
    entries.clear()
    // The data was rewritten: the first read of each key after a bump costs what a merge
    // in the engine does, not a set's build (about 2.5x that), and the second builds it.
    known.clear()
    held = 0
    generation = gen
  }

  return {
    /** The set kept for `key` under `gen`, new and empty if none is; a new generation drops every set of the old. */
    entry(gen: string, key: string): Entry {
      use(gen)
      let e = entries.get(key)
      if (e) entries.delete(key)
      else {
        const made: Entry = { viewers: new Uint64Set(), ranges: new BlockRanges(), live: true, grew: (added) => void (made.live && (held += added)) }
        e = made
      }
      entries.set(key, e)
      return e
    },
    /** Of the parts holding rows of the entry's key, those whose blocks it has not read all of. */
    missing(e: Entry, parts: string[]): string[] {
      return parts.filter((p) => !e.ranges.covers(p))
    },
    /** Adds a part's state of the key; the part's blocks count as read. */
    add(e: Entry, part: string, state: Uint8Array): void {
      const before = e.viewers.size
      addUniqExactState(state, e.viewers)
      e.grew(e.viewers.size - before)
      this.cover(e, part)
    },
    /** Counts the part's blocks as read for the key without a state: the key has no row in them. */
    cover(e: Entry, part: string): void {
      e.ranges.add(part)
    },
    /**
     * Whether the key is worth a set: it had at least minViewers unique viewers when last
     * read (any key when minViewers is 0). Merging a few thousand viewers in the engine
     * costs less than a set's first read, and most keys are read once in a while.
     */
    wanted(gen: string, key: string): boolean {
      return minViewers === 0 || (gen === generation && (known.get(key) ?? 0) >= minViewers)
    },
    /** Notes the unique viewers a key had on a read under `gen` (at most 100,000 keys are remembered). */
    note(gen: string, key: string, viewers: number): void {
      use(gen)
      known.delete(key)
      known.set(key, viewers)
      if (known.size > 100_000) known.delete(known.keys().next().value as string)
    },
    /** Drops the least recently used sets until at most maxViewers values are held. */
    trim(): void {
      for (const [key, e] of entries) {
        if (held <= opts.maxViewers) break
        entries.delete(key)
        e.live = false
        held -= e.viewers.size
      }
    },
    /** What is held: sets, values, bytes of their tables. */
    held(): { sets: number; viewers: number; bytes: number } {
      let bytes = 0
      for (const e of entries.values()) bytes += e.viewers.bytes
      return { sets: entries.size, viewers: held, bytes }
    },
  }
}

export type ViewerSets = ReturnType<typeof viewerSets>
