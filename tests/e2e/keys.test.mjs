// API keys and admin keys: the secret's format, shown once and stored only as a hash; lists,
// filters, renames and the status lifecycle; admin keys authenticating the Organization API
// (x-api-key or Bearer) and nothing else, revocation, and the audit trail of what a key did
// (docs/api.md, "API keys", "Admin keys", "Authenticating the Organization API with an admin
// key").
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { startServer } from './lib/server.mjs';
import { Client } from './lib/client.mjs';
import {
  assertError, uniq, idPattern, TIME, addMember, listAll, assertList, KeyClient, sql, sqlQuote,
} from './lib/expect.mjs';

const KEYS = '/v1/organizations/api_keys';
const ADMIN_KEYS = '/v1/organizations/admin_keys';
const WS = '/v1/organizations/workspaces';
const API_KEY = /^sk-gh-api01-[0-9A-Za-z]{49}$/;
const ADMIN_KEY = /^sk-gh-admin01-[0-9A-Za-z]{49}$/;

let server;
let admin; // admin of Acme
let adminId;
let acmeId;
let defaultId;
let other; // admin of Other
let otherOrgId;
const secrets = []; // every secret created, checked against the log and the database at the end

before(async () => {
  server = await startServer();
  admin = new Client(server.consoleUrl);
  const s = await admin.signUpWithOrg(server, uniq('admin'), 'Acme');
  adminId = s.account.id;
  acmeId = s.current_organization.id;
  defaultId = (await admin.get(WS)).body.data[0].id;
  other = new Client(server.consoleUrl);
  otherOrgId = (await other.signUpWithOrg(server, uniq('other'), 'Other')).current_organization.id;
});

after(async () => {
  await server?.stop();
});

const hint = (key, prefix) => `${prefix}${key.slice(prefix.length, prefix.length + 3)}...${key.slice(-4)}`;

function assertApiKey(k, { withSecret = false } = {}) {
  const fields = ['created_at', 'created_by', 'id', 'last_used_at', 'name', 'partial_key_hint', 'status', 'type', 'workspace_id'];
  assert.deepEqual(Object.keys(k).sort(), withSecret ? [...fields, 'key'].sort() : fields);
  assert.equal(k.type, 'api_key');
  assert.match(k.id, idPattern('apikey'));
  assert.match(k.workspace_id, idPattern('wrkspc'));
  assert.match(k.created_at, TIME);
  assert.deepEqual(Object.keys(k.created_by).sort(), ['id', 'type']);
  assert.ok(['user', 'admin_key'].includes(k.created_by.type));
  assert.ok(['active', 'inactive', 'archived'].includes(k.status));
  assert.match(k.partial_key_hint, /^sk-gh-api01-[0-9A-Za-z]{3}\.\.\.[0-9A-Za-z]{4}$/);
  if (k.last_used_at !== null) assert.match(k.last_used_at, TIME);
  if (withSecret) {
    assert.match(k.key, API_KEY);
    assert.equal(k.partial_key_hint, hint(k.key, 'sk-gh-api01-'));
  }
}

function assertAdminKey(k, { withSecret = false } = {}) {
  const fields = ['created_at', 'created_by', 'id', 'last_used_at', 'name', 'partial_key_hint', 'status', 'type'];
  assert.deepEqual(Object.keys(k).sort(), withSecret ? [...fields, 'key'].sort() : fields);
  assert.equal(k.type, 'admin_key');
  assert.match(k.id, idPattern('adminkey'));
  assert.match(k.created_at, TIME);
  assert.ok(['active', 'revoked'].includes(k.status));
  assert.match(k.partial_key_hint, /^sk-gh-admin01-[0-9A-Za-z]{3}\.\.\.[0-9A-Za-z]{4}$/);
  if (withSecret) {
    assert.match(k.key, ADMIN_KEY);
    assert.equal(k.partial_key_hint, hint(k.key, 'sk-gh-admin01-'));
  }
}

