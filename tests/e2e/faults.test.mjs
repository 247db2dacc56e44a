// Faults of the machine under the server (issue 12, points 1-3, 7 and 14): a full disk under
// the data directory (a small tmpfs; tests run as root), a database locked by another process
// for longer than the busy timeout, the metrics that show both, and the modes of the files that
// hold personal data. In each case nothing a client saw as 200 is lost or counted twice, and
// the server keeps running.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { spawnChild, waitExit } from './lib/children.mjs';
import { mkdtempSync, rmSync, openSync, writeSync, closeSync, chmodSync, statSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, STORE } from './lib/server.mjs';
import { Client } from './lib/client.mjs';
import { uniq, sql as runSql } from './lib/expect.mjs';
import { until } from './lib/billing.mjs';

const CONFIG = { 'model fast': { style: 'mock', price_input: 3, price_output: 15 } };
const BODY = JSON.stringify({ model: 'fast', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] });

// The trimmed output of `query` on the database of `server` (either backend).
const sql = (server, query) => runSql(server, query).trim();

async function call(server, key) {
  const r = await fetch(`${server.apiUrl}/v1/messages`, {
    method: 'POST', body: BODY,
    headers: { 'content-type': 'application/json', 'x-api-key': key, 'anthropic-version': '2023-06-01' },
  });
  return { status: r.status, id: r.headers.get('request-id'), body: await r.json() };
}

async function metric(server, name) {
  const text = await (await fetch(`${server.consoleUrl}/metrics`)).text();
  const m = text.match(new RegExp(`^${name.replace(/[{}"]/g, '\\$&')} ([0-9.]+)$`, 'm'));
  assert.ok(m, `no metric ${name}`);
  return Number(m[1]);
}

// Usage charged in the ledger equals the cost of the usage events: nothing charged twice.
function assertChargedOnce(server) {
  const cost = Number(sql(server, 'SELECT coalesce(sum(cost_nusd), 0) FROM usage_events'));
  const charged = Number(sql(server, "SELECT coalesce(-sum(amount_nusd), 0) FROM ledger_entries WHERE kind = 'usage'"));
  assert.ok(cost > 0);
  assert.equal(charged, cost, 'the ledger charged the usage events exactly once');
}

// Writes `path` until the file system has no byte left.
function fill(path) {
  const fd = openSync(path, 'a');
  try {
    for (const size of [1 << 20, 1 << 12, 1]) {
      const buf = Buffer.alloc(size, 7);
      try { for (;;) writeSync(fd, buf); } catch (e) { if (e.code !== 'ENOSPC') throw e; }
    }
  } finally {
    closeSync(fd);
  }
}

