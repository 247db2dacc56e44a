// The audit log: every change to settings, invites, members, workspaces, workspace members,
// API keys and admin keys is recorded with who did it (a person or an admin key), what, on
// which target, when and from which IP; admins read it newest first, filtered by actor and
// action, page by page; it never holds a secret (docs/api.md, "Audit log").
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './lib/server.mjs';
import { Client } from './lib/client.mjs';
import {
  assertError, uniq, idPattern, TIME, addMember, acceptInvite, inviteLinks, listAll, assertList, KeyClient,
} from './lib/expect.mjs';

const O = '/v1/organizations';
const AUDIT = `${O}/audit_log`;
// Every action docs/api.md lists.
const ACTIONS = ['organization.updated', 'invite.created', 'invite.resent', 'invite.deleted',
  'invite.accepted', 'user.role_changed', 'user.removed', 'workspace.created',
  'workspace.updated', 'workspace.archived', 'workspace_member.added', 'workspace_member.updated',
  'workspace_member.removed', 'api_key.created', 'api_key.updated', 'admin_key.created',
  'admin_key.revoked'];

let server;
let admin;
let adminActor; // {type, id, label} of Acme's admin
let acmeId;
const expected = []; // what was done, oldest first: {action, target, actor, details?}
const secrets = []; // keys and invitation tokens handed out
let invitee; // the member who joined through an invitation
let audit; // the whole log, newest first, once everything is done

