// The HTTP core of the console listener (request ids, errors for unknown paths and methods,
// health, reference data, the console's pages, the access log, clean shutdown) and the
// command line (help, version, migrate, configuration errors).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, existsSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, lastLink, BINARY, STORE, testPostgres, sql } from './lib/server.mjs';
import { Client } from './lib/client.mjs';
import { assertError } from './lib/expect.mjs';

const REQUEST_ID = /^req_01[0-9A-Za-z]{22}$/;
let server;
const tmpDirs = [];

before(async () => {
  server = await startServer();
});

after(async () => {
  await server?.stop();
  for (const d of tmpDirs) rmSync(d, { recursive: true, force: true });
});

function tmp() {
  const d = mkdtempSync(join(tmpdir(), 'gatehouse-cli-'));
  tmpDirs.push(d);
  return d;
}

// Resolves once `predicate(log)` holds, re-checking whenever the server writes output; the
// access log line of a request is written just after its response is sent.
function waitForLog(srv, predicate, what, timeoutMs = 5000) {
  if (predicate(srv.log)) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const streams = [srv.child.stdout, srv.child.stderr];
    const done = (err) => {
      clearTimeout(timer);
      for (const s of streams) s.off('data', check);
      if (err) reject(err); else resolve();
    };
    const check = () => { if (predicate(srv.log)) done(); };
    const timer = setTimeout(() => done(new Error(`not in the log after ${timeoutMs} ms: ${what}\n${srv.log}`)), timeoutMs);
    for (const s of streams) s.on('data', check);
  });
}

function run(args, opts = {}) {
  return spawnSync(BINARY, args, { encoding: 'utf8', timeout: 15000, cwd: opts.cwd ?? tmp(), ...opts });
}

test('every response carries a unique request-id', async () => {
  const requests = [
    ['GET', '/healthz', 200], ['GET', '/v1/countries', 200], ['GET', '/auth/session', 401],
    ['GET', '/v1/nope', 404], ['DELETE', '/auth/session', 405], ['POST', '/auth/email', 400],
    ['GET', '/auth/verify?token=x', 303], ['GET', '/', 200], ['GET', '/login', 200],
    ['GET', '/settings/organization', 200], ['GET', '/static/app.js', 200], ['GET', '/static/style.css', 200],
    ['GET', '/static/does-not-exist.js', 404], ['HEAD', '/healthz', 200], ['GET', '/healthz', 200],
  ];
  const ids = new Set();
  for (const [method, path, status] of requests) {
    const r = await fetch(server.consoleUrl + path, {
      method, redirect: 'manual',
      ...(method === 'POST' ? { body: '{"email":"nope"}', headers: { 'content-type': 'application/json' } } : {}),
    });
    assert.equal(r.status, status, `${method} ${path}`);
    const id = r.headers.get('request-id');
    assert.match(id ?? '', REQUEST_ID, `${method} ${path}: request-id ${id}`);
    assert.ok(!ids.has(id), `request-id ${id} repeated`);
    ids.add(id);
    const text = await r.text();
    if (r.status >= 400 && /json/.test(r.headers.get('content-type') ?? '')) assert.equal(JSON.parse(text).request_id, id);
  }
  const parallel = await Promise.all(Array.from({ length: 50 }, () => fetch(server.consoleUrl + '/healthz')));
  const more = parallel.map((r) => r.headers.get('request-id'));
  for (const id of more) assert.match(id, REQUEST_ID);
  assert.equal(new Set([...ids, ...more]).size, ids.size + more.length, 'request ids are not unique');
});

test('an unknown API path is a JSON 404', async () => {
  const c = new Client(server.consoleUrl);
  for (const [method, path] of [['GET', '/v1/nope'], ['GET', '/v1/organizations/me/nope'], ['POST', '/v1/nope'],
    ['GET', '/auth/nope'], ['GET', '/v1'], ['DELETE', '/v1/organizations/nope']]) {
    const r = await c.request(method, path);
    assertError(r, 404, 'not_found_error');
    assert.equal(r.headers.get('content-security-policy'), null, `${path} was answered with the console page`);
  }
});

test('a wrong method on a known path is a 405 naming the right ones', async () => {
  const c = new Client(server.consoleUrl);
  for (const [method, path, allowed] of [
    ['DELETE', '/auth/session', ['GET']], ['GET', '/auth/email', ['POST']], ['POST', '/healthz', ['GET']],
    ['PUT', '/v1/organizations/me/settings', ['GET', 'POST']], ['PATCH', '/auth/logout', ['POST']],
    ['POST', '/v1/countries', ['GET']],
  ]) {
    const r = await c.request(method, path);
    assertError(r, 405, 'invalid_request_error');
    const allow = (r.headers.get('allow') ?? '').split(',').map((s) => s.trim()).filter(Boolean);
    for (const m of allowed) assert.ok(allow.includes(m), `${method} ${path}: allow "${r.headers.get('allow')}" lacks ${m}`);
    assert.ok(!allow.includes(method), `${method} ${path}: allow lists the refused method`);
  }
});

