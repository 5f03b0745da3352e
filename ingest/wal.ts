import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { RAW_COLUMNS } from './events/rows.ts'
import { walThread } from './wal-thread.ts'

/**
 * The edge's write-ahead log. Each flush of the group commit is written here (fsync, on
 * a thread of the log's own: wal-thread.ts) before its requests are answered: an
 * acknowledged event is on disk even if the process is killed before the loader has put
 * it into ClickHouse.
 *
 * The loader puts several entries into ClickHouse as one insert, under one dedup token,
 * and writes that grouping down first (a load manifest), so that after a crash the very
 * same block can be inserted again: raw_events skips a block it already has and each
 * materialized view adds only what it lacks (an insert is not atomic across a table and
 * its views). Entries are removed once loaded, the manifest last.
 */
/** A request of a flush; `exp`: when its playback token expires (epoch s; absent in entries logged before it was recorded). */
export type WalRequest = { videoId: string; sessionId: string; requestId: string; rows: number; exp?: number }
/** An entry read back: its requests in order, and its body's lines (one row each, in order). */
export type WalEntry = { token: string; requests: WalRequest[]; body: string; lines: string[]; file: string }
/**
 * A load manifest; `at` (epoch ms) is when it was written (absent in manifests written before it was recorded);
 * `files`: the engine reads the entries' files themselves (see insertRawEventFiles), else their text is sent.
 * Every insert of a load goes the same way: the engine keys the block of several files apart from the same rows
 * as one text, so a repeat the other way would be counted again.
 */
export type WalLoad = { token: string; entries: string[]; at?: number; files?: true }

/** The log's folder for lines the engine refused (see setAside). */
export const SET_ASIDE_DIR = 'set-aside'
/** The log's folder of empty files its thread keeps ready for entries and manifests (see wal-thread.ts); emptied at start-up. */
export const SPARE_DIR = 'spare'

/** The edge's log folder: WAL_DIR, else `wal` under DATA_DIR; absolute (the engine is given its files by name). */
export function walDir(settings: { WAL_DIR?: string; dataDir: string }): string {
  return resolve(settings.WAL_DIR ?? join(settings.dataDir, 'wal'))
}

