import { createClickHouse } from './lib/clickhouse.ts'
import { loadSettings } from './lib/config.ts'
import { topVideos } from './analytics/top/queries.ts'
const ch = createClickHouse(loadSettings({ DATA_DIR: process.argv[2]! }))
const ms: number[] = []
for (let r = 0; r < 6; r++) { const t = performance.now(); await topVideos(ch, { metric: 'views', grain: 'day', date: '2026-12-02', limit: 10 } as any); ms.push(+(performance.now() - t).toFixed(0)) }
console.log(process.argv[2], 'platform top-10', ms.join(' '))
await ch.close()