async function createKey(c, body) {
  const r = await c.post(KEYS, body);
  assert.equal(r.status, 201, `${JSON.stringify(body)}: ${r.status} ${JSON.stringify(r.body)}`);
  assertApiKey(r.body, { withSecret: true });
  secrets.push(r.body.key);
  return r.body;
}

async function createAdminKey(c, name = 'script') {
  const r = await c.post(ADMIN_KEYS, { name });
  assert.equal(r.status, 201, `${r.status} ${JSON.stringify(r.body)}`);
  assertAdminKey(r.body, { withSecret: true });
  secrets.push(r.body.key);
  return r.body;
}

const withoutSecret = ({ key, ...rest }) => rest;

async function workspace(c, name) {
  const r = await c.post(WS, { name });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body;
}

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

// The CRC-32 (IEEE) of `s`.
function crc32(s) {
  let c = ~0;
  for (const b of Buffer.from(s)) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xEDB88320 & -(c & 1));
  }
  return ~c >>> 0;
}

// `n` as 6 base62 digits, most significant first.
function base62(n) {
  let out = '';
  for (let i = 0; i < 6; i++) { out = BASE62[n % 62] + out; n = Math.floor(n / 62); }
  return out;
}

// A well-formed key (right length, alphabet and checksum) that was never issued.
const forgedKey = (prefix) => { const body = prefix + 'F'.repeat(43); return body + base62(crc32(body)); };

test('an API key is created in Default or a named workspace, its secret shown once', async () => {
  const k = await createKey(admin, { name: '  Production  ' });
  assert.equal(k.name, 'Production', 'the name is trimmed');
  assert.equal(k.workspace_id, defaultId, 'Default when no workspace is named');
  assert.deepEqual(k.created_by, { id: adminId, type: 'user' });
  assert.equal(k.status, 'active');
  assert.equal(k.last_used_at, null);
  assert.ok(Math.abs(Date.parse(k.created_at) - Date.now()) < 60000);

  const w = await workspace(admin, 'Keys Here');
  const k2 = await createKey(admin, { name: 'Staging', workspace_id: w.id });
  assert.equal(k2.workspace_id, w.id);
  const k3 = await createKey(admin, { name: 'Explicit Default', workspace_id: defaultId });
  assert.equal(k3.workspace_id, defaultId);
  assert.notEqual(k.key, k2.key);

  // Never again: not on GET, not in lists.
  const got = await admin.get(`${KEYS}/${k.id}`);
  assert.equal(got.status, 200);
  assertApiKey(got.body);
  assert.deepEqual(got.body, withoutSecret(k));
  const list = await listAll(admin, KEYS);
  assert.deepEqual(list.find((x) => x.id === k.id), withoutSecret(k));
  for (const x of list) assertApiKey(x);
  const text = JSON.stringify(list) + JSON.stringify(got.body);
  for (const s of [k.key, k2.key, k3.key]) {
    assert.ok(!text.includes(s), 'no secret in GET or list answers');
    assert.ok(!text.includes(s.slice(12, 40)), 'not even a large part of it');
  }
});

test('the secret carries a CRC-32 checksum and only its SHA-256 is stored', async () => {
  const k = await createKey(admin, { name: 'Checksummed' });
  // 43 random base62 characters, then 6 base62 characters of CRC-32 over everything before.
  assert.equal(k.key.slice(-6), base62(crc32(k.key.slice(0, -6))), 'the last 6 characters are the CRC-32 of the rest');
  const stored = sql(server, `SELECT key_hash FROM keys WHERE id = ${sqlQuote(k.id)};`).trim();
  assert.equal(stored, createHash('sha256').update(k.key).digest('hex'));
});

