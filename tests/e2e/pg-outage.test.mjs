// A PostgreSQL outage under load (issue 13 point 4): Gatehouse on PostgreSQL, metering and
// admission on, model requests flowing through the official SDK; PostgreSQL is stopped and
// started again on the same data and port, and Gatehouse is never restarted.
//
// While it is down: the console and the Organization API answer 503 api_error "The database is
// unavailable, try again shortly."; a sign-in mail request answers the same 503 (the outbox is a
// table: nothing is promised that cannot be kept); every model request still answers 200
// (admission decides from memory, usage goes to the journal); the usage backlog in /metrics
// grows; the console's /healthz answers 200 "degraded", the model API's 503 "degraded" (a load
// balancer may drain model traffic, docs/operations.md); no thread spins reconnecting and the
// log says it once, not once per attempt. Once PostgreSQL is back: the console answers 200
// again, the backlog drains to 0, every 200 response has exactly one usage event, and the
// ledger's usage charges equal the events' cost (`gatehouse ledger check`).
//
// Each test starts a PostgreSQL of its own (lib/postgres.mjs), also in the SQLite run of the
// suite, so both runs test the same thing (the file's point is that PostgreSQL goes), and
// stops it in a finally, with whatever listened on its port meanwhile: a test that fails
// leaves nothing behind for the next.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import Anthropic from '@anthropic-ai/sdk';
import { startServer, sql as runSql } from './lib/server.mjs';
import { startPostgres } from './lib/postgres.mjs';
import { spawnChild, stopChild, waitExit, running } from './lib/children.mjs';
import { LIMITS_CONFIG, orgWithKey, grant, until } from './lib/limits.mjs';
import { assertLedgerConsistent } from './lib/billing.mjs';
import { Client } from './lib/client.mjs';
import { uniq } from './lib/expect.mjs';

const DOWN_MESSAGE = 'The database is unavailable, try again shortly.';
const DEADLINE_MS = 30000;


const metric = async (server, name) => {
  const text = await (await fetch(`${server.consoleUrl}/metrics`)).text();
  const m = text.match(new RegExp(`^${name} (\\d+(?:\\.\\d+)?)$`, 'm'));
  assert.ok(m, `no ${name} in /metrics`);
  return Number(m[1]);
};
const healthz = async (url) => {
  const r = await fetch(`${url}/healthz`);
  return { status: r.status, body: await r.json() };
};
// The server's own log lines (the access log's lines left out).
const logLines = (server) => server.log.split('\n').filter((l) => l.trim() && !/^(console|api) req_/.test(l));

// While PostgreSQL is down, something else listens on its port and counts the connection
// attempts (each is accepted and closed at once, which libpq takes as a failed connect).
async function countConnects(port) {
  const counter = { n: 0 };
  const sockets = new Set();
  const srv = createServer((s) => { counter.n++; sockets.add(s); s.on('close', () => sockets.delete(s)); s.destroy(); });
  await new Promise((res, rej) => { srv.once('error', rej); srv.listen(port, '127.0.0.1', res); });
  let closed; // close() may be called again (the test's finally): once is enough
  counter.close = () => (closed ??= new Promise((res) => { for (const s of sockets) s.destroy(); srv.close(res); }));
  return counter;
}

