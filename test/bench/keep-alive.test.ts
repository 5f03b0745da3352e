import { spawnSync } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import { BUN, ROOT } from '../harness/process.ts'
import { parseResponse } from './keep-alive.ts'

const CHUNKED = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nRetry-After: 2\r\n\r\n5\r\nhello\r\n8\r\n, wörld\r\n0\r\n\r\n'
const PLAIN = 'HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\ncontent-length: 15\r\n\r\n{"error":"nö"}'

describe('parseResponse (an answer read off the socket)', () => {
  it('reads the status, the headers by lowercase name and the body by its Content-Length', () => {
    const buf = Buffer.from(PLAIN)
    expect(parseResponse(buf)).toEqual({ answer: { status: 401, headers: { 'content-type': 'application/json', 'content-length': '15' }, body: '{"error":"nö"}' }, used: buf.length })
  })

  it('joins a chunked body', () => {
    const r = parseResponse(Buffer.from(CHUNKED))
    expect(r?.answer).toMatchObject({ status: 200, body: 'hello, wörld' })
    expect(r?.answer.headers['retry-after']).toBe('2')
  })

  it('waits for more while any part is missing, cut at every byte, and leaves what follows the answer', () => {
    for (const text of [PLAIN, CHUNKED]) {
      const whole = Buffer.from(text)
      for (let n = 0; n < whole.length; n++) expect(parseResponse(whole.subarray(0, n))).toBeUndefined()
      const two = Buffer.concat([whole, Buffer.from('HTTP/1.1 204')])
      expect(parseResponse(two)?.used).toBe(whole.length)
    }
  })

  it('refuses what is not an HTTP/1.x answer', () => {
    expect(() => parseResponse(Buffer.from('SSH-2.0-OpenSSH\r\n\r\n'))).toThrow(/status line/)
  })
})

it("keeps one connection open across a player's requests, and opens another only after a close or a failure", () => {
  const r = spawnSync(BUN, ['test/bench/keep-alive-scenario.ts'], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 })
  expect(r.status, r.stderr).toBe(0)
  const report = JSON.parse(r.stdout.trim().split('\n').at(-1)!)
  // Five requests and an 8 MiB body (written as the socket drains) on one connection to a Bun server.
  expect(report.answers).toHaveLength(5)
  report.answers.forEach((a: { status: number; retryAfter: string; body: { echo: string; auth: string } }, i: number) =>
    expect(a).toEqual({ status: 200, retryAfter: '3', body: { length: 15, echo: `{"i":${i},"é":"ü"}`, auth: `Bearer t${i}` } }),
  )
  expect(report.big).toBe(8 << 20)
  expect(report.bunPeers).toBe(1)
  expect(report.bunOpened).toBe(1)
  expect(report.chunked).toEqual(['200 hello, world', '200 hello, world'])
  expect(report.chunkedConnections).toBe(1)
  // "connection: close": the next request on a new connection.
  expect(report.closing).toEqual(['503 no', '503 no'])
  expect(report.closingConnections).toBe(2)
  // A dropped connection fails its request; the next one reconnects.
  expect(report.dropped).toEqual(['200 ok', 'error: connection closed', '200 ok'])
  expect(report.droppingConnections).toBe(2)
  expect(report.silent).toBe('no answer within 300 ms')
}, 90_000)
