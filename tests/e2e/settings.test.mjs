// Organization settings: billing details with VAT ID validation, strict input, roles and CSRF
// (docs/api.md, "GET/POST /v1/organizations/me/settings").
//
// There is no API to invite members yet, so the role tests add memberships straight into the
// running server's database (lib/server.mjs sql(), either backend).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './lib/server.mjs';
import { Client } from './lib/client.mjs';
import { assertError, uniq, sql, sqlTime } from './lib/expect.mjs';

let server;
let small; // max_body_bytes 2048
let admin; // admin of ACME
let acmeId;
const SETTINGS = '/v1/organizations/me/settings';
const ONBOARD = { full_name: 'Test Member', confirmed_age_18: true, accepted_terms: true };


before(async () => {
  [server, small] = await Promise.all([
    startServer(),
    startServer({ config: { server: { max_body_bytes: 2048 } } }),
  ]);
  admin = new Client(server.consoleUrl);
  acmeId = (await admin.signUpWithOrg(server, uniq('admin'), 'Acme')).current_organization.id;
});

after(async () => {
  await Promise.all([server?.stop(), small?.stop()]);
});

async function settings(c) {
  const r = await c.get(SETTINGS);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
}

// POSTs `body`, expects a refusal of `status`/`type`, and checks that nothing changed.
async function refused(c, body, status, type, label = JSON.stringify(body)) {
  const before = await settings(c);
  const r = await c.post(SETTINGS, body);
  assert.equal(r.status, status, `${label}: ${r.status} ${JSON.stringify(r.body)}`);
  assertError(r, status, type);
  assert.deepEqual(await settings(c), before, `${label} changed the settings`);
  return r;
}

async function saved(c, body) {
  const r = await c.post(SETTINGS, body);
  assert.equal(r.status, 200, `${JSON.stringify(body)}: ${r.status} ${JSON.stringify(r.body)}`);
  assert.deepEqual(await settings(c), r.body, 'the answer differs from what a GET shows');
  return r.body;
}


const q = (s) => `'${String(s).replaceAll("'", "''")}'`;

// An onboarded account with no organization of its own, added to `orgId` with `role` and
// switched to it.
async function member(role, orgId = acmeId) {
  const c = new Client(server.consoleUrl);
  await c.signIn(server, uniq(role));
  assert.equal((await c.post('/auth/onboarding', ONBOARD)).status, 200);
  const accountId = (await c.get('/auth/session')).body.account.id;
  sql(server, `INSERT INTO memberships (org_id, account_id, role, created_at) VALUES (${q(orgId)}, ${q(accountId)}, ${q(role)}, ${sqlTime(server, Math.floor(Date.now() / 1000))});`);
  const sw = await c.post('/auth/session/organization', { id: orgId });
  assert.equal(sw.status, 200, JSON.stringify(sw.body));
  assert.equal(sw.body.current_organization.role, role);
  return c;
}

// A separate admin with an organization of their own, for tests that need a clean slate.
async function freshAdmin(name) {
  const c = new Client(server.consoleUrl);
  await c.signUpWithOrg(server, uniq(name.toLowerCase().replace(/[^a-z]/g, '')), name);
  return c;
}

const FULL = {
  legal_name: 'Acme S.r.l.',
  billing_email: 'billing@acme.example',
  billing_address: { line1: 'Via Roma 1', line2: 'Scala B', city: 'Milano', postal_code: '20121', state: 'MI', country: 'it' },
  vat_id: 'IT00743110157',
};

test('defaults: nothing set, an admin may edit everything', async () => {
  const c = await freshAdmin('Defaults');
  const s = await settings(c);
  const id = (await c.get('/auth/session')).body.current_organization.id;
  assert.deepEqual(s, {
    id, type: 'organization_settings', name: 'Defaults', legal_name: null, billing_email: null,
    billing_address: { line1: null, line2: null, city: null, postal_code: null, state: null, country: null },
    vat_id: null, vat_applicable: false, can_edit: { name: true, billing: true }, updated_at: null,
  });
});

