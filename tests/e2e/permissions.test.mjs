// Who may call what: every Organization API endpoint of docs/api.md, called by every kind of
// caller, against a table of expected statuses written from "Roles and who may do what" and
// the endpoint sections. Denied calls must change nothing; nothing of one organization may be
// seen or changed from another.
//
// Acme has an admin (session), a billing member, a developer and a user (neither in workspace
// W), a user who is W's workspace_admin, a developer who is W's workspace_developer, a user
// who is W's workspace_user, a user who is nobody in W ("outsider"), an admin key and a revoked
// admin key. Then: no credentials at all, and the admin of another organization "Other" with
// a session and with an admin key.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './lib/server.mjs';
import { Client } from './lib/client.mjs';
import { assertError, uniq, addMember, listAll, KeyClient } from './lib/expect.mjs';

const O = '/v1/organizations';

const CALLERS = ['admin', 'billing', 'developer', 'user', 'wsAdmin', 'wsDev', 'wsUser', 'outsider',
  'adminKey', 'revokedKey', 'none', 'otherAdmin', 'otherKey'];
const OTHERS = new Set(['otherAdmin', 'otherKey']);
const ERROR_TYPE = { 401: 'authentication_error', 403: 'permission_error', 404: 'not_found_error', 409: 'conflict_error' };

// A row of the table, in CALLERS order.
function expect(...statuses) {
  assert.equal(statuses.length, CALLERS.length);
  return Object.fromEntries(CALLERS.map((c, i) => [c, statuses[i]]));
}

// Every /v1/organizations endpoint in docs/api.md.
const ENDPOINTS = [
  'GET /me', 'GET /me/settings', 'POST /me/settings',
  'GET /users', 'GET /users/{user_id}', 'POST /users/{user_id}', 'DELETE /users/{user_id}',
  'GET /invites', 'POST /invites', 'GET /invites/{invite_id}', 'POST /invites/{invite_id}/resend',
  'DELETE /invites/{invite_id}',
  'GET /workspaces', 'POST /workspaces', 'GET /workspaces/{workspace_id}',
  'POST /workspaces/{workspace_id}', 'POST /workspaces/{workspace_id}/archive',
  'GET /workspaces/{workspace_id}/members', 'POST /workspaces/{workspace_id}/members',
  'GET /workspaces/{workspace_id}/members/{user_id}', 'POST /workspaces/{workspace_id}/members/{user_id}',
  'DELETE /workspaces/{workspace_id}/members/{user_id}',
  'GET /api_keys', 'POST /api_keys', 'GET /api_keys/{api_key_id}', 'POST /api_keys/{api_key_id}',
  'GET /admin_keys', 'POST /admin_keys', 'GET /admin_keys/{admin_key_id}',
  'POST /admin_keys/{admin_key_id}/revoke',
  'GET /audit_log',
  'GET /billing', 'POST /billing/payment_method', 'GET /billing/payment_methods', 'POST /billing/profile',
  'POST /billing/purchases', 'GET /billing/purchases', 'GET /billing/purchases/{purchase_id}',
  'POST /billing/auto_reload', 'GET /invoices', 'GET /invoices/{invoice_id}', 'GET /invoices/{invoice_id}/pdf',
  'GET /usage_report/messages', 'GET /cost_report',
  'GET /limits', 'POST /limits', 'GET /limit_requests', 'POST /limit_requests',
  'GET /workspaces/{workspace_id}/limits', 'POST /workspaces/{workspace_id}/limits',
];

let server;
const callers = {};
const people = {}; // Acme's members: {client, id, email}
let acmeId;
let otherId;
let W; // workspace W
let D; // Acme's Default workspace
let keyDefault;
let keyW;
let adminKey;
let sharedInvite;
let wsTarget; // an Acme user who is workspace_user of W, for role changes
const acmeIds = new Set(); // ids of Acme's objects, which must never show up for Other

