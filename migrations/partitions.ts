import type { ClickHouseClient } from '../lib/clickhouse.ts'
/**
 * The client with no limit on the partitions one insert may write: the copy of a table
 * writes all its periods in one INSERT … SELECT, and the engine refuses more than 100
 * (max_partitions_per_insert_block) by default.
 */
export function anyPartitionCount(ch: ClickHouseClient): ClickHouseClient {
  return new Proxy(ch, {
    get(target, prop, receiver) {
      if (prop === 'command')
        return (p: Parameters<ClickHouseClient['command']>[0]) =>
          target.command({ ...p, clickhouse_settings: { ...p.clickhouse_settings, max_partitions_per_insert_block: '0' } })
      return Reflect.get(target, prop, receiver) as unknown
    },
  })
}