test('lists filter by workspace_id, status and created_by_user_id, and page', async () => {
  const owner = new Client(server.consoleUrl);
  const s = await owner.signUpWithOrg(server, uniq('lists'), 'Lists');
  const ownerId = s.account.id;
  const d = (await owner.get(WS)).body.data[0].id;
  const w = await workspace(owner, 'Second');
  const dev = await addMember(server, owner, 'developer');
  const a = await createKey(owner, { name: 'a' });
  const b = await createKey(owner, { name: 'b', workspace_id: w.id });
  const c = await createKey(dev.client, { name: 'c' });
  assert.deepEqual(c.created_by, { id: dev.id, type: 'user' });
  const e = await createKey(owner, { name: 'e' });
  assert.equal((await owner.post(`${KEYS}/${e.id}`, { status: 'inactive' })).status, 200);
  const ids = async (q) => (await listAll(owner, `${KEYS}${q}`)).map((k) => k.id);

  assert.deepEqual(await ids(''), [a.id, b.id, c.id, e.id], 'oldest first');
  assert.deepEqual(await ids(`?workspace_id=${d}`), [a.id, c.id, e.id]);
  assert.deepEqual(await ids(`?workspace_id=${w.id}`), [b.id]);
  assert.deepEqual(await ids('?status=active'), [a.id, b.id, c.id]);
  assert.deepEqual(await ids('?status=inactive'), [e.id]);
  assert.deepEqual(await ids('?status=archived'), []);
  assert.deepEqual(await ids(`?created_by_user_id=${dev.id}`), [c.id]);
  assert.deepEqual(await ids(`?created_by_user_id=${ownerId}&workspace_id=${d}&status=active`), [a.id]);
  assertError(await owner.get(`${KEYS}?status=revoked`), 400, 'invalid_request_error');
  assertError(await owner.get(`${KEYS}?status=bogus`), 400, 'invalid_request_error');
  // Acme's keys are never listed here, whatever the filter.
  assert.deepEqual(await ids(`?workspace_id=${defaultId}`), []);
  assert.deepEqual(await ids(`?created_by_user_id=${adminId}`), []);

  const p1 = assertList(await owner.get(`${KEYS}?limit=3`));
  assert.deepEqual(p1.data.map((k) => k.id), [a.id, b.id, c.id]);
  assert.equal(p1.has_more, true);
  const p2 = assertList(await owner.get(`${KEYS}?limit=3&after_id=${p1.last_id}`));
  assert.deepEqual(p2.data.map((k) => k.id), [e.id]);
  assert.equal(p2.has_more, false);
  const back = assertList(await owner.get(`${KEYS}?limit=3&before_id=${e.id}`));
  assert.deepEqual(back.data.map((k) => k.id), [a.id, b.id, c.id]);
  assert.equal(back.has_more, false);
  assertError(await owner.get(`${KEYS}?after_id=apikey_01${'q'.repeat(22)}`), 400, 'invalid_request_error');
  assertError(await owner.get(`${KEYS}?limit=0`), 400, 'invalid_request_error');
});

test('rename, deactivate, reactivate, archive; archived is final', async () => {
  const k = await createKey(admin, { name: 'Lifecycle' });
  const get = async () => (await admin.get(`${KEYS}/${k.id}`)).body;
  const set = async (body) => {
    const r = await admin.post(`${KEYS}/${k.id}`, body);
    assert.equal(r.status, 200, `${JSON.stringify(body)}: ${r.status} ${JSON.stringify(r.body)}`);
    assertApiKey(r.body);
    assert.deepEqual(await get(), r.body);
    return r.body;
  };
  assert.equal((await set({ name: 'Renamed' })).name, 'Renamed');
  assert.equal((await set({ status: 'inactive' })).status, 'inactive');
  const back = await set({ status: 'active', name: 'Back' });
  assert.deepEqual(back, { ...withoutSecret(k), name: 'Back' });
  assert.equal((await set({ status: 'inactive' })).status, 'inactive');

  // Refused updates change nothing.
  const before = await get();
  for (const [label, body] of [
    ['empty name', { name: '' }],
    ['blank name', { name: '  ' }],
    ['101 characters', { name: 'n'.repeat(101) }],
    ['name null', { name: null }],
    ['name not a string', { name: 3 }],
    ['unknown status', { status: 'revoked' }],
    ['status not a string', { status: false }],
    ['unknown field', { name: 'x', workspace_id: defaultId }],
    ['a good field next to a bad one', { name: 'Fine', status: 'paused' }],
  ]) {
    const r = await admin.post(`${KEYS}/${k.id}`, body);
    assertError(r, 400, 'invalid_request_error');
    assert.deepEqual(await get(), before, label);
  }
  assert.equal((await set({ name: 'x'.repeat(100) })).name.length, 100);

  const archived = await set({ status: 'archived' });
  assert.equal(archived.status, 'archived');
  for (const body of [{ status: 'active' }, { status: 'inactive' }, { name: 'Again' }, { name: 'Again', status: 'archived' }]) {
    const r = await admin.post(`${KEYS}/${k.id}`, body);
    assertError(r, 400, 'invalid_request_error');
    assert.deepEqual(await get(), archived, `${JSON.stringify(body)} changed an archived key`);
  }
  assert.deepEqual((await listAll(admin, `${KEYS}?status=archived`)).map((x) => x.id).includes(k.id), true);
});