test('GET /healthz', async () => {
  const r = await fetch(server.consoleUrl + '/healthz');
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /^application\/json/);
  // The node (docs/cluster.md): a single node on SQLite, 'local', the leader of itself; on
  // PostgreSQL one of a possible cluster, its id kept in its data directory.
  const postgres = STORE === 'postgres';
  assert.deepEqual(await r.json(), { status: 'ok', clustered: postgres, store_connected: true, leader: true,
    node_id: postgres ? readFileSync(join(server.dataDir, 'node_id'), 'utf8').trim() : 'local' });
});

test('GET /v1/countries lists every ISO 3166-1 country with its VAT flag', async () => {
  const r = await fetch(server.consoleUrl + '/v1/countries');
  assert.equal(r.status, 200);
  const { data, ...rest } = await r.json();
  assert.deepEqual(rest, {});
  assert.equal(data.length, 249);
  for (const c of data) {
    assert.deepEqual(Object.keys(c).sort(), ['code', 'name', 'vat']);
    assert.match(c.code, /^[A-Z]{2}$/);
    assert.ok(c.name.length > 0);
    assert.equal(typeof c.vat, 'boolean');
  }
  assert.equal(new Set(data.map((c) => c.code)).size, 249, 'duplicate country codes');
  const by = Object.fromEntries(data.map((c) => [c.code, c]));
  assert.deepEqual(by.IT, { code: 'IT', name: 'Italy', vat: true });
  assert.equal(by.US.vat, false);
  const vat = data.filter((c) => c.vat).map((c) => c.code).sort();
  const EU = ['AT', 'BE', 'BG', 'CY', 'CZ', 'DE', 'DK', 'EE', 'ES', 'FI', 'FR', 'GR', 'HR', 'HU', 'IE', 'IT', 'LT',
    'LU', 'LV', 'MT', 'NL', 'PL', 'PT', 'RO', 'SE', 'SI', 'SK'];
  assert.deepEqual(vat, [...EU, 'CH', 'GB', 'NO'].sort(), 'VAT countries are the EU members plus GB, CH and NO');
});

test('GET /v1/countries is sorted by name as a person reads it', async () => {
  const { data } = await (await fetch(server.consoleUrl + '/v1/countries')).json();
  const names = data.map((c) => c.name);
  const collator = new Intl.Collator('en', { sensitivity: 'base' });
  const outOfOrder = [];
  for (let i = 1; i < names.length; i++) {
    if (collator.compare(names[i - 1], names[i]) > 0) outOfOrder.push(`${names[i - 1]} before ${names[i]}`);
  }
  assert.deepEqual(outOfOrder, [], 'the picker order is not alphabetical');
});

test('console pages are HTML with a content-security-policy', async () => {
  for (const path of ['/', '/login', '/settings/organization', '/some/deep/console/route']) {
    const r = await fetch(server.consoleUrl + path);
    assert.equal(r.status, 200, path);
    assert.match(r.headers.get('content-type') ?? '', /^text\/html/, path);
    const csp = r.headers.get('content-security-policy') ?? '';
    assert.match(csp, /default-src 'self'/, `${path}: content-security-policy "${csp}"`);
    assert.match(csp, /script-src 'self'/);
    assert.match(await r.text(), /<html/i, path);
  }
  const js = await fetch(server.consoleUrl + '/static/app.js');
  assert.equal(js.status, 200);
  assert.match(js.headers.get('content-type') ?? '', /javascript/);
});