test('billing details are saved, normalised and persist', async () => {
  const s = await saved(admin, FULL);
  assert.equal(s.id, acmeId);
  assert.equal(s.name, 'Acme');
  assert.equal(s.legal_name, 'Acme S.r.l.');
  assert.equal(s.billing_email, 'billing@acme.example');
  assert.deepEqual(s.billing_address, { ...FULL.billing_address, country: 'IT' });
  assert.equal(s.vat_id, 'IT00743110157');
  assert.equal(s.vat_applicable, true);
  assert.match(s.updated_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);

  // A partial update touches only what it names.
  const s2 = await saved(admin, { billing_address: { line2: null } });
  assert.deepEqual(s2.billing_address, { ...FULL.billing_address, country: 'IT', line2: null });
  assert.equal(s2.legal_name, 'Acme S.r.l.');
  assert.equal(s2.vat_id, 'IT00743110157');

  // Spaces, dots and dashes are removed, letters upper-cased.
  assert.equal((await saved(admin, { vat_id: 'IT 007.431.101-57' })).vat_id, 'IT00743110157');
  assert.equal((await saved(admin, { vat_id: 'it00743110157' })).vat_id, 'IT00743110157');

  // "" clears an optional field; so does null.
  assert.equal((await saved(admin, { legal_name: '' })).legal_name, null);
  assert.equal((await saved(admin, { legal_name: 'Acme S.r.l.', billing_email: null })).billing_email, null);
  await saved(admin, FULL);
});

test('bad VAT IDs are refused with a helpful message and change nothing', async () => {
  await saved(admin, FULL);
  const check = await refused(admin, { vat_id: 'IT00743110158' }, 400, 'invalid_request_error');
  assert.match(check.body.error.message, /IT00743110158/);
  const short = await refused(admin, { vat_id: 'IT123' }, 400, 'invalid_request_error');
  assert.match(short.body.error.message, /11 digits/);
  const german = await refused(admin, { vat_id: 'DE136695976' }, 400, 'invalid_request_error', 'a German VAT ID for Italy');
  assert.match(german.body.error.message, /IT/);
  await refused(admin, { vat_id: 'IT0074311015A' }, 400, 'invalid_request_error');
  await refused(admin, { vat_id: '00743110157' }, 400, 'invalid_request_error', 'no prefix');
  await refused(admin, { vat_id: 'IT00743110157!' }, 400, 'invalid_request_error');
  // The country and the VAT ID are judged together.
  await refused(admin, { billing_address: { country: 'DE' } }, 400, 'invalid_request_error', 'country DE with an Italian VAT ID');
  await refused(admin, { billing_address: { country: 'US' } }, 400, 'invalid_request_error', 'country US with a VAT ID');
  await refused(admin, { billing_address: { country: null } }, 400, 'invalid_request_error', 'clearing the country under a VAT ID');
  assert.equal((await settings(admin)).vat_id, 'IT00743110157');

  // A country without VAT, and no country at all.
  const us = await freshAdmin('US Corp');
  await saved(us, { billing_address: { country: 'US' } });
  assert.equal((await settings(us)).vat_applicable, false);
  const usVat = await refused(us, { vat_id: 'US123456789' }, 400, 'invalid_request_error', 'VAT for the US');
  assert.match(usVat.body.error.message, /United States|US/);
  await refused(us, { vat_id: 'IT00743110157' }, 400, 'invalid_request_error', 'an Italian VAT ID for the US');
  const none = await freshAdmin('No Country');
  await refused(none, { vat_id: 'IT00743110157' }, 400, 'invalid_request_error', 'a VAT ID without a country');
  await refused(none, { vat_id: 'IT00743110157', billing_address: { city: 'Milano' } }, 400, 'invalid_request_error');
});

test('valid VAT IDs of other countries are accepted', async () => {
  const c = await freshAdmin('Europe');
  for (const [country, vat] of [['DE', 'DE136695976'], ['FR', 'FR40303265045'], ['NL', 'NL004495445B01'],
    ['ES', 'ESA28015865'], ['GR', 'EL094259216'], ['IT', 'IT00743110157']]) {
    const s = await saved(c, { billing_address: { country }, vat_id: vat });
    assert.equal(s.billing_address.country, country);
    assert.equal(s.vat_id, vat);
    assert.equal(s.vat_applicable, true, country);
  }
  // Greece's VAT IDs carry EL, not its ISO code.
  const gr = await freshAdmin('Hellas');
  await saved(gr, { billing_address: { country: 'GR' } });
  await refused(gr, { vat_id: 'GR094259216' }, 400, 'invalid_request_error');
  // The VAT ID may be removed, after which the country may change freely.
  await saved(c, { vat_id: null });
  assert.equal((await saved(c, { billing_address: { country: 'US' } })).vat_applicable, false);
});