test('creation refusals: name rules, unknown or foreign workspaces; nothing is created', async () => {
  const foreignWs = (await other.get(WS)).body.data[0].id;
  for (const [label, body, status, type] of [
    ['empty name', { name: '' }, 400, 'invalid_request_error'],
    ['101 characters', { name: 'k'.repeat(101) }, 400, 'invalid_request_error'],
    ['name missing', {}, 400, 'invalid_request_error'],
    ['name not a string', { name: ['k'] }, 400, 'invalid_request_error'],
    ['workspace_id not a string', { name: 'k', workspace_id: 1 }, 400, 'invalid_request_error'],
    ['unknown field', { name: 'k', status: 'active' }, 400, 'invalid_request_error'],
    ['unknown workspace', { name: 'k', workspace_id: `wrkspc_01${'z'.repeat(22)}` }, 404, 'not_found_error'],
    ['malformed workspace', { name: 'k', workspace_id: 'default' }, 404, 'not_found_error'],
    ['another organization\'s workspace', { name: 'k', workspace_id: foreignWs }, 404, 'not_found_error'],
  ]) {
    const before = await listAll(admin, KEYS);
    const r = await admin.post(KEYS, body);
    assert.equal(r.status, status, `${label}: ${r.status} ${JSON.stringify(r.body)}`);
    assertError(r, status, type);
    assert.deepEqual(await listAll(admin, KEYS), before, label);
  }
  assert.deepEqual(await listAll(other, KEYS), []);
  // Ids that are not API keys of this organization.
  const theirs = await createKey(other, { name: 'theirs' });
  const adminKey = await createAdminKey(admin, 'not an api key');
  for (const id of [theirs.id, adminKey.id, `apikey_01${'r'.repeat(22)}`, 'x']) {
    assertError(await admin.get(`${KEYS}/${id}`), 404, 'not_found_error');
    assertError(await admin.post(`${KEYS}/${id}`, { name: 'mine now' }), 404, 'not_found_error');
  }
  assert.equal((await other.get(`${KEYS}/${theirs.id}`)).body.name, 'theirs');
});

