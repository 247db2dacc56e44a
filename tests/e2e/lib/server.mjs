// Starts a real `gatehouse serve` for a test: a fresh data directory, free ports (the server
// binds port 0 and prints the addresses it got), a config file written from `options.config`.
// stop() sends SIGTERM and waits for a clean exit, killing the server after a grace period.
// The process is started through children.mjs, so it never outlives the test file.
//
// The store: SQLite (gatehouse.db in the data directory) unless GATEHOUSE_TEST_STORE=postgres
// (`make e2e-pg`). Then the first startServer of a test file starts ONE throwaway PostgreSQL
// for the whole file (lib/postgres.mjs), every new data directory gets a fresh database of its
// own (a server restarted on the same data directory finds its data again), the server gets
// `--store postgresql://...` and the config file names the same URL, so the CLI commands a test
// runs with --config reach the same database. The PostgreSQL server is stopped when the file's
// tests end (a root `after` hook; children.mjs kills it too if the file dies first).
import { after } from 'node:test';
import { mkdtempSync, writeFileSync, readdirSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';
import assert from 'node:assert/strict';
import { spawnChild, stopChild, waitExit } from './children.mjs';

export const ROOT = resolve(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '../../..');
export const BINARY = process.env.GATEHOUSE_BIN ?? join(ROOT, 'build/gatehouse');

// 'sqlite' or 'postgres': the backend every server of this run uses.
export const STORE = process.env.GATEHOUSE_TEST_STORE === 'postgres' ? 'postgres' : 'sqlite';

let pgStarted = null; // the promise of this file's PostgreSQL, once the first server asks
const pgDatabases = new Map(); // data directory -> its database's URL

function postgres() {
  // Imported on demand: lib/postgres.mjs imports this module (ROOT), and SQLite runs need none of it.
  pgStarted ??= import('./postgres.mjs').then((m) => m.startPostgres());
  return pgStarted;
}

if (STORE === 'postgres') {
  after(async () => {
    if (pgStarted) await (await pgStarted).stop();
  });
}

// The store URL for a server on `dataDir`: a fresh PostgreSQL database the first time a data
// directory is seen, the same one afterwards; undefined on SQLite (the default file).
async function storeUrlFor(dataDir) {
  if (STORE !== 'postgres') return undefined;
  if (!pgDatabases.has(dataDir)) pgDatabases.set(dataDir, (await postgres()).createDatabase());
  return pgDatabases.get(dataDir);
}

// The PostgreSQL server of this test file (started if need be), for tests that want one of
// their own databases; only under GATEHOUSE_TEST_STORE=postgres.
export function testPostgres() {
  assert.equal(STORE, 'postgres');
  return postgres();
}

// Generous defaults so that a test suite creating many accounts (and invitations) from
// 127.0.0.1 is not throttled; tests of the throttles set their own low limits. Admission (the prepaid cap, spend
// and rate limits: [limits] enforce, on by default in the product) is off here, so tests about
// other things need no credits; the limits tests turn it on.
const BASE_CONFIG = {
  server: { threads: 4, api_threads: 2 },
  auth: { link_limit_per_ip: 100000, link_limit_per_email: 1000 },
  organizations: { invite_limit_per_org: 100000, invite_limit_per_recipient: 1000 },
  limits: { enforce: false },
};

function toIni(config) {
  let out = '';
  for (const [section, values] of Object.entries(config)) {
    out += `[${section}]\n`;
    for (const [k, v] of Object.entries(values)) out += `${k} = ${v}\n`;
  }
  return out;
}

function merge(a, b) {
  const out = structuredClone(a);
  for (const [section, values] of Object.entries(b ?? {})) out[section] = { ...(out[section] ?? {}), ...values };
  return out;
}

export async function startServer(options = {}) {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'gatehouse-test-'));
  const configPath = join(dataDir, 'gatehouse.ini');
  // options.store = 'sqlite': this server keeps SQLite whatever the run's store (a test that
  // moves a SQLite installation needs one). options.storeUrl: this PostgreSQL database,
  // whatever the run's store (the nodes of a cluster, lib/cluster.mjs, share one).
  const storeUrl = options.storeUrl ?? (options.store === 'sqlite' ? undefined : await storeUrlFor(dataDir));
  const storeConfig = storeUrl ? { store: { url: storeUrl } } : {};
  writeFileSync(configPath, toIni(merge(merge(BASE_CONFIG, storeConfig), options.config)));
  const args = ['serve', '--config', configPath, '--data-dir', dataDir,
    '--listen', '127.0.0.1:0', '--api-listen', '127.0.0.1:0', ...(storeUrl ? ['--store', storeUrl] : []),
    ...(options.args ?? [])];
  const proc = spawnChild(BINARY, args, { env: { ...process.env, ...(options.env ?? {}) } });
  const { child, exited } = proc;

  const ready = await new Promise((res, rej) => {
    const check = () => {
      const c = proc.log().match(/console listening on (http:\/\/\S+)/);
      const a = proc.log().match(/model API listening on (http:\/\/\S+)/);
      if (c && a) { cleanup(); res({ consoleUrl: c[1], apiUrl: a[1] }); }
    };
    const onExit = ({ code, signal }) => { cleanup(); rej(new Error(`gatehouse exited (${code ?? signal}) before it was ready:\n${proc.log()}`)); };
    const timer = setTimeout(() => { cleanup(); child.kill('SIGKILL'); rej(new Error(`gatehouse not ready in 15 s:\n${proc.log()}`)); }, 15000);
    const cleanup = () => { clearTimeout(timer); child.stderr.off('data', check); child.stdout.off('data', check); };
    child.stderr.on('data', check);
    child.stdout.on('data', check);
    exited.then(onExit);
    check();
  });

  const server = {
    ...ready,
    dataDir,
    store: STORE,
    storeUrl,
    child,
    get log() { return proc.log(); },
    exited,
    // Waits (bounded) for an exit the test caused, e.g. a crash it provoked: past `timeoutMs`
    // the server is killed and the test fails with the end of the log.
    waitExit(timeoutMs = 30000) { return waitExit(proc, { timeoutMs, what: 'gatehouse' }); },
    // Stops the server with SIGTERM. A clean stop exits 0; anything else (a crash, the
    // sanitizer build reporting a leak or undefined behaviour at exit, or no exit within
    // `graceMs`, after which it is killed) fails the test that stops it, with the end of the
    // log, unless `expectFailure` says it is the point.
    async stop({ keepData = false, expectFailure = false, graceMs = 40000 } = {}) {
      let r;
      try {
        r = await stopChild(proc, { graceMs, what: 'gatehouse' });
      } finally {
        if (!keepData && !options.dataDir) rmSync(dataDir, { recursive: true, force: true });
      }
      if (!expectFailure && r.code !== 0)
        throw new Error(`gatehouse did not stop cleanly (exit ${r.code ?? r.signal}):\n${proc.log().slice(-6000)}`);
      return r;
    },
    outbox() { return readOutbox(join(dataDir, 'outbox')); },
    // Runs SQL on this server's database and returns the output as the sqlite3 tool prints it
    // (rows on lines, columns joined by '|'); see sql() in this file.
    sql(query) { return sql(this, query); },
    // Resolves when the server's log matches `re` (the log arrives through a pipe, so a line
    // written before a response was sent can be read here after the response).
    waitForLog(re, timeoutMs = 5000) {
      if (re.test(proc.log())) return Promise.resolve(proc.log().match(re));
      return new Promise((res, rej) => {
        const onData = () => { if (re.test(proc.log())) { done(); res(proc.log().match(re)); } };
        const timer = setTimeout(() => { done(); rej(new Error(`log did not match ${re} within ${timeoutMs} ms:\n${proc.log()}`)); }, timeoutMs);
        const done = () => { clearTimeout(timer); child.stderr.off('data', onData); child.stdout.off('data', onData); };
        child.stderr.on('data', onData);
        child.stdout.on('data', onData);
      });
    },
  };
  return server;
}

