import { createClickHouse } from './lib/clickhouse.ts'
import { loadSettings } from './lib/config.ts'
import { rows } from './test/harness/engines.ts'
const ch = createClickHouse(loadSettings({ DATA_DIR: process.argv[2]! }))
if (process.argv[3] === 'small') await ch.command({ query: 'ALTER TABLE video_stats_per_day MODIFY SETTING min_compress_block_size = 4096, max_compress_block_size = 65536' })
let t = performance.now()
await ch.command({ query: 'OPTIMIZE TABLE video_stats_per_day FINAL', clickhouse_settings: { optimize_throw_if_noop: 0 } as any })
console.log('optimize', ((performance.now() - t) / 1000).toFixed(1), 's')
console.log(await rows(ch, "SELECT name, rows, formatReadableSize(bytes_on_disk) AS size FROM system.parts WHERE table = 'video_stats_per_day' AND active"))
await ch.close()