test('a full disk refuses model requests with 529, keeps the console, and loses nothing', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'gatehouse-full-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=20m', 'tmpfs', dataDir]);
  let server;
  t.after(async () => {
    if (server && server.child.exitCode === null && server.child.signalCode === null) {
      server.child.kill('SIGKILL');
      await server.exited;
    }
    execFileSync('umount', [dataDir]);
    rmSync(dataDir, { recursive: true, force: true });
  });
  const filler = join(dataDir, 'filler');

  server = await startServer({ dataDir, config: CONFIG });
  const admin = new Client(server.consoleUrl);
  await admin.signUpWithOrg(server, uniq('full'), 'Acme');
  const key = (await admin.post('/v1/organizations/api_keys', { name: 'load' })).body.key;

  // No model request yet, so the journal has no disk space taken: the first one needs some.
  // (Before the fix it wrote into a sparse mapping and the process died of SIGBUS.)
  fill(filler);
  const refused = await call(server, key);
  assert.equal(refused.status, 529, JSON.stringify(refused.body));
  assert.equal(refused.body.error.type, 'overloaded_error');
  assert.match(refused.body.error.message, /usage cannot be recorded: the disk is full/);
  // The console keeps serving and says why it is degraded; the model API's health check fails.
  const health = await admin.get('/healthz');
  assert.equal(health.status, 200);
  assert.equal(health.body.status, 'degraded');
  assert.match(health.body.reason, /disk is full/);
  assert.equal((await fetch(`${server.apiUrl}/healthz`)).status, 503);
  assert.equal((await admin.get('/v1/organizations/api_keys')).status, 200);
  assert.ok(await metric(server, 'gatehouse_usage_refused_total{reason="disk_full"}') >= 1);
  assert.equal(await metric(server, 'gatehouse_usage_journal_disk_full'), 1);

  // Space returns: service resumes by itself.
  rmSync(filler);
  const ok = new Set();
  await until(async () => {
    const r = await call(server, key);
    if (r.status === 200) ok.add(r.id);
    return r.status === 200;
  }, 'the model API to serve again', 10000);
  for (let i = 0; i < 40; i++) {
    const r = await call(server, key);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    ok.add(r.id);
  }
  assert.equal((await fetch(`${server.apiUrl}/healthz`)).status, 200);

  // Full again, with journal space already taken: requests may still be served (their slots
  // have disk space) while the database cannot grow; whatever is answered 200 is kept.
  fill(filler);
  for (let i = 0; i < 20; i++) {
    const r = await call(server, key);
    assert.ok(r.status === 200 || r.status === 529, `status ${r.status}`);
    if (r.status === 200) ok.add(r.id);
  }
  const stopped = await server.stop({ keepData: true });
  assert.equal(stopped.code, 0, 'a clean stop on a full disk');

  // A start on the full disk (before, it exited 1: "cannot replay the usage journal") serves
  // the console; then the usage comes in: replayed from the journal, or committed before the
  // stop. On SQLite the database shares the full disk, so the journal cannot be replayed yet:
  // the start is degraded and the model API refuses until the disk has room. On PostgreSQL the
  // replay reaches a database elsewhere and frees the journal's slots, so a request may be
  // served at once (and is then kept like any other).
  fill(filler);
  server = await startServer({ dataDir, config: CONFIG });
  const healthz = await new Client(server.consoleUrl).get('/healthz');
  assert.equal(healthz.status, 200);
  if (STORE === 'sqlite') {
    assert.equal(healthz.body.status, 'degraded', JSON.stringify(healthz.body));
    assert.equal((await call(server, key)).status, 529);
  } else {
    const r = await call(server, key);
    assert.ok(r.status === 200 || r.status === 529, `status ${r.status}`);
    if (r.status === 200) ok.add(r.id);
  }
  rmSync(filler);
  await until(async () => (await fetch(`${server.apiUrl}/healthz`)).status === 200,
    'the model API to be healthy', 15000);
  await until(async () => Number(sql(server, 'SELECT count(*) FROM usage_events')) >= ok.size,
    'every served request in usage_events', 15000);
  const ids = new Set(sql(server, 'SELECT request_id FROM usage_events').split('\n'));
  const missing = [...ok].filter((id) => !ids.has(id));
  assert.deepEqual(missing, [], `${missing.length} requests answered 200 have no usage event`);
  assert.equal(Number(sql(server, 'SELECT count(*) FROM usage_events')),
    Number(sql(server, 'SELECT count(DISTINCT request_id) FROM usage_events')), 'no event counted twice');
  assert.equal(Number(sql(server, 'SELECT count(*) FROM usage_events')), ok.size, 'only served requests');
  assertChargedOnce(server);
  await server.stop();
});

