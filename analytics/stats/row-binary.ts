import type { ClickHouseClient } from '../../lib/clickhouse.ts'
import { readVarUInt } from './viewer-sets.ts'

/**
 * A reader of ClickHouse's RowBinary output, value by value in the order of the SELECT's
 * columns. Stats reads that bring unique-viewer states along take them as RowBinary: as hex
 * in JSON, each state was written twice its size by the engine and decoded twice by the
 * server (the batched stats query of 32 of the day's 34th-129th most watched videos with
 * their states: 30-105 ms against 23-37 as RowBinary, chDB alone; test/bench/HISTORY.md,
 * thirty-fifth session).
 */
export class RowBinary {
  private at = 0
  private readonly view: DataView
  private readonly text = new TextDecoder()

  constructor(private readonly buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
  }

  /** True once every row has been read. */
  get done(): boolean {
    return this.at >= this.buf.length
  }

  /** A String's bytes (a view of the buffer, not a copy). */
  bytes(): Uint8Array {
    const [n, start] = readVarUInt(this.buf, this.at)
    if (start + n > this.buf.length) throw new RangeError('truncated RowBinary string')
    this.at = start + n
    return this.buf.subarray(start, start + n)
  }

  /** A String as UTF-8 text. */
  string(): string {
    return this.text.decode(this.bytes())
  }

  /** A UInt64 as a number (exact up to 2^53: counts and sums of milliseconds). */
  uint64(): number {
    if (this.at + 8 > this.buf.length) throw new RangeError('truncated RowBinary UInt64')
    const value = this.view.getBigUint64(this.at, true)
    this.at += 8
    return Number(value)
  }

  /** An Array(String) as texts. */
  strings(): string[] {
    const [n, start] = readVarUInt(this.buf, this.at)
    this.at = start
    return Array.from({ length: n }, () => this.string())
  }
}

/** Runs a query with `FORMAT RowBinary` appended and gives a reader of its whole output. */
export async function queryRowBinary(ch: ClickHouseClient, query: string, query_params: Record<string, unknown>, clickhouse_settings?: Record<string, string>): Promise<RowBinary> {
  const res = await ch.exec({ query: `${query}\nFORMAT RowBinary`, query_params, ...(clickhouse_settings ? { clickhouse_settings } : {}) })
  const chunks: Uint8Array[] = []
  for await (const chunk of res.stream as AsyncIterable<Uint8Array>) chunks.push(chunk)
  return new RowBinary(Buffer.concat(chunks))
}