export function createWal(dir: string) {
  mkdirSync(dir, { recursive: true })
  const asideDir = join(dir, SET_ASIDE_DIR)
  const spareDir = join(dir, SPARE_DIR)
  const path = (token: string) => join(dir, `${token}.wal`)
  const loadPath = (token: string) => join(dir, `${token}.load`)
  /** Writes a file, made durable on the log's own thread (see wal-thread.ts); entries and manifests into spare files it made ready. */
  const writeDurably = (file: string, parts: string[], spare = false) => walThread().write(file, parts, spare ? { spares: spareDir } : {})
  const parseEntry = (file: string, text: string): WalEntry | undefined => {
    const nl = text.indexOf('\n')
    try {
      const head = JSON.parse(nl < 0 ? text : text.slice(0, nl)) as { token: string; requests: WalRequest[] }
      const body = nl < 0 ? '' : text.slice(nl + 1)
      const lines = body.split('\n').filter(Boolean)
      if (lines.length !== head.requests.reduce((n, r) => n + r.rows, 0)) return undefined
      return { token: head.token, requests: head.requests, body, lines, file }
    } catch {
      return undefined // a torn write never got renamed into place; anything else unreadable is skipped
    }
  }
  return {
    dir,
    /** Writes the entry durably; `body` is its rows' text, a line each (see encodeRows). */
    write(token: string, requests: WalRequest[], body: string): Promise<void> {
      return writeDurably(path(token), [JSON.stringify({ token, requests }) + '\n', body], true)
    },
    /** The entry's file: a JSON line (its token and requests), then its rows' text. */
    file: path,
    /** Removes the entries (one call to the log's thread, however many), their files kept as spare ones (see wal-thread.ts). */
    remove(...tokens: string[]): Promise<void> {
      return walThread().remove(tokens.map(path), { spares: spareDir })
    },
    /** Records which entries one insert carries, in order, and how (see WalLoad), before it starts. */
    writeLoad(token: string, entries: string[], at = Date.now(), files = false): Promise<void> {
      const load: WalLoad = files ? { token, entries, at, files } : { token, entries, at }
      return writeDurably(loadPath(token), [JSON.stringify(load)], true)
    },
    removeLoad(token: string): Promise<void> {
      return walThread().remove([loadPath(token)], { spares: spareDir })
    },
    /** Where lines the engine refused are kept (see setAside). */
    setAsideDir: asideDir,
    /**
     * Keeps lines the engine cannot read (see set-aside.ts), durably, in `set-aside/<token>.tsv`
     * under the log's folder: a JSON line (the load's token, when, the engine's error, the
     * columns), then the lines as they were, in raw_events' TabSeparated form. Writing the
     * same token again replaces the file (a retried load finds the same lines): `created`
     * says whether it is new.
     */
    async setAside(token: string, lines: string[], error: string, at = Date.now()): Promise<{ file: string; created: boolean }> {
      if (!existsSync(asideDir)) {
        // Made on first use (most logs never need it), durably: the folder's own name too.
        await walThread().mkdir(asideDir)
      }
      const file = join(asideDir, `${token}.tsv`)
      const created = !existsSync(file)
      const head = JSON.stringify({ token, at, rows: lines.length, error, columns: RAW_COLUMNS }) + '\n'
      await writeDurably(file, [head, lines.map((l) => `${l}\n`).join('')])
      return { file, created }
    },
    /** Load manifests left behind (their insert may or may not have landed, wholly or in part). */
    loads(): WalLoad[] {
      return readdirSync(dir)
        .filter((f) => f.endsWith('.load'))
        .flatMap((f) => {
          try {
            return [JSON.parse(readFileSync(join(dir, f), 'utf8')) as WalLoad]
          } catch {
            return []
          }
        })
    },
    /** One entry, or undefined when it is gone (loaded and removed). */
    read(token: string): WalEntry | undefined {
      try {
        return parseEntry(path(token), readFileSync(path(token), 'utf8'))
      } catch {
        return undefined
      }
    },
    /** Tokens of the entries on disk (names only: reading an entry is for the ones a repair takes). */
    tokens(): string[] {
      return readdirSync(dir)
        .filter((f) => f.endsWith('.wal'))
        .map((f) => f.slice(0, -'.wal'.length))
    },
    /** Drops half-written files and spare ones; only at start-up, when nothing of this process is writing. */
    removeTorn(): void {
      walThread().dropSpares(spareDir)
      rmSync(spareDir, { recursive: true, force: true })
      for (const d of [dir, asideDir].filter((d) => existsSync(d))) for (const f of readdirSync(d).filter((f) => f.endsWith('.tmp'))) rmSync(join(d, f), { force: true })
    },
    has(token: string): boolean {
      return readdirSync(dir).includes(`${token}.wal`)
    },
    /**
     * When the oldest entry or load manifest on disk was written (epoch ms), or undefined when
     * there is none: everything acknowledged and not yet in ClickHouse is one of them.
     */
    oldestMs(): number | undefined {
      let oldest: number | undefined
      for (const f of readdirSync(dir)) {
        if (!f.endsWith('.wal') && !f.endsWith('.load')) continue
        try {
          const at = statSync(join(dir, f)).mtimeMs
          if (oldest === undefined || at < oldest) oldest = at
        } catch {
          // loaded and removed meanwhile
        }
      }
      return oldest
    },
    /** The id of the edge this log belongs to: made once, kept in the folder, so it outlives restarts. */
    edgeId(): string {
      const file = join(dir, 'edge-id')
      try {
        return readFileSync(file, 'utf8').trim()
      } catch {
        const id = crypto.randomUUID()
        writeFileSync(file, id, { mode: 0o600 })
        return id
      }
    },
  }
}

export type Wal = ReturnType<typeof createWal>
