// Onboarding (name, age, terms) and organizations: creating, listing, switching, the per-account
// limit (docs/api.md, "POST /auth/onboarding" to "POST /auth/session/organization").
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './lib/server.mjs';
import { Client } from './lib/client.mjs';
import { assertError, uniq } from './lib/expect.mjs';

let server;
let limited; // max_organizations_per_account 2

const ONBOARD = { full_name: 'Ada Lovelace', confirmed_age_18: true, accepted_terms: true };

before(async () => {
  [server, limited] = await Promise.all([
    startServer(),
    startServer({ config: { auth: { max_organizations_per_account: 2 } } }),
  ]);
});

after(async () => {
  await Promise.all([server?.stop(), limited?.stop()]);
});

async function session(c) {
  const r = await c.get('/auth/session');
  assert.equal(r.status, 200);
  return r.body;
}

async function signedIn(srv, name) {
  const c = new Client(srv.consoleUrl);
  const r = await c.signIn(srv, uniq(name));
  assert.equal(r.status, 200);
  return c;
}

test('before onboarding, organizations are out of reach', async () => {
  const c = await signedIn(server, 'early');
  const create = await c.post('/auth/organizations', { name: 'Too Soon' });
  assertError(create, 403, 'permission_error');
  assert.match(create.body.error.message, /^Complete onboarding first/);
  const me = await c.get('/v1/organizations/me');
  assertError(me, 403, 'permission_error');
  assert.match(me.body.error.message, /^Complete onboarding first/);
  const settings = await c.get('/v1/organizations/me/settings');
  assertError(settings, 403, 'permission_error');
  const sw = await c.post('/auth/session/organization', { id: 'org_01AAAAAAAAAAAAAAAAAAAAAA' });
  assertError(sw, 403, 'permission_error');
  const s = await session(c);
  assert.deepEqual(s.organizations, []);
  assert.equal(s.current_organization, null);
});

test('onboarding validates every field and changes nothing when it refuses', async () => {
  const c = await signedIn(server, 'onboard');
  const bad = [
    ['missing full_name', { confirmed_age_18: true, accepted_terms: true }],
    ['empty name', { ...ONBOARD, full_name: '' }],
    ['whitespace name', { ...ONBOARD, full_name: '   \t ' }],
    ['101 characters', { ...ONBOARD, full_name: 'x'.repeat(101) }],
    ['age not confirmed', { ...ONBOARD, confirmed_age_18: false }],
    ['terms not accepted', { ...ONBOARD, accepted_terms: false }],
    ['age as a string', { ...ONBOARD, confirmed_age_18: 'true' }],
    ['terms as a string', { ...ONBOARD, accepted_terms: 'true' }],
    ['name not a string', { ...ONBOARD, full_name: 42 }],
    ['missing booleans', { full_name: 'Ada Lovelace' }],
    ['unknown field', { ...ONBOARD, nickname: 'ada' }],
  ];
  for (const [name, body] of bad) {
    const r = await c.post('/auth/onboarding', body);
    assert.equal(r.status, 400, `${name}: ${r.status} ${JSON.stringify(r.body)}`);
    assertError(r, 400, 'invalid_request_error');
    const s = await session(c);
    assert.equal(s.account.onboarded, false, `${name} onboarded the account`);
    assert.equal(s.account.full_name, null, `${name} stored a name`);
  }
  const tooLong = await c.post('/auth/onboarding', { ...ONBOARD, full_name: 'x'.repeat(101) });
  assert.match(tooLong.body.error.message, /100/);

  // Without the CSRF header: refused, nothing changes.
  const noCsrf = await c.request('POST', '/auth/onboarding', { json: ONBOARD, csrf: false });
  assertError(noCsrf, 403, 'permission_error');
  assert.equal((await session(c)).account.onboarded, false);

  // Exactly 100 characters after trimming is fine; the stored name is trimmed.
  const name = `  ${'é'.repeat(50)}${'a'.repeat(50)}  `;
  const ok = await c.post('/auth/onboarding', { ...ONBOARD, full_name: name });
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
  assert.equal(ok.body.type, 'session');
  assert.equal(ok.body.account.onboarded, true);
  assert.equal(ok.body.account.full_name, name.trim());
  const s = await session(c);
  assert.equal(s.account.onboarded, true);
  assert.equal(s.account.full_name, name.trim());
});

