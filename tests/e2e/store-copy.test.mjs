// Moving an installation: a real server on SQLite gathers real data (sign-ups, an org with
// workspaces, members, keys, purchases and invoices, a staff grant, model calls so usage and
// rollups exist, mail in the outbox), is stopped, and `gatehouse store copy` moves it into a
// fresh PostgreSQL 15 database. Every table is compared row by row; the ledger check runs on
// the target; a second copy into the now non-empty database and a SQLite file with a table
// this Gatehouse cannot map are both refused, changing nothing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { BINARY, startServer } from './lib/server.mjs';
import { startPostgres, psql } from './lib/postgres.mjs';
import { addMember } from './lib/expect.mjs';
import { PRICEY, buy, billing, readyOrg, until, modelCall, gatehouse, assertLedgerConsistent } from './lib/billing.mjs';

let pg, server, dataDir, dbPath, orgId;

before(async () => {
  [pg, server] = await Promise.all([
    startPostgres(),
    // The source is a SQLite installation on both runs of the suite.
    startServer({ store: 'sqlite', config: { ...PRICEY, billing: { scheduler_interval_s: 1 } } }),
  ]);
  dataDir = server.dataDir;
  dbPath = join(dataDir, 'gatehouse.db');
});
after(async () => {
  if (server?.child.exitCode === null) await server.stop();
  await pg?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

function copy(from, url) {
  return spawnSync(BINARY, ['store', 'copy', '--from', `sqlite:${from}`, '--to', url,
    '--config', join(dataDir, 'gatehouse.ini'), '--data-dir', dataDir], { encoding: 'utf8' });
}

function sqlite3(file, sql) {
  const r = spawnSync('sqlite3', ['-readonly', file, sql], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim();
}

// Every user table of a SQLite file with its columns: [{table, columns: [{name, notnull}]}].
function sqliteTables(file) {
  const rows = JSON.parse(sqlite3(file,
    "SELECT json_group_array(json_array(m.name, p.name, p.\"notnull\")) FROM sqlite_schema m, " +
    "pragma_table_info(m.name) p WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' " +
    "AND m.name <> 'schema_migrations' ORDER BY m.name, p.cid"));
  const tables = new Map();
  for (const [t, c, notnull] of rows) {
    if (!tables.has(t)) tables.set(t, []);
    tables.get(t).push({ name: c, notnull: notnull === 1 });
  }
  return tables;
}

const counts = (url) => Object.fromEntries(psql(url,
  "SELECT table_name, (xpath('/row/n/text()', query_to_xml('SELECT count(*) AS n FROM ' || table_name, false, true, '')))[1]::text " +
  "FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1").split('\n').map((l) => l.split('|')));

test('a SQLite installation with real data moves to PostgreSQL, every table and row intact', async () => {
  // Real data, through the console and the model API.
  const { client: admin, orgId: org } = await readyOrg(server, 'Moving');
  orgId = org;
  for (const amount of ['10.00', '5.00']) assert.equal((await buy(admin, amount)).status, 200);
  const ws = await admin.post('/v1/organizations/workspaces', { name: 'Research' });
  assert.equal(ws.status, 201, JSON.stringify(ws.body));
  const dev = await addMember(server, admin, 'developer');
  await addMember(server, admin, 'billing');
  const wm = await admin.post(`/v1/organizations/workspaces/${ws.body.id}/members`, { user_id: dev.id, workspace_role: 'workspace_developer' });
  assert.equal(wm.status, 201, JSON.stringify(wm.body));
  assert.equal((await admin.post('/v1/organizations/limits', { monthly_spend_limit_usd: '50.00' })).status, 200);
  for (const body of [{ kind: 'spend_amount', amount_usd: '1.50' }, { kind: 'balance_below', amount_usd: '1.00' }]) {
    const n = await admin.post('/v1/organizations/limits/notifications', body);
    assert.ok(n.status === 200 || n.status === 201, JSON.stringify(n.body));
  }
  const k = await admin.post('/v1/organizations/api_keys', { name: 'moving key' });
  assert.equal(k.status, 201, JSON.stringify(k.body));
  const grant = gatehouse(server, 'credits', 'grant', '--org', orgId, '--usd', '2', '--reason', 'welcome');
  assert.equal(grant.status, 0, grant.stderr);
  for (let i = 0; i < 3; i++) await modelCall(server, k.body.key); // $1.00 each
  await until(async () => (await billing(admin)).balance_usd === '14.00', 'the usage drawn from the balance');
  await server.stop({ keepData: true });
  const staff = gatehouse(server, 'staff', 'add', dev.email);
  assert.equal(staff.status, 0, staff.stderr);
  const sourceCheck = assertLedgerConsistent(server);

  const tables = sqliteTables(dbPath);
  const url = pg.createDatabase('moved');
  const r = copy(dbPath, url);
  console.log(r.stdout.trim());
  assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
  assert.match(r.stdout, /the ledger is consistent/);

  // The ledger check on the target says exactly what it says on the source.
  const checkLines = (out) => out.split('\n').filter((l) => /^\S+\s+(ok|MISMATCH)\s/.test(l));
  assert.deepEqual(checkLines(r.stdout), checkLines(sourceCheck));
  assert.ok(checkLines(r.stdout).some((l) => l.startsWith(orgId) && /ok\s+balance \$14\.00/.test(l)), r.stdout);
  assert.ok(checkLines(r.stdout).some((l) => /^invoices\s+ok\s+\d+: 2 invoices numbered 1 to 2 without gaps/.test(l)), r.stdout);

  // Table by table: the same rows, with times, booleans and JSON mapped back.
  const pgCols = new Map();
  for (const line of psql(url, "SELECT table_name, column_name, data_type, is_identity FROM information_schema.columns WHERE table_schema = 'public'").split('\n')) {
    const [t, c, type, identity] = line.split('|');
    pgCols.set(`${t}.${c}`, { type, identity: identity === 'YES' });
  }
  const summary = [];
  for (const [table, columns] of tables) {
    const sel = [], pgSel = [];
    for (const { name, notnull } of columns) {
      const ms = name.endsWith('_ms') && !pgCols.has(`${table}.${name}`);
      const pgName = ms ? name.slice(0, -3) : name;
      const col = pgCols.get(`${table}.${pgName}`);
      assert.ok(col, `${table}.${name} has no PostgreSQL column`);
      if (col.type === 'jsonb') {
        sel.push(`CAST(${name} AS TEXT)`); // both sides parsed and compared as JSON below
        pgSel.push(`${pgName}::text`);
      } else if (col.type === 'timestamp with time zone') {
        sel.push(`CAST(${name} AS TEXT)`);
        const epoch = `CASE WHEN isfinite(${pgName}) THEN (extract(epoch FROM ${pgName}) * ${ms ? 1000 : 1})::bigint END`;
        pgSel.push(notnull ? `coalesce(${epoch}, 0)::text` : `${epoch}::text`);
      } else if (col.type === 'boolean') {
        sel.push(`CAST(${name} AS TEXT)`);
        pgSel.push(`${pgName}::int::text`);
      } else {
        sel.push(`CAST(${name} AS TEXT)`);
        pgSel.push(`${pgName}::text`);
      }
    }
    // Tables with a seq column keep SQLite's rowid order in it; the others are compared as sets.
    const ordered = pgCols.get(`${table}.seq`)?.identity;
    const liteRows = JSON.parse(sqlite3(dbPath, `SELECT json_group_array(json_array(${sel.join(', ')})) FROM (SELECT * FROM ${table}${ordered ? ' ORDER BY rowid' : ''})`));
    const pgRows = JSON.parse(psql(url, `SELECT coalesce(json_agg(json_build_array(${pgSel.join(', ')})${ordered ? ' ORDER BY seq' : ''}), '[]') FROM ${table}`));
    const norm = (rows) => rows.map((row) => JSON.stringify(row.map((v, i) => (
      v !== null && pgCols.get(`${table}.${columns[i].name}`)?.type === 'jsonb' ? JSON.stringify(JSON.parse(v)) : v))));
    const a = norm(liteRows), b = norm(pgRows);
    if (!ordered) { a.sort(); b.sort(); }
    assert.deepEqual(b, a, `table ${table} differs`);
    summary.push(`${table}=${a.length}`);
  }
  console.log(`compared ${tables.size} tables: ${summary.join(' ')}`);
  const n = counts(url);
  for (const t of ['accounts', 'organizations', 'memberships', 'workspaces', 'sessions', 'invites', 'keys',
    'audit_log', 'purchases', 'invoices', 'credit_lots', 'ledger_entries', 'invoice_counters', 'usage_events',
    'usage_rollup_minute', 'usage_rollup_hour', 'usage_rollup_day', 'mail_outbox', 'billing_accounts', 'payment_methods',
    'workspace_members', 'org_limits', 'spend_notifications', 'staff'])
    assert.ok(Number(n[t]) > 0, `${t} has rows on the target (${n[t]})`);
  assert.equal(n.usage_events, '3');
  // A balance notification never sent: SQLite's 0 is PostgreSQL's NULL, as the PostgreSQL store writes it.
  assert.equal(psql(url, "SELECT count(*) FROM spend_notifications WHERE kind = 'balance_below' AND balance_notified_at IS NULL"), '1');
  assert.equal(psql(url, 'SELECT string_agg(DISTINCT node_id, \',\') FROM usage_events'), 'local');
  // Identity sequences continue past the copied values.
  assert.equal(psql(url, "SELECT nextval(pg_get_serial_sequence('ledger_entries', 'id')) > (SELECT max(id) FROM ledger_entries)"), 't');
  assert.equal(psql(url, "SELECT nextval(pg_get_serial_sequence('accounts', 'seq')) > (SELECT max(seq) FROM accounts)"), 't');
});

test('a second copy into the now non-empty database is refused and changes nothing', async () => {
  const url = pg.url.replace(/\/[^/]*$/, '/moved');
  const before = counts(url);
  const r = copy(dbPath, url);
  assert.equal(r.status, 1, r.stdout);
  assert.match(r.stderr, /store copy: the PostgreSQL database 127\.0\.0\.1:\d+\/moved is not empty \(table \w+ has rows\): copy into a new, empty database/);
  assert.deepEqual(counts(url), before);
  console.log(`second copy refused: ${r.stderr.trim()}`);
  // The invoice numbering continues gap-free after the copied invoices (run last: it takes a number).
  const year = psql(url, 'SELECT max(year) FROM invoices');
  const issued = Number(psql(url, `SELECT count(*) FROM invoices WHERE year = ${year}`));
  assert.equal(Number(psql(url, `SELECT gh_next_invoice_seq(${year})`)), issued + 1);
});

test('into a database migrated a while ago, the rollups\' mark moves past every copied minute', () => {
  // PostgreSQL rolls hour and day rollups forward from minute rows after a mark; SQLite's hour
  // and day rows are complete and copied as they are, so the mark must end past every copied
  // minute or the next roll forward would count those minutes twice.
  const url = pg.createDatabase('premigrated');
  const m = spawnSync(BINARY, ['migrate', '--store', url], { encoding: 'utf8' });
  assert.equal(m.status, 0, m.stderr);
  // As if migrated a day before the source's usage.
  psql(url, "UPDATE usage_rollup_watermark SET rolled_before = now() - interval '1 day'");
  const r = copy(dbPath, url);
  assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
  assert.ok(Number(psql(url, 'SELECT count(*) FROM usage_rollup_minute')) > 0);
  assert.equal(psql(url, 'SELECT (SELECT rolled_before FROM usage_rollup_watermark) > (SELECT max(bucket_start) FROM usage_rollup_minute)'), 't');
  // The copied hour and day rows hold the same sums as the minute rows (nothing left to roll).
  for (const t of ['usage_rollup_hour', 'usage_rollup_day'])
    assert.equal(psql(url, `SELECT (SELECT sum(requests) FROM ${t}) = (SELECT sum(requests) FROM usage_rollup_minute)`), 't', t);
});

test('a SQLite table or column this Gatehouse cannot map makes the copy refuse, writing nothing', async () => {
  for (const [what, sql, message] of [
    ['table', 'CREATE TABLE extra_notes (id INTEGER PRIMARY KEY, body TEXT)', /the SQLite table extra_notes has no mapping to a PostgreSQL table/],
    ['column', 'ALTER TABLE accounts ADD COLUMN nickname TEXT', /the SQLite column accounts\.nickname has no mapping to a PostgreSQL column/],
  ]) {
    const file = join(dataDir, `extra-${what}.db`);
    copyFileSync(dbPath, file);
    const w = spawnSync('sqlite3', [file, sql], { encoding: 'utf8' });
    assert.equal(w.status, 0, w.stderr);
    const url = pg.createDatabase(`extra_${what}`);
    const r = copy(file, url);
    assert.equal(r.status, 1, r.stdout);
    assert.match(r.stderr, message);
    assert.match(r.stderr, /nothing was copied/);
    assert.equal(psql(url, 'SELECT count(*) FROM accounts'), '0');
    assert.equal(psql(url, 'SELECT count(*) FROM ledger_entries'), '0');
    console.log(`unmapped ${what} refused: ${r.stderr.trim()}`);
  }
});

test('a copy whose ledger check fails is rolled back whole; an outdated SQLite file is refused', async () => {
  // A cached balance one nano-dollar off: the check on the copy finds it, and nothing stays.
  const bad = join(dataDir, 'bad-ledger.db');
  copyFileSync(dbPath, bad);
  const w = spawnSync('sqlite3', [bad, `UPDATE billing_accounts SET balance_nusd = balance_nusd + 1 WHERE org_id = '${orgId}'`], { encoding: 'utf8' });
  assert.equal(w.status, 0, w.stderr);
  const url = pg.createDatabase('bad_ledger');
  const r = copy(bad, url);
  assert.equal(r.status, 1, r.stdout);
  assert.match(r.stdout, new RegExp(`^${orgId}\\s+MISMATCH\\s+the cached balance \\$14\\.000000001 differs from the entries' sum \\$14\\.00`, 'm'));
  assert.match(r.stderr, /the ledger check found 1 problem on the copy, so it was rolled back and nothing was copied/);
  for (const t of ['accounts', 'ledger_entries', 'usage_events', 'invoices'])
    assert.equal(psql(url, `SELECT count(*) FROM ${t}`), '0', `${t} after a rolled-back copy`);
  console.log(`bad ledger refused: ${r.stderr.trim().split('\n').pop()}`);

  // A SQLite file one migration behind this binary.
  const old = join(dataDir, 'old.db');
  copyFileSync(dbPath, old);
  const latest = sqlite3(old, 'SELECT max(version) FROM schema_migrations');
  assert.equal(spawnSync('sqlite3', [old, `DELETE FROM schema_migrations WHERE version = ${latest}`]).status, 0);
  const o = copy(old, pg.createDatabase('outdated'));
  assert.equal(o.status, 1, o.stdout);
  assert.match(o.stderr, new RegExp(`old\\.db is at schema version \\d+ but this Gatehouse copies version ${latest}: run \`gatehouse migrate --store sqlite:`));
});

test('the command refuses a password in the URL, the wrong kind of store, and missing options', () => {
  const run = (...args) => spawnSync(BINARY, ['store', 'copy', ...args, '--data-dir', dataDir], { encoding: 'utf8' });
  const pw = run('--from', `sqlite:${dbPath}`, '--to', 'postgresql://gatehouse:hunter2@127.0.0.1/x');
  assert.equal(pw.status, 1);
  assert.match(pw.stderr, /--to: url must not contain a password/);
  assert.ok(!`${pw.stdout}${pw.stderr}`.includes('hunter2'), 'the password is never echoed');
  const lite = run('--from', `sqlite:${dbPath}`, '--to', `sqlite:${join(dataDir, 'other.db')}`);
  assert.equal(lite.status, 1);
  assert.match(lite.stderr, /--to: must be postgresql:\/\/USER@HOST:PORT\/DATABASE/);
  const from = run('--from', pg.url, '--to', pg.url);
  assert.equal(from.status, 1);
  assert.match(from.stderr, /--from: must be sqlite:PATH/);
  const missing = run('--from', `sqlite:${dbPath}`);
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /usage: gatehouse store copy/);
  const none = run('--from', `sqlite:${join(dataDir, 'absent.db')}`, '--to', pg.createDatabase('absent'));
  assert.equal(none.status, 1);
  assert.match(none.stderr, /cannot open the SQLite database .*absent\.db/);
});