test('malformed, unknown, mistyped and oversized input is refused and changes nothing', async () => {
  await saved(admin, FULL);
  const bad = [
    ['unknown top-level field', { legal_name: 'X', vat: 'IT00743110157' }],
    ['unknown address field', { billing_address: { street: 'Via Roma' } }],
    ['name not a string', { name: 5 }],
    ['address not an object', { billing_address: 'x' }],
    ['address an array', { billing_address: ['x'] }],
    ['vat_id not a string', { vat_id: 3 }],
    ['legal_name not a string', { legal_name: true }],
    ['country not a string', { billing_address: { country: 39 } }],
    ['name null', { name: null }],
    ['name empty', { name: '' }],
    ['name whitespace', { name: '   ' }],
    ['name 81 characters', { name: 'n'.repeat(81) }],
    ['legal_name 201 characters', { legal_name: 'l'.repeat(201) }],
    ['line1 201 characters', { billing_address: { line1: 'a'.repeat(201) } }],
    ['city 101 characters', { billing_address: { city: 'c'.repeat(101) } }],
    ['postal_code 21 characters', { billing_address: { postal_code: '1'.repeat(21) } }],
    ['state 101 characters', { billing_address: { state: 's'.repeat(101) } }],
    ['billing_email 255 characters', { billing_email: `${'e'.repeat(64)}@${['a', 'b', 'c'].map((l) => l.repeat(60)).join('.')}.example` }],
    ['billing_email not an address', { billing_email: 'not-an-email' }],
    ['country not ISO', { billing_address: { country: 'XX' } }],
    ['country three letters', { billing_address: { country: 'ITA' } }],
    ['a good field next to a bad one', { legal_name: 'Changed S.p.A.', billing_address: { postal_code: '1'.repeat(21) } }],
  ];
  for (const [label, body] of bad) await refused(admin, body, 400, 'invalid_request_error', label);
  const unknown = await refused(admin, { legal_name: 'X', vat: 'IT00743110157' }, 400, 'invalid_request_error');
  assert.match(unknown.body.error.message, /"vat"/, 'the unknown field is named');

  for (const [label, opts] of [
    ['malformed JSON', { body: '{"legal_name": "X",', headers: { 'content-type': 'application/json' } }],
    ['a JSON array', { body: '[]', headers: { 'content-type': 'application/json' } }],
    ['not JSON content', { body: JSON.stringify({ legal_name: 'X' }), headers: { 'content-type': 'text/plain' } }],
  ]) {
    const before = await settings(admin);
    const r = await admin.request('POST', SETTINGS, opts);
    assertError(r, 400, 'invalid_request_error');
    assert.deepEqual(await settings(admin), before, label);
  }

  // The limits themselves are allowed.
  await saved(admin, { legal_name: 'l'.repeat(200), billing_address: { postal_code: '1'.repeat(20) } });
  await saved(admin, FULL);
});

test('a body over max_body_bytes gets 413 and changes nothing', async () => {
  const c = new Client(small.consoleUrl);
  await c.signUpWithOrg(small, uniq('small'), 'Small');
  await saved(c, { legal_name: 'Before' });
  const big = JSON.stringify({ legal_name: 'x'.repeat(4096) });
  assert.ok(big.length > 4096);
  const before = await settings(c);

  // With a declared content-length.
  const r = await c.request('POST', SETTINGS, { body: big, headers: { 'content-type': 'application/json' } });
  assertError(r, 413, 'request_too_large');
  assert.deepEqual(await settings(c), before);

  // Streamed in chunks, with no declared length.
  const chunks = [big.slice(0, 1500), big.slice(1500, 3000), big.slice(3000)];
  const stream = new ReadableStream({
    pull(ctrl) { if (chunks.length) ctrl.enqueue(new TextEncoder().encode(chunks.shift())); else ctrl.close(); },
  });
  const res = await fetch(small.consoleUrl + SETTINGS, {
    method: 'POST', body: stream, duplex: 'half',
    headers: { 'content-type': 'application/json', cookie: c.cookieHeader(), 'x-csrf-token': c.csrf },
  });
  assert.equal(res.status, 413);
  const body = await res.json();
  assert.equal(body.error.type, 'request_too_large');
  assert.equal(res.headers.get('request-id'), body.request_id);
  assert.deepEqual(await settings(c), before);

  // Just under the limit is fine.
  assert.equal((await saved(c, { legal_name: 'y'.repeat(200) })).legal_name, 'y'.repeat(200));
});