before(async () => {
  server = await startServer();
  admin = new Client(server.consoleUrl);
  const email = uniq('auditor');
  const s = await admin.signUpWithOrg(server, email, 'Acme');
  acmeId = s.current_organization.id;
  adminActor = { type: 'user', id: s.account.id, label: email };

  const ok = async (r, status = 200) => {
    assert.equal(r.status, status, JSON.stringify(r.body));
    return r.body;
  };
  const did = (action, target, details, actor = adminActor) => expected.push({ action, target, actor, details });

  // organization.updated
  await ok(await admin.post(`${O}/me/settings`, { legal_name: 'Acme S.r.l.' }));
  did('organization.updated', { type: 'organization', id: acmeId }, (d) => assert.equal(d.legal_name.to, 'Acme S.r.l.'));

  // invite.created, invite.resent, invite.accepted
  const inviteeEmail = uniq('invitee');
  const inv = await ok(await admin.post(`${O}/invites`, { email: inviteeEmail, role: 'user' }), 201);
  did('invite.created', { type: 'invite', id: inv.id }, (d) => {
    assert.equal(d.email, inviteeEmail);
    assert.equal(d.role, 'user');
  });
  await ok(await admin.post(`${O}/invites/${inv.id}/resend`));
  did('invite.resent', { type: 'invite', id: inv.id }, (d) => assert.equal(d.email, inviteeEmail));
  const client = await acceptInvite(server, inviteeEmail);
  invitee = { client, id: (await client.get('/auth/session')).body.account.id, email: inviteeEmail };
  did('invite.accepted', { type: 'invite', id: inv.id }, (d) => assert.equal(d.role, 'user'),
    { type: 'user', id: invitee.id, label: inviteeEmail });
  secrets.push(...inviteLinks(server, inviteeEmail).map((l) => l.split('token=')[1]));

  // invite.deleted
  const gone = await ok(await admin.post(`${O}/invites`, { email: uniq('gone'), role: 'billing' }), 201);
  did('invite.created', { type: 'invite', id: gone.id });
  await ok(await admin.request('DELETE', `${O}/invites/${gone.id}`));
  did('invite.deleted', { type: 'invite', id: gone.id }, (d) => assert.equal(d.email, gone.email));
  secrets.push(...inviteLinks(server, gone.email).map((l) => l.split('token=')[1]));

  // user.role_changed
  await ok(await admin.post(`${O}/users/${invitee.id}`, { role: 'developer' }));
  did('user.role_changed', { type: 'user', id: invitee.id },
    (d) => assert.deepEqual(d.role, { from: 'user', to: 'developer' }));

  // workspace.created, workspace.updated (twice)
  const w = await ok(await admin.post(`${O}/workspaces`, { name: 'Audited', display_color: '#3F9A6E' }), 201);
  did('workspace.created', { type: 'workspace', id: w.id }, (d) => assert.equal(d.name, 'Audited'));
  await ok(await admin.post(`${O}/workspaces/${w.id}`, { name: 'Audited Too' }));
  did('workspace.updated', { type: 'workspace', id: w.id },
    (d) => assert.deepEqual(d.name, { from: 'Audited', to: 'Audited Too' }));
  await ok(await admin.post(`${O}/workspaces/${w.id}`, { display_color: '#c2554d' }));
  did('workspace.updated', { type: 'workspace', id: w.id },
    (d) => assert.deepEqual(d.display_color, { from: '#3F9A6E', to: '#C2554D' }));

  // workspace_member.added, .updated, .removed. The target names the workspace or the member;
  // the event names both.
  const both = (userId, more) => (d, e) => {
    const text = JSON.stringify({ target: e.target, details: d });
    assert.ok(text.includes(w.id) && text.includes(userId), `the event names the workspace and the member: ${text}`);
    more?.(d);
  };
  const wsTarget = (e) => [w.id, invitee.id].includes(e.target.id);
  await ok(await admin.post(`${O}/workspaces/${w.id}/members`, { user_id: invitee.id, workspace_role: 'workspace_user' }), 201);
  did('workspace_member.added', wsTarget, both(invitee.id, (d) => assert.equal(d.workspace_role, 'workspace_user')));
  await ok(await admin.post(`${O}/workspaces/${w.id}/members/${invitee.id}`, { workspace_role: 'workspace_developer' }));
  did('workspace_member.updated', wsTarget, both(invitee.id,
    (d) => assert.deepEqual(d.workspace_role, { from: 'workspace_user', to: 'workspace_developer' })));
  await ok(await admin.request('DELETE', `${O}/workspaces/${w.id}/members/${invitee.id}`));
  did('workspace_member.removed', wsTarget, both(invitee.id));

  // api_key.created, api_key.updated
  const k = await ok(await admin.post(`${O}/api_keys`, { name: 'audited key', workspace_id: w.id }), 201);
  secrets.push(k.key);
  did('api_key.created', { type: 'api_key', id: k.id }, (d) => assert.equal(d.name, 'audited key'));
  await ok(await admin.post(`${O}/api_keys/${k.id}`, { status: 'inactive', name: 'renamed key' }));
  did('api_key.updated', { type: 'api_key', id: k.id }, (d) => {
    assert.deepEqual(d.status, { from: 'active', to: 'inactive' });
    assert.deepEqual(d.name, { from: 'audited key', to: 'renamed key' });
  });

  // workspace.archived
  await ok(await admin.post(`${O}/workspaces/${w.id}/archive`));
  did('workspace.archived', { type: 'workspace', id: w.id });

  // admin_key.created; an action made with it; admin_key.revoked by the key itself
  const ak = await ok(await admin.post(`${O}/admin_keys`, { name: 'audit script' }), 201);
  secrets.push(ak.key);
  did('admin_key.created', { type: 'admin_key', id: ak.id }, (d) => assert.equal(d.name, 'audit script'));
  const keyActor = { type: 'admin_key', id: ak.id, label: 'audit script' };
  const kc = new KeyClient(server.consoleUrl, ak.key);
  const w2 = await ok(await kc.post(`${O}/workspaces`, { name: 'By Key' }), 201);
  did('workspace.created', { type: 'workspace', id: w2.id }, undefined, keyActor);
  const k2 = await ok(await kc.post(`${O}/api_keys`, { name: 'key by key' }), 201);
  secrets.push(k2.key);
  did('api_key.created', { type: 'api_key', id: k2.id }, undefined, keyActor);
  await ok(await kc.post(`${O}/admin_keys/${ak.id}/revoke`));
  did('admin_key.revoked', { type: 'admin_key', id: ak.id }, undefined, keyActor);

  // user.removed
  await ok(await admin.request('DELETE', `${O}/users/${invitee.id}`));
  did('user.removed', { type: 'user', id: invitee.id }, (d) => assert.equal(d.email, invitee.email));

  audit = await listAll(admin, AUDIT);
});

after(async () => {
  await server?.stop();
});