before(async () => {
  server = await startServer();
  const admin = new Client(server.consoleUrl);
  const s = await admin.signUpWithOrg(server, uniq('acme-admin'), 'Acme');
  acmeId = s.current_organization.id;
  callers.admin = admin;
  people.admin = { client: admin, id: s.account.id, email: s.account.email };
  W = (await admin.post(`${O}/workspaces`, { name: 'W' })).body;
  D = (await admin.get(`${O}/workspaces`)).body.data[0];

  for (const [name, role] of [['billing', 'billing'], ['developer', 'developer'], ['user', 'user'],
    ['wsAdmin', 'user'], ['wsDev', 'developer'], ['wsUser', 'user'], ['outsider', 'user'], ['wsTarget', 'user']]) {
    people[name] = await addMember(server, admin, role, { name });
    callers[name] = people[name].client;
  }
  delete callers.wsTarget;
  wsTarget = people.wsTarget;
  for (const [name, role] of [['wsAdmin', 'workspace_admin'], ['wsDev', 'workspace_developer'],
    ['wsUser', 'workspace_user'], ['wsTarget', 'workspace_user']]) {
    const r = await admin.post(`${O}/workspaces/${W.id}/members`, { user_id: people[name].id, workspace_role: role });
    assert.equal(r.status, 201, JSON.stringify(r.body));
  }

  adminKey = (await admin.post(`${O}/admin_keys`, { name: 'acme key' })).body;
  callers.adminKey = new KeyClient(server.consoleUrl, adminKey.key);
  const revoked = (await admin.post(`${O}/admin_keys`, { name: 'acme revoked key' })).body;
  assert.equal((await admin.post(`${O}/admin_keys/${revoked.id}/revoke`)).status, 200);
  callers.revokedKey = new KeyClient(server.consoleUrl, revoked.key);
  callers.none = new Client(server.consoleUrl);

  const other = new Client(server.consoleUrl);
  otherId = (await other.signUpWithOrg(server, uniq('other-admin'), 'Other')).current_organization.id;
  callers.otherAdmin = other;
  callers.otherKey = new KeyClient(server.consoleUrl, (await other.post(`${O}/admin_keys`, { name: 'other key' })).body.key);

  keyDefault = (await admin.post(`${O}/api_keys`, { name: 'default key' })).body;
  keyW = (await admin.post(`${O}/api_keys`, { name: 'w key', workspace_id: W.id })).body;
  sharedInvite = (await admin.post(`${O}/invites`, { email: uniq('shared'), role: 'user' })).body;
  for (const id of [acmeId, W.id, D.id, keyDefault.id, keyW.id, adminKey.id, revoked.id, sharedInvite.id,
    ...Object.values(people).map((p) => p.id)]) acmeIds.add(id);
  assert.equal(Object.keys(callers).sort().join(), [...CALLERS].sort().join());
});

after(async () => {
  await server?.stop();
});

