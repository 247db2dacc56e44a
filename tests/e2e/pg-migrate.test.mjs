// `gatehouse migrate --store postgresql://...` against a real PostgreSQL 15 started for this
// file: the schema applied once and recorded with checksums, two migrators at once, an edited
// migration refused, an unreachable server reported, the staff commands running on
// PostgreSQL now that every operation is ported, and the test server itself leaving nothing
// behind when its owner is killed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BINARY, ROOT } from './lib/server.mjs';
import { spawnSync } from 'node:child_process';
import { spawnChild, waitExit } from './lib/children.mjs';
import { startPostgres, psql } from './lib/postgres.mjs';

let pg, dataDir;

before(async () => {
  pg = await startPostgres();
  dataDir = mkdtempSync(join(tmpdir(), 'gatehouse-test-'));
});
after(async () => {
  await pg?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

// Runs the binary to its end (with a deadline) and returns {code, out, err}.
async function gatehouse(args, env = {}) {
  const proc = spawnChild(BINARY, [...args, '--data-dir', dataDir], { env: { ...process.env, ...env } });
  let out = '', err = '';
  proc.child.stdout.on('data', (d) => { out += d; });
  proc.child.stderr.on('data', (d) => { err += d; });
  // 'exit' can come before the last of the output has been read: wait for the pipes too.
  const closed = new Promise((res) => proc.child.once('close', res));
  const { code } = await waitExit(proc, { timeoutMs: 60000, what: `gatehouse ${args[0]}` });
  await closed;
  return { code, out, err };
}

const applied = (out) => Number(out.match(/\((\d+) migrations? applied now\)/)?.[1]);

test('migrate applies the PostgreSQL schema once and records each migration with its SHA-256', async () => {
  const url = pg.createDatabase('once');
  const first = await gatehouse(['migrate', '--store', url]);
  assert.equal(first.code, 0, first.err);
  const m = first.out.match(/PostgreSQL database 127\.0\.0\.1:\d+\/once is at schema version (\d+) \((\d+) migrations applied now\)/);
  assert.ok(m, first.out);
  const version = Number(m[1]);
  assert.ok(version >= 1);
  const rows = psql(url, 'SELECT version, name, length(sha256) FROM schema_migrations ORDER BY version').split('\n');
  console.log(`migrate: schema version ${version}; recorded: ${rows.join(', ')}`);
  // Numbers may leave gaps (each port branch has its own): every migration applied is
  // recorded, and the version is the highest number.
  assert.equal(Number(m[2]), rows.length);
  assert.equal(Number(rows.at(-1).split('|')[0]), version);
  assert.match(rows[0], /^1\|0001_schema\.sql\|64$/);
  // The schema is there, in PostgreSQL's terms.
  assert.equal(psql(url, "SELECT data_type FROM information_schema.columns WHERE table_name = 'ledger_entries' AND column_name = 'amount_nusd'"), 'bigint');
  assert.equal(psql(url, "SELECT data_type FROM information_schema.columns WHERE table_name = 'invoices' AND column_name = 'issued_at'"), 'timestamp with time zone');
  assert.equal(psql(url, "SELECT string_agg(a.attname, ',' ORDER BY k.n) FROM pg_index i CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY k(attnum, n) JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum WHERE i.indrelid = 'usage_events'::regclass AND i.indisprimary"), 'node_id,journal_seq');
  psql(url, "INSERT INTO organizations (id, name, created_at) VALUES ('org_1', 'Acme', now()); " +
    "INSERT INTO ledger_entries (org_id, kind, amount_nusd, reference, created_at) VALUES ('org_1', 'grant', 1000000000, 'g1', now())");
  assert.throws(() => psql(url, 'DELETE FROM ledger_entries'), /ledger entries are append-only: DELETE refused/);
  assert.equal(psql(url, 'SELECT count(*) FROM ledger_entries'), '1');

  const second = await gatehouse(['migrate', '--store', url]);
  assert.equal(second.code, 0, second.err);
  assert.equal(applied(second.out), 0);
  assert.equal(Number(psql(url, 'SELECT count(*) FROM schema_migrations')), rows.length);
});

test('two migrate processes started at once: one migrates, the other waits and finds nothing to do', async () => {
  const url = pg.createDatabase('race');
  const [a, b] = await Promise.all([gatehouse(['migrate', '--store', url]), gatehouse(['migrate', '--store', url])]);
  assert.equal(a.code, 0, a.err);
  assert.equal(b.code, 0, b.err);
  const total = Number(psql(url, 'SELECT count(*) FROM schema_migrations'));
  console.log(`two migrators: ${applied(a.out)} and ${applied(b.out)} applied; ${total} recorded`);
  assert.deepEqual([applied(a.out), applied(b.out)].sort(), [0, total]);
});

test('a migration whose checksum differs from the recorded one is refused, and nothing changes', async () => {
  const url = pg.createDatabase('edited');
  assert.equal((await gatehouse(['migrate', '--store', url])).code, 0);
  psql(url, "UPDATE schema_migrations SET sha256 = repeat('0', 64) WHERE version = 1");
  const r = await gatehouse(['migrate', '--store', url]);
  assert.equal(r.code, 1);
  assert.match(r.err, /migration 0001_schema\.sql was changed after it was applied .* add a new one instead/);
  assert.equal(psql(url, 'SELECT sha256 FROM schema_migrations WHERE version = 1'), '0'.repeat(64));
});

test('a bad or unreachable store is reported clearly; a password in the URL is refused', async () => {
  const down = await gatehouse(['migrate', '--store', 'postgresql://gatehouse@127.0.0.1:1/nothing']);
  assert.equal(down.code, 1);
  assert.match(down.err, /cannot connect to PostgreSQL at 127\.0\.0\.1:1\/nothing: .*Connection refused/);
  const pw = await gatehouse(['migrate', '--store', 'postgresql://gatehouse:hunter2@127.0.0.1/x']);
  assert.equal(pw.code, 1);
  assert.match(pw.err, /--store: url must not contain a password/);
  assert.ok(!pw.err.includes('hunter2'), 'the password is never echoed');
  const other = await gatehouse(['migrate', '--store', 'mysql://db/x']);
  assert.equal(other.code, 1);
  assert.match(other.err, /url must be sqlite:PATH or postgresql:\/\//);
  // From the config file, with the password's variable named there.
  const ini = join(dataDir, 'pg.ini');
  writeFileSync(ini, `[store]\nurl = ${pg.createDatabase('fromfile')}\npassword_env = GH_TEST_PG_PASSWORD\n`);
  const unset = await gatehouse(['migrate', '--config', ini]);
  assert.equal(unset.code, 1);
  assert.match(unset.err, /password_env names the environment variable GH_TEST_PG_PASSWORD, which is not set/);
  const set = await gatehouse(['migrate', '--config', ini], { GH_TEST_PG_PASSWORD: 'not-needed-with-trust' });
  assert.equal(set.code, 0, set.err);
  assert.match(set.out, /\/fromfile is at schema version/);
});

test('with every operation ported, the staff commands run on a PostgreSQL store: credits granted, the ledger checked, a wrong organization refused', async () => {
  const url = pg.createDatabase('staff');
  const m = await gatehouse(['migrate', '--store', url]);
  assert.equal(m.code, 0, m.err);
  psql(url, "INSERT INTO organizations (id, name, created_at) VALUES ('org_x', 'X', now())");
  const grant = await gatehouse(['credits', 'grant', '--org', 'org_x', '--usd', '5', '--reason', 'test', '--store', url]);
  assert.equal(grant.code, 0, grant.err);
  assert.match(grant.out, /granted \$5\.00 to org_x .*balance now \$5\.00/);
  // One lot, one entry, the cached balance: written together.
  assert.equal(psql(url, "SELECT kind || ':' || amount_nusd FROM ledger_entries"), 'grant:5000000000');
  assert.equal(psql(url, "SELECT balance_nusd FROM billing_accounts WHERE org_id = 'org_x'"), '5000000000');
  assert.equal(psql(url, "SELECT remaining_nusd FROM credit_lots WHERE org_id = 'org_x'"), '5000000000');
  const check = await gatehouse(['ledger', 'check', '--store', url]);
  assert.equal(check.code, 0, check.err);
  assert.match(check.out, /org_x +ok +balance \$5\.00/);
  assert.match(check.out, /the ledger is consistent/);
  const wrong = await gatehouse(['credits', 'grant', '--org', 'org_nope', '--usd', '5', '--reason', 'test', '--store', url]);
  assert.equal(wrong.code, 1);
  assert.match(wrong.err, /There is no organization with id "org_nope"/);
  assert.equal(psql(url, 'SELECT count(*) FROM ledger_entries'), '1');
  // The SQLite store (the default) is untouched by all this and still migrates.
  const lite = await gatehouse(['migrate', '--store', `sqlite:${join(dataDir, 'lite.db')}`]);
  assert.equal(lite.code, 0, lite.err);
  assert.match(lite.out, /database .*lite\.db is at schema version \d+/);
});

test('every table and column of the SQLite schema exists in the PostgreSQL schema', async () => {
  // Both stores are migrated by this binary; a SQLite migration without its PostgreSQL
  // counterpart fails here. Deliberate differences: times in milliseconds (`*_ms` integers in
  // SQLite) are timestamptz columns without the suffix in PostgreSQL.
  const lite = join(dataDir, 'parity.db');
  assert.equal((await gatehouse(['migrate', '--store', `sqlite:${lite}`])).code, 0);
  const url = pg.createDatabase('parity');
  assert.equal((await gatehouse(['migrate', '--store', url])).code, 0);
  const q = spawnSync('sqlite3', ['-readonly', lite,
    "SELECT m.name || '.' || p.name FROM sqlite_schema m, pragma_table_info(m.name) p " +
    "WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'"], { encoding: 'utf8' });
  assert.equal(q.status, 0, q.stderr);
  const sqliteCols = q.stdout.trim().split('\n').map((c) => c.replace(/_ms$/, ''));
  const pgCols = new Set(psql(url, "SELECT table_name || '.' || column_name FROM information_schema.columns WHERE table_schema = 'public'").split('\n'));
  const missing = sqliteCols.filter((c) => !pgCols.has(c));
  console.log(`schema parity: ${sqliteCols.length} SQLite columns, ${pgCols.size} PostgreSQL columns, ${missing.length} missing`);
  assert.deepEqual(missing, [], 'SQLite columns with no PostgreSQL counterpart');
});

test('a test process killed with SIGKILL leaves no PostgreSQL behind', async () => {
  // A separate node process starts a server through lib/postgres.mjs, then is killed.
  const code = `import { startPostgres } from ${JSON.stringify(join(ROOT, 'tests/e2e/lib/postgres.mjs'))};
    const pg = await startPostgres(); console.log('PID ' + pg.pid + ' DIR ' + pg.dir); setInterval(() => {}, 1000);`;
  const holder = spawnChild(process.execPath, ['--input-type=module', '-e', code]);
  const [pid, dir] = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no server in 60 s:\n${holder.log()}`)), 60000);
    holder.child.stdout.on('data', () => {
      const m = holder.log().match(/PID (\d+) DIR (\S+)/);
      if (m) { clearTimeout(timer); resolve([Number(m[1]), m[2]]); }
    });
  });
  const alive = (p) => { try { process.kill(p, 0); return true; } catch { return false; } };
  assert.ok(alive(pid), 'the server runs');
  holder.child.kill('SIGKILL');
  await waitExit(holder, { what: 'the holder' });
  // The server notices its owner is gone (its standard input closes) and is stopped: wait for
  // that, with a deadline rather than a bet on how long it takes.
  const deadline = Date.now() + 30000;
  while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  assert.ok(!alive(pid), `postgres (pid ${pid}) outlived the process that started it`);
  console.log(`postgres pid ${pid} ended with its killed owner`);
  rmSync(dir, { recursive: true, force: true });
});
