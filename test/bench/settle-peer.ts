/**
 * The peers' way (issue 5 §2b): the same day's raw events bulk-loaded into MariaDB
 * (a row store, as the published Spring Batch settlements use) and settled with plain
 * SQL GROUP BY plus the same graduated tier arithmetic. Uses the `mysql` client CLI.
 *
 * Server: 127.0.0.1:3306 as root without a password when one answers there (database
 * `bench_settle`, created and dropped here); otherwise a private mariadbd on a free port
 * in a temporary folder, installed from Debian's mariadb-server when missing.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import type { ClickHouseClient } from '../../lib/clickhouse.ts'
import { freePort, tempDir } from '../harness/engines.ts'
import { aptInstall, has, sleep } from './lib.ts'
import { tierSql, type Card } from './settle-data.ts'

export type PeerResult = {
  server: string
  version: string
  innodb_buffer_pool_mib: number
  events: number
  load_seconds: number
  settle_seconds: number
  ch_job_seconds: number
  peer_over_job: number
  same_amounts: boolean
  amounts: { views: number; video_revenue_krw: number; ad_revenue_krw: number }
}

type Target = { args: string[]; label: string; stop(): Promise<void> }
const DB = 'bench_settle'

function mysql(t: Target, sql: string, db = ''): string {
  const r = spawnSync('mysql', [...t.args, '--local-infile=1', '-N', '-B', ...(db ? [db] : []), '-e', sql], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 })
  if (r.status !== 0) throw new Error(`mysql failed: ${r.stderr || r.error}\n${sql.slice(0, 500)}`)
  return r.stdout.trim()
}

async function connect(): Promise<Target> {
  if (!has('mysql') && !aptInstall(['mariadb-client'])) throw new Error('the mysql client is missing: apt-get install mariadb-client')
  const shared: Target = { args: ['-h', '127.0.0.1', '-P', '3306', '-u', 'root'], label: '127.0.0.1:3306 (running server)', stop: async () => {} }
  if (spawnSync('mysql', [...shared.args, '-e', 'SELECT 1'], { stdio: 'ignore' }).status === 0) return shared
  if (!has('mariadbd') && !has('/usr/sbin/mariadbd') && !aptInstall(['mariadb-server'])) throw new Error('no MariaDB on 127.0.0.1:3306 and mariadb-server is not installed')
  const dir = tempDir('cs-bench-mariadb-')
  const port = await freePort()
  const socket = join(dir, 'mysqld.sock')
  const install = spawnSync('mariadb-install-db', ['--no-defaults', `--datadir=${join(dir, 'data')}`, '--auth-root-authentication-method=normal', '--user=root'], { encoding: 'utf8' })
  if (install.status !== 0) throw new Error(`mariadb-install-db failed: ${install.stderr}`)
  const proc: ChildProcess = spawn('/usr/sbin/mariadbd', ['--no-defaults', `--datadir=${join(dir, 'data')}`, `--port=${port}`, '--bind-address=127.0.0.1', `--socket=${socket}`, '--user=root', '--innodb-buffer-pool-size=2G', '--local-infile=1'], { stdio: 'ignore' })
  const t: Target = {
    args: ['-h', '127.0.0.1', '-P', String(port), '-u', 'root'],
    label: `private mariadbd on 127.0.0.1:${port}`,
    async stop() {
      proc.kill('SIGTERM')
      await new Promise((r) => proc.once('exit', r))
      rmSync(dir, { recursive: true, force: true })
    },
  }
  for (let i = 0; i < 100; i++) {
    if (spawnSync('mysql', [...t.args, '-e', 'SELECT 1'], { stdio: 'ignore' }).status === 0) return t
    await sleep(200)
  }
  await t.stop()
  throw new Error('the private mariadbd did not start')
}

export async function runPeer(
  ch: ClickHouseClient,
  opts: { day: string; bounds: { from: string; to: string }; card: Card; chJobSeconds: number; chTotals: { views: number; video_revenue_krw: number; ad_revenue_krw: number }; smoke: boolean },
): Promise<PeerResult> {
  const t = await connect()
  const dir = tempDir('cs-bench-peer-')
  try {
    const file = (n: string) => join(dir, `${n}.tsv`)
    const out = async (query: string, name: string) => ch.command({ query: `${query} INTO OUTFILE '${file(name)}' FORMAT TSV` })
    await out(
      `SELECT toString(event_id), toString(event_time), type, outcome, reason, video_id, creator_id, viewer_id, session_id, credited_watch_ms, ad_id FROM raw_events`,
      'events',
    )
    await out('SELECT video_id, views_after FROM settlement_video_cumulative', 'video_cumulative')
    await out('SELECT video_id, ad_id, impressions_after FROM settlement_ad_cumulative', 'ad_cumulative')

    mysql(t, `DROP DATABASE IF EXISTS ${DB}; CREATE DATABASE ${DB}`)
    mysql(
      t,
      `CREATE TABLE events (
         id BIGINT AUTO_INCREMENT PRIMARY KEY, event_id CHAR(36) NOT NULL, event_time DATETIME(3) NOT NULL,
         type VARCHAR(16) NOT NULL, outcome VARCHAR(16) NOT NULL, reason VARCHAR(32) NOT NULL,
         video_id VARCHAR(32) NOT NULL, creator_id VARCHAR(40) NOT NULL, viewer_id VARCHAR(32) NOT NULL, session_id VARCHAR(40) NOT NULL,
         credited_watch_ms BIGINT UNSIGNED NOT NULL, ad_id VARCHAR(32) NOT NULL) ENGINE = InnoDB;
       CREATE TABLE video_cumulative (video_id VARCHAR(32) PRIMARY KEY, views_after BIGINT UNSIGNED NOT NULL) ENGINE = InnoDB;
       CREATE TABLE ad_cumulative (video_id VARCHAR(32), ad_id VARCHAR(32), impressions_after BIGINT UNSIGNED NOT NULL, PRIMARY KEY (video_id, ad_id)) ENGINE = InnoDB;`,
      DB,
    )
    const t0 = performance.now()
    mysql(
      t,
      `LOAD DATA LOCAL INFILE '${file('events')}' INTO TABLE events (event_id, event_time, type, outcome, reason, video_id, creator_id, viewer_id, session_id, credited_watch_ms, ad_id);
       LOAD DATA LOCAL INFILE '${file('video_cumulative')}' INTO TABLE video_cumulative;
       LOAD DATA LOCAL INFILE '${file('ad_cumulative')}' INTO TABLE ad_cumulative;`,
      DB,
    )
    const loadSeconds = (performance.now() - t0) / 1000
    const events = Number(mysql(t, 'SELECT COUNT(*) FROM events', DB))
    const range = `event_time >= '${opts.bounds.from}' AND event_time < '${opts.bounds.to}'`
    const sql = `
SELECT v.views, v.krw, a.krw FROM
 (SELECT SUM(units) AS views, SUM((${tierSql('COALESCE(c.views_after, 0)', 'd.units', opts.card.floors, opts.card.videoRates)}) DIV 10) AS krw
  FROM (SELECT video_id, SUM(type = 'play' AND outcome = 'counted') AS units FROM events WHERE ${range} GROUP BY video_id HAVING units > 0) d
  LEFT JOIN video_cumulative c ON c.video_id = d.video_id) v,
 (SELECT SUM((${tierSql('COALESCE(c.impressions_after, 0)', 'd.units', opts.card.floors, opts.card.adRates)}) DIV 10) AS krw
  FROM (SELECT video_id, ad_id, COUNT(*) AS units FROM events WHERE ${range} AND type = 'ad_impression' AND outcome = 'counted' GROUP BY video_id, ad_id) d
  LEFT JOIN ad_cumulative c ON c.video_id = d.video_id AND c.ad_id = d.ad_id) a`
    const t1 = performance.now()
    const [views, videoKrw, adKrw] = mysql(t, sql, DB).split('\t').map(Number) as [number, number, number]
    const settleSeconds = (performance.now() - t1) / 1000
    const version = mysql(t, 'SELECT VERSION()')
    const pool = Number(mysql(t, 'SELECT @@innodb_buffer_pool_size')) / 2 ** 20
    mysql(t, `DROP DATABASE ${DB}`)
    return {
      server: t.label,
      version,
      innodb_buffer_pool_mib: pool,
      events,
      load_seconds: +loadSeconds.toFixed(2),
      settle_seconds: +settleSeconds.toFixed(2),
      ch_job_seconds: +opts.chJobSeconds.toFixed(2),
      peer_over_job: +(settleSeconds / opts.chJobSeconds).toFixed(2),
      same_amounts: views === opts.chTotals.views && videoKrw === opts.chTotals.video_revenue_krw && adKrw === opts.chTotals.ad_revenue_krw,
      amounts: { views, video_revenue_krw: videoKrw, ad_revenue_krw: adKrw },
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
    await t.stop()
  }
}