test('who sees and manages API keys: admins, developers reaching the workspace, workspace developers and admins', async () => {
  const owner = new Client(server.consoleUrl);
  await owner.signUpWithOrg(server, uniq('who'), 'Who');
  const w = await workspace(owner, 'Team');
  const dev = await addMember(server, owner, 'developer');
  const usr = await addMember(server, owner, 'user');
  const bil = await addMember(server, owner, 'billing');
  const wsDevUser = await addMember(server, owner, 'user');
  assert.equal((await owner.post(`${WS}/${w.id}/members`, { user_id: wsDevUser.id, workspace_role: 'workspace_developer' })).status, 201);
  const inDefault = await createKey(owner, { name: 'default key' });
  const inW = await createKey(owner, { name: 'team key', workspace_id: w.id });

  const visible = async (m) => (await listAll(m.client, KEYS)).map((k) => k.id);
  assert.deepEqual(await visible(dev), [inDefault.id], 'a developer reaches Default only');
  assert.deepEqual(await visible(wsDevUser), [inW.id], 'a workspace developer manages that workspace only');
  assert.deepEqual(await visible(usr), []);
  assert.deepEqual(await visible(bil), []);
  assertError(await dev.client.get(`${KEYS}/${inW.id}`), 404, 'not_found_error');
  assertError(await usr.client.get(`${KEYS}/${inDefault.id}`), 404, 'not_found_error');
  assertError(await bil.client.post(`${KEYS}/${inW.id}`, { status: 'inactive' }), 404, 'not_found_error');
  assert.equal((await owner.get(`${KEYS}/${inW.id}`)).body.status, 'active');

  // The developer manages keys in Default; the workspace developer in W.
  const devKey = await createKey(dev.client, { name: 'dev' });
  assert.equal((await dev.client.post(`${KEYS}/${inDefault.id}`, { name: 'renamed by dev' })).status, 200);
  const wsKey = await createKey(wsDevUser.client, { name: 'ws dev', workspace_id: w.id });
  assert.equal(wsKey.workspace_id, w.id);
  assertError(await wsDevUser.client.post(KEYS, { name: 'in default' }), 403, 'permission_error');
  assertError(await usr.client.post(KEYS, { name: 'user key' }), 403, 'permission_error');
  assertError(await bil.client.post(KEYS, { name: 'billing key', workspace_id: w.id }), 403, 'permission_error');
  assertError(await dev.client.post(KEYS, { name: 'no reach', workspace_id: w.id }), 404, 'not_found_error');
  assert.deepEqual((await listAll(owner, KEYS)).map((k) => k.id), [inDefault.id, inW.id, devKey.id, wsKey.id]);

  // Access follows membership: once removed from W, the workspace developer's keys there vanish.
  assert.equal((await owner.request('DELETE', `${WS}/${w.id}/members/${wsDevUser.id}`)).status, 200);
  assert.deepEqual(await visible(wsDevUser), []);
  assertError(await wsDevUser.client.get(`${KEYS}/${wsKey.id}`), 404, 'not_found_error');
});

test('admin keys: created by admins, shown once, listed, and they authenticate the Organization API', async () => {
  const ak = await createAdminKey(admin, 'CI pipeline');
  assert.deepEqual(ak.created_by, { id: adminId, type: 'user' });
  assert.equal(ak.status, 'active');
  assert.equal(ak.last_used_at, null);
  assert.equal(ak.name, 'CI pipeline');
  const got = await admin.get(`${ADMIN_KEYS}/${ak.id}`);
  assert.equal(got.status, 200);
  assert.deepEqual(got.body, withoutSecret(ak));
  const list = await listAll(admin, ADMIN_KEYS);
  assert.deepEqual(list.find((k) => k.id === ak.id), withoutSecret(ak));
  for (const k of list) assertAdminKey(k);
  assert.ok(!JSON.stringify(list).includes(ak.key));
  assert.ok(!(await listAll(admin, KEYS)).some((k) => k.id === ak.id), 'admin keys are not API keys');

  // x-api-key and Bearer both work, without a CSRF header, exactly as an admin's session.
  for (const bearer of [false, true]) {
    const kc = new KeyClient(server.consoleUrl, ak.key, { bearer });
    const me = await kc.get('/v1/organizations/me');
    assert.equal(me.status, 200, JSON.stringify(me.body));
    assert.deepEqual(me.body, { id: acmeId, type: 'organization', name: 'Acme' });
    assert.deepEqual((await kc.get('/v1/organizations/users')).body, (await admin.get('/v1/organizations/users')).body);
    const w = await kc.post(WS, { name: `By key ${bearer ? 'bearer' : 'header'}` });
    assert.equal(w.status, 201, JSON.stringify(w.body));
    const k = await createKey(kc, { name: 'made by a key', workspace_id: w.body.id });
    assert.deepEqual(k.created_by, { id: ak.id, type: 'admin_key' });
    const inv = await kc.post('/v1/organizations/invites', { email: uniq('bykey'), role: 'user' });
    assert.equal(inv.status, 201);
    assert.match(server.outbox().at(-1).body, /CI pipeline/, 'the invitation names the key as the inviter');
    const settings = await kc.post('/v1/organizations/me/settings', { legal_name: `Acme ${bearer}` });
    assert.equal(settings.status, 200);
    assert.equal(settings.body.can_edit.name, true);
  }
  const used = (await admin.get(`${ADMIN_KEYS}/${ak.id}`)).body;
  assert.match(used.last_used_at, TIME, 'last_used_at is recorded');

  // Its actions are recorded as the key's.
  const events = await listAll(admin, `/v1/organizations/audit_log?actor_id=${ak.id}`);
  assert.ok(events.length >= 8, `events by the key: ${events.length}`);
  for (const e of events) assert.deepEqual(e.actor, { type: 'admin_key', id: ak.id, label: 'CI pipeline' });
  assert.deepEqual(new Set(events.map((e) => e.action)),
    new Set(['workspace.created', 'api_key.created', 'invite.created', 'organization.updated']));

  // Refusals of bad names.
  for (const body of [{ name: '' }, { name: 'a'.repeat(101) }, {}, { name: 1 }, { name: 'x', scope: 'all' }]) {
    const before = await listAll(admin, ADMIN_KEYS);
    assertError(await admin.post(ADMIN_KEYS, body), 400, 'invalid_request_error');
    assert.deepEqual(await listAll(admin, ADMIN_KEYS), before);
  }
});

