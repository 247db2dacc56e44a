// Platform staff and limit increase requests (docs/api.md, "Staff"): `gatehouse staff add`,
// the queue of requests across organizations, approving with custom limits (live on the next
// model request), declining with a note, moving an organization between tiers by hand, the
// mails to the organization's admins and the audit log.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './lib/server.mjs';
import { Client } from './lib/client.mjs';
import { assertError, assertList, uniq, KeyClient } from './lib/expect.mjs';
import { gatehouse } from './lib/billing.mjs';
import { LIMITS_CONFIG, REQUESTS, call, grant, limits, orgWithKey } from './lib/limits.mjs';

let server;
let staff;      // a signed-in staff member
let staffEmail;

before(async () => {
  server = await startServer({ config: LIMITS_CONFIG });
  staffEmail = uniq('staff').toLowerCase();
  staff = new Client(server.consoleUrl);
  await staff.signUpWithOrg(server, staffEmail, 'Platform team');
});

after(async () => {
  await server?.stop();
});

const MSG = { model: 'gatehouse-mock-small', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] };
const mailsTo = (email, subject) => server.outbox().filter((m) => m.to?.toLowerCase().includes(email) && (!subject || m.subject === subject));

test('gatehouse staff add makes an account staff; only staff reach /staff/api', async () => {
  // Before: the session says so, and the API refuses.
  let s = await staff.refreshSession();
  assert.equal(s.body.account.is_staff, false);
  assertError(await staff.get('/staff/api/limit_requests'), 403, 'permission_error');

  let r = gatehouse(server, 'staff', 'add', 'nobody@example.com');
  assert.equal(r.status, 1);
  assert.match(r.stderr, /no account for nobody@example.com/);
  r = gatehouse(server, 'staff', 'add', staffEmail.toUpperCase());
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /is now staff/);
  s = await staff.refreshSession();
  assert.equal(s.body.account.is_staff, true);
  assertList(await staff.get('/staff/api/limit_requests'));

  // Signed out: 401. An admin key never reaches staff routes. A change needs the CSRF header.
  assertError(await new Client(server.consoleUrl).get('/staff/api/limit_requests'), 401, 'authentication_error');
  const o = await orgWithKey(server, 'Keyed');
  const ak = (await o.admin.post('/v1/organizations/admin_keys', { name: 'k' })).body.key;
  assertError(await new KeyClient(server.consoleUrl, ak).get('/staff/api/limit_requests'), 401, 'authentication_error');
  const noCsrf = await staff.request('POST', '/staff/api/limit_requests/limreq_01aaaaaaaaaaaaaaaaaaaaaa/decline',
    { json: { note: 'x' }, csrf: false });
  assertError(noCsrf, 403, 'permission_error');
  // Another organization's admin is not staff.
  assertError(await o.admin.get('/staff/api/organizations'), 403, 'permission_error');
});