test('a PostgreSQL restart under load: 503 on the console, 200 on the model path, nothing lost', async () => {
  const pg = await startPostgres();
  let server, connects;
  let stopLoad = async () => {};
  try {
    const storeUrl = pg.createDatabase('outage');
    // On PostgreSQL a node admits within its money leases, which last lease_ttl_ms without the
    // database (issue 14, docs/cluster.md): long enough here for the outage phase on a loaded box.
    // Its rate limits (the Evaluation tier's) are shares of the cluster's buckets, drawn every few
    // milliseconds: while the draws fail the node admits within a safe local share of each
    // (docs/architecture.md, "Cluster: rate limits").
    server = await startServer({ storeUrl, config: { ...LIMITS_CONFIG, server: { threads: 4, api_threads: 2 },
      billing: { scheduler_interval_s: 1 }, cluster: { lease_ttl_ms: 60000 } } });
    const { admin, key, orgId } = await orgWithKey(server, 'Outage');
    await grant(server, admin, orgId, '50');
    const client = new Anthropic({ apiKey: key, baseURL: server.apiUrl, maxRetries: 0 });

    // The load: 6 workers, each one request after another, until told to stop.
    const ok = []; // request ids of 200 responses
    const failures = [];
    let phase = 'before';
    const perPhase = { before: 0, down: 0, after: 0 };
    let stop = false;
    const worker = async () => {
      while (!stop) {
        const p = phase;
        try {
          const { data, response } = await client.messages.create({
            model: 'gatehouse-mock-small', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }],
          }).withResponse();
          assert.equal(data.type, 'message');
          ok.push(response.headers.get('request-id'));
          perPhase[p]++;
        } catch (e) {
          failures.push(`${p}: ${e.status ?? ''} ${e.message}`);
        }
      }
    };
    const workers = Array.from({ length: 6 }, worker);
    stopLoad = async () => { stop = true; await Promise.allSettled(workers); };
    await until(() => perPhase.before >= 50, '50 model responses before the outage', DEADLINE_MS);
    // The node's money lease is sized to last lease_ttl_ms at the recent rate of spend, which it
    // learns over its first looks: the outage starts once the lease holds at least 150 of the
    // costliest request so far (or fails the test at the deadline), so the outage phase below
    // measures serving from memory, not how fast the estimate grew.
    const costliest = Number(runSql(server, 'SELECT coalesce(max(cost_nusd), 0) FROM usage_events').trim());
    assert.ok(costliest > 0, 'the requests before the outage were charged');
    await until(async () => (await metric(server, 'gatehouse_cluster_leases_held_nusd')) >= 150 * costliest,
      'the lease to hold 150 requests', DEADLINE_MS);

    // ---- PostgreSQL goes away ----
    const linesBefore = logLines(server).length;
    const submittedBefore = await metric(server, 'gatehouse_usage_events_total\\{stage="submitted"\\}');
    phase = 'down';
    const downAt = Date.now();
    await pg.halt();
    connects = await countConnects(Number(new URL(storeUrl).port));

    // The console: 503 api_error with the message, for a signed-in user's own API.
    const console503 = await until(async () => {
      const r = await admin.get('/v1/organizations/api_keys');
      return r.status === 503 ? r : null;
    }, 'the console to answer 503', DEADLINE_MS);
    assert.deepEqual(console503.body.error, { type: 'api_error', message: DOWN_MESSAGE });
    assert.equal(console503.body.type, 'error');
    // A sign-in mail request: 503 as well, nothing queued.
    const signIn = await new Client(server.consoleUrl).post('/auth/email', { email: uniq('late') });
    assert.equal(signIn.status, 503, JSON.stringify(signIn.body));
    assert.deepEqual(signIn.body.error, { type: 'api_error', message: DOWN_MESSAGE });

    // The model path serves, and the backlog grows while the writer cannot commit.
    const downOk = perPhase.down;
    await until(() => perPhase.down >= downOk + 100, '100 model responses while PostgreSQL is down', DEADLINE_MS);
    const backlog = await until(async () => {
      const b = await metric(server, 'gatehouse_usage_backlog');
      return b >= 100 ? b : null;
    }, 'the usage backlog to grow', DEADLINE_MS);
    assert.ok(await metric(server, 'gatehouse_usage_events_total\\{stage="submitted"\\}') > submittedBefore);
    const consoleHealth = await healthz(server.consoleUrl);
    assert.equal(consoleHealth.status, 200);
    assert.equal(consoleHealth.body.status, 'degraded');
    assert.match(consoleHealth.body.reason, /writer retries/);
    const apiHealth = await healthz(server.apiUrl);
    assert.equal(apiHealth.status, 503);
    assert.equal(apiHealth.body.status, 'degraded');

    // Keep it down a few seconds of load, long enough for any spinning thread to show in the log.
    const downFor = 4000;
    await until(() => Date.now() - downAt >= downFor, 'the outage to last', DEADLINE_MS);
    const outageLog = logLines(server).slice(linesBefore);
    const downMs = Date.now() - downAt;
    await connects.close();
    console.log(`# outage ${downMs} ms: ${perPhase.down} model responses, backlog ${backlog}, ` +
      `${connects.n} connection attempts, ${outageLog.length} log lines:\n${outageLog.join('\n')}`);
    // No thread spins reconnecting: a thread's attempts are 200 ms apart, then 400, 800, 1600
    // and 2000 (src/store/postgres/pgstore.c), so in D ms one thread makes at most 2 + D/1000.
    // The threads that may reach the database: 4 console threads, the usage writer, the
    // mailer, the admission watcher (polling every 50 ms here) and the billing scheduler (every
    // second here). Without the back-off the watcher alone would try 20 times a second.
    const threads = 8;
    const most = threads * (2 + Math.ceil(downMs / 1000));
    assert.ok(connects.n > 0, 'the server tried to reconnect while PostgreSQL was down');
    assert.ok(connects.n <= most, `${connects.n} connection attempts in ${downMs} ms (at most ${most})`);
    // The log says it once per outage, not once per attempt or per pass: a line from the
    // store, the usage writer, the billing scheduler, the mailer, the money and the rate leases
    // at most, and two from the change feed's listener, each once. (Whether the scheduler or
    // the mailer ran a pass during the outage is timing: the count has room for both.)
    assert.ok(outageLog.length <= 9, `the log got ${outageLog.length} lines during the outage:\n${outageLog.join('\n')}`);
    const said = outageLog.map((l) => l.replace(/^\S+ \S+\s+/, '').replace(/\d+/g, 'N'));
    assert.equal(new Set(said).size, said.length, `a line said twice during the outage:\n${outageLog.join('\n')}`);
    assert.equal(outageLog.filter((l) => /store: cannot connect to PostgreSQL/.test(l)).length, 1, outageLog.join('\n'));
    assert.ok(outageLog.every((l) => !/password/i.test(l)), 'no secret in the log');

    // ---- PostgreSQL comes back, on the same port ----
    phase = 'after';
    await pg.restart();
    await until(async () => (await admin.get('/v1/organizations/api_keys')).status === 200,
      'the console to answer 200 again', DEADLINE_MS);
    await until(() => perPhase.after >= 50, '50 model responses after the outage', DEADLINE_MS);
    // Mail flows again: a sign-in link is queued and the mailer writes it out.
    const late = uniq('back');
    assert.equal((await new Client(server.consoleUrl).post('/auth/email', { email: late })).status, 202);
    await until(() => server.outbox().some((m) => m.to?.includes(late)), 'the sign-in mail after the outage', DEADLINE_MS);
    stop = true;
    await Promise.all(workers);
    // Every model request answered 200, but for the refusals the design makes while the
    // database is away: once the node's safe share of a rate limit or its money lease is
    // spent, 529 overloaded_error saying so (docs/cluster.md, failure modes); nothing else.
    const documented = /^down: 529 529 .*"overloaded_error".*(cannot reach its database to renew this node's share of your rate limits|This Gatehouse node cannot reach its database)/;
    assert.deepEqual(failures.filter((f) => !documented.test(f)), [], 'every other model request answered 200');
    await until(async () => (await metric(server, 'gatehouse_usage_backlog')) === 0, 'the backlog to drain', DEADLINE_MS);
    assert.equal((await healthz(server.apiUrl)).status, 200);
    assert.equal((await healthz(server.consoleUrl)).body.status, 'ok');

    // Nothing lost, nothing twice.
    const sql = (q) => runSql(server, q).trim();
    const ids = sql('SELECT request_id FROM usage_events').split('\n').filter(Boolean);
    assert.equal(ids.length, new Set(ids).size, 'no request has two usage events');
    const have = new Set(ids);
    const missing = ok.filter((id) => !have.has(id));
    assert.deepEqual(missing, [], `${missing.length} of ${ok.length} 200 responses have no usage event`);
    assert.equal(ids.length, ok.length, 'one usage event per 200 response, no more');
    const cost = sql('SELECT coalesce(sum(cost_nusd), 0) FROM usage_events');
    const charged = sql("SELECT coalesce(-sum(amount_nusd), 0) FROM ledger_entries WHERE kind = 'usage'");
    assert.equal(charged, cost, 'the ledger charged exactly the events\' cost');
    assertLedgerConsistent(server);
    assert.equal(await metric(server, 'gatehouse_usage_rejected_total'), 0, 'an outage sets no event aside');
    console.log(`# ${ok.length} responses (${perPhase.before} before, ${perPhase.down} during, ${perPhase.after} after), cost ${cost} nano-USD`);
  } finally {
    await stopLoad();
    if (server) await server.stop();
    if (connects) await connects.close();
    await pg.stop();
  }
});

