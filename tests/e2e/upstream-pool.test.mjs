// The upstream HTTP client and its keep-alive pool (src/gateway/hclient.c), against a raw
// TCP upstream that controls framing and closes byte for byte: connections are reused, a
// server's "connection: close" and HTTP/1.0 are honoured, chunked bodies with extensions and
// trailers and interim 100 responses are read, and a reused connection the server dropped
// before answering is retried once on a new one (while a new connection that fails is not).
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startServer } from './lib/server.mjs';
import { Client } from './lib/client.mjs';
import { uniq } from './lib/expect.mjs';

// An Anthropic-style upstream on raw sockets. The mode of each answer is the user message.
function startRawUpstream() {
  const state = { connections: 0, attempts: [], held: [], waiters: [] };
  // Held answers go out when the test releases them; tests wait for N held requests.
  state.release = () => { for (const f of state.held.splice(0)) f(); };
  state.untilHeld = (n) => new Promise((resolve) => {
    const check = () => (state.held.length >= n ? resolve() : state.waiters.push(check));
    check();
  });
  const server = net.createServer((sock) => {
    const conn = ++state.connections;
    let served = 0;
    let buf = Buffer.alloc(0);
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.subarray(0, end).toString();
        const len = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
        if (buf.length < end + 4 + len) return;
        const body = JSON.parse(buf.subarray(end + 4, end + 4 + len).toString());
        buf = buf.subarray(end + 4 + len);
        const mode = body.messages[0].content;
        state.attempts.push({ conn, mode, served });
        answer(sock, mode, served++);
      }
    });
    sock.on('error', () => {});
  });
  const message = (text) => JSON.stringify({
    id: 'msg_raw', type: 'message', role: 'assistant', model: 'raw', stop_reason: 'end_turn', stop_sequence: null,
    content: [{ type: 'text', text }], usage: { input_tokens: 7, output_tokens: 3 },
  });
  function answer(sock, mode, served) {
    const body = message(`answer to ${mode}`);
    const len = Buffer.byteLength(body);
    switch (mode) {
      case 'close-header':
        sock.end(`HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: ${len}\r\n\r\n${body}`);
        return;
      case 'http10':
        sock.end(`HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n${body}`);
        return;
      case 'chunked': {
        const a = body.slice(0, 10);
        const b = body.slice(10);
        sock.write(`HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`);
        sock.write(`${a.length.toString(16)};ext=1\r\n${a}\r\n`);
        sock.write(`${Buffer.byteLength(b).toString(16).toUpperCase()}\r\n${b}\r\n0\r\nx-trailer: yes\r\n\r\n`);
        return;
      }
      case 'interim':
        sock.write('HTTP/1.1 100 Continue\r\n\r\n');
        sock.write(`HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${len}\r\n\r\n${body}`);
        return;
      case 'drop-reused':
        if (served > 0) { sock.destroy(); return; } // as if it closed the idle connection
        break;
      case 'drop-always':
        sock.destroy();
        return;
      case 'hold':
        state.held.push(() => answer(sock, 'keep', served));
        for (const w of state.waiters.splice(0)) w();
        return;
      default:
        break;
    }
    sock.write(`HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${len}\r\n\r\n${body}`);
  }
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({
    url: `http://127.0.0.1:${server.address().port}`,
    state,
    server,
  })));
}

