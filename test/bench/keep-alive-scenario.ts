/**
 * keep-alive.test.ts's scenario, in Bun (Bun.connect is Bun's): a player's connection against
 * a Bun server and raw servers, printed as one JSON line.
 */
import { keepAliveConnection } from './keep-alive.ts'

const peers = new Set<number>()
const server = Bun.serve({
  port: 0,
  async fetch(req, srv) {
    peers.add(srv.requestIP(req)!.port)
    const body = await req.text()
    return Response.json({ length: body.length, echo: body.length < 100 ? body : '', auth: req.headers.get('authorization') }, { headers: { 'retry-after': '3' } })
  },
})
const conn = keepAliveConnection('127.0.0.1', server.port!)
const answers = []
for (let i = 0; i < 5; i++) answers.push(await conn.request('POST', '/x', { authorization: `Bearer t${i}`, 'content-type': 'application/json' }, `{"i":${i},"é":"ü"}`))
// A body far larger than a socket takes at once: written on drain.
const big = 'x'.repeat(8 << 20)
const bigAnswer = await conn.request('POST', '/x', {}, big)

/** A raw server: answers each request with `reply(n)`, the n-th on its connection; counts connections. */
function rawServer(reply: (n: number) => string | undefined) {
  let connections = 0
  const listener = Bun.listen<{ n: number; buf: string }>({
    hostname: '127.0.0.1',
    port: 0,
    socket: {
      open(s) {
        connections++
        s.data = { n: 0, buf: '' }
      },
      data(s, chunk) {
        s.data.buf += chunk.toString('latin1')
        let end
        while ((end = s.data.buf.indexOf('\r\n\r\n')) >= 0) {
          const len = Number(/content-length: (\d+)/i.exec(s.data.buf.slice(0, end))?.[1] ?? 0)
          if (s.data.buf.length < end + 4 + len) return
          s.data.buf = s.data.buf.slice(end + 4 + len)
          const r = reply(++s.data.n)
          if (r === undefined) s.end()
          else s.write(r)
        }
      },
    },
  })
  return { port: listener.port, connections: () => connections, stop: () => listener.stop(true) }
}
// Chunked answers (answers cut at every byte: keep-alive.test.ts's parseResponse cases).
const chunked = rawServer(() => 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n')
const cc = keepAliveConnection('127.0.0.1', chunked.port)
const chunkedAnswers = [await cc.request('GET', '/', {}, ''), await cc.request('GET', '/', {}, '')]
// "connection: close" after each answer: the next request opens a new connection.
const closing = rawServer(() => 'HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-length: 2\r\n\r\nno')
const kc = keepAliveConnection('127.0.0.1', closing.port)
const closingAnswers = [await kc.request('GET', '/', {}, ''), await kc.request('GET', '/', {}, '')]
// A server that drops the connection on every second request: that request fails, the next one reconnects.
const dropping = rawServer((n) => (n === 2 ? undefined : 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok'))
const dc = keepAliveConnection('127.0.0.1', dropping.port)
const dropped: string[] = []
for (let i = 0; i < 3; i++) dropped.push(await dc.request('GET', '/', {}, '').then((a) => `${a.status} ${a.body}`, (e: Error) => `error: ${e.message}`))
// A server that never answers: the request fails after the timeout.
const silent = rawServer(() => '')
const sc = keepAliveConnection('127.0.0.1', silent.port, { timeoutMs: 300 })
const silentResult = await sc.request('GET', '/', {}, '').then(() => 'answered', (e: Error) => e.message)

console.log(
  JSON.stringify({
    answers: answers.map((a) => ({ status: a.status, retryAfter: a.headers['retry-after'], body: JSON.parse(a.body) })),
    big: JSON.parse(bigAnswer.body).length,
    bunPeers: peers.size,
    bunOpened: conn.opened,
    chunked: chunkedAnswers.map((a) => `${a.status} ${a.body}`),
    chunkedConnections: chunked.connections(),
    closing: closingAnswers.map((a) => `${a.status} ${a.body}`),
    closingConnections: closing.connections(),
    closingOpened: kc.opened,
    dropped,
    droppingConnections: dropping.connections(),
    silent: silentResult,
  }),
)
for (const c of [conn, cc, kc, dc, sc]) c.close()
for (const s of [chunked, closing, dropping, silent]) s.stop()
server.stop(true)