test('a database locked longer than the busy timeout delays usage, never drops it', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'gatehouse-locked-'));
  let server, locker;
  t.after(async () => {
    if (locker && locker.exitCode === null) locker.kill('SIGKILL');
    if (server && server.child.exitCode === null && server.child.signalCode === null) {
      server.child.kill('SIGKILL');
      await server.exited;
    }
    rmSync(dataDir, { recursive: true, force: true });
  });
  // A short busy timeout, so the lock below outlasts it many times in a short test.
  server = await startServer({ dataDir, config: { ...CONFIG, store: { busy_timeout_ms: 300 } } });
  const admin = new Client(server.consoleUrl);
  await admin.signUpWithOrg(server, uniq('locked'), 'Acme');
  const key = (await admin.post('/v1/organizations/api_keys', { name: 'load' })).body.key;
  const before = await metric(server, 'gatehouse_usage_commit_failures_total');

  // Another process takes a lock the usage writer needs and holds it until told to commit:
  // SQLite's write lock, or on PostgreSQL an exclusive lock on usage_events (the writer then
  // meets its lock_timeout, which busy_timeout_ms sets on that backend).
  const lockerProc = server.storeUrl
    ? spawnChild('psql', ['-X', '-q', '-At', server.storeUrl], { stdio: ['pipe', 'pipe', 'inherit'] })
    : spawnChild('sqlite3', [join(dataDir, 'gatehouse.db')], { stdio: ['pipe', 'pipe', 'inherit'] });
  locker = lockerProc.child;
  let out = '';
  locker.stdout.on('data', (d) => { out += d; });
  locker.stdin.write(server.storeUrl ? "BEGIN;\nLOCK TABLE usage_events IN EXCLUSIVE MODE;\nSELECT 'locked';\n"
    : "BEGIN IMMEDIATE;\nSELECT 'locked';\n");
  await until(() => out.includes('locked'), 'the lock', 10000);

  const served = [];
  for (let i = 0; i < 100; i++) {
    const r = await call(server, key);
    assert.equal(r.status, 200, JSON.stringify(r.body)); // the model path never waits on SQL
    served.push(r.id);
  }
  // The writer has failed (busy timeout) more than once: the lock outlasted the timeout.
  await until(async () => await metric(server, 'gatehouse_usage_commit_failures_total') >= before + 2,
    'two failed commits', 20000);
  assert.ok(await metric(server, 'gatehouse_usage_backlog') >= 100);
  assert.ok(await metric(server, 'gatehouse_usage_oldest_uncommitted_seconds') > 0);
  const health = await admin.get('/healthz');
  assert.equal(health.body.status, 'degraded');

  locker.stdin.end('COMMIT;\n');
  await waitExit(lockerProc, { what: 'the process holding the lock' });
  await until(async () => await metric(server, 'gatehouse_usage_backlog') === 0, 'the backlog to drain', 20000);
  assert.equal(await metric(server, 'gatehouse_usage_oldest_uncommitted_seconds'), 0);
  const ids = new Set(sql(server, 'SELECT request_id FROM usage_events').split('\n'));
  const missing = served.filter((id) => !ids.has(id));
  assert.deepEqual(missing, [], `${missing.length} events dropped`);
  assert.equal(Number(sql(server, 'SELECT count(*) FROM usage_events')), 100);
  assertChargedOnce(server);
  assert.equal((await admin.get('/healthz')).body.status, 'ok');
  await server.stop();
});

test('the admission engine\'s overrun count is exported', async (t) => {
  const server = await startServer({ config: CONFIG });
  t.after(() => server.stop());
  assert.equal(await metric(server, 'gatehouse_admission_overruns_total'), 0);
  assert.equal(await metric(server, 'gatehouse_admission_overrun_nusd_total'), 0);
});

test('the data directory is 0700 and every file in it 0600, older ones included', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'gatehouse-modes-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  chmodSync(dataDir, 0o755);
  const mode = (p) => (statSync(join(dataDir, p)).mode & 0o777).toString(8);
  let server = await startServer({ dataDir, config: CONFIG });
  const admin = new Client(server.consoleUrl);
  await admin.signUpWithOrg(server, uniq('modes'), 'Acme'); // a sign-in mail, database writes
  const key = (await admin.post('/v1/organizations/api_keys', { name: 'k' })).body.key;
  assert.equal((await call(server, key)).status, 200); // the journal has a record
  const check = () => {
    assert.equal(mode('.'), '700');
    assert.equal(mode('outbox'), '700');
    // On PostgreSQL the database lives elsewhere; the journal and the mail are still here.
    for (const f of [...(STORE === 'sqlite' ? ['gatehouse.db', 'gatehouse.db-wal', 'gatehouse.db-shm'] : []), 'usage.journal'])
      assert.equal(mode(f), '600', f);
    const mails = readdirSync(join(dataDir, 'outbox'));
    assert.ok(mails.length > 0);
    for (const f of mails) assert.equal(mode(join('outbox', f)), '600', f);
  };
  check();
  await server.stop();
  // Files an older version left readable by everyone are narrowed at the next start.
  for (const f of ['.', 'outbox']) chmodSync(join(dataDir, f), 0o755);
  for (const f of [...(STORE === 'sqlite' ? ['gatehouse.db'] : []), 'usage.journal']) chmodSync(join(dataDir, f), 0o644);
  server = await startServer({ dataDir, config: CONFIG });
  check();
  await server.stop();
});
