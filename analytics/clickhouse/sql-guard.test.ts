import { describe, expect, it } from 'vitest'
import { checkReadOnlySql } from './sql-guard.ts'

describe('checkReadOnlySql', () => {
  it('accepts one read statement and finds its FORMAT clause', () => {
    expect(checkReadOnlySql('SELECT 1')).toEqual({ ok: true, format: undefined, query: 'SELECT 1' })
    expect(checkReadOnlySql('select 1 format JSONEachRow;  ')).toEqual({ ok: true, format: 'JSONEachRow', query: 'select 1 format JSONEachRow' })
    expect(checkReadOnlySql("WITH 'a;b' AS s SELECT s -- trailing; comment\n")).toMatchObject({ ok: true })
    expect(checkReadOnlySql('SHOW TABLES')).toMatchObject({ ok: true })
    expect(checkReadOnlySql('/* c; /* nested; */ */ DESCRIBE raw_events')).toMatchObject({ ok: true })
    expect(checkReadOnlySql("SELECT 'it''s; fine', \"x;y\" FROM `t;` FORMAT CSV")).toMatchObject({ ok: true, format: 'CSV' })
  })

  it('refuses writes, DDL, SET and other statements', () => {
    for (const q of ['INSERT INTO t VALUES (1)', 'ALTER TABLE t DELETE WHERE 1', 'DROP TABLE raw_events', 'SET readonly = 0', 'CREATE TABLE x (a UInt8) ENGINE = Memory', 'TRUNCATE TABLE t', 'SYSTEM FLUSH LOGS', 'OPTIMIZE TABLE t', 'USE other', 'KILL QUERY WHERE 1', 'GRANT ALL ON *.* TO x']) {
      expect(checkReadOnlySql(q), q).toMatchObject({ ok: false })
    }
  })

  it('refuses several statements, however hidden', () => {
    for (const q of ['SELECT 1; SELECT 2', 'SELECT 1;DROP TABLE t', "SELECT ';' ; INSERT INTO t VALUES (1)", 'SELECT 1 /* x */; SET a = 1', 'SELECT 1;\n-- c\nSELECT 2']) {
      expect(checkReadOnlySql(q), q).toEqual({ ok: false, reason: expect.stringMatching(/one statement/) })
    }
  })

  it('refuses unterminated literals, empty queries and INTO OUTFILE', () => {
    expect(checkReadOnlySql("SELECT 'abc")).toMatchObject({ ok: false })
    expect(checkReadOnlySql('SELECT /* open')).toMatchObject({ ok: false })
    expect(checkReadOnlySql('  ;  ')).toMatchObject({ ok: false })
    expect(checkReadOnlySql("SELECT 1 INTO OUTFILE '/tmp/x'")).toMatchObject({ ok: false, reason: expect.stringMatching(/OUTFILE/) })
  })
})