const admin = () => callers.admin;
const ok = (status) => status >= 200 && status < 300;
async function adminGet(path) {
  const r = await admin().get(path);
  return { status: r.status, body: r.body };
}
const freshMember = async () => addMember(server, admin(), 'user', { name: 'target' });
async function freshWsMember() {
  const m = await freshMember();
  assert.equal((await admin().post(`${O}/workspaces/${W.id}/members`, { user_id: m.id, workspace_role: 'workspace_user' })).status, 201);
  return m;
}
async function created(path, json) {
  const r = await admin().post(path, json);
  assert.equal(r.status, 201, `${path}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}
let serial = 0;
const freshInvite = () => created(`${O}/invites`, { email: uniq('target'), role: 'user' });
const freshWorkspace = () => created(`${O}/workspaces`, { name: `Target ${++serial}` });
const freshAdminKey = () => created(`${O}/admin_keys`, { name: 'target key' });
const freshApiKey = () => created(`${O}/api_keys`, { name: 'target api key', workspace_id: W.id });
const ids = (list) => list.map((x) => x.id);

// Billing: both organizations answer the first-purchase questions and add a card, and Acme
// buys once (its purchase and invoice are the targets of the single-item rows).
const CARD = { number: '4242424242424242', exp_month: 12, exp_year: 2030, cvc: '123' };
const PROFILE = { intended_use: 'permission tests', countries: ['US'], regulated_industries: [] };
let billingReady;
function acmePurchase() {
  billingReady ??= (async () => {
    for (const c of [admin(), callers.otherAdmin]) {
      assert.equal((await c.post(`${O}/billing/profile`, PROFILE)).status, 200);
      assert.equal((await c.post(`${O}/billing/payment_method`, CARD)).status, 200);
    }
    const r = await admin().post(`${O}/billing/purchases`, { amount_usd: '5.00' }, { headers: { 'idempotency-key': 'acme-first' } });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    for (const id of [r.body.id, r.body.invoice_id, r.body.payment_method_id]) acmeIds.add(id);
    return r.body;
  })();
  return billingReady;
}
const billingState = async () => {
  const b = (await adminGet(`${O}/billing`)).body;
  return { b, purchases: ids(await listAll(admin(), `${O}/billing/purchases`)), cards: ids(await listAll(admin(), `${O}/billing/payment_methods`)) };
};

// The table. The columns of expect(…), in CALLERS order:
//
//                  admin billing developer user wsAdmin wsDev wsUser outsider adminKey revokedKey none otherAdmin otherKey
//                   adm  bil  dev  usr  wsA  wsD  wsU  out  key  rev  none oAdm oKey
//  expect: expect(200, 200, 200, 200, 200, 200, 200, 200, 200, 401, 401, 200, 200)
//
// Each row: the endpoint (as in ENDPOINTS), what the request is, the expected statuses, and
// optionally: `setup(caller, expected)` making a target for the call (fresh when the call may
// destroy it), `state(ctx)` a view of Acme (read by its admin) that a denied call, or any call
// from Other, must leave unchanged, and `check(ctx, r, caller)` for allowed calls.
const ROWS = [
  {
    endpoint: 'GET /me',
    expect: expect(200, 200, 200, 200, 200, 200, 200, 200, 200, 401, 401, 200, 200),
    request: () => ['GET', `${O}/me`],
    check: (_, r, c) => assert.equal(r.body.id, OTHERS.has(c) ? otherId : acmeId),
  },
  {
    endpoint: 'GET /me/settings',
    expect: expect(200, 200, 200, 200, 200, 200, 200, 200, 200, 401, 401, 200, 200),
    request: () => ['GET', `${O}/me/settings`],
    check: (_, r, c) => {
      assert.equal(r.body.id, OTHERS.has(c) ? otherId : acmeId);
      const admins = ['admin', 'adminKey', 'otherAdmin', 'otherKey'];
      assert.deepEqual(r.body.can_edit, { name: admins.includes(c), billing: admins.includes(c) || c === 'billing' });
    },
  },
  {
    endpoint: 'POST /me/settings',
    label: 'billing details',
    expect: expect(200, 200, 403, 403, 403, 403, 403, 403, 200, 401, 401, 200, 200),
    request: (_, c) => ['POST', `${O}/me/settings`, { legal_name: `Legal by ${c}` }],
    state: () => adminGet(`${O}/me/settings`),
    check: async (_, r, c) => assert.equal(r.body.legal_name, `Legal by ${c}`),
  },
  {
    endpoint: 'POST /me/settings',
    label: 'the name',
    expect: expect(200, 403, 403, 403, 403, 403, 403, 403, 200, 401, 401, 200, 200),
    request: (_, c) => ['POST', `${O}/me/settings`, { name: `Named by ${c}` }],
    state: () => adminGet(`${O}/me/settings`),
    check: async (_, r, c) => assert.equal(r.body.name, `Named by ${c}`),
  },
  {
    endpoint: 'GET /users',
    expect: expect(200, 200, 200, 200, 200, 200, 200, 200, 200, 401, 401, 200, 200),
    request: () => ['GET', `${O}/users`],
    check: (_, r, c) => {
      if (!OTHERS.has(c)) assert.ok(ids(r.body.data).includes(people.outsider.id));
    },
  },
  {
    endpoint: 'GET /users/{user_id}',
    expect: expect(200, 200, 200, 200, 200, 200, 200, 200, 200, 401, 401, 404, 404),
    request: () => ['GET', `${O}/users/${people.developer.id}`],
    check: (_, r) => assert.equal(r.body.role, 'developer'),
  },
  {
    endpoint: 'POST /users/{user_id}',
    expect: expect(200, 403, 403, 403, 403, 403, 403, 403, 200, 401, 401, 404, 404),
    setup: async (c, exp) => ({ target: ok(exp) ? await freshMember() : people.user }),
    request: ({ target }) => ['POST', `${O}/users/${target.id}`, { role: 'developer' }],
    state: ({ target }) => adminGet(`${O}/users/${target.id}`),
    check: async ({ target }) => assert.equal((await adminGet(`${O}/users/${target.id}`)).body.role, 'developer'),
  },
  {
    endpoint: 'DELETE /users/{user_id}',
    expect: expect(200, 403, 403, 403, 403, 403, 403, 403, 200, 401, 401, 404, 404),
    setup: async (c, exp) => ({ target: ok(exp) ? await freshMember() : people.user }),
    request: ({ target }) => ['DELETE', `${O}/users/${target.id}`],
    state: ({ target }) => adminGet(`${O}/users/${target.id}`),
    check: async ({ target }) => {
      assert.equal((await adminGet(`${O}/users/${target.id}`)).status, 404);
      assertError(await target.client.get(`${O}/me`), 404, 'not_found_error');
    },
  },
  {
    endpoint: 'GET /invites',
    expect: expect(200, 403, 403, 403, 403, 403, 403, 403, 200, 401, 401, 200, 200),
    request: () => ['GET', `${O}/invites`],
    check: (_, r, c) => {
      if (!OTHERS.has(c)) assert.ok(ids(r.body.data).includes(sharedInvite.id));
    },
  },
  {
    endpoint: 'POST /invites',
    expect: expect(201, 403, 403, 403, 403, 403, 403, 403, 201, 401, 401, 201, 201),
    request: () => ['POST', `${O}/invites`, { email: uniq('perm'), role: 'user' }],
    state: async () => ({ invites: ids(await listAll(admin(), `${O}/invites`)) }),
  },
  {
    endpoint: 'GET /invites/{invite_id}',
    expect: expect(200, 403, 403, 403, 403, 403, 403, 403, 200, 401, 401, 404, 404),
    request: () => ['GET', `${O}/invites/${sharedInvite.id}`],
    check: (_, r) => assert.equal(r.body.id, sharedInvite.id),
  },
  {
    endpoint: 'POST /invites/{invite_id}/resend',
    expect: expect(200, 403, 403, 403, 403, 403, 403, 403, 200, 401, 401, 404, 404),
    setup: async () => ({ target: await freshInvite(), mails: server.outbox().length }),
    request: ({ target }) => ['POST', `${O}/invites/${target.id}/resend`],
    state: async ({ target }) => ({ invite: await adminGet(`${O}/invites/${target.id}`), mails: server.outbox().length }),
    check: ({ target, mails }) => {
      assert.equal(server.outbox().length, mails + 1, 'the invitation is mailed again');
      assert.equal(server.outbox().at(-1).to, target.email);
    },
  },
  {
    endpoint: 'DELETE /invites/{invite_id}',
    expect: expect(200, 403, 403, 403, 403, 403, 403, 403, 200, 401, 401, 404, 404),
    setup: async () => ({ target: await freshInvite() }),
    request: ({ target }) => ['DELETE', `${O}/invites/${target.id}`],
    state: ({ target }) => adminGet(`${O}/invites/${target.id}`),
    check: async ({ target }) => assert.equal((await adminGet(`${O}/invites/${target.id}`)).body.status, 'deleted'),
  },
  {
    endpoint: 'GET /workspaces',
    expect: expect(200, 200, 200, 200, 200, 200, 200, 200, 200, 401, 401, 200, 200),
    request: () => ['GET', `${O}/workspaces?limit=1000`],
    check: (_, r, c) => {
      const seen = ids(r.body.data);
      if (OTHERS.has(c)) return;
      assert.equal(seen[0], D.id, `${c} sees Default first`);
      const reachesW = ['admin', 'billing', 'wsAdmin', 'wsDev', 'wsUser', 'adminKey'].includes(c);
      assert.equal(seen.includes(W.id), reachesW, `${c} ${reachesW ? 'sees' : 'does not see'} W`);
      if (!reachesW) assert.deepEqual(seen, [D.id]);
    },
  },
  {
    endpoint: 'POST /workspaces',
    expect: expect(201, 403, 403, 403, 403, 403, 403, 403, 201, 401, 401, 201, 201),
    request: () => ['POST', `${O}/workspaces`, { name: `New ${++serial}` }],
    state: async () => ids(await listAll(admin(), `${O}/workspaces?include_archived=true`)),
  },
  {
    endpoint: 'GET /workspaces/{workspace_id}',
    label: 'W',
    expect: expect(200, 200, 404, 404, 200, 200, 200, 404, 200, 401, 401, 404, 404),
    request: () => ['GET', `${O}/workspaces/${W.id}`],
    check: (_, r) => assert.equal(r.body.id, W.id),
  },
  {
    endpoint: 'GET /workspaces/{workspace_id}',
    label: 'Default',
    expect: expect(200, 200, 200, 200, 200, 200, 200, 200, 200, 401, 401, 404, 404),
    request: () => ['GET', `${O}/workspaces/${D.id}`],
    check: (_, r) => assert.equal(r.body.is_default, true),
  },
  {
    endpoint: 'POST /workspaces/{workspace_id}',
    expect: expect(200, 403, 403, 403, 403, 403, 403, 403, 200, 401, 401, 404, 404),
    request: (_, c) => ['POST', `${O}/workspaces/${W.id}`, { name: `W by ${c}`, display_color: '#C2554D' }],
    state: () => adminGet(`${O}/workspaces/${W.id}`),
    check: async (_, r, c) => assert.equal((await adminGet(`${O}/workspaces/${W.id}`)).body.name, `W by ${c}`),
  },
  {
    endpoint: 'POST /workspaces/{workspace_id}/archive',
    expect: expect(200, 403, 403, 403, 403, 403, 403, 403, 200, 401, 401, 404, 404),
    setup: async () => ({ target: await freshWorkspace() }),
    request: ({ target }) => ['POST', `${O}/workspaces/${target.id}/archive`],
    state: ({ target }) => adminGet(`${O}/workspaces/${target.id}`),
    check: async ({ target }) => assert.notEqual((await adminGet(`${O}/workspaces/${target.id}`)).body.archived_at, null),
  },
  {
    endpoint: 'GET /workspaces/{workspace_id}/members',
    expect: expect(200, 200, 404, 404, 200, 200, 200, 404, 200, 401, 401, 404, 404),
    request: () => ['GET', `${O}/workspaces/${W.id}/members?limit=1000`],
    check: (_, r) => assert.ok(r.body.data.some((m) => m.user_id === people.wsDev.id)),
  },
  {
    endpoint: 'POST /workspaces/{workspace_id}/members',
    expect: expect(201, 403, 404, 404, 201, 403, 403, 404, 201, 401, 401, 404, 404),
    setup: async (c, exp) => ({ target: ok(exp) ? await freshMember() : people.user }),
    request: ({ target }) => ['POST', `${O}/workspaces/${W.id}/members`, { user_id: target.id, workspace_role: 'workspace_user' }],
    state: async () => (await listAll(admin(), `${O}/workspaces/${W.id}/members`)),
    check: async ({ target }) => assert.equal((await adminGet(`${O}/workspaces/${W.id}/members/${target.id}`)).status, 200),
  },
  {
    endpoint: 'GET /workspaces/{workspace_id}/members/{user_id}',
    expect: expect(200, 200, 404, 404, 200, 200, 200, 404, 200, 401, 401, 404, 404),
    request: () => ['GET', `${O}/workspaces/${W.id}/members/${people.wsUser.id}`],
    check: (_, r) => assert.equal(r.body.workspace_role, 'workspace_user'),
  },
  {
    endpoint: 'POST /workspaces/{workspace_id}/members/{user_id}',
    expect: expect(200, 403, 404, 404, 200, 403, 403, 404, 200, 401, 401, 404, 404),
    setup: async () => {
      // Reset the target's role so every allowed call makes a visible change.
      const r = await admin().post(`${O}/workspaces/${W.id}/members/${wsTarget.id}`, { workspace_role: 'workspace_user' });
      assert.equal(r.status, 200);
      return {};
    },
    request: () => ['POST', `${O}/workspaces/${W.id}/members/${wsTarget.id}`, { workspace_role: 'workspace_billing' }],
    state: () => adminGet(`${O}/workspaces/${W.id}/members/${wsTarget.id}`),
    check: async () => assert.equal((await adminGet(`${O}/workspaces/${W.id}/members/${wsTarget.id}`)).body.workspace_role, 'workspace_billing'),
  },
  {
    endpoint: 'DELETE /workspaces/{workspace_id}/members/{user_id}',
    expect: expect(200, 403, 404, 404, 200, 403, 403, 404, 200, 401, 401, 404, 404),
    setup: async (c, exp) => ({ target: ok(exp) ? await freshWsMember() : wsTarget }),
    request: ({ target }) => ['DELETE', `${O}/workspaces/${W.id}/members/${target.id}`],
    state: async () => (await listAll(admin(), `${O}/workspaces/${W.id}/members`)),
    check: async ({ target }) => assert.equal((await adminGet(`${O}/workspaces/${W.id}/members/${target.id}`)).status, 404),
  },
  {
    endpoint: 'GET /api_keys',
    expect: expect(200, 200, 200, 200, 200, 200, 200, 200, 200, 401, 401, 200, 200),
    request: () => ['GET', `${O}/api_keys?limit=1000`],
    check: (_, r, c) => {
      if (OTHERS.has(c)) return;
      const seen = ids(r.body.data);
      const sees = {
        admin: [true, true], billing: [false, false], developer: [true, false], user: [false, false],
        wsAdmin: [false, true], wsDev: [true, true], wsUser: [false, false], outsider: [false, false], adminKey: [true, true],
      }[c];
      assert.deepEqual([seen.includes(keyDefault.id), seen.includes(keyW.id)], sees, `${c}: [Default key, W key] visible`);
    },
  },
  {
    endpoint: 'POST /api_keys',
    label: 'in Default',
    expect: expect(201, 403, 201, 403, 403, 201, 403, 403, 201, 401, 401, 201, 201),
    request: (_, c) => ['POST', `${O}/api_keys`, { name: `by ${c}` }],
    state: async () => ids(await listAll(admin(), `${O}/api_keys`)),
    check: (_, r, c) => { if (!OTHERS.has(c)) assert.equal(r.body.workspace_id, D.id); },
  },
  {
    endpoint: 'POST /api_keys',
    label: 'in W',
    expect: expect(201, 403, 404, 404, 201, 201, 403, 404, 201, 401, 401, 404, 404),
    request: (_, c) => ['POST', `${O}/api_keys`, { name: `by ${c} in W`, workspace_id: W.id }],
    state: async () => ids(await listAll(admin(), `${O}/api_keys`)),
    check: (_, r) => assert.equal(r.body.workspace_id, W.id),
  },
  {
    endpoint: 'GET /api_keys/{api_key_id}',
    label: 'in W',
    expect: expect(200, 404, 404, 404, 200, 200, 404, 404, 200, 401, 401, 404, 404),
    request: () => ['GET', `${O}/api_keys/${keyW.id}`],
    check: (_, r) => assert.equal(r.body.id, keyW.id),
  },
  {
    endpoint: 'GET /api_keys/{api_key_id}',
    label: 'in Default',
    expect: expect(200, 404, 200, 404, 404, 200, 404, 404, 200, 401, 401, 404, 404),
    request: () => ['GET', `${O}/api_keys/${keyDefault.id}`],
    check: (_, r) => assert.equal(r.body.id, keyDefault.id),
  },
  {
    endpoint: 'POST /api_keys/{api_key_id}',
    label: 'rename in W',
    expect: expect(200, 404, 404, 404, 200, 200, 404, 404, 200, 401, 401, 404, 404),
    request: (_, c) => ['POST', `${O}/api_keys/${keyW.id}`, { name: `W key by ${c}` }],
    state: () => adminGet(`${O}/api_keys/${keyW.id}`),
    check: async (_, r, c) => assert.equal((await adminGet(`${O}/api_keys/${keyW.id}`)).body.name, `W key by ${c}`),
  },
  {
    endpoint: 'POST /api_keys/{api_key_id}',
    label: 'deactivate in Default',
    expect: expect(200, 404, 200, 404, 404, 200, 404, 404, 200, 401, 401, 404, 404),
    setup: async () => {
      assert.equal((await admin().post(`${O}/api_keys/${keyDefault.id}`, { status: 'active' })).status, 200);
      return {};
    },
    request: () => ['POST', `${O}/api_keys/${keyDefault.id}`, { status: 'inactive' }],
    state: () => adminGet(`${O}/api_keys/${keyDefault.id}`),
    check: async () => assert.equal((await adminGet(`${O}/api_keys/${keyDefault.id}`)).body.status, 'inactive'),
  },
  {
    endpoint: 'POST /api_keys/{api_key_id}',
    label: 'archive in W',
    expect: expect(200, 404, 404, 404, 200, 200, 404, 404, 200, 401, 401, 404, 404),
    setup: async () => ({ target: await freshApiKey() }),
    request: ({ target }) => ['POST', `${O}/api_keys/${target.id}`, { status: 'archived' }],
    state: ({ target }) => adminGet(`${O}/api_keys/${target.id}`),
    check: async ({ target }) => assert.equal((await adminGet(`${O}/api_keys/${target.id}`)).body.status, 'archived'),
  },
  {
    endpoint: 'GET /admin_keys',
    expect: expect(200, 403, 403, 403, 403, 403, 403, 403, 200, 401, 401, 200, 200),
    request: () => ['GET', `${O}/admin_keys?limit=1000`],
    check: (_, r, c) => { if (!OTHERS.has(c)) assert.ok(ids(r.body.data).includes(adminKey.id)); },
  },
  {
    endpoint: 'POST /admin_keys',
    expect: expect(201, 403, 403, 403, 403, 403, 403, 403, 201, 401, 401, 201, 201),
    request: (_, c) => ['POST', `${O}/admin_keys`, { name: `by ${c}` }],
    state: async () => ids(await listAll(admin(), `${O}/admin_keys`)),
    check: async (_, r, c) => {
      // The new key belongs to the caller's organization.
      const me = await new KeyClient(server.consoleUrl, r.body.key).get(`${O}/me`);
      assert.equal(me.body.id, OTHERS.has(c) ? otherId : acmeId);
    },
  },
  {
    endpoint: 'GET /admin_keys/{admin_key_id}',
    expect: expect(200, 403, 403, 403, 403, 403, 403, 403, 200, 401, 401, 404, 404),
    request: () => ['GET', `${O}/admin_keys/${adminKey.id}`],
    check: (_, r) => assert.equal(r.body.id, adminKey.id),
  },
  {
    endpoint: 'POST /admin_keys/{admin_key_id}/revoke',
    expect: expect(200, 403, 403, 403, 403, 403, 403, 403, 200, 401, 401, 404, 404),
    setup: async () => ({ target: await freshAdminKey() }),
    request: ({ target }) => ['POST', `${O}/admin_keys/${target.id}/revoke`],
    state: ({ target }) => adminGet(`${O}/admin_keys/${target.id}`),
    check: async ({ target }) => {
      assert.equal((await adminGet(`${O}/admin_keys/${target.id}`)).body.status, 'revoked');
      assertError(await new KeyClient(server.consoleUrl, target.key).get(`${O}/me`), 401, 'authentication_error');
    },
  },
  {
    endpoint: 'GET /audit_log',
    expect: expect(200, 403, 403, 403, 403, 403, 403, 403, 200, 401, 401, 200, 200),
    request: () => ['GET', `${O}/audit_log?limit=1000`],
    check: (_, r, c) => { if (!OTHERS.has(c)) assert.ok(r.body.data.length > 0); },
  },
  {
    endpoint: 'GET /billing',
    expect: expect(200, 200, 403, 403, 403, 403, 403, 403, 200, 401, 401, 200, 200),
    request: () => ['GET', `${O}/billing`],
    check: (_, r, c) => assert.equal(r.body.organization_id, OTHERS.has(c) ? otherId : acmeId),
  },
  {
    endpoint: 'POST /billing/profile',
    expect: expect(200, 200, 403, 403, 403, 403, 403, 403, 200, 401, 401, 200, 200),
    request: (_, c) => ['POST', `${O}/billing/profile`, { ...PROFILE, intended_use: `Use by ${c}` }],
    state: billingState,
    check: async (_, r, c) => assert.equal(r.body.intended_use, `Use by ${c}`),
  },
  {
    endpoint: 'POST /billing/payment_method',
    expect: expect(200, 200, 403, 403, 403, 403, 403, 403, 200, 401, 401, 200, 200),
    setup: () => acmePurchase(),
    request: () => ['POST', `${O}/billing/payment_method`, { ...CARD, number: '5555555555554444' }],
    state: billingState,
    check: async (_, r, c) => {
      if (!OTHERS.has(c)) assert.equal((await adminGet(`${O}/billing`)).body.payment_method.id, r.body.id);
    },
  },
  {
    endpoint: 'GET /billing/payment_methods',
    expect: expect(200, 200, 403, 403, 403, 403, 403, 403, 200, 401, 401, 200, 200),
    request: () => ['GET', `${O}/billing/payment_methods?limit=1000`],
    check: (_, r) => assert.ok(r.body.data.length > 0),
  },
  {
    endpoint: 'POST /billing/purchases',
    expect: expect(200, 200, 403, 403, 403, 403, 403, 403, 200, 401, 401, 200, 200),
    setup: () => acmePurchase(),
    request: (_, c) => ['POST', `${O}/billing/purchases`, { amount_usd: '5.00' }, { 'idempotency-key': `buy-${c}` }],
    state: billingState,
    check: async (_, r, c) => {
      assert.equal(r.body.status, 'succeeded');
      if (!OTHERS.has(c)) assert.ok(ids(await listAll(admin(), `${O}/billing/purchases`)).includes(r.body.id));
    },
  },
  {
    endpoint: 'GET /billing/purchases',
    expect: expect(200, 200, 403, 403, 403, 403, 403, 403, 200, 401, 401, 200, 200),
    setup: () => acmePurchase(),
    request: () => ['GET', `${O}/billing/purchases?limit=1000`],
    check: async (_, r, c) => { if (!OTHERS.has(c)) assert.ok(ids(r.body.data).includes((await acmePurchase()).id)); },
  },
  {
    endpoint: 'GET /billing/purchases/{purchase_id}',
    expect: expect(200, 200, 403, 403, 403, 403, 403, 403, 200, 401, 401, 404, 404),
    setup: async () => ({ target: await acmePurchase() }),
    request: ({ target }) => ['GET', `${O}/billing/purchases/${target.id}`],
    check: ({ target }, r) => assert.equal(r.body.id, target.id),
  },
  {
    endpoint: 'POST /billing/auto_reload',
    expect: expect(200, 200, 403, 403, 403, 403, 403, 403, 200, 401, 401, 200, 200),
    request: (_, c) => ['POST', `${O}/billing/auto_reload`, { enabled: false, threshold_usd: '1.00', amount_usd: `${5 + CALLERS.indexOf(c)}.00` }],
    state: billingState,
    check: (_, r, c) => assert.equal(r.body.amount_usd, `${5 + CALLERS.indexOf(c)}.00`),
  },
  {
    endpoint: 'GET /invoices',
    expect: expect(200, 200, 403, 403, 403, 403, 403, 403, 200, 401, 401, 200, 200),
    setup: () => acmePurchase(),
    request: () => ['GET', `${O}/invoices?limit=1000`],
    check: async (_, r, c) => { if (!OTHERS.has(c)) assert.ok(ids(r.body.data).includes((await acmePurchase()).invoice_id)); },
  },
  {
    endpoint: 'GET /invoices/{invoice_id}',
    expect: expect(200, 200, 403, 403, 403, 403, 403, 403, 200, 401, 401, 404, 404),
    setup: async () => ({ target: await acmePurchase() }),
    request: ({ target }) => ['GET', `${O}/invoices/${target.invoice_id}`],
    check: ({ target }, r) => assert.equal(r.body.purchase_id, target.id),
  },
  {
    endpoint: 'GET /invoices/{invoice_id}/pdf',
    expect: expect(200, 200, 403, 403, 403, 403, 403, 403, 200, 401, 401, 404, 404),
    setup: async () => ({ target: await acmePurchase() }),
    request: ({ target }) => ['GET', `${O}/invoices/${target.invoice_id}/pdf`],
    check: (_, r) => assert.equal(r.headers.get('content-type'), 'application/pdf'),
  },
  {
    endpoint: 'GET /usage_report/messages',
    expect: expect(200, 200, 200, 200, 200, 200, 200, 200, 200, 401, 401, 200, 200),
    request: () => ['GET', `${O}/usage_report/messages?starting_at=2026-01-01T00:00:00Z&ending_at=2026-01-03T00:00:00Z&group_by[]=workspace_id`],
    check: (_, r) => assert.equal(r.body.data.length, 2),
  },
  {
    endpoint: 'GET /cost_report',
    expect: expect(200, 200, 403, 403, 403, 403, 403, 403, 200, 401, 401, 200, 200),
    request: () => ['GET', `${O}/cost_report?starting_at=2026-01-01T00:00:00Z&ending_at=2026-01-03T00:00:00Z&group_by[]=workspace_id`],
    check: (_, r) => assert.equal(r.body.data.length, 2),
  },
  {
    endpoint: 'GET /limits',
    expect: expect(200, 200, 200, 200, 200, 200, 200, 200, 200, 401, 401, 200, 200),
    request: () => ['GET', `${O}/limits`],
    check: (_, r, c) => assert.equal(r.body.organization_id, OTHERS.has(c) ? otherId : acmeId),
  },
  {
    endpoint: 'POST /limits',
    expect: expect(200, 403, 403, 403, 403, 403, 403, 403, 200, 401, 401, 200, 200),
    request: (_, c) => ['POST', `${O}/limits`, { monthly_spend_limit_usd: `0.${10 + CALLERS.indexOf(c)}` }],
    state: async () => (await adminGet(`${O}/limits`)).body.monthly_spend_limit_usd,
    check: (_, r, c) => assert.equal(r.body.monthly_spend_limit_usd, `0.${10 + CALLERS.indexOf(c)}`),
  },
  {
    endpoint: 'GET /limit_requests',
    expect: expect(200, 200, 200, 200, 200, 200, 200, 200, 200, 401, 401, 200, 200),
    request: () => ['GET', `${O}/limit_requests?limit=1000`],
  },
  {
    // One pending request per organization: the admin key finds its admin's.
    endpoint: 'POST /limit_requests',
    expect: expect(201, 403, 403, 403, 403, 403, 403, 403, 409, 401, 401, 201, 409),
    request: (_, c) => ['POST', `${O}/limit_requests`, { tier: 'tier_2', reason: `Asked by ${c}` }],
    state: async () => ids(await listAll(admin(), `${O}/limit_requests`)),
    check: (_, r, c) => assert.equal(r.body.reason, `Asked by ${c}`),
  },
  {
    endpoint: 'GET /workspaces/{workspace_id}/limits',
    expect: expect(200, 200, 404, 404, 200, 200, 200, 404, 200, 401, 401, 404, 404),
    request: () => ['GET', `${O}/workspaces/${W.id}/limits`],
    check: (_, r) => assert.equal(r.body.workspace_id, W.id),
  },
  {
    endpoint: 'POST /workspaces/{workspace_id}/limits',
    expect: expect(200, 403, 403, 403, 403, 403, 403, 403, 200, 401, 401, 404, 404),
    request: (_, c) => ['POST', `${O}/workspaces/${W.id}/limits`, { requests_per_minute: 10 + CALLERS.indexOf(c) }],
    state: async () => (await adminGet(`${O}/workspaces/${W.id}/limits`)).body,
    check: (_, r, c) => assert.equal(r.body.requests_per_minute, 10 + CALLERS.indexOf(c)),
  },
];

test('the table covers every Organization API endpoint of docs/api.md', () => {
  assert.deepEqual([...new Set(ROWS.map((r) => r.endpoint))].sort(), [...ENDPOINTS].sort());
});

for (const row of ROWS) {
  test(`${row.endpoint}${row.label ? ` (${row.label})` : ''}`, async () => {
    for (const caller of CALLERS) {
      const expected = row.expect[caller];
      const ctx = row.setup ? await row.setup(caller, expected) : {};
      const before = row.state ? await row.state(ctx) : undefined;
      const [method, path, json, headers] = row.request(ctx, caller);
      const r = await callers[caller].request(method, path, { json, headers });
      const what = `${caller}: ${method} ${path}`;
      assert.equal(r.status, expected, `${what}: expected ${expected}, got ${r.status} ${JSON.stringify(r.body)}`);
      if (!ok(expected)) {
        assertError(r, expected, ERROR_TYPE[expected]);
      } else {
        if (OTHERS.has(caller)) {
          // An answer to another organization never contains anything of Acme's.
          const text = JSON.stringify(r.body);
          for (const id of acmeIds) assert.ok(!text.includes(id), `${what} answered with Acme's ${id}`);
        }
        if (row.check) await row.check(ctx, r, caller);
      }
      if (row.state && (!ok(r.status) || OTHERS.has(caller)))
        assert.deepEqual(await row.state(ctx), before, `${what} (${r.status}) changed Acme`);
    }
  });
}

