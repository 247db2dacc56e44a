// Members and invitations: inviting by email with a role, the mailed single-use link, pending
// invites listed, re-sent and revoked, expiry, joining with an existing account; members listed,
// their roles changed, removed, and the last admin protected (docs/api.md, "Users (members)"
// and "Invites").
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './lib/server.mjs';
import { Client } from './lib/client.mjs';
import {
  assertError, uniq, idPattern, TIME, pathOf, inviteLink, inviteLinks, acceptInvite, openInvite, addMember,
  sql, sqlTime, sqlSeconds, sqlQuote, listAll, assertList, ONBOARDING,
} from './lib/expect.mjs';

const INVITES = '/v1/organizations/invites';
const USERS = '/v1/organizations/users';
const DAY = 86400;

let server;
let short; // invite_ttl_days = 2
let admin; // admin of Acme on `server`
let adminEmail;
let acmeId;

before(async () => {
  [server, short] = await Promise.all([
    startServer(),
    startServer({ config: { organizations: { invite_ttl_days: 2 } } }),
  ]);
  admin = new Client(server.consoleUrl);
  adminEmail = uniq('admin');
  acmeId = (await admin.signUpWithOrg(server, adminEmail, 'Acme')).current_organization.id;
});

after(async () => {
  await Promise.all([server?.stop(), short?.stop()]);
});

// A separate admin with an organization of their own on `srv`.
async function freshAdmin(srv, name) {
  const c = new Client(srv.consoleUrl);
  const email = uniq('owner');
  const s = await c.signUpWithOrg(srv, email, name);
  return { client: c, email, id: s.account.id, orgId: s.current_organization.id };
}

const seconds = (t) => Date.parse(t) / 1000;

function assertInvite(inv, { email, role, status }) {
  assert.deepEqual(Object.keys(inv).sort(),
    ['accepted_at', 'email', 'expires_at', 'id', 'invited_at', 'role', 'status', 'type']);
  assert.equal(inv.type, 'invite');
  assert.match(inv.id, idPattern('invite'));
  if (email) assert.equal(inv.email, email.toLowerCase());
  if (role) assert.equal(inv.role, role);
  if (status) assert.equal(inv.status, status);
  assert.match(inv.invited_at, TIME);
  assert.match(inv.expires_at, TIME);
  if (inv.status === 'accepted') assert.match(inv.accepted_at, TIME); else assert.equal(inv.accepted_at, null);
}

async function invite(c, email, role = 'user') {
  const r = await c.post(INVITES, { email, role });
  assert.equal(r.status, 201, `invite ${email}: ${r.status} ${JSON.stringify(r.body)}`);
  assertInvite(r.body, { email, role, status: 'pending' });
  return r.body;
}