describe('the upstream connection pool', () => {
  let server;
  let upstream;
  let key;

  before(async () => {
    upstream = await startRawUpstream();
    // One event loop, so every request shares one pool and connection counts are exact.
    server = await startServer({
      config: {
        server: { api_threads: 1 },
        'model raw': { style: 'anthropic', upstream_url: upstream.url, price_input: 1, price_output: 1 },
        'model capped': { style: 'anthropic', upstream_url: upstream.url, max_connections: 2, price_input: 1, price_output: 1 },
        'model single': { style: 'anthropic', upstream_url: upstream.url, max_connections: 1, connect_timeout_ms: 300, price_input: 1, price_output: 1 },
      },
    });
    const admin = new Client(server.consoleUrl);
    await admin.signUpWithOrg(server, uniq('pool'), 'Pool Co');
    const r = await admin.post('/v1/organizations/api_keys', { name: 'pool key' });
    assert.equal(r.status, 201);
    key = r.body.key;
  });
  after(async () => {
    await server?.stop();
    upstream?.server.close();
  });

  async function ask(mode, model = 'raw') {
    const res = await fetch(`${server.apiUrl}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': key, 'anthropic-version': '2023-06-01' },
      body: JSON.stringify({ model, max_tokens: 10, messages: [{ role: 'user', content: mode }] }),
    });
    return { status: res.status, json: await res.json() };
  }
  // The pool's gauges in /metrics, polled until `ready` holds (they change on the loop).
  async function gauges(model, ready) {
    const deadline = Date.now() + 5000;
    for (;;) {
      const text = await (await fetch(`${server.consoleUrl}/metrics`)).text();
      const num = (re) => Number(re.exec(text)?.[1] ?? 0);
      const g = {
        active: num(new RegExp(`^gatehouse_upstream_connections\\{model="${model}",state="active"\\} (\\d+)$`, 'm')),
        idle: num(new RegExp(`^gatehouse_upstream_connections\\{model="${model}",state="idle"\\} (\\d+)$`, 'm')),
        waiting: num(new RegExp(`^gatehouse_upstream_waiting\\{model="${model}"\\} (\\d+)$`, 'm')),
      };
      if (ready(g) || Date.now() > deadline) return g;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  const newConnections = async (fn) => {
    const before = upstream.state.connections;
    await fn();
    return upstream.state.connections - before;
  };

  test('sequential requests reuse one upstream connection', async () => {
    await ask('keep'); // opens the pooled connection
    const opened = await newConnections(async () => {
      for (let i = 0; i < 20; i++) {
        const r = await ask('keep');
        assert.equal(r.status, 200);
        assert.equal(r.json.content[0].text, 'answer to keep');
        assert.deepEqual(r.json.usage, { input_tokens: 7, output_tokens: 3 });
      }
    });
    assert.equal(opened, 0);
  });

  test('"connection: close" and HTTP/1.0 answers are read to the end and not reused', async () => {
    for (const mode of ['close-header', 'http10']) {
      const opened = await newConnections(async () => {
        for (let i = 0; i < 3; i++) {
          const r = await ask(mode);
          assert.equal(r.status, 200, JSON.stringify(r.json));
          assert.equal(r.json.content[0].text, `answer to ${mode}`);
        }
      });
      // Each answer closed its connection: every request after the first needed a new one.
      assert.ok(opened >= 2, `${mode}: ${opened} new connections`);
    }
  });

  test('chunked bodies with extensions and trailers, and interim 100 responses', async () => {
    for (const mode of ['chunked', 'interim']) {
      const r = await ask(mode);
      assert.equal(r.status, 200, JSON.stringify(r.json));
      assert.equal(r.json.content[0].text, `answer to ${mode}`);
    }
    // Both left the connection reusable.
    const opened = await newConnections(async () => assert.equal((await ask('keep')).status, 200));
    assert.equal(opened, 0);
  });

  test('a reused connection dropped before any answer is retried once on a new connection', async () => {
    await ask('keep');
    const attempts = upstream.state.attempts.length;
    const opened = await newConnections(async () => {
      const r = await ask('drop-reused');
      assert.equal(r.status, 200, JSON.stringify(r.json));
      assert.equal(r.json.content[0].text, 'answer to drop-reused');
    });
    assert.equal(opened, 1);
    const tries = upstream.state.attempts.slice(attempts);
    assert.equal(tries.length, 2);
    assert.ok(tries[0].served > 0 && tries[1].served === 0, JSON.stringify(tries));
  });

  test('a request dropped on a fresh connection is not retried: 502', async () => {
    const attempts = upstream.state.attempts.length;
    const r = await ask('drop-always');
    // Whether it was sent on a pooled connection (then retried once) or a new one, the
    // upstream is asked at most twice and the client gets a clean error.
    assert.equal(r.status, 502);
    assert.equal(r.json.error.type, 'api_error');
    assert.match(r.json.error.message, /^The upstream model server for raw did not send a valid response/);
    assert.ok(upstream.state.attempts.length - attempts <= 2);
  });

  test('max_connections: requests beyond it wait for a free connection, in order', async () => {
    const opened = await newConnections(async () => {
      const answers = [1, 2, 3, 4, 5].map(() => ask('hold', 'capped'));
      // Two connections, two requests upstream at a time; the others wait in Gatehouse (as
      // /metrics shows) and take the connections as they come free.
      await upstream.state.untilHeld(2);
      assert.deepEqual(await gauges('capped', (g) => g.waiting === 3), { active: 2, idle: 0, waiting: 3 });
      for (const n of [2, 2, 1]) {
        await upstream.state.untilHeld(n);
        assert.equal(upstream.state.held.length, n);
        upstream.state.release();
      }
      for (const r of await Promise.all(answers)) assert.equal(r.status, 200);
    });
    assert.equal(opened, 2);
    assert.deepEqual(await gauges('capped', (g) => g.active === 0), { active: 0, idle: 2, waiting: 0 });
  });

  test('a request that waits longer than connect_timeout_ms gets a 504 that says why', async () => {
    const first = ask('hold', 'single');
    await upstream.state.untilHeld(1);
    const second = await ask('keep', 'single');
    assert.equal(second.status, 504);
    assert.equal(second.json.error.type, 'timeout_error');
    assert.equal(second.json.error.message,
      'All 1 connections to the upstream model server for single stayed busy for 300 ms.');
    upstream.state.release();
    assert.equal((await first).status, 200);
    assert.equal((await ask('keep', 'single')).status, 200);
  });
});