test('creating an organization makes the caller its admin and selects it', async () => {
  const c = await signedIn(server, 'creator');
  assert.equal((await c.post('/auth/onboarding', { ...ONBOARD, full_name: '  Grace Hopper ' })).status, 200);
  assert.equal((await session(c)).account.full_name, 'Grace Hopper');

  // No organization yet: the organization API has nothing to act on.
  assertError(await c.get('/v1/organizations/me'), 404, 'not_found_error');

  for (const [name, body] of [
    ['empty', { name: '' }], ['whitespace', { name: '   ' }], ['81 characters', { name: 'o'.repeat(81) }],
    ['not a string', { name: 7 }], ['null', { name: null }], ['missing', {}], ['unknown field', { name: 'A', x: 1 }],
  ]) {
    const r = await c.post('/auth/organizations', body);
    assert.equal(r.status, 400, `${name}: ${r.status} ${JSON.stringify(r.body)}`);
    assertError(r, 400, 'invalid_request_error');
  }
  assert.deepEqual((await session(c)).organizations, [], 'a refused create made an organization');

  const noCsrf = await c.request('POST', '/auth/organizations', { json: { name: 'Acme' }, csrf: false });
  assertError(noCsrf, 403, 'permission_error');
  assert.deepEqual((await session(c)).organizations, []);

  const r = await c.post('/auth/organizations', { name: '  Acme Analytics  ' });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  assert.equal(r.body.type, 'session');
  assert.equal(r.body.organizations.length, 1);
  const org = r.body.organizations[0];
  assert.match(org.id, /^org_01/);
  assert.deepEqual(org, { id: org.id, type: 'organization', name: 'Acme Analytics', role: 'admin' });
  assert.deepEqual(r.body.current_organization, org);

  const me = await c.get('/v1/organizations/me');
  assert.equal(me.status, 200);
  assert.deepEqual(me.body, { id: org.id, type: 'organization', name: 'Acme Analytics' });
  assert.deepEqual((await session(c)).current_organization, org);

  // Exactly 80 characters is allowed.
  const long = await c.post('/auth/organizations', { name: 'L'.repeat(80) });
  assert.equal(long.status, 201, JSON.stringify(long.body));
  assert.equal(long.body.current_organization.name, 'L'.repeat(80));
});

test('several organizations: the newest is current; switching moves between them', async () => {
  const c = new Client(server.consoleUrl);
  const one = await c.signUpWithOrg(server, uniq('switcher'), 'First Org');
  const firstId = one.current_organization.id;
  const two = await c.post('/auth/organizations', { name: 'Second Org' });
  assert.equal(two.status, 201);
  const secondId = two.body.current_organization.id;
  assert.notEqual(secondId, firstId);
  assert.equal(two.body.current_organization.name, 'Second Org');
  assert.deepEqual(two.body.organizations.map((o) => o.id).sort(), [firstId, secondId].sort());
  assert.ok(two.body.organizations.every((o) => o.role === 'admin'));
  assert.equal((await c.get('/v1/organizations/me')).body.id, secondId);

  const back = await c.post('/auth/session/organization', { id: firstId });
  assert.equal(back.status, 200, JSON.stringify(back.body));
  assert.equal(back.body.type, 'session');
  assert.deepEqual(back.body.current_organization, { id: firstId, type: 'organization', name: 'First Org', role: 'admin' });
  assert.deepEqual((await c.get('/v1/organizations/me')).body, { id: firstId, type: 'organization', name: 'First Org' });
  assert.equal((await session(c)).current_organization.id, firstId);

  // Another account's organization: not found, and the selection stays.
  const other = new Client(server.consoleUrl);
  const theirs = (await other.signUpWithOrg(server, uniq('other'), 'Their Org')).current_organization.id;
  const foreign = await c.post('/auth/session/organization', { id: theirs });
  assertError(foreign, 404, 'not_found_error');
  assert.equal((await c.get('/v1/organizations/me')).body.id, firstId);
  assert.equal((await other.get('/v1/organizations/me')).body.id, theirs, 'the other account was affected');

  for (const id of ['nope', 'org_', 'org_01AAAAAAAAAAAAAAAAAAAAAA', `${firstId}x`, 'user_01AAAAAAAAAAAAAAAAAAAAAA', "org_01' OR '1'='1"]) {
    assertError(await c.post('/auth/session/organization', { id }), 404, 'not_found_error');
  }
  for (const body of [{}, { id: 5 }, { id: firstId, extra: true }]) {
    assertError(await c.post('/auth/session/organization', body), 400, 'invalid_request_error');
  }
  assertError(await c.request('POST', '/auth/session/organization', { json: { id: secondId }, csrf: false }), 403,
    'permission_error');
  assert.equal((await c.get('/v1/organizations/me')).body.id, firstId, 'a refused switch changed the selection');

  // The selection belongs to the session: a new sign-in of the same account starts in one of its own.
  const again = new Client(server.consoleUrl);
  const email = (await session(c)).account.email;
  await again.signIn(server, email);
  const s = await session(again);
  assert.ok([firstId, secondId].includes(s.current_organization?.id), 'a new session starts in one of the organizations');
  assert.equal(s.organizations.length, 2);
});

test('an account may have at most max_organizations_per_account organizations', async () => {
  const c = new Client(limited.consoleUrl);
  await c.signUpWithOrg(limited, uniq('many'), 'Org One');
  assert.equal((await c.post('/auth/organizations', { name: 'Org Two' })).status, 201);
  const before = await session(c);
  const third = await c.post('/auth/organizations', { name: 'Org Three' });
  assertError(third, 409, 'conflict_error');
  const after = await session(c);
  assert.equal(after.organizations.length, 2);
  assert.deepEqual(after.current_organization, before.current_organization);
  assert.ok(!after.organizations.some((o) => o.name === 'Org Three'));
});

test('an onboarded account without organizations has no current organization', async () => {
  const c = await signedIn(server, 'noorg');
  assert.equal((await c.post('/auth/onboarding', ONBOARD)).status, 200);
  const s = await session(c);
  assert.equal(s.current_organization, null);
  assert.deepEqual(s.organizations, []);
  assertError(await c.get('/v1/organizations/me'), 404, 'not_found_error');
  assertError(await c.get('/v1/organizations/me/settings'), 404, 'not_found_error');
});