test('an admin key with a session cookie: the key wins; an admin key can create admin keys of its own organization only', async () => {
  const otherKey = await createAdminKey(other, 'other key');
  // Acme's admin session plus Other's key: the key decides.
  const r = await admin.get('/v1/organizations/me', { headers: { 'x-api-key': otherKey.key } });
  assert.equal(r.status, 200);
  assert.equal(r.body.id, otherOrgId);
  // A state change with the key and no CSRF header works, and lands in Other.
  const made = await admin.request('POST', ADMIN_KEYS, { json: { name: 'made by other key' }, csrf: false, headers: { 'x-api-key': otherKey.key } });
  assert.equal(made.status, 201, JSON.stringify(made.body));
  secrets.push(made.body.key);
  assert.deepEqual(made.body.created_by, { id: otherKey.id, type: 'admin_key' });
  assert.ok((await listAll(other, ADMIN_KEYS)).some((k) => k.id === made.body.id));
  assert.ok(!(await listAll(admin, ADMIN_KEYS)).some((k) => k.id === made.body.id));
  // The new key works for Other, not Acme.
  assert.equal((await new KeyClient(server.consoleUrl, made.body.key).get('/v1/organizations/me')).body.id, otherOrgId);
  // Other's key cannot see or revoke Acme's keys.
  const acmeKey = await createAdminKey(admin, 'acme key');
  const ok = new KeyClient(server.consoleUrl, otherKey.key);
  assertError(await ok.get(`${ADMIN_KEYS}/${acmeKey.id}`), 404, 'not_found_error');
  assertError(await ok.post(`${ADMIN_KEYS}/${acmeKey.id}/revoke`), 404, 'not_found_error');
  assert.equal((await admin.get(`${ADMIN_KEYS}/${acmeKey.id}`)).body.status, 'active');
  assert.equal((await new KeyClient(server.consoleUrl, acmeKey.key).get('/v1/organizations/me')).body.id, acmeId);
});