test('the full increase-request flow: ask, approve with custom limits, decline, emails, audit', async () => {
  // Two organizations ask.
  const a = await orgWithKey(server, 'Alpha');
  const b = await orgWithKey(server, 'Beta');
  await grant(server, a.admin, a.orgId, '5.00');
  let r = await a.admin.post(REQUESTS, { tier: 'tier_2', reason: 'We launch next week and expect 10x traffic.' });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  const reqA = r.body;
  r = await b.admin.post(REQUESTS, { custom: { monthly_cap_usd: '20000.00', requests_per_minute: 50000 }, reason: 'Enterprise contract' });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  const reqB = r.body;
  assert.deepEqual(reqB.custom, { monthly_cap_usd: '20000.00', requests_per_minute: 50000,
    input_tokens_per_minute: null, output_tokens_per_minute: null });

  // The queue shows both, oldest first, with the organizations' names.
  const queue = assertList(await staff.get('/staff/api/limit_requests?status=pending&limit=1000'));
  const mine = queue.data.filter((x) => x.id === reqA.id || x.id === reqB.id);
  assert.deepEqual(mine.map((x) => x.organization_name), ['Alpha', 'Beta']);
  assert.equal(mine[0].reason, 'We launch next week and expect 10x traffic.');

  // Approve Alpha's with custom limits instead of Tier 2: 7 requests a minute.
  r = await staff.post(`/staff/api/limit_requests/${reqA.id}/approve`, {
    tier: 'custom', custom: { monthly_cap_usd: '2000.00', requests_per_minute: 7 }, note: 'Approved with a custom plan.',
  });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.status, 'approved');
  assert.equal(r.body.granted_tier, 'custom');
  assert.equal(r.body.decided_by, staffEmail);
  assert.equal(r.body.staff_note, 'Approved with a custom plan.');
  // Live: the organization's limits and its very next model request.
  const l = await limits(a.admin);
  assert.equal(l.tier, 'custom');
  assert.equal(l.tier_set_by, 'staff');
  assert.equal(l.tier_monthly_cap_usd, '2000.00');
  assert.equal(l.rate_limits[0].requests_per_minute, 7);
  assert.equal(l.rate_limits[0].input_tokens_per_minute, null);
  assert.equal(l.next_tier, null);
  const m = await call(server, a.key, MSG);
  assert.equal(m.status, 200, m.text);
  assert.equal(m.headers.get('anthropic-ratelimit-requests-limit'), '7');
  assert.equal(m.headers.get('anthropic-ratelimit-input-tokens-limit'), null); // no limit, no header
  // The monthly limit may now go up to the custom cap.
  assert.equal((await a.admin.post('/v1/organizations/limits', { monthly_spend_limit_usd: '1500.00' })).status, 200);

  // Decided once.
  assertError(await staff.post(`/staff/api/limit_requests/${reqA.id}/decline`, { note: 'x' }), 409, 'conflict_error');

  // Decline Beta's: a note is required.
  assertError(await staff.post(`/staff/api/limit_requests/${reqB.id}/decline`, {}), 400, 'invalid_request_error');
  r = await staff.post(`/staff/api/limit_requests/${reqB.id}/decline`, { note: 'Please buy Tier 4 first.' });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.status, 'declined');
  assert.equal((await limits(b.admin)).tier, 'evaluation');
  // Beta sees the answer in its list and may ask again.
  const mineB = (await b.admin.get(REQUESTS)).body.data;
  assert.equal(mineB[0].status, 'declined');
  assert.equal(mineB[0].staff_note, 'Please buy Tier 4 first.');
  assert.equal((await b.admin.post(REQUESTS, { tier: 'tier_1', reason: 'Smaller step' })).status, 201);

  // Mails to each organization's admins.
  const approved = mailsTo(a.email, 'Your limit increase request was approved');
  assert.equal(approved.length, 1);
  assert.match(approved[0].body, /Approved with a custom plan\./);
  assert.match(approved[0].body, /Custom: monthly cap \$2000\.00/);
  assert.match(approved[0].body, /\/settings\/limits/);
  const declined = mailsTo(b.email, 'Your limit increase request was declined');
  assert.equal(declined.length, 1);
  assert.match(declined[0].body, /Please buy Tier 4 first\./);

  // The audit log of each organization, with staff as the actor.
  const auditA = (await a.admin.get('/v1/organizations/audit_log?limit=100')).body.data;
  const created = auditA.find((e) => e.action === 'limit_request.created');
  assert.equal(created.actor.type, 'user');
  const ok = auditA.find((e) => e.action === 'limit_request.approved');
  assert.ok(ok, JSON.stringify(auditA.map((e) => e.action)));
  assert.equal(ok.actor.type, 'staff');
  assert.equal(ok.actor.label, staffEmail);
  assert.equal(ok.target.id, reqA.id);
  assert.equal(ok.details.tier, 'custom');
  assert.equal(ok.details.previous_tier, 'evaluation');
  const auditB = (await b.admin.get('/v1/organizations/audit_log?limit=100')).body.data;
  assert.ok(auditB.find((e) => e.action === 'limit_request.declined' && e.actor.type === 'staff'));
});

