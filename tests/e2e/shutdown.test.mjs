// Shutdown (issue 12, point 6): on SIGTERM both planes stop accepting at once and drain at the
// same time (the model API takes no new request while the console drains), requests in
// progress on both finish, and the exit is clean; a second signal stops at once, logged, with
// a non-zero exit status. A console request is held in progress by another process holding
// SQLite's write lock (the request waits in its busy timeout); a model request by a slow
// streaming mock.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnChild, waitExit } from './lib/children.mjs';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { startServer } from './lib/server.mjs';
import { Client } from './lib/client.mjs';
import { uniq } from './lib/expect.mjs';
import { until } from './lib/billing.mjs';

const CONFIG = {
  server: { shutdown_grace_ms: 60000 },
  store: { busy_timeout_ms: 60000 },
  'model slow': { style: 'mock', mock_tokens_per_second: 10 },
};

// A metric, read over a new connection with a short timeout (null when it timed out): the
// console's workers each serve the connections they accepted, so a connection that lands on the
// worker held by the blocked request waits with it; another attempt lands elsewhere.
function metric(server, name) {
  return new Promise((res, rej) => {
    const req = http.get(`${server.consoleUrl}/metrics`, { agent: false, timeout: 1000 }, (r) => {
      let text = '';
      r.on('data', (d) => { text += d; });
      r.on('end', () => {
        const m = text.match(new RegExp(`^${name} ([0-9.]+)$`, 'm'));
        if (!m) rej(new Error(`no metric ${name}`));
        else res(Number(m[1]));
      });
    });
    req.on('timeout', () => { req.destroy(); res(null); });
    req.on('error', rej);
  });
}

// Whether a new TCP connection to `url` is refused (a pooled keep-alive connection would not
// tell: it was accepted before the stop).
function refuses(url) {
  const u = new URL(url);
  return new Promise((res) => {
    const sock = net.connect(Number(u.port), u.hostname);
    sock.on('connect', () => { sock.destroy(); res(false); });
    sock.on('error', () => res(true));
  });
}

// Holds a lock that makes the server's next key creation wait, until release() is called:
// SQLite's write lock (BEGIN IMMEDIATE in the sqlite3 tool), or on PostgreSQL an exclusive
// lock on the keys table held by a psql session.
async function holdLock(server) {
  const proc = server.storeUrl
    ? spawnChild('psql', ['-X', '-q', '-At', server.storeUrl], { stdio: ['pipe', 'pipe', 'inherit'] })
    : spawnChild('sqlite3', [join(server.dataDir, 'gatehouse.db')], { stdio: ['pipe', 'pipe', 'inherit'] });
  const p = proc.child;
  let out = '';
  p.stdout.on('data', (d) => { out += d; });
  p.stdin.write(server.storeUrl ? "BEGIN;\nLOCK TABLE keys IN ACCESS EXCLUSIVE MODE;\nSELECT 'locked';\n"
    : "BEGIN IMMEDIATE;\nSELECT 'locked';\n");
  await until(() => out.includes('locked'), 'the lock', 10000);
  return {
    async release() { if (p.exitCode === null) { p.stdin.end('COMMIT;\n'); } await waitExit(proc, { what: 'the process holding the lock' }); },
    kill() { if (p.exitCode === null) p.kill('SIGKILL'); },
  };
}

// A started server with an organization, an API key, and a console request held in progress.
async function serverWithHeldRequest(t) {
  const server = await startServer({ config: CONFIG });
  const admin = new Client(server.consoleUrl);
  await admin.signUpWithOrg(server, uniq('stop'), 'Acme');
  const key = (await admin.post('/v1/organizations/api_keys', { name: 'load' })).body.key;
  const lock = await holdLock(server);
  t.after(async () => {
    lock.kill();
    if (server.child.exitCode === null && server.child.signalCode === null) server.child.kill('SIGKILL');
    await server.stop({ expectFailure: true });
  });
  const consolePending = admin.post('/v1/organizations/api_keys', { name: 'while stopping' });
  // The write is in its handler, waiting for the lock (the /metrics request counts itself).
  await until(async () => await metric(server, 'gatehouse_console_requests_in_progress') >= 2,
    'the console request to be in progress', 10000);
  return { server, key, lock, consolePending };
}

test('SIGTERM: both planes stop accepting at once, drain together and exit cleanly', async (t) => {
  const { server, key, lock, consolePending } = await serverWithHeldRequest(t);
  // A model request streaming slowly: in progress once its headers are in.
  const model = await fetch(`${server.apiUrl}/v1/messages`, {
    method: 'POST',
    body: JSON.stringify({ model: 'slow', max_tokens: 30, stream: true, messages: [{ role: 'user', content: 'hi' }] }),
    headers: { 'content-type': 'application/json', 'x-api-key': key, 'anthropic-version': '2023-06-01' },
  });
  assert.equal(model.status, 200);

  server.child.kill('SIGTERM');
  await server.waitForLog(/SIGTERM|Terminated/);
  // Neither plane takes a new connection while the console request is still draining
  // (before, the model API kept accepting until the console had drained).
  await until(() => refuses(server.apiUrl), 'the model API to refuse new connections', 10000);
  assert.ok(await refuses(server.consoleUrl), 'the console refuses new connections');
  assert.equal(server.child.exitCode, null, 'still draining');

  // Both requests in progress finish.
  const text = await model.text();
  assert.match(text, /event: message_stop/);
  await lock.release();
  const r = await consolePending;
  assert.equal(r.status, 201, JSON.stringify(r.body));
  const { code } = await server.waitExit();
  assert.equal(code, 0);
  assert.match(server.log, /stopped cleanly/);
});

test('a second SIGTERM stops at once, logged, with a non-zero exit status', async (t) => {
  const { server, consolePending } = await serverWithHeldRequest(t);
  const cut = assert.rejects(consolePending); // the request in progress is cut off
  server.child.kill('SIGTERM');
  await server.waitForLog(/finishing in-flight requests/);
  server.child.kill('SIGTERM');
  const { code } = await server.waitExit(); // the held request would keep it for its 60 s grace
  assert.equal(code, 128 + 15);
  assert.match(server.log, /second signal \((Terminated|SIGTERM)\): stopping at once/);
  assert.doesNotMatch(server.log, /stopped cleanly/);
  await cut;
});