test('a session without the CSRF header changes nothing, for every role', async () => {
  for (const caller of ['admin', 'billing', 'developer', 'wsAdmin', 'wsDev']) {
    const before = ids(await listAll(admin(), `${O}/api_keys`));
    const r = await callers[caller].post(`${O}/api_keys`, { name: 'no csrf' }, { csrf: false });
    assertError(r, 403, 'permission_error');
    assert.deepEqual(ids(await listAll(admin(), `${O}/api_keys`)), before, caller);
  }
});

test('nothing of Acme shows up in any list Other can read', async () => {
  for (const c of ['otherAdmin', 'otherKey']) {
    for (const path of ['users', 'invites', 'workspaces?include_archived=true', 'api_keys', 'admin_keys', 'audit_log',
      'billing/purchases', 'billing/payment_methods', 'invoices']) {
      const text = JSON.stringify(await listAll(callers[c], `${O}/${path}`));
      for (const id of acmeIds) assert.ok(!text.includes(id), `${c} ${path} shows ${id}`);
      assert.ok(!text.includes(people.outsider.email), `${c} ${path} shows an Acme address`);
    }
    // Acme's ids are not cursors in Other's lists.
    assertError(await callers[c].get(`${O}/users?after_id=${people.outsider.id}`), 400, 'invalid_request_error');
    assertError(await callers[c].get(`${O}/workspaces?after_id=${W.id}`), 400, 'invalid_request_error');
    assertError(await callers[c].get(`${O}/api_keys?after_id=${keyW.id}`), 400, 'invalid_request_error');
  }
});