// [store] statement_timeout_ms: a statement that runs longer is cancelled by PostgreSQL and
// the request answers 503, changing nothing. A psql session holds the write lock every write
// transaction takes (GH_PGS_WRITE_LOCK, src/store/postgres/pg_int.h), so a console write
// waits; the lock timeout ([store] busy_timeout_ms) is a minute here, so only the statement
// timeout can end the wait within the test's deadline. Once the session lets go, the same
// write succeeds.
test('[store] statement_timeout_ms: a write stuck behind a lock answers 503, then succeeds', async () => {
  const pg = await startPostgres();
  let server, holder;
  try {
    const storeUrl = pg.createDatabase('stmt_timeout');
    server = await startServer({ storeUrl, config: { store: { busy_timeout_ms: 60000, statement_timeout_ms: 2000 } } });
    const admin = new Client(server.consoleUrl);
    await admin.signUpWithOrg(server, uniq('timeout'), 'Timeout');
    const keysBefore = (await admin.get('/v1/organizations/api_keys')).body.data.length;

    holder = spawnChild('psql', ['-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', storeUrl], { stdio: ['pipe', 'pipe', 'pipe'] });
    holder.child.stdin.write('BEGIN;\nSELECT pg_advisory_xact_lock(29106784831108197);\nSELECT \'held\';\n');
    await until(() => /^held$/m.test(holder.log()), 'the psql session to hold the write lock', DEADLINE_MS);

    const started = Date.now();
    const stuck = await admin.post('/v1/organizations/api_keys', { name: 'stuck' });
    const waited = Date.now() - started;
    assert.equal(stuck.status, 503, JSON.stringify(stuck.body));
    assert.deepEqual(stuck.body.error, { type: 'api_error', message: DOWN_MESSAGE });
    assert.ok(waited < 20000, `the write waited ${waited} ms: the statement timeout (2 s) did not end it`);
    console.log(`# a write behind the held lock answered 503 after ${waited} ms`);

    holder.child.stdin.end('COMMIT;\n');
    await waitExit(holder, { what: 'psql' });
    const keysNow = await admin.get('/v1/organizations/api_keys');
    assert.equal(keysNow.body.data.length, keysBefore, 'the failed write changed nothing');
    const made = await admin.post('/v1/organizations/api_keys', { name: 'after' });
    assert.equal(made.status, 201, JSON.stringify(made.body));
  } finally {
    if (holder && running(holder.child)) await stopChild(holder, { what: 'psql' });
    if (server) await server.stop();
    await pg.stop();
  }
});
