// The data plane (model API listener, libh2o): /healthz, Anthropic-shaped 404s with a
// request id, keep-alive, and an access log that never holds query strings.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServer } from './lib/server.mjs';

let server;

before(async () => { server = await startServer(); });
after(async () => { await server?.stop(); });

// One request over a given agent; resolves {status, headers, body, socket}.
function send(method, path, { agent, body, headers = {} } = {}) {
  const u = new URL(path, server.apiUrl);
  return new Promise((res, rej) => {
    const req = http.request(u, { method, agent, headers }, (r) => {
      let data = '';
      r.setEncoding('utf8');
      r.on('data', (d) => { data += d; });
      r.on('end', () => res({ status: r.statusCode, headers: r.headers, body: data, socket: req.socket }));
    });
    req.on('error', rej);
    req.end(body);
  });
}

test('GET /healthz answers ok with a request id', async () => {
  const r = await send('GET', '/healthz');
  assert.equal(r.status, 200);
  assert.match(r.headers['content-type'], /application\/json/);
  // The node: on SQLite a single node, 'local'; on PostgreSQL one of a possible cluster, with
  // the id kept in its data directory (docs/cluster.md).
  const postgres = server.store === 'postgres';
  assert.deepEqual(JSON.parse(r.body), { status: 'ok', clustered: postgres, store_connected: true,
    node_id: postgres ? readFileSync(join(server.dataDir, 'node_id'), 'utf8').trim() : 'local' });
  assert.match(r.headers['request-id'], /^req_01[0-9A-Za-z]{22}$/);
});

test('unknown routes get an Anthropic-shaped 404 whose request_id matches the header', async () => {
  for (const [method, path] of [['GET', '/v1/nothing'], ['POST', '/'], ['DELETE', '/healthz/x']]) {
    const r = await send(method, path, { body: method === 'POST' ? '{"model":"x"}' : undefined });
    assert.equal(r.status, 404, `${method} ${path}`);
    const j = JSON.parse(r.body);
    assert.equal(j.type, 'error');
    assert.equal(j.error.type, 'not_found_error');
    assert.match(j.error.message, new RegExp(`^No route for ${method} ${path.replace(/\//g, '\\/')}\\.`));
    assert.equal(j.request_id, r.headers['request-id']);
    assert.match(j.request_id, /^req_01[0-9A-Za-z]{22}$/);
  }
});

test('request ids are unique and connections are kept alive', async () => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const ids = new Set();
    const sockets = new Set();
    for (let i = 0; i < 20; i++) {
      const r = await send('GET', '/healthz', { agent });
      ids.add(r.headers['request-id']);
      sockets.add(r.socket);
    }
    assert.equal(ids.size, 20);
    assert.equal(sockets.size, 1, 'all 20 requests should share one keep-alive connection');
  } finally {
    agent.destroy();
  }
});

test('HEAD /healthz has the headers and no body', async () => {
  const r = await send('HEAD', '/healthz');
  assert.equal(r.status, 200);
  assert.equal(r.body, '');
  assert.match(r.headers['request-id'], /^req_01/);
});

test('the access log has one line per request and never the query string', async () => {
  const r = await send('GET', '/v1/models?key=sk-secret-value');
  const id = r.headers['request-id'];
  const [line] = await server.waitForLog(new RegExp(`api ${id} .*`));
  assert.match(line, new RegExp(`^api ${id} GET /v1/models 401 \\d+us 127\\.0\\.0\\.1$`));
  assert.ok(!server.log.includes('sk-secret-value'));
});

test('the console and the model API are different listeners', async () => {
  assert.notEqual(new URL(server.consoleUrl).port, new URL(server.apiUrl).port);
  // The console's own API is not served on the model API port.
  const r = await send('GET', '/auth/session');
  assert.equal(r.status, 404);
});