test('every documented action is recorded, newest first, with actor, target, details, time and IP', () => {
  assert.deepEqual([...new Set(expected.map((e) => e.action))].sort(), [...ACTIONS].sort(), 'the setup does every action');
  assert.deepEqual(new Set(audit.map((e) => e.action)), new Set(ACTIONS), 'every action is in the log');
  const events = audit.filter((e) => ACTIONS.includes(e.action)).reverse(); // oldest first
  assert.equal(events.length, expected.length, `events: ${events.map((e) => e.action).join(', ')}`);
  for (const [i, want] of expected.entries()) {
    const e = events[i];
    const what = `event ${i} (${want.action})`;
    assert.deepEqual(Object.keys(e).sort(), ['action', 'actor', 'created_at', 'details', 'id', 'ip', 'target', 'type'], what);
    assert.equal(e.type, 'audit_event');
    assert.match(e.id, idPattern('audit'));
    assert.equal(e.action, want.action, what);
    assert.deepEqual(e.actor, want.actor, what);
    if (typeof want.target === 'function') assert.ok(want.target(e), `${what}: target ${JSON.stringify(e.target)}`);
    else assert.deepEqual(e.target, want.target, what);
    assert.equal(typeof e.details, 'object');
    assert.ok(e.details && !Array.isArray(e.details), what);
    want.details?.(e.details, e);
    assert.equal(e.ip, '127.0.0.1', what);
    assert.match(e.created_at, TIME);
    assert.ok(Math.abs(Date.parse(e.created_at) - Date.now()) < 5 * 60000, what);
  }
  // Newest first: times never increase down the list.
  for (let i = 1; i < audit.length; i++) assert.ok(audit[i - 1].created_at >= audit[i].created_at);
  assert.equal(new Set(audit.map((e) => e.id)).size, audit.length, 'ids are unique');
});

test('the log holds no secret: no key and no invitation token', () => {
  assert.ok(secrets.length >= 5);
  const text = JSON.stringify(audit);
  for (const s of secrets) {
    assert.ok(!text.includes(s), 'a secret is in the audit log');
    assert.ok(!text.includes(s.slice(-20)), 'part of a secret is in the audit log');
  }
});

test('filters: actor_id and action, alone and together', async () => {
  const byInvitee = assertList(await admin.get(`${AUDIT}?actor_id=${invitee.id}`));
  assert.deepEqual(byInvitee.data.map((e) => e.action), ['invite.accepted']);
  const byAdmin = await listAll(admin, `${AUDIT}?actor_id=${adminActor.id}`);
  assert.deepEqual(byAdmin, audit.filter((e) => e.actor.id === adminActor.id));
  assert.ok(byAdmin.length >= 15);
  const keyId = audit.find((e) => e.actor.type === 'admin_key').actor.id;
  assert.deepEqual((await listAll(admin, `${AUDIT}?actor_id=${keyId}`)).map((e) => e.action),
    ['admin_key.revoked', 'api_key.created', 'workspace.created']);

  for (const action of ACTIONS) {
    const list = await listAll(admin, `${AUDIT}?action=${action}`);
    assert.deepEqual(list, audit.filter((e) => e.action === action), action);
    assert.ok(list.length >= 1, action);
  }
  assert.equal((await listAll(admin, `${AUDIT}?action=workspace.updated`)).length, 2);
  const both = await listAll(admin, `${AUDIT}?action=workspace.created&actor_id=${keyId}`);
  assert.equal(both.length, 1);
  assert.equal(both[0].actor.type, 'admin_key');
  // An action that does not exist is a mistake worth naming, not an empty list.
  assertError(await admin.get(`${AUDIT}?action=workspace.deleted`), 400, 'invalid_request_error');
  assert.deepEqual(await listAll(admin, `${AUDIT}?actor_id=user_01${'n'.repeat(22)}`), []);
});