// Runs `query` on the database of `server` (a running or stopped server, or anything with its
// `dataDir` and `storeUrl`) and returns what the sqlite3 tool prints: one line per row, the
// columns joined by '|'. `query` is one text both dialects accept, or {sqlite, postgres} when
// they differ: times are epoch integers in SQLite and timestamptz in PostgreSQL (sqlTime and
// sqlSeconds below cover most), json_object is json_build_object (sqlObject below), rowid is
// seq, and psql prints booleans as t/f (cast them, `(x IS NULL)::int`, for one output). For
// moving time, for what the API cannot do yet, and for checking what was stored.
// A TCP port on 127.0.0.1 that nothing listens on, for an upstream that refuses connections:
// 1, 2, 3, ... per call. Privileged ports no test binds (they all listen on port 0). A port
// taken from the kernel and closed again is not safe: under a parallel run another server's
// listener may be given it, and the "dead" upstream answers (a 404 from a console).
let deadPorts = 0;
export function deadPort() {
  return ++deadPorts;
}

export function sql(server, query) {
  const text = typeof query === 'string' ? query : query[server.storeUrl ? 'postgres' : 'sqlite'];
  assert.equal(typeof text, 'string', `no ${server.storeUrl ? 'postgres' : 'sqlite'} variant of ${JSON.stringify(query)}`);
  const r = server.storeUrl
    ? spawnSync('psql', ['-X', '-q', '-At', '-F', '|', '-v', 'ON_ERROR_STOP=1', server.storeUrl, '-c', text], { encoding: 'utf8' })
    : spawnSync('sqlite3', ['-cmd', '.timeout 5000', join(server.dataDir, 'gatehouse.db'), text], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${server.storeUrl ? 'psql' : 'sqlite3'} failed (${r.status ?? r.signal}) on ${text}:\n${r.stderr}`);
  return r.stdout;
}

// SQL for an instant (epoch seconds) and for a duration (seconds), of the type times have on
// the server's backend (integers in SQLite, timestamptz in PostgreSQL), so that one statement
// moves time on both: `SET expires_at = expires_at - ${sqlSeconds(server, 86400)}`.
export const sqlTime = (server, s) => (server.storeUrl ? `to_timestamp(${s})` : `${s}`);
export const sqlSeconds = (server, s) => (server.storeUrl ? `interval '${s} seconds'` : `${s}`);

// The row that `from` ("FROM table WHERE ...") selects as an object of `columns` (names or
// "expression AS name"), values typed as JSON gives them (flags as 1/0 on both backends), or
// undefined when there is no row. The SQL is built in each backend's JSON functions.
export function sqlObject(server, columns, from) {
  const pairs = columns.map((c) => {
    const m = c.match(/^(.*) AS (\w+)$/);
    return m ? `'${m[2]}', ${m[1]}` : `'${c}', ${c}`;
  }).join(', ');
  const out = sql(server, { sqlite: `SELECT json_object(${pairs}) ${from} LIMIT 1;`,
    postgres: `SELECT json_build_object(${pairs}) ${from} LIMIT 1;` }).trim();
  if (!out) return undefined;
  return Object.fromEntries(Object.entries(JSON.parse(out)).map(([k, v]) => [k, typeof v === 'boolean' ? Number(v) : v]));
}

// A header value with RFC 2047 encoded-words ("=?UTF-8?B?...?=") decoded; the whitespace
// between two encoded-words is dropped, as the RFC says.
export function decodeHeader(v) {
  if (v === undefined) return v;
  return v.replace(/\?=\s+=\?/g, '?==?').replace(/=\?UTF-8\?B\?([A-Za-z0-9+/=]*)\?=/gi,
    (_, b64) => Buffer.from(b64, 'base64').toString('utf8'));
}

// A body decoded from its Content-Transfer-Encoding (7bit, 8bit, quoted-printable, base64).
export function decodeBody(text, encoding = '7bit') {
  const enc = encoding.toLowerCase();
  if (enc === 'base64') return Buffer.from(text.replace(/\s+/g, ''), 'base64').toString('utf8');
  if (enc !== 'quoted-printable') return text;
  const bytes = [];
  const soft = text.replace(/=\r?\n/g, '');
  for (let i = 0; i < soft.length; i++) {
    if (soft[i] === '=' && /^[0-9A-F]{2}$/i.test(soft.slice(i + 1, i + 3))) {
      bytes.push(parseInt(soft.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(...Buffer.from(soft[i], 'utf8'));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

// The headers of a message or part, unfolded: a function that returns one by name.
function headerReader(folded) {
  const head = folded.replace(/\r\n[ \t]/g, ' '); // unfold continuation lines
  return (name) => decodeHeader((head.match(new RegExp(`^${name}: (.*)$`, 'mi')) ?? [])[1]);
}

// Splits a MIME message: {header, parts: [{type, charset, encoding, raw, text}]}. A single
// part message has one part.
export function parseMime(raw) {
  const at = raw.indexOf('\r\n\r\n');
  const header = headerReader(raw.slice(0, at));
  const content = raw.slice(at + 4);
  const ctype = header('Content-Type') ?? 'text/plain';
  const boundary = (ctype.match(/boundary="?([^";]+)"?/i) ?? [])[1];
  const part = (h, body) => {
    const t = h('Content-Type') ?? 'text/plain';
    const encoding = h('Content-Transfer-Encoding') ?? '7bit';
    return { type: t.split(';')[0].trim().toLowerCase(), charset: (t.match(/charset=([^;\s]+)/i) ?? [])[1],
      encoding, raw: body, text: decodeBody(body, encoding) };
  };
  if (!/^multipart\//i.test(ctype) || !boundary) return { header, parts: [part(header, content)] };
  const chunks = content.split(`--${boundary}`);
  const parts = chunks.slice(1).filter((c) => !c.startsWith('--')).map((c) => {
    const body = c.replace(/^\r\n/, '');
    const i = body.indexOf('\r\n\r\n');
    // The line break before the next boundary belongs to the boundary (RFC 2046).
    return part(headerReader(body.slice(0, i)), body.slice(i + 4).replace(/\r\n$/, ''));
  });
  return { header, boundary, parts };
}

// Every message in the outbox, oldest first: {file, to, subject (decoded), body (the text
// part, decoded), html (the HTML part, decoded, or undefined), mime (parseMime), raw}.
export function readOutbox(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((f) => f.endsWith('.eml')).sort().map((file) => {
    const raw = readFileSync(join(dir, file), 'utf8');
    const mime = parseMime(raw);
    const text = mime.parts.find((p) => p.type === 'text/plain');
    const html = mime.parts.find((p) => p.type === 'text/html');
    return { file, to: mime.header('To'), subject: mime.header('Subject'), body: text ? text.text : '',
      html: html?.text, mime, raw };
  });
}

// The newest sign-in link mailed to `email`.
export function lastLink(server, email) {
  const msgs = server.outbox().filter((m) => m.to && m.to.toLowerCase().includes(email.toLowerCase()));
  if (!msgs.length) throw new Error(`no mail to ${email} in the outbox`);
  const m = msgs[msgs.length - 1].body.match(/https?:\/\/\S+\/auth\/verify\?token=[A-Za-z0-9]+/);
  if (!m) throw new Error(`no sign-in link in the mail to ${email}`);
  return m[0];
}