test('revocation: a revoked key gets 401; a key may revoke itself; revoked is final', async () => {
  const ak = await createAdminKey(admin, 'to revoke');
  const kc = new KeyClient(server.consoleUrl, ak.key);
  assert.equal((await kc.get('/v1/organizations/me')).status, 200);
  const r = await admin.post(`${ADMIN_KEYS}/${ak.id}/revoke`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.deepEqual(r.body, { ...withoutSecret(ak), status: 'revoked', last_used_at: r.body.last_used_at });
  assertAdminKey(r.body);
  assert.deepEqual((await admin.get(`${ADMIN_KEYS}/${ak.id}`)).body, r.body);
  for (const bearer of [false, true]) {
    const x = new KeyClient(server.consoleUrl, ak.key, { bearer });
    assertError(await x.get('/v1/organizations/me'), 401, 'authentication_error');
    const before = await listAll(admin, WS);
    assertError(await x.post(WS, { name: 'after revoke' }), 401, 'authentication_error');
    assert.deepEqual(await listAll(admin, WS), before);
  }
  const again = await admin.post(`${ADMIN_KEYS}/${ak.id}/revoke`);
  assert.ok([400, 409].includes(again.status), `revoking twice: ${again.status}`);
  assert.equal((await admin.get(`${ADMIN_KEYS}/${ak.id}`)).body.status, 'revoked');

  // Self-revocation.
  const self = await createAdminKey(admin, 'self');
  const sc = new KeyClient(server.consoleUrl, self.key);
  const sr = await sc.post(`${ADMIN_KEYS}/${self.id}/revoke`);
  assert.equal(sr.status, 200, JSON.stringify(sr.body));
  assert.equal(sr.body.status, 'revoked');
  assertError(await sc.get('/v1/organizations/me'), 401, 'authentication_error');
  const ev = (await listAll(admin, `/v1/organizations/audit_log?action=admin_key.revoked`)).find((e) => e.target.id === self.id);
  assert.deepEqual(ev.actor, { type: 'admin_key', id: self.id, label: 'self' });

  // Another admin key may revoke a key; unknown ids are 404.
  const a1 = await createAdminKey(admin, 'a1');
  const a2 = await createAdminKey(admin, 'a2');
  assert.equal((await new KeyClient(server.consoleUrl, a1.key).post(`${ADMIN_KEYS}/${a2.id}/revoke`)).status, 200);
  assertError(await admin.post(`${ADMIN_KEYS}/adminkey_01${'m'.repeat(22)}/revoke`), 404, 'not_found_error');
  assertError(await admin.get(`${ADMIN_KEYS}/adminkey_01${'m'.repeat(22)}`), 404, 'not_found_error');
});

test('keys that are not valid admin keys, and admin keys where they do not belong', async () => {
  const ak = await createAdminKey(admin, 'scoped');
  const api = await createKey(admin, { name: 'model api only' });

  // An API key on the Organization API: 401, saying what it is for.
  for (const bearer of [false, true]) {
    const r = await new KeyClient(server.consoleUrl, api.key, { bearer }).get('/v1/organizations/me');
    assertError(r, 401, 'authentication_error');
    assert.match(r.body.error.message, /model API/);
  }

  // Malformed, corrupted and unknown keys.
  const flip = (k, i) => k.slice(0, i) + (k[i] === 'A' ? 'B' : 'A') + k.slice(i + 1);
  for (const [label, key] of [
    ['garbage', 'hello'],
    ['empty', ''],
    ['the prefix alone', 'sk-gh-admin01-'],
    ['a changed character', flip(ak.key, 20)],
    ['a changed checksum', flip(ak.key, ak.key.length - 1)],
    ['too short', ak.key.slice(0, -1)],
    ['too long', `${ak.key}A`],
    ['well-formed but never issued', forgedKey('sk-gh-admin01-')],
    ['an admin key with the API key prefix', ak.key.replace('sk-gh-admin01-', 'sk-gh-api01-')],
    ['a forged API key', forgedKey('sk-gh-api01-')],
  ]) {
    const r = await new KeyClient(server.consoleUrl, key).get('/v1/organizations/me');
    assert.equal(r.status, 401, `${label}: ${r.status}`);
    assertError(r, 401, 'authentication_error');
  }
  const bearerBad = await new KeyClient(server.consoleUrl, flip(ak.key, 20), { bearer: true }).get('/v1/organizations/users');
  assertError(bearerBad, 401, 'authentication_error');

  // A bad key next to a good session cookie: the key wins, and it is refused.
  assertError(await admin.get('/v1/organizations/me', { headers: { 'x-api-key': flip(ak.key, 20) } }), 401, 'authentication_error');

  // Admin keys work nowhere but the Organization API.
  const kc = new KeyClient(server.consoleUrl, ak.key);
  assertError(await kc.get('/auth/session'), 401, 'authentication_error');
  assertError(await kc.post('/auth/organizations', { name: 'By key' }), 401, 'authentication_error');
  assertError(await kc.post('/auth/session/organization', { id: acmeId }), 401, 'authentication_error');
  assertError(await kc.post('/auth/logout'), 401, 'authentication_error');
  assertError(await kc.post('/auth/onboarding', { full_name: 'Key', confirmed_age_18: true, accepted_terms: true }), 401, 'authentication_error');
  const bk = new KeyClient(server.consoleUrl, ak.key, { bearer: true });
  assertError(await bk.get('/auth/session'), 401, 'authentication_error');
  // Nor on the model API.
  const m = await fetch(`${server.apiUrl}/v1/organizations/me`, { headers: { 'x-api-key': ak.key } });
  assert.ok(m.status >= 400, `the model API does not serve the Organization API: ${m.status}`);
  await m.arrayBuffer();
  const msg = await fetch(`${server.apiUrl}/v1/messages`, {
    method: 'POST', headers: { 'x-api-key': ak.key, 'content-type': 'application/json', 'anthropic-version': '2023-06-01' },
    body: JSON.stringify({ model: 'x', max_tokens: 1, messages: [{ role: 'user', content: 'hi' }] }),
  });
  assert.ok(msg.status >= 400, `an admin key on the model API: ${msg.status}`);
  await msg.arrayBuffer();
  // Nothing above was created.
  assert.ok(!(await admin.get('/auth/session')).body.organizations.some((o) => o.name === 'By key'));
});

test('only admins manage admin keys', async () => {
  const ak = await createAdminKey(admin, 'guarded');
  for (const role of ['billing', 'developer', 'user']) {
    const m = await addMember(server, admin, role);
    const before = await listAll(admin, ADMIN_KEYS);
    assertError(await m.client.get(ADMIN_KEYS), 403, 'permission_error');
    assertError(await m.client.post(ADMIN_KEYS, { name: 'mine' }), 403, 'permission_error');
    assertError(await m.client.get(`${ADMIN_KEYS}/${ak.id}`), 403, 'permission_error');
    assertError(await m.client.post(`${ADMIN_KEYS}/${ak.id}/revoke`), 403, 'permission_error');
    assert.deepEqual(await listAll(admin, ADMIN_KEYS), before);
  }
});

test('no secret appears in the server log, the database files or the audit log', async () => {
  // At least one of each kind was made by the tests above; make sure of it.
  await createKey(admin, { name: 'last' });
  await createAdminKey(admin, 'last admin');
  assert.ok(secrets.length >= 10);
  const audit = JSON.stringify(await listAll(admin, '/v1/organizations/audit_log'))
    + JSON.stringify(await listAll(other, '/v1/organizations/audit_log'));
  // SQLite's files as they are on disk; PostgreSQL's database as pg_dump writes it out.
  let files, db;
  if (server.storeUrl) {
    const dump = spawnSync('pg_dump', ['--no-owner', server.storeUrl], { maxBuffer: 1 << 28 });
    assert.equal(dump.status, 0, String(dump.stderr));
    files = ['pg_dump'];
    db = [dump.stdout];
  } else {
    files = readdirSync(server.dataDir).filter((f) => f.startsWith('gatehouse.db'));
    assert.ok(files.includes('gatehouse.db'));
    db = files.map((f) => readFileSync(join(server.dataDir, f)));
  }
  for (const s of secrets) {
    assert.ok(!server.log.includes(s), 'a secret is in the server log');
    assert.ok(!server.log.includes(s.slice(14, 40)), 'part of a secret is in the server log');
    assert.ok(!audit.includes(s), 'a secret is in the audit log');
    for (const [i, bytes] of db.entries()) {
      assert.equal(bytes.indexOf(s), -1, `a secret is stored as plain text in ${files[i]}`);
      assert.equal(bytes.indexOf(s.slice(-40)), -1, `most of a secret is stored in ${files[i]}`);
    }
  }
});