test('roles: user and developer read only; billing edits billing details; admin renames', async () => {
  await saved(admin, FULL);
  const current = await settings(admin);

  for (const role of ['user', 'developer']) {
    const c = await member(role);
    const s = await settings(c);
    assert.deepEqual(s.can_edit, { name: false, billing: false }, role);
    assert.deepEqual({ ...s, can_edit: null }, { ...current, can_edit: null }, `${role} sees other settings`);
    assert.deepEqual((await c.get('/v1/organizations/me')).body, { id: acmeId, type: 'organization', name: 'Acme' });
    for (const body of [{ legal_name: 'Hijacked' }, { name: 'Hijacked' }, { vat_id: 'IT00743110157' },
      { billing_address: { city: 'Roma' } }]) {
      await refused(c, body, 403, 'permission_error', `${role}: ${JSON.stringify(body)}`);
    }
    assert.deepEqual(await settings(admin), current, `${role} changed the settings`);
  }

  const billing = await member('billing');
  assert.deepEqual((await settings(billing)).can_edit, { name: false, billing: true });
  const b = await saved(billing, {
    legal_name: 'Acme Italia S.r.l.', billing_address: { city: 'Torino', postal_code: '10121', state: 'TO' },
    vat_id: 'IT 00743110157',
  });
  assert.equal(b.legal_name, 'Acme Italia S.r.l.');
  assert.equal(b.billing_address.city, 'Torino');
  assert.equal(b.vat_id, 'IT00743110157');
  assert.equal(b.name, 'Acme');
  // The name is the admin's: the whole request is refused, the other fields included.
  const renamed = await refused(billing, { name: 'Billing Co', legal_name: 'Other S.r.l.' }, 403, 'permission_error');
  assert.match(renamed.body.error.message, /admin/i);
  assert.equal((await settings(admin)).legal_name, 'Acme Italia S.r.l.');
  assert.equal((await settings(admin)).name, 'Acme');

  const a = await saved(admin, { name: '  Acme Renamed ' });
  assert.equal(a.name, 'Acme Renamed');
  assert.deepEqual((await admin.get('/v1/organizations/me')).body, { id: acmeId, type: 'organization', name: 'Acme Renamed' });
  assert.equal((await admin.get('/auth/session')).body.current_organization.name, 'Acme Renamed');
  assert.equal((await settings(billing)).name, 'Acme Renamed');
  await saved(admin, { name: 'Acme', ...FULL });
});

test('a member of another organization never sees these settings', async () => {
  const outsider = await freshAdmin('Outsider');
  const own = await settings(outsider);
  assert.notEqual(own.id, acmeId);
  assertError(await outsider.post('/auth/session/organization', { id: acmeId }), 404, 'not_found_error');
  const after = await settings(outsider);
  assert.equal(after.id, own.id);
  assert.equal(after.name, 'Outsider');
  assert.equal(after.legal_name, null);
  // Editing goes to the caller's own organization only.
  await saved(outsider, { legal_name: 'Outsider Ltd' });
  assert.equal((await settings(admin)).legal_name, FULL.legal_name);
});

test('changing settings needs the CSRF token', async () => {
  await saved(admin, FULL);
  const before = await settings(admin);
  const none = await admin.request('POST', SETTINGS, { json: { legal_name: 'No Token' }, csrf: false });
  assertError(none, 403, 'permission_error');
  const wrong = await admin.request('POST', SETTINGS,
    { json: { legal_name: 'Wrong Token' }, csrf: false, headers: { 'x-csrf-token': `${admin.csrf}x` } });
  assertError(wrong, 403, 'permission_error');
  const empty = await admin.request('POST', SETTINGS,
    { json: { legal_name: 'Empty Token' }, csrf: false, headers: { 'x-csrf-token': '' } });
  assertError(empty, 403, 'permission_error');
  // Another session's token is not this session's.
  const other = new Client(server.consoleUrl);
  await other.signIn(server, uniq('csrf-other'));
  const foreign = await admin.request('POST', SETTINGS,
    { json: { legal_name: 'Foreign Token' }, csrf: false, headers: { 'x-csrf-token': other.csrf } });
  assertError(foreign, 403, 'permission_error');
  assert.deepEqual(await settings(admin), before);
});