test('approving a tier request grants the tier asked for', async () => {
  const o = await orgWithKey(server, 'Gamma');
  const r = await o.admin.post(REQUESTS, { tier: 'tier_2', reason: 'Growth' });
  const ok = await staff.post(`/staff/api/limit_requests/${r.body.id}/approve`, {});
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
  assert.equal(ok.body.granted_tier, 'tier_2');
  const l = await limits(o.admin);
  assert.equal(l.tier, 'tier_2');
  assert.equal(l.tier_set_by, 'staff');
  assertError(await staff.post('/staff/api/limit_requests/limreq_01aaaaaaaaaaaaaaaaaaaaaa/approve', {}), 404, 'not_found_error');
});

test('staff move an organization between tiers by hand, and back to purchases', async () => {
  const o = await orgWithKey(server, 'Delta');
  await grant(server, o.admin, o.orgId, '1.00');
  const found = assertList(await staff.get(`/staff/api/organizations?query=delt`));
  const entry = found.data.find((x) => x.id === o.orgId);
  assert.equal(entry.name, 'Delta');
  assert.equal(entry.tier, 'evaluation');

  let r = await staff.post(`/staff/api/organizations/${o.orgId}/tier`, { tier: 'tier_1', note: 'Trial upgrade' });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.tier, 'tier_1');
  assert.equal(r.body.tier_set_by, 'staff');
  let m = await call(server, o.key, MSG);
  assert.equal(m.headers.get('anthropic-ratelimit-requests-limit'), '3');
  const mail = mailsTo(o.email, 'Your usage tier was changed');
  assert.equal(mail.length, 1);
  assert.match(mail[0].body, /Tier: Tier 1 \(was Evaluation\)/);
  assert.match(mail[0].body, /Trial upgrade/);

  // Bad input changes nothing.
  assertError(await staff.post(`/staff/api/organizations/${o.orgId}/tier`, { tier: 'platinum' }), 400, 'invalid_request_error');
  assertError(await staff.post(`/staff/api/organizations/${o.orgId}/tier`, { tier: 'custom' }), 400, 'invalid_request_error');
  assertError(await staff.post(`/staff/api/organizations/${o.orgId}/tier`, {}), 400, 'invalid_request_error');
  assertError(await staff.post('/staff/api/organizations/org_01aaaaaaaaaaaaaaaaaaaaaa/tier', { tier: 'tier_1' }), 404, 'not_found_error');

  r = await staff.post(`/staff/api/organizations/${o.orgId}/tier`, { tier: null });
  assert.equal(r.status, 200);
  assert.equal(r.body.tier, 'evaluation');
  assert.equal(r.body.tier_set_by, 'purchases');
  m = await call(server, o.key, MSG);
  assert.equal(m.headers.get('anthropic-ratelimit-requests-limit'), '100000');
  const audit = (await o.admin.get('/v1/organizations/audit_log?limit=100')).body.data;
  const moves = audit.filter((e) => e.action === 'limits.tier_set');
  assert.equal(moves.length, 2);
  assert.deepEqual(moves[0].details.tier, { from: 'tier_1', to: 'evaluation' });
  assert.equal(moves[1].details.note, 'Trial upgrade');

  // The staff view of the organization's limits.
  const view = await staff.get(`/staff/api/organizations/${o.orgId}/limits`);
  assert.equal(view.status, 200);
  assert.equal(view.body.organization_name, 'Delta');
});

test('gatehouse staff remove takes staff rights away at once', async () => {
  const other = new Client(server.consoleUrl);
  const email = uniq('exstaff').toLowerCase();
  await other.signUpWithOrg(server, email, 'Ex');
  assert.equal(gatehouse(server, 'staff', 'add', email).status, 0);
  assertList(await other.get('/staff/api/limit_requests'));
  const r = gatehouse(server, 'staff', 'remove', email);
  assert.equal(r.status, 0, r.stderr);
  assertError(await other.get('/staff/api/limit_requests'), 403, 'permission_error');
  assert.equal((await other.refreshSession()).body.account.is_staff, false);
  assert.equal(gatehouse(server, 'staff', 'remove', email).status, 1);
});