async function getInvite(c, id) {
  const r = await c.get(`${INVITES}/${id}`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
}

// Opens an invitation link the way a browser does and the way a script does: a refused link
// gets 303 to /login?error=<code> with no cookie, and 400 JSON with accept: application/json.
async function assertLinkRefused(srv, link, code) {
  const c = new Client(srv.consoleUrl);
  const r = await c.get(pathOf(link));
  assert.equal(r.status, 303, `${link}: ${r.status}`);
  assert.equal(r.headers.get('location'), `${srv.consoleUrl}/login?error=${code}`);
  assert.deepEqual(r.headers.getSetCookie(), [], 'a refused link sets no cookie');
  assert.equal(c.cookies.size, 0);
  const j = await new Client(srv.consoleUrl).get(pathOf(link), { headers: { accept: 'application/json' } });
  assertError(j, 400, 'invalid_request_error');
}

// Everything an admin can see of invites and members, to check that a refused call changed
// nothing.
async function inviteState(c, srv) {
  return { invites: await listAll(c, INVITES), users: await listAll(c, USERS), mails: srv.outbox().length };
}

test('an invite is created, mailed with a single-use link and listed as pending', async () => {
  const email = uniq('Invitee').replace('Invitee', 'InViTee');
  const sent = await invite(admin, email, 'developer');
  assert.equal(sent.email, email.toLowerCase(), 'the address is stored normalised');
  assert.equal(seconds(sent.expires_at) - seconds(sent.invited_at), 21 * DAY, 'valid 21 days');
  assert.ok(Math.abs(seconds(sent.invited_at) - Date.now() / 1000) < 60);

  // The mail: to the invitee, naming the organization, with a link built from the console URL.
  const mails = server.outbox().filter((m) => m.to.toLowerCase().includes(email.toLowerCase()));
  assert.equal(mails.length, 1);
  assert.match(mails[0].subject, /Acme/);
  const link = inviteLink(server, email);
  assert.match(link, new RegExp(`^${server.consoleUrl.replace(/[.]/g, '\\.')}/auth/invite\\?token=[A-Za-z0-9]+$`));
  assert.match(mails[0].body, /developer/, 'the mail names the role');
  assert.match(mails[0].body, /21 days/, 'the mail says how long the link works');

  assert.deepEqual(await getInvite(admin, sent.id), sent);
  const pending = await listAll(admin, `${INVITES}?status=pending`);
  assert.deepEqual(pending.find((i) => i.id === sent.id), sent);
  for (const status of ['accepted', 'expired', 'deleted'])
    assert.ok(!(await listAll(admin, `${INVITES}?status=${status}`)).some((i) => i.id === sent.id), status);
});

test('several addresses can be invited, each with their own link and role', async () => {
  const people = [[uniq('multi-a'), 'user'], [uniq('multi-b'), 'billing'], [uniq('multi-c'), 'admin']];
  const invites = [];
  for (const [email, role] of people) invites.push(await invite(admin, email, role));
  const links = people.map(([email]) => inviteLink(server, email));
  assert.equal(new Set(links).size, 3, 'each invite has its own link');
  for (const [i, [email, role]] of people.entries()) {
    const c = await acceptInvite(server, email);
    const s = (await c.get('/auth/session')).body;
    assert.equal(s.current_organization.id, acmeId);
    assert.equal(s.current_organization.role, role);
    assert.equal((await getInvite(admin, invites[i].id)).status, 'accepted');
  }
});

test('refused invites: duplicates, members, bad input; nothing is created or mailed', async () => {
  const email = uniq('dup');
  const first = await invite(admin, email, 'user');

  const refused = async (body, status, type, label) => {
    const before = await inviteState(admin, server);
    const r = await admin.post(INVITES, body);
    assert.equal(r.status, status, `${label}: ${r.status} ${JSON.stringify(r.body)}`);
    assertError(r, status, type);
    assert.deepEqual(await inviteState(admin, server), before, `${label} changed something`);
    return r;
  };

  // A second invite to an address with a pending one, in any letter case.
  await refused({ email, role: 'user' }, 409, 'conflict_error', 'pending duplicate');
  await refused({ email: email.toUpperCase(), role: 'admin' }, 409, 'conflict_error', 'pending duplicate, upper case');
  assert.deepEqual(await getInvite(admin, first.id), first);

  // Existing members, including the admin themself.
  const m = await addMember(server, admin, 'developer');
  await refused({ email: m.email, role: 'user' }, 409, 'conflict_error', 'existing member');
  await refused({ email: adminEmail, role: 'user' }, 409, 'conflict_error', 'the admin themself');

  // Bad input.
  for (const [label, body] of [
    ['not an address', { email: 'not-an-email', role: 'user' }],
    ['empty address', { email: '', role: 'user' }],
    ['unknown role', { email: uniq('bad'), role: 'owner' }],
    ['workspace role', { email: uniq('bad'), role: 'workspace_admin' }],
    ['role in capitals', { email: uniq('bad'), role: 'ADMIN' }],
    ['email missing', { role: 'user' }],
    ['role missing', { email: uniq('bad') }],
    ['email not a string', { email: 42, role: 'user' }],
    ['role not a string', { email: uniq('bad'), role: ['user'] }],
    ['role null', { email: uniq('bad'), role: null }],
  ]) await refused(body, 400, 'invalid_request_error', label);
  const unknown = await refused({ email: uniq('bad'), role: 'user', workspace: 'x' }, 400, 'invalid_request_error', 'unknown field');
  assert.match(unknown.body.error.message, /"workspace"/, 'the unknown field is named');
  const before = await inviteState(admin, server);
  assertError(await admin.request('POST', INVITES, { body: '{"email":', headers: { 'content-type': 'application/json' } }),
    400, 'invalid_request_error');
  assert.deepEqual(await inviteState(admin, server), before);
});

test('invites list: status filter, pagination, get; bad ids and filters are refused', async () => {
  const { client: c } = await freshAdmin(server, 'Listing');
  const made = [];
  for (let i = 0; i < 5; i++) made.push(await invite(c, uniq(`page${i}`), i % 2 ? 'developer' : 'user'));
  // One accepted, one revoked.
  await acceptInvite(server, made[1].email);
  assert.equal((await c.request('DELETE', `${INVITES}/${made[2].id}`)).status, 200);

  const all = assertList(await c.get(INVITES));
  assert.deepEqual(all.data.map((i) => i.id), made.map((i) => i.id), 'oldest first');
  assert.equal(all.has_more, false);
  const ids = (l) => l.data.map((i) => i.id);
  assert.deepEqual(ids(assertList(await c.get(`${INVITES}?status=pending`))), [made[0].id, made[3].id, made[4].id]);
  assert.deepEqual(ids(assertList(await c.get(`${INVITES}?status=accepted`))), [made[1].id]);
  assert.deepEqual(ids(assertList(await c.get(`${INVITES}?status=deleted`))), [made[2].id]);
  assert.deepEqual(ids(assertList(await c.get(`${INVITES}?status=expired`))), []);
  assertError(await c.get(`${INVITES}?status=open`), 400, 'invalid_request_error');

  const p1 = assertList(await c.get(`${INVITES}?limit=2`));
  assert.deepEqual(ids(p1), [made[0].id, made[1].id]);
  assert.equal(p1.has_more, true);
  const p2 = assertList(await c.get(`${INVITES}?limit=2&after_id=${p1.last_id}`));
  assert.deepEqual(ids(p2), [made[2].id, made[3].id]);
  assert.equal(p2.has_more, true);
  const p3 = assertList(await c.get(`${INVITES}?limit=2&after_id=${p2.last_id}`));
  assert.deepEqual(ids(p3), [made[4].id]);
  assert.equal(p3.has_more, false);
  const back = assertList(await c.get(`${INVITES}?limit=2&before_id=${p3.first_id}`));
  assert.deepEqual(ids(back), [made[2].id, made[3].id]);
  assert.equal(back.has_more, true);
  // Pagination within a filter.
  const f1 = assertList(await c.get(`${INVITES}?status=pending&limit=2`));
  assert.deepEqual(ids(f1), [made[0].id, made[3].id]);
  assert.equal(f1.has_more, true);
  const f2 = assertList(await c.get(`${INVITES}?status=pending&limit=2&after_id=${f1.last_id}`));
  assert.deepEqual(ids(f2), [made[4].id]);
  assert.equal(f2.has_more, false);

  for (const q of ['limit=0', 'limit=1001', 'limit=x', `after_id=invite_01${'x'.repeat(22)}`,
    `after_id=${made[0].id}&before_id=${made[1].id}`])
    assertError(await c.get(`${INVITES}?${q}`), 400, 'invalid_request_error');
  // Another organization's invite is not a cursor here, nor readable.
  const other = await invite(admin, uniq('elsewhere'));
  assertError(await c.get(`${INVITES}?after_id=${other.id}`), 400, 'invalid_request_error');
  assertError(await c.get(`${INVITES}/${other.id}`), 404, 'not_found_error');
  assertError(await c.get(`${INVITES}/invite_01${'A'.repeat(22)}`), 404, 'not_found_error');
  assertError(await c.get(`${INVITES}/nonsense`), 404, 'not_found_error');
});

test('accepting: a new account joins with the invited role and lands in the organization; the link works once', async () => {
  const email = uniq('joiner');
  const inv = await invite(admin, email, 'billing');
  const link = inviteLink(server, email);
  const c = new Client(server.consoleUrl);
  // The link itself only checks, however often it is fetched (mail scanners): it leads to
  // /accept-invite with the token in the fragment, joins nothing and starts no session.
  const token = new URL(link).searchParams.get('token');
  for (let i = 0; i < 2; i++) {
    const g = await c.get(pathOf(link));
    assert.equal(g.status, 303);
    assert.equal(g.headers.get('location'), `${server.consoleUrl}/accept-invite#token=${token}`);
    assert.ok(!c.cookies.has('gh_session'), 'the GET of the link started a session');
  }
  assert.equal((await getInvite(admin, inv.id)).status, 'pending');
  // The console's page posts the token: that accepts the invitation and signs in.
  const r = await openInvite(c, link);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.deepEqual(r.body, { type: 'invite_accepted', new_account: true });
  assert.ok(c.cookies.has('gh_session'), 'a session starts');
  const s = (await c.refreshSession()).body;
  assert.equal(s.account.email, email);
  assert.equal(s.account.onboarded, false, 'a new account still onboards');
  assert.deepEqual(s.current_organization, { id: acmeId, type: 'organization', name: 'Acme', role: 'billing' });
  assert.deepEqual(s.organizations, [s.current_organization]);
  assertError(await c.get('/v1/organizations/me'), 403, 'permission_error');
  assert.equal((await c.post('/auth/onboarding', ONBOARDING)).status, 200);
  assert.deepEqual((await c.get('/v1/organizations/me')).body, { id: acmeId, type: 'organization', name: 'Acme' });

  const accepted = await getInvite(admin, inv.id);
  assertInvite(accepted, { email, role: 'billing', status: 'accepted' });
  assert.equal(accepted.expires_at, inv.expires_at);
  const users = await listAll(admin, USERS);
  const me = users.find((u) => u.id === s.account.id);
  assert.deepEqual(me, { type: 'user', id: s.account.id, email, name: ONBOARDING.full_name, role: 'billing', added_at: me.added_at });
  assert.match(me.added_at, TIME);

  // Used: refused, and nothing changes (no second membership, no new session).
  const stateBefore = await inviteState(admin, server);
  await assertLinkRefused(server, link, 'invite_used');
  assert.deepEqual(await inviteState(admin, server), stateBefore);
  // Once accepted, it can be neither revoked nor re-sent.
  assert.ok([400, 409].includes((await admin.request('DELETE', `${INVITES}/${inv.id}`)).status));
  assert.ok([400, 409].includes((await admin.post(`${INVITES}/${inv.id}/resend`)).status));
  assert.deepEqual(await getInvite(admin, inv.id), accepted);
  // Bad and unknown tokens.
  await assertLinkRefused(server, `${server.consoleUrl}/auth/invite?token=${'A'.repeat(43)}`, 'invalid_link');
  await assertLinkRefused(server, `${server.consoleUrl}/auth/invite?token=x`, 'invalid_link');
  await assertLinkRefused(server, `${server.consoleUrl}/auth/invite`, 'invalid_link');
});

test('an existing account (of another organization) joins without a new account and lands in the inviting one', async () => {
  const elsewhere = await freshAdmin(server, 'Elsewhere');
  const inv = await invite(admin, elsewhere.email, 'developer');
  // Opened in a fresh browser: signs in as the existing account.
  const c = await acceptInvite(server, elsewhere.email, { onboard: false });
  const s = (await c.get('/auth/session')).body;
  assert.equal(s.account.id, elsewhere.id, 'the same account, not a new one');
  assert.equal(s.account.onboarded, true);
  assert.equal(s.current_organization.id, acmeId);
  assert.equal(s.current_organization.role, 'developer');
  assert.deepEqual(s.organizations.map((o) => [o.id, o.role]).sort(),
    [[acmeId, 'developer'], [elsewhere.orgId, 'admin']].sort());
  assert.equal((await c.get('/v1/organizations/me')).body.id, acmeId);
  assert.equal((await getInvite(admin, inv.id)).status, 'accepted');
  const matches = (await listAll(admin, USERS)).filter((u) => u.email === elsewhere.email);
  assert.deepEqual(matches.map((u) => u.id), [elsewhere.id]);
  // Their own organization is untouched, and their other session still works there.
  assert.equal((await elsewhere.client.get('/v1/organizations/me')).body.id, elsewhere.orgId);
  assert.equal((await c.post('/auth/session/organization', { id: elsewhere.orgId })).status, 200);
  assert.equal((await c.get('/v1/organizations/me')).body.id, elsewhere.orgId);
});

test('resend: a new link and expiry; the old link stops working, the new one works', async () => {
  const { client: c } = await freshAdmin(short, 'Resend');
  const email = uniq('resend');
  const first = await invite(c, email, 'developer');
  assert.equal(seconds(first.expires_at) - seconds(first.invited_at), 2 * DAY, '[organizations] invite_ttl_days');
  assert.match(short.outbox().at(-1).body, /2 days/);
  const oldLink = inviteLink(short, email);

  // Pretend a day has passed, so that the renewed expiry is visibly later.
  sql(short, `UPDATE invites SET expires_at = expires_at - ${sqlSeconds(short, DAY)} WHERE id = ${sqlQuote(first.id)};`);
  const r = await c.post(`${INVITES}/${first.id}/resend`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assertInvite(r.body, { email, role: 'developer', status: 'pending' });
  assert.equal(r.body.id, first.id);
  assert.equal(r.body.invited_at, first.invited_at);
  assert.ok(Math.abs(seconds(r.body.expires_at) - (Date.now() / 1000 + 2 * DAY)) < 60, 'a fresh expiry from now');
  assert.deepEqual(await getInvite(c, first.id), r.body);
  const links = inviteLinks(short, email);
  assert.equal(links.length, 2, 'mailed again');
  const newLink = links[1];
  assert.notEqual(newLink, oldLink);

  await assertLinkRefused(short, oldLink, 'invalid_link');
  assert.equal((await getInvite(c, first.id)).status, 'pending', 'the old link changed nothing');
  const joined = await acceptInvite(short, email);
  assert.equal((await joined.get('/auth/session')).body.current_organization.role, 'developer');
  assert.equal((await getInvite(c, first.id)).status, 'accepted');
  assertError(await c.post(`${INVITES}/invite_01${'Z'.repeat(22)}/resend`), 404, 'not_found_error');
});

test('revoke: the invite is deleted and its link refused; a new invite to the address is allowed', async () => {
  const email = uniq('revoked');
  const inv = await invite(admin, email, 'admin');
  const link = inviteLink(server, email);
  const r = await admin.request('DELETE', `${INVITES}/${inv.id}`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.deepEqual(r.body, { type: 'invite_deleted', id: inv.id });
  const gone = await getInvite(admin, inv.id);
  assert.equal(gone.status, 'deleted');
  assert.equal(gone.accepted_at, null);
  assert.ok((await listAll(admin, `${INVITES}?status=deleted`)).some((i) => i.id === inv.id));
  assert.ok(!(await listAll(admin, `${INVITES}?status=pending`)).some((i) => i.id === inv.id));

  const before = await inviteState(admin, server);
  await assertLinkRefused(server, link, 'invite_revoked');
  assert.deepEqual(await inviteState(admin, server), before, 'nobody joined');
  assert.ok(!(await listAll(admin, USERS)).some((u) => u.email === email));

  // A deleted invite cannot be deleted or re-sent again.
  assert.ok([400, 409].includes((await admin.request('DELETE', `${INVITES}/${inv.id}`)).status));
  const resend = await admin.post(`${INVITES}/${inv.id}/resend`);
  assert.ok([400, 409].includes(resend.status), `resend of a deleted invite: ${resend.status}`);
  assert.deepEqual(await inviteState(admin, server), before);
  assertError(await admin.request('DELETE', `${INVITES}/invite_01${'Q'.repeat(22)}`), 404, 'not_found_error');

  // The address may be invited anew.
  const again = await invite(admin, email, 'user');
  assert.notEqual(again.id, inv.id);
  assert.equal((await acceptInvite(server, email).then((c) => c.get('/auth/session'))).body.current_organization.role, 'user');
});

test('an expired invite: listed as expired, its link refused; resend revives it; a new invite replaces it', async () => {
  const { client: c } = await freshAdmin(short, 'Expiry');
  const email = uniq('late');
  const inv = await invite(c, email, 'developer');
  const link = inviteLink(short, email);
  // Two days pass (the server's clock cannot be moved; the expiry is moved instead).
  sql(short, `UPDATE invites SET expires_at = ${sqlTime(short, Math.floor(Date.now() / 1000) - 5)} WHERE id = ${sqlQuote(inv.id)};`);
  const expired = await getInvite(c, inv.id);
  assert.equal(expired.status, 'expired');
  assert.deepEqual((await listAll(c, `${INVITES}?status=expired`)).map((i) => i.id), [inv.id]);
  assert.deepEqual(await listAll(c, `${INVITES}?status=pending`), []);

  const before = await inviteState(c, short);
  await assertLinkRefused(short, link, 'invite_expired');
  assert.deepEqual(await inviteState(c, short), before, 'nothing changed');

  // Resend revives it with a new link.
  const r = await c.post(`${INVITES}/${inv.id}/resend`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.status, 'pending');
  await assertLinkRefused(short, link, 'invalid_link');
  const member = await acceptInvite(short, email);
  assert.equal((await member.get('/auth/session')).body.current_organization.role, 'developer');

  // An expired invite can also be revoked, or replaced by inviting the address again.
  const e2 = uniq('late2');
  const inv2 = await invite(c, e2, 'user');
  sql(short, `UPDATE invites SET expires_at = ${sqlTime(short, Math.floor(Date.now() / 1000) - 5)} WHERE id = ${sqlQuote(inv2.id)};`);
  const inv3 = await invite(c, e2, 'billing');
  assert.notEqual(inv3.id, inv2.id);
  assert.notEqual((await getInvite(c, inv2.id)).status, 'pending');
  const e4 = uniq('late3');
  const inv4 = await invite(c, e4, 'user');
  sql(short, `UPDATE invites SET expires_at = ${sqlTime(short, Math.floor(Date.now() / 1000) - 5)} WHERE id = ${sqlQuote(inv4.id)};`);
  assert.equal((await c.request('DELETE', `${INVITES}/${inv4.id}`)).status, 200);
  assert.equal((await getInvite(c, inv4.id)).status, 'deleted');
});

test('members: list, get and email filter, readable by any member', async () => {
  const { client: c, email: ownerEmail, id: ownerId } = await freshAdmin(server, 'Roster');
  const dev = await addMember(server, c, 'developer', { fullName: 'Grace Hopper' });
  const usr = await addMember(server, c, 'user');
  const list = assertList(await c.get(USERS));
  assert.deepEqual(list.data.map((u) => u.id), [ownerId, dev.id, usr.id], 'in the order they joined');
  for (const u of list.data) {
    assert.deepEqual(Object.keys(u).sort(), ['added_at', 'email', 'id', 'name', 'role', 'type']);
    assert.equal(u.type, 'user');
    assert.match(u.id, idPattern('user'));
    assert.match(u.added_at, TIME);
  }
  assert.deepEqual(list.data.map((u) => [u.email, u.role]),
    [[ownerEmail, 'admin'], [dev.email, 'developer'], [usr.email, 'user']]);
  assert.equal(list.data[1].name, 'Grace Hopper');

  // Every role may read the list and a member.
  assert.deepEqual((await usr.client.get(USERS)).body, list);
  assert.deepEqual((await dev.client.get(`${USERS}/${ownerId}`)).body, list.data[0]);

  const byEmail = assertList(await c.get(`${USERS}?email=${encodeURIComponent(dev.email)}`));
  assert.deepEqual(byEmail.data, [list.data[1]]);
  assert.deepEqual(assertList(await c.get(`${USERS}?email=${encodeURIComponent(dev.email.toUpperCase())}`)).data,
    [list.data[1]], 'the filter ignores letter case');
  assert.deepEqual(assertList(await c.get(`${USERS}?email=${encodeURIComponent(adminEmail)}`)).data, [],
    'a member of another organization is not listed');
  assertError(await c.get(`${USERS}?email=nope`), 400, 'invalid_request_error');

  const p1 = assertList(await c.get(`${USERS}?limit=2`));
  assert.equal(p1.has_more, true);
  const p2 = assertList(await c.get(`${USERS}?limit=2&after_id=${p1.last_id}`));
  assert.deepEqual(p2.data.map((u) => u.id), [usr.id]);
  assert.equal(p2.has_more, false);

  // Ids of non-members: 404.
  const acmeAdminId = (await admin.get('/auth/session')).body.account.id;
  assertError(await c.get(`${USERS}/${acmeAdminId}`), 404, 'not_found_error');
  assertError(await c.get(`${USERS}/user_01${'a'.repeat(22)}`), 404, 'not_found_error');
  assertError(await c.get(`${USERS}/42`), 404, 'not_found_error');
});

test('roles: an admin changes them; bad roles and unknown members are refused and change nothing', async () => {
  const { client: c } = await freshAdmin(server, 'Roles');
  const m = await addMember(server, c, 'user');
  const get = async () => (await c.get(`${USERS}/${m.id}`)).body;
  const r = await c.post(`${USERS}/${m.id}`, { role: 'developer' });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.role, 'developer');
  assert.deepEqual(await get(), r.body);
  assert.equal((await m.client.get('/auth/session')).body.current_organization.role, 'developer',
    'the member sees the new role at once');
  for (const role of ['billing', 'admin', 'user']) {
    assert.equal((await c.post(`${USERS}/${m.id}`, { role })).body.role, role);
    assert.equal((await get()).role, role);
  }

  const before = await listAll(c, USERS);
  for (const [label, body, status] of [
    ['unknown role', { role: 'owner' }, 400],
    ['workspace role', { role: 'workspace_admin' }, 400],
    ['role missing', {}, 400],
    ['role null', { role: null }, 400],
    ['role not a string', { role: 1 }, 400],
    ['unknown field', { role: 'admin', email: 'x@example.com' }, 400],
  ]) {
    const x = await c.post(`${USERS}/${m.id}`, body);
    assertError(x, status, 'invalid_request_error');
    assert.deepEqual(await listAll(c, USERS), before, label);
  }
  assertError(await c.post(`${USERS}/user_01${'b'.repeat(22)}`, { role: 'admin' }), 404, 'not_found_error');
  // A member of another organization cannot be reached from here.
  const acmeAdminId = (await admin.get('/auth/session')).body.account.id;
  assertError(await c.post(`${USERS}/${acmeAdminId}`, { role: 'user' }), 404, 'not_found_error');
  assertError(await c.request('DELETE', `${USERS}/${acmeAdminId}`), 404, 'not_found_error');
  assert.equal((await admin.get(`${USERS}/${acmeAdminId}`)).body.role, 'admin');
  assert.deepEqual(await listAll(c, USERS), before);
});

test('the last admin can be neither demoted nor removed', async () => {
  const owner = await freshAdmin(server, 'Solo');
  const c = owner.client;
  const m = await addMember(server, c, 'developer');
  for (const role of ['user', 'developer', 'billing']) {
    const r = await c.post(`${USERS}/${owner.id}`, { role });
    assertError(r, 409, 'conflict_error');
  }
  assertError(await c.request('DELETE', `${USERS}/${owner.id}`), 409, 'conflict_error');
  assert.equal((await c.get(`${USERS}/${owner.id}`)).body.role, 'admin');
  assert.equal((await c.get('/auth/session')).body.current_organization.role, 'admin');
  // Setting the admin role again is harmless.
  assert.equal((await c.post(`${USERS}/${owner.id}`, { role: 'admin' })).status, 200);

  // With a second admin, the first may step down; then the second is the last one.
  assert.equal((await c.post(`${USERS}/${m.id}`, { role: 'admin' })).status, 200);
  const down = await c.post(`${USERS}/${owner.id}`, { role: 'developer' });
  assert.equal(down.status, 200, JSON.stringify(down.body));
  assert.equal(down.body.role, 'developer');
  assertError(await c.get('/v1/organizations/invites'), 403, 'permission_error');
  assertError(await m.client.post(`${USERS}/${m.id}`, { role: 'user' }), 409, 'conflict_error');
  assertError(await m.client.request('DELETE', `${USERS}/${m.id}`), 409, 'conflict_error');
  assert.equal((await m.client.get(`${USERS}/${m.id}`)).body.role, 'admin');
  // An admin may remove another admin, leaving themself as the last.
  assert.equal((await m.client.post(`${USERS}/${owner.id}`, { role: 'admin' })).status, 200);
  assert.equal((await m.client.request('DELETE', `${USERS}/${owner.id}`)).status, 200);
  assertError(await m.client.request('DELETE', `${USERS}/${m.id}`), 409, 'conflict_error');
});

test('removing a member ends their access and their workspace memberships', async () => {
  const owner = await freshAdmin(server, 'Removal');
  const c = owner.client;
  const m = await addMember(server, c, 'developer');
  const stay = await addMember(server, c, 'user');
  const ws = await c.post('/v1/organizations/workspaces', { name: 'Research' });
  assert.equal(ws.status, 201, JSON.stringify(ws.body));
  const W = ws.body.id;
  for (const u of [m, stay])
    assert.equal((await c.post(`/v1/organizations/workspaces/${W}/members`, { user_id: u.id, workspace_role: 'workspace_developer' })).status, 201);
  assert.equal((await c.get(`/v1/organizations/workspaces/${W}`)).body.member_count, 2);
  assert.equal((await m.client.get(`/v1/organizations/workspaces/${W}`)).status, 200);

  const r = await c.request('DELETE', `${USERS}/${m.id}`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.deepEqual(r.body, { type: 'user_deleted', id: m.id });

  // Their next request: no organization.
  assertError(await m.client.get('/v1/organizations/me'), 404, 'not_found_error');
  assertError(await m.client.get(`/v1/organizations/workspaces/${W}`), 404, 'not_found_error');
  const s = (await m.client.get('/auth/session')).body;
  assert.equal(s.current_organization, null);
  assert.deepEqual(s.organizations, []);
  assertError(await m.client.post('/auth/session/organization', { id: owner.orgId }), 404, 'not_found_error');

  assertError(await c.get(`${USERS}/${m.id}`), 404, 'not_found_error');
  assert.ok(!(await listAll(c, USERS)).some((u) => u.id === m.id));
  assert.equal((await c.get(`/v1/organizations/workspaces/${W}`)).body.member_count, 1);
  assert.deepEqual((await listAll(c, `/v1/organizations/workspaces/${W}/members`)).map((x) => x.user_id), [stay.id]);
  assertError(await c.get(`/v1/organizations/workspaces/${W}/members/${m.id}`), 404, 'not_found_error');
  // Removing them again: 404; the rest of the organization is untouched.
  assertError(await c.request('DELETE', `${USERS}/${m.id}`), 404, 'not_found_error');
  assert.equal((await stay.client.get('/v1/organizations/me')).status, 200);

  // They may be invited back, and then start with no workspace memberships.
  await invite(c, m.email, 'user');
  const back = await acceptInvite(server, m.email);
  assert.equal((await back.get('/auth/session')).body.account.id, m.id);
  assert.equal((await c.get(`${USERS}/${m.id}`)).body.role, 'user');
  assertError(await back.get(`/v1/organizations/workspaces/${W}`), 404, 'not_found_error');
});

test('only admins manage invites and members', async () => {
  const owner = await freshAdmin(server, 'Guarded');
  const c = owner.client;
  const target = await addMember(server, c, 'user');
  const inv = await invite(c, uniq('guarded'), 'user');
  for (const role of ['billing', 'developer', 'user']) {
    const m = await addMember(server, c, role);
    const before = await inviteState(c, server);
    assertError(await m.client.post(INVITES, { email: uniq('x'), role: 'user' }), 403, 'permission_error');
    assertError(await m.client.get(INVITES), 403, 'permission_error');
    assertError(await m.client.get(`${INVITES}/${inv.id}`), 403, 'permission_error');
    assertError(await m.client.post(`${INVITES}/${inv.id}/resend`), 403, 'permission_error');
    assertError(await m.client.request('DELETE', `${INVITES}/${inv.id}`), 403, 'permission_error');
    assertError(await m.client.post(`${USERS}/${target.id}`, { role: 'admin' }), 403, 'permission_error');
    assertError(await m.client.post(`${USERS}/${m.id}`, { role: 'admin' }), 403, 'permission_error');
    assertError(await m.client.request('DELETE', `${USERS}/${target.id}`), 403, 'permission_error');
    assert.deepEqual(await inviteState(c, server), before, `${role} changed something`);
  }
  // Without the CSRF header, even an admin's session is refused.
  const r = await c.post(INVITES, { email: uniq('csrf'), role: 'user' }, { csrf: false });
  assertError(r, 403, 'permission_error');
});

test('an invitation link opened many times at once admits exactly one', async () => {
  const email = uniq('racer');
  const inv = await invite(admin, email, 'developer');
  const link = inviteLink(server, email);
  const token = new URL(link).searchParams.get('token');
  const answers = await Promise.all(Array.from({ length: 6 },
    () => new Client(server.consoleUrl).post('/auth/invite', { token })));
  assert.equal(answers.filter((r) => r.status === 200).length, 1, `one success: ${answers.map((r) => r.status)}`);
  assert.ok(answers.every((r) => r.status === 200 || r.status === 400));
  assert.equal(answers.filter((r) => r.headers.getSetCookie().length).length, 1, 'one session');
  assert.equal((await listAll(admin, USERS)).filter((u) => u.email === email).length, 1);
  assert.equal((await getInvite(admin, inv.id)).status, 'accepted');
});

test('two admins demoting or removing each other at once: one admin always remains', async () => {
  for (let i = 0; i < 4; i++) {
    const a = await freshAdmin(server, 'Race');
    const b = await addMember(server, a.client, 'admin');
    const [r1, r2] = await Promise.all([
      a.client.post(`${USERS}/${b.id}`, { role: 'user' }),
      b.client.post(`${USERS}/${a.id}`, { role: 'user' }),
    ]);
    // The loser is refused: 409 (the last admin), or 403 when it had already lost the role.
    assert.equal([r1, r2].filter((r) => r.status === 200).length, 1, `exactly one demotion succeeds: ${r1.status} ${r2.status}`);
    assert.ok([r1, r2].every((r) => [200, 403, 409].includes(r.status)));
    assert.equal((await listAll(r1.status === 200 ? a.client : b.client, USERS)).filter((u) => u.role === 'admin').length, 1);
    const c = await freshAdmin(server, 'Race Too');
    const d = await addMember(server, c.client, 'admin');
    const [q1, q2] = await Promise.all([
      c.client.request('DELETE', `${USERS}/${d.id}`),
      d.client.request('DELETE', `${USERS}/${c.id}`),
    ]);
    // The loser is refused: 409 (the last admin), or 404 when it was already removed.
    assert.equal([q1, q2].filter((r) => r.status === 200).length, 1, `exactly one removal succeeds: ${q1.status} ${q2.status}`);
    assert.ok([q1, q2].every((r) => [200, 404, 409].includes(r.status)));
    const survivor = q1.status === 200 ? c.client : d.client;
    assert.equal((await listAll(survivor, USERS)).filter((u) => u.role === 'admin').length, 1);
  }
});

test('invitation tokens are not written to the access log', async () => {
  const email = uniq('logged');
  await invite(admin, email, 'user');
  const link = inviteLink(server, email);
  await acceptInvite(server, email);
  await assertLinkRefused(server, link, 'invite_used');
  const token = link.split('token=')[1];
  await server.waitForLog(/GET \/auth\/invite 303/);
  const lines = server.log.split('\n').filter((l) => l.includes(token));
  // The only place is the notice that no SMTP server is configured (outbox mode).
  assert.ok(lines.every((l) => /outbox mode/.test(l)), `the token is logged: ${lines.join('\n')}`);
});
