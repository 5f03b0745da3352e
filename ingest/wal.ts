import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs'
import { join } from 'node:path'

/**
 * The edge's write-ahead log: each flush is on disk, with its dedup token and the
 * requests it carries, before its insert starts, and is removed once the insert is
 * confirmed. An insert into ClickHouse is not atomic across raw_events and its
 * materialized views, so a flush cut short (SIGKILL, an engine error) can leave the
 * views behind; replaying the entry with the same token repairs them (see repair.ts).
 */
export type WalRequest = { videoId: string; sessionId: string; requestId: string; rows: number }
export type WalEntry<Row> = { token: string; requests: WalRequest[]; rows: Row[]; file: string }

export function createWal<Row>(dir: string) {
  mkdirSync(dir, { recursive: true })
  const path = (token: string) => join(dir, `${token}.wal`)
  return {
    dir,
    /** Writes the entry durably (fsync, then rename into place); `body` is the rows as JSONEachRow text. */
    write(token: string, requests: WalRequest[], body: string): void {
      const tmp = join(dir, `${token}.tmp`)
      const fd = openSync(tmp, 'w', 0o600)
      try {
        writeSync(fd, JSON.stringify({ token, requests }) + '\n' + body)
        fsyncSync(fd)
      } finally {
        closeSync(fd)
      }
      renameSync(tmp, path(token))
    },
    remove(token: string): void {
      rmSync(path(token), { force: true })
    },
    /** Entries left by flushes that were not confirmed, oldest first. */
    list(): WalEntry<Row>[] {
      const files = readdirSync(dir).filter((f) => f.endsWith('.wal'))
      const entries = files.flatMap((f) => {
        const file = join(dir, f)
        const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean)
        try {
          const head = JSON.parse(lines[0] ?? '') as { token: string; requests: WalRequest[] }
          return [{ token: head.token, requests: head.requests, rows: lines.slice(1).map((l) => JSON.parse(l) as Row), file }]
        } catch {
          return [] // a torn write never got renamed into place; anything else unreadable is skipped
        }
      })
      return entries
    },
    /** Drops half-written entries; only at start-up, when no flush of this process is writing. */
    removeTorn(): void {
      for (const f of readdirSync(dir).filter((f) => f.endsWith('.tmp'))) rmSync(join(dir, f), { force: true })
    },
    has(token: string): boolean {
      return readdirSync(dir).includes(`${token}.wal`)
    },
  }
}

export type Wal<Row> = ReturnType<typeof createWal<Row>>