test('pagination runs newest first in both directions', async () => {
  assert.ok(audit.length > 9);
  const pages = [];
  let r = assertList(await admin.get(`${AUDIT}?limit=4`));
  pages.push(r);
  while (r.has_more) {
    r = assertList(await admin.get(`${AUDIT}?limit=4&after_id=${r.last_id}`));
    pages.push(r);
  }
  assert.deepEqual(pages.flatMap((p) => p.data), audit);
  assert.ok(pages.slice(0, -1).every((p) => p.data.length === 4 && p.has_more));
  assert.equal(pages.at(-1).has_more, false);
  assert.ok(pages.length >= 3);
  // Backward from the second page gives the first.
  const back = assertList(await admin.get(`${AUDIT}?limit=4&before_id=${pages[1].first_id}`));
  assert.deepEqual(back.data, pages[0].data);
  assert.equal(back.has_more, false);
  const back2 = assertList(await admin.get(`${AUDIT}?limit=4&before_id=${pages[2].first_id}`));
  assert.deepEqual(back2.data, pages[1].data);
  assert.equal(back2.has_more, true);
  // Paging within a filter.
  const f1 = assertList(await admin.get(`${AUDIT}?action=workspace.updated&limit=1`));
  assert.equal(f1.has_more, true);
  const f2 = assertList(await admin.get(`${AUDIT}?action=workspace.updated&limit=1&after_id=${f1.last_id}`));
  assert.equal(f2.has_more, false);
  assert.deepEqual([...f1.data, ...f2.data], audit.filter((e) => e.action === 'workspace.updated'));

  for (const q of ['limit=0', 'limit=1001', 'limit=ten', `after_id=audit_01${'x'.repeat(22)}`,
    `after_id=${audit[0].id}&before_id=${audit[1].id}`])
    assertError(await admin.get(`${AUDIT}?${q}`), 400, 'invalid_request_error');
});

test('refused requests record nothing', async () => {
  const m = await addMember(server, admin, 'developer');
  const count = async () => (await listAll(admin, AUDIT)).length;
  const n = await count();
  for (const [c, method, path, json] of [
    [admin, 'POST', `${O}/workspaces`, { name: 'Default' }],
    [admin, 'POST', `${O}/workspaces`, { name: '' }],
    [admin, 'POST', `${O}/invites`, { email: m.email, role: 'user' }],
    [admin, 'POST', `${O}/invites`, { email: 'nope', role: 'user' }],
    [admin, 'POST', `${O}/users/${adminActor.id}`, { role: 'user' }],
    [admin, 'DELETE', `${O}/users/${adminActor.id}`],
    [admin, 'POST', `${O}/api_keys`, { name: 'x'.repeat(101) }],
    [admin, 'POST', `${O}/me/settings`, { vat_id: 'IT123' }],
    [m.client, 'POST', `${O}/workspaces`, { name: 'Nope' }],
    [m.client, 'POST', `${O}/me/settings`, { legal_name: 'Nope' }],
    [m.client, 'POST', `${O}/admin_keys`, { name: 'Nope' }],
  ]) {
    const r = await c.request(method, path, json === undefined ? {} : { json });
    assert.ok(r.status >= 400 && r.status < 500, `${method} ${path}: ${r.status}`);
  }
  assert.equal(await count(), n, 'a refused request left an audit event');
});

test('only admins (and admin keys) read the log; each organization reads only its own', async () => {
  for (const role of ['billing', 'developer', 'user']) {
    const m = await addMember(server, admin, role);
    assertError(await m.client.get(AUDIT), 403, 'permission_error');
    assertError(await m.client.get(`${AUDIT}?actor_id=${m.id}`), 403, 'permission_error');
  }
  assertError(await new Client(server.consoleUrl).get(AUDIT), 401, 'authentication_error');

  const other = new Client(server.consoleUrl);
  await other.signUpWithOrg(server, uniq('other'), 'Other');
  assert.equal((await other.post(`${O}/workspaces`, { name: 'Theirs' })).status, 201);
  const theirs = await listAll(other, AUDIT);
  assert.deepEqual(theirs.map((e) => e.action), ['workspace.created']);
  const mine = new Set((await listAll(admin, AUDIT)).map((e) => e.id));
  assert.ok(!mine.has(theirs[0].id));
  assert.deepEqual(await listAll(other, `${AUDIT}?actor_id=${adminActor.id}`), []);
  assertError(await other.get(`${AUDIT}?after_id=${audit[0].id}`), 400, 'invalid_request_error');
});