test('the access log has one line per request and never a sign-in token', async () => {
  const c = new Client(server.consoleUrl);
  const email = `log.${Date.now()}@example.com`;
  const sent = await c.post('/auth/email', { email });
  assert.equal(sent.status, 202);
  const link = lastLink(server, email);
  const token = new URL(link).searchParams.get('token');
  const verify = await c.get(new URL(link).pathname + new URL(link).search);
  assert.equal(verify.status, 303);
  const use = await c.post('/auth/verify', { token });
  assert.equal(use.status, 200);
  const badToken = `NeverLogThis${Date.now()}x`;
  const bad = await c.get(`/auth/verify?token=${badToken}`);
  const missing = await c.get('/v1/nope?secret=querystring');
  const session = await c.get('/auth/session');

  const seen = [
    [sent, 'POST', '/auth/email', 202], [verify, 'GET', '/auth/verify', 303], [use, 'POST', '/auth/verify', 200],
    [bad, 'GET', '/auth/verify', 303],
    [missing, 'GET', '/v1/nope', 404], [session, 'GET', '/auth/session', 200],
  ];
  const lineOf = (id) => server.log.split('\n').filter((l) => l.includes(id));
  for (const [r, method, path, status] of seen) {
    const id = r.headers.get('request-id');
    await waitForLog(server, (log) => log.includes(id), `access line for ${method} ${path} (${id})`);
    const lines = lineOf(id);
    assert.equal(lines.length, 1, `${id}: ${lines.length} log lines`);
    const [line] = lines;
    assert.ok(line.includes(method), line);
    assert.ok(line.includes(path), line);
    assert.ok(line.includes(String(status)), line);
    if (path === '/auth/verify') assert.ok(!line.includes('token'), `the query string is logged: ${line}`);
  }
  assert.ok(!server.log.includes(badToken), 'an /auth/verify query string reached the log');
  assert.ok(!server.log.includes('secret=querystring'), 'a query string reached the access log');
  // The real token appears only in the outbox-mode notice that prints the link.
  for (const line of server.log.split('\n').filter((l) => l.includes(token))) {
    assert.match(line, /sign-in link/, `the sign-in token is logged: ${line}`);
  }
});

test('SIGTERM stops the server cleanly', async () => {
  const s = await startServer();
  const r = await fetch(s.consoleUrl + '/healthz');
  assert.equal(r.status, 200);
  const { code, signal } = await s.stop();
  assert.equal(signal, null, `killed by ${signal}`);
  assert.equal(code, 0, s.log);
  assert.match(s.log, /stopped cleanly/);
});

test('gatehouse --help, help and version', () => {
  for (const args of [['--help'], ['help'], ['-h']]) {
    const r = run(args);
    assert.equal(r.status, 0, `${args}: ${r.stderr}`);
    for (const word of ['serve', 'migrate', 'version']) assert.ok(r.stdout.includes(word), `${args} lacks ${word}`);
  }
  const v = run(['version']);
  assert.equal(v.status, 0, v.stderr);
  assert.match(v.stdout, /^gatehouse \d+\.\d+\.\d+/);
  const none = run([]);
  assert.notEqual(none.status, 0, 'no command is an error');
  const unknown = run(['frobnicate']);
  assert.notEqual(unknown.status, 0);
  assert.match(unknown.stderr, /frobnicate/);
});

test('gatehouse migrate creates the database and reports the schema version', async () => {
  const dir = join(tmp(), 'data');
  // On PostgreSQL: a fresh database of this file's server, named with --store.
  const url = STORE === 'postgres' ? (await testPostgres()).createDatabase() : undefined;
  const store = url ? ['--store', url] : [];
  const r = run(['migrate', '--data-dir', dir, ...store]);
  assert.equal(r.status, 0, r.stderr);
  if (!url) assert.ok(existsSync(join(dir, 'gatehouse.db')), 'no database file');
  const version = r.stdout.match(/schema version (\d+)/);
  assert.ok(version, `no schema version in: ${r.stdout}`);
  assert.ok(Number(version[1]) >= 1);
  const tables = sql({ dataDir: dir, storeUrl: url }, {
    sqlite: "SELECT name FROM sqlite_master WHERE type = 'table';",
    postgres: "SELECT tablename FROM pg_tables WHERE schemaname = current_schema();",
  });
  for (const t of ['accounts', 'organizations', 'memberships', 'sessions']) assert.match(tables, new RegExp(`\\b${t}\\b`));
  // Running it again is harmless and reports the same version.
  const again = run(['migrate', '--data-dir', dir, ...store]);
  assert.equal(again.status, 0, again.stderr);
  assert.equal(again.stdout.match(/schema version (\d+)/)?.[1], version[1]);
});

test('gatehouse serve refuses a missing config file or an unknown key', () => {
  const dir = tmp();
  const listen = ['--data-dir', dir, '--listen', '127.0.0.1:0', '--api-listen', '127.0.0.1:0'];
  const missing = run(['serve', '--config', '/nonexistent/gatehouse.ini', ...listen]);
  assert.notEqual(missing.status, 0, 'serve started without its config file');
  assert.equal(missing.signal, null, 'serve kept running without its config file');
  assert.ok(missing.stderr.includes('/nonexistent/gatehouse.ini'), `the file is not named: ${missing.stderr}`);

  const config = join(dir, 'bad.ini');
  writeFileSync(config, '[server]\nthreads = 2\nfrobnicate = yes\n');
  const unknown = run(['serve', '--config', config, ...listen]);
  assert.notEqual(unknown.status, 0, 'serve accepted an unknown key');
  assert.equal(unknown.signal, null, 'serve kept running with an unknown key');
  assert.match(unknown.stderr, /:3\b/, `the line is not named: ${unknown.stderr}`);
  assert.match(unknown.stderr, /frobnicate/);
});
