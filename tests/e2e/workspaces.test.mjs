// Workspaces and workspace members: the Default workspace, creating, renaming, recolouring and
// archiving (which archives the workspace's keys), the palette, the per-organization limit,
// who sees which workspace, workspace roles, and keyset pagination (docs/api.md,
// "Workspaces", "Workspace members", "Lists and pagination").
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './lib/server.mjs';
import { Client } from './lib/client.mjs';
import { assertError, uniq, idPattern, TIME, addMember, listAll, assertList } from './lib/expect.mjs';

const WS = '/v1/organizations/workspaces';
const PALETTE = ['#6C5BB9', '#D97757', '#4E8FD4', '#3F9A6E', '#C2554D', '#C48A2C', '#8A6B4E', '#5E7386', '#B5548C', '#2F8F8F'];
const WS_ROLES = ['workspace_user', 'workspace_developer', 'workspace_admin', 'workspace_billing'];

let server;
let limited; // max_workspaces = 3
let admin; // admin of Acme
let defaultId;

before(async () => {
  [server, limited] = await Promise.all([
    startServer(),
    startServer({ config: { organizations: { max_workspaces: 3 } } }),
  ]);
  admin = new Client(server.consoleUrl);
  await admin.signUpWithOrg(server, uniq('admin'), 'Acme');
  defaultId = (await admin.get(WS)).body.data[0].id;
});

after(async () => {
  await Promise.all([server?.stop(), limited?.stop()]);
});

async function freshAdmin(srv, name) {
  const c = new Client(srv.consoleUrl);
  const s = await c.signUpWithOrg(srv, uniq('owner'), name);
  return { client: c, id: s.account.id, orgId: s.current_organization.id };
}

function assertWorkspace(w) {
  assert.deepEqual(Object.keys(w).sort(),
    ['archived_at', 'created_at', 'display_color', 'id', 'is_default', 'member_count', 'name', 'type']);
  assert.equal(w.type, 'workspace');
  assert.match(w.id, idPattern('wrkspc'));
  assert.ok(PALETTE.includes(w.display_color), `${w.display_color} is a palette colour`);
  assert.match(w.created_at, TIME);
  if (w.archived_at !== null) assert.match(w.archived_at, TIME);
  assert.equal(typeof w.is_default, 'boolean');
  assert.ok(Number.isInteger(w.member_count) && w.member_count >= 0);
}

async function create(c, body) {
  const r = await c.post(WS, body);
  assert.equal(r.status, 201, `create ${JSON.stringify(body)}: ${r.status} ${JSON.stringify(r.body)}`);
  assertWorkspace(r.body);
  return r.body;
}

async function getWs(c, id) {
  const r = await c.get(`${WS}/${id}`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assertWorkspace(r.body);
  return r.body;
}

const allWorkspaces = (c) => listAll(c, `${WS}?include_archived=true`);

// Sends a request that must be refused with `status`/`type`, and checks the organization's
// workspaces did not change.
async function refused(c, method, path, json, status, type, label) {
  const before = await allWorkspaces(c);
  const r = await c.request(method, path, json === undefined ? {} : { json });
  assert.equal(r.status, status, `${label}: ${r.status} ${JSON.stringify(r.body)}`);
  assertError(r, status, type);
  assert.deepEqual(await allWorkspaces(c), before, `${label} changed the workspaces`);
  return r;
}

test('a new organization has the Default workspace, first and not archived', async () => {
  const { client: c } = await freshAdmin(server, 'Fresh');
  const list = assertList(await c.get(WS));
  assert.equal(list.data.length, 1);
  assert.equal(list.has_more, false);
  const d = list.data[0];
  assertWorkspace(d);
  assert.equal(d.name, 'Default');
  assert.equal(d.is_default, true);
  assert.equal(d.archived_at, null);
  assert.deepEqual(await getWs(c, d.id), d);
  // Later workspaces never displace it.
  const w = await create(c, { name: 'Zeta' });
  assert.equal(w.is_default, false);
  const again = (await c.get(WS)).body.data;
  assert.deepEqual(again.map((x) => x.id), [d.id, w.id]);
});

test('create, rename, recolour and archive', async () => {
  const { client: c } = await freshAdmin(server, 'Lifecycle');
  const w = await create(c, { name: '  Research  ', display_color: '#3F9A6E' });
  assert.equal(w.name, 'Research', 'the name is trimmed');
  assert.equal(w.display_color, '#3F9A6E');
  assert.equal(w.archived_at, null);
  assert.equal(w.member_count, 0);
  assert.ok(Math.abs(Date.parse(w.created_at) - Date.now()) < 60000);
  assert.deepEqual(await getWs(c, w.id), w);

  // Without a colour: the next palette colour after the previous workspace's.
  const a = await create(c, { name: 'Auto A' });
  const b = await create(c, { name: 'Auto B' });
  assert.equal(PALETTE[(PALETTE.indexOf(a.display_color) + 1) % PALETTE.length], b.display_color);

  const renamed = await c.post(`${WS}/${w.id}`, { name: 'Research & Development' });
  assert.equal(renamed.status, 200, JSON.stringify(renamed.body));
  assert.deepEqual(renamed.body, { ...w, name: 'Research & Development' });
  const recoloured = await c.post(`${WS}/${w.id}`, { display_color: '#b5548c' });
  assert.equal(recoloured.status, 200);
  assert.equal(recoloured.body.display_color, '#B5548C', 'hex is case-insensitive and stored upper-case');
  const both = await c.post(`${WS}/${w.id}`, { name: 'R&D', display_color: '#2F8F8F' });
  assert.deepEqual(both.body, { ...w, name: 'R&D', display_color: '#2F8F8F' });
  assert.deepEqual(await getWs(c, w.id), both.body);
  // Keeping a name is not a duplicate of itself.
  assert.equal((await c.post(`${WS}/${w.id}`, { name: 'R&D' })).status, 200);

  const ar = await c.post(`${WS}/${w.id}/archive`);
  assert.equal(ar.status, 200, JSON.stringify(ar.body));
  assert.match(ar.body.archived_at, TIME);
  assert.deepEqual(ar.body, { ...both.body, archived_at: ar.body.archived_at });
  assert.deepEqual(await getWs(c, w.id), ar.body, 'an archived workspace can still be read');

  // Archived workspaces are listed only on request.
  assert.ok(!(await listAll(c, WS)).some((x) => x.id === w.id));
  assert.ok(!(await listAll(c, `${WS}?include_archived=false`)).some((x) => x.id === w.id));
  assert.deepEqual((await allWorkspaces(c)).find((x) => x.id === w.id), ar.body);
  assertError(await c.get(`${WS}?include_archived=yes`), 400, 'invalid_request_error');

  // Archived ones cannot be changed, nor archived again.
  await refused(c, 'POST', `${WS}/${w.id}`, { name: 'Revived' }, 400, 'invalid_request_error', 'rename archived');
  await refused(c, 'POST', `${WS}/${w.id}`, { display_color: '#6C5BB9' }, 400, 'invalid_request_error', 'recolour archived');
  await refused(c, 'POST', `${WS}/${w.id}/archive`, undefined, 400, 'invalid_request_error', 'archive twice');
});

test('the Default workspace can be neither renamed nor archived', async () => {
  const before = await getWs(admin, defaultId);
  await refused(admin, 'POST', `${WS}/${defaultId}`, { name: 'Main' }, 400, 'invalid_request_error', 'rename Default');
  await refused(admin, 'POST', `${WS}/${defaultId}`, { name: 'Main', display_color: '#C2554D' }, 400, 'invalid_request_error', 'rename and recolour Default');
  await refused(admin, 'POST', `${WS}/${defaultId}/archive`, undefined, 400, 'invalid_request_error', 'archive Default');
  assert.deepEqual(await getWs(admin, defaultId), before);
});

test('name rules: 1–40 characters, unique in the organization; palette colours only', async () => {
  const { client: c } = await freshAdmin(server, 'Names');
  const w = await create(c, { name: 'Alpha' });
  await create(c, { name: 'x'.repeat(40) });
  await create(c, { name: 'é'.repeat(40) }); // characters, not bytes
  for (const [label, body] of [
    ['empty', { name: '' }],
    ['blank', { name: '   ' }],
    ['41 characters', { name: 'y'.repeat(41) }],
    ['41 characters, multibyte', { name: 'ü'.repeat(41) }],
    ['a control character', { name: 'a\u0007b' }],
    ['missing', {}],
    ['null', { name: null }],
    ['not a string', { name: 12 }],
    ['unknown field', { name: 'Beta', colour: '#6C5BB9' }],
    ['off-palette colour', { name: 'Beta', display_color: '#123456' }],
    ['colour name', { name: 'Beta', display_color: 'red' }],
    ['short hex', { name: 'Beta', display_color: '#6C5' }],
    ['colour without #', { name: 'Beta', display_color: '6C5BB9' }],
    ['colour not a string', { name: 'Beta', display_color: 7 }],
  ]) await refused(c, 'POST', WS, body, 400, 'invalid_request_error', label);
  const unknown = await refused(c, 'POST', WS, { name: 'Beta', colour: '#6C5BB9' }, 400, 'invalid_request_error', 'unknown');
  assert.match(unknown.body.error.message, /"colour"/);

  await refused(c, 'POST', WS, { name: 'Alpha' }, 409, 'conflict_error', 'duplicate');
  await refused(c, 'POST', WS, { name: 'Default' }, 409, 'conflict_error', 'duplicate of Default');
  await refused(c, 'POST', WS, { name: ' Alpha ' }, 409, 'conflict_error', 'duplicate after trimming');

  // Renames follow the same rules.
  const b = await create(c, { name: 'Beta' });
  await refused(c, 'POST', `${WS}/${b.id}`, { name: 'Alpha' }, 409, 'conflict_error', 'rename to a taken name');
  await refused(c, 'POST', `${WS}/${b.id}`, { name: 'Default' }, 409, 'conflict_error', 'rename to Default');
  for (const [label, body] of [
    ['empty', { name: '' }],
    ['41 characters', { name: 'z'.repeat(41) }],
    ['name not a string', { name: 40 }],
    ['off-palette colour', { display_color: '#000000' }],
    ['unknown field', { archived: true }],
  ]) await refused(c, 'POST', `${WS}/${b.id}`, body, 400, 'invalid_request_error', `rename: ${label}`);
  assert.equal((await getWs(c, w.id)).name, 'Alpha');

  // Names are unique per organization, not across organizations.
  await create(admin, { name: `Alpha ${Date.now()}` });
  const { client: other } = await freshAdmin(server, 'Names Too');
  await create(other, { name: 'Alpha' });

  // Unknown and foreign ids.
  for (const id of [`wrkspc_01${'x'.repeat(22)}`, 'nope', w.id]) {
    const caller = id === w.id ? other : c;
    assertError(await caller.get(`${WS}/${id}`), 404, 'not_found_error');
    assertError(await caller.post(`${WS}/${id}`, { name: 'Gamma' }), 404, 'not_found_error');
    assertError(await caller.post(`${WS}/${id}/archive`), 404, 'not_found_error');
  }
  assert.equal((await getWs(c, w.id)).name, 'Alpha');
});

test('at most [organizations] max_workspaces per organization', async () => {
  const { client: c } = await freshAdmin(limited, 'Small');
  await create(c, { name: 'Two' });
  await create(c, { name: 'Three' });
  const r = await refused(c, 'POST', WS, { name: 'Four' }, 409, 'conflict_error', 'over the limit');
  assert.match(r.body.error.message, /3/, 'the message says the limit');
  // Another organization has its own allowance.
  const { client: d } = await freshAdmin(limited, 'Small Too');
  await create(d, { name: 'Two' });
});

test('concurrent creations respect the limit and unique names', async () => {
  const { client: c } = await freshAdmin(limited, 'Rush');
  const many = await Promise.all(['A', 'B', 'C', 'D', 'E'].map((n) => c.post(WS, { name: `Rush ${n}` })));
  assert.deepEqual(many.map((r) => r.status).sort(), [201, 201, 409, 409, 409]);
  assert.equal((await allWorkspaces(c)).length, 3);
  const { client: d } = await freshAdmin(server, 'Rush Too');
  const same = await Promise.all([1, 2, 3, 4].map(() => d.post(WS, { name: 'Same' })));
  assert.deepEqual(same.map((r) => r.status).sort(), [201, 409, 409, 409]);
  assert.equal((await allWorkspaces(d)).filter((w) => w.name === 'Same').length, 1);
});

test('other methods are refused with 405 and an allow header', async () => {
  for (const [method, path, allow] of [
    ['PUT', WS, ['GET', 'POST']],
    ['DELETE', `${WS}/${defaultId}`, ['GET', 'POST']],
    ['PATCH', `${WS}/${defaultId}/members`, ['GET', 'POST']],
  ]) {
    const before = await allWorkspaces(admin);
    const r = await admin.request(method, path, { json: { name: 'x' } });
    assertError(r, 405, 'invalid_request_error');
    const allowed = (r.headers.get('allow') ?? '').split(/,\s*/).filter((m) => m !== 'HEAD');
    assert.deepEqual(allowed.sort(), allow);
    assert.deepEqual(await allWorkspaces(admin), before);
  }
});

test('member_count and the workspace member list', async () => {
  const { client: c } = await freshAdmin(server, 'Members');
  const w = await create(c, { name: 'Crew' });
  const people = [];
  for (const role of ['user', 'developer', 'billing', 'admin']) people.push(await addMember(server, c, role));

  // Each workspace role once.
  const added = [];
  for (const [i, p] of people.entries()) {
    const r = await c.post(`${WS}/${w.id}/members`, { user_id: p.id, workspace_role: WS_ROLES[i] });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.deepEqual(r.body, {
      type: 'workspace_member', user_id: p.id, workspace_id: w.id, workspace_role: WS_ROLES[i],
      email: p.email, name: `${['user', 'developer', 'billing', 'admin'][i]} member`,
    });
    added.push(r.body);
    assert.equal((await getWs(c, w.id)).member_count, i + 1);
  }
  const list = assertList(await c.get(`${WS}/${w.id}/members`), 'user_id');
  assert.deepEqual(list.data, added);
  assert.equal(list.has_more, false);
  assert.equal((await listAll(c, WS)).find((x) => x.id === w.id).member_count, 4, 'lists show the count');
  const p1 = assertList(await c.get(`${WS}/${w.id}/members?limit=3`), 'user_id');
  assert.deepEqual(p1.data, added.slice(0, 3));
  assert.equal(p1.has_more, true);
  const p2 = assertList(await c.get(`${WS}/${w.id}/members?limit=3&after_id=${p1.last_id}`), 'user_id');
  assert.deepEqual(p2.data, added.slice(3));
  assert.equal(p2.has_more, false);
  for (const m of added) assert.deepEqual((await c.get(`${WS}/${w.id}/members/${m.user_id}`)).body, m);

  // Role changes.
  const up = await c.post(`${WS}/${w.id}/members/${people[0].id}`, { workspace_role: 'workspace_admin' });
  assert.equal(up.status, 200, JSON.stringify(up.body));
  assert.deepEqual(up.body, { ...added[0], workspace_role: 'workspace_admin' });
  assert.deepEqual((await c.get(`${WS}/${w.id}/members/${people[0].id}`)).body, up.body);

  // Refusals, each changing nothing.
  const members = () => listAll(c, `${WS}/${w.id}/members`);
  const snapshot = await members();
  const outsider = await addMember(server, c, 'user');
  const foreign = (await admin.get('/auth/session')).body.account.id;
  for (const [label, method, path, body, status, type] of [
    ['bad role', 'POST', `${WS}/${w.id}/members`, { user_id: outsider.id, workspace_role: 'admin' }, 400, 'invalid_request_error'],
    ['role missing', 'POST', `${WS}/${w.id}/members`, { user_id: outsider.id }, 400, 'invalid_request_error'],
    ['user_id missing', 'POST', `${WS}/${w.id}/members`, { workspace_role: 'workspace_user' }, 400, 'invalid_request_error'],
    ['user_id not a string', 'POST', `${WS}/${w.id}/members`, { user_id: 5, workspace_role: 'workspace_user' }, 400, 'invalid_request_error'],
    ['unknown field', 'POST', `${WS}/${w.id}/members`, { user_id: outsider.id, workspace_role: 'workspace_user', role: 'x' }, 400, 'invalid_request_error'],
    ['another organization\'s user', 'POST', `${WS}/${w.id}/members`, { user_id: foreign, workspace_role: 'workspace_user' }, 404, 'not_found_error'],
    ['unknown user', 'POST', `${WS}/${w.id}/members`, { user_id: `user_01${'u'.repeat(22)}`, workspace_role: 'workspace_user' }, 404, 'not_found_error'],
    ['malformed user id', 'POST', `${WS}/${w.id}/members`, { user_id: 'bob', workspace_role: 'workspace_user' }, 404, 'not_found_error'],
    ['duplicate', 'POST', `${WS}/${w.id}/members`, { user_id: people[1].id, workspace_role: 'workspace_user' }, 409, 'conflict_error'],
    ['bad role on update', 'POST', `${WS}/${w.id}/members/${people[1].id}`, { workspace_role: 'owner' }, 400, 'invalid_request_error'],
    ['unknown field on update', 'POST', `${WS}/${w.id}/members/${people[1].id}`, { workspace_role: 'workspace_user', user_id: outsider.id }, 400, 'invalid_request_error'],
    ['update a non-member', 'POST', `${WS}/${w.id}/members/${outsider.id}`, { workspace_role: 'workspace_user' }, 404, 'not_found_error'],
    ['remove a non-member', 'DELETE', `${WS}/${w.id}/members/${outsider.id}`, undefined, 404, 'not_found_error'],
    ['get a non-member', 'GET', `${WS}/${w.id}/members/${outsider.id}`, undefined, 404, 'not_found_error'],
    ['unknown workspace', 'POST', `${WS}/wrkspc_01${'w'.repeat(22)}/members`, { user_id: outsider.id, workspace_role: 'workspace_user' }, 404, 'not_found_error'],
  ]) {
    const r = await c.request(method, path, body === undefined ? {} : { json: body });
    assert.equal(r.status, status, `${label}: ${r.status} ${JSON.stringify(r.body)}`);
    assertError(r, status, type);
    assert.deepEqual(await members(), snapshot, `${label} changed the members`);
  }
  assert.equal((await getWs(c, w.id)).member_count, 4);

  // The Default workspace has no member list to change.
  const d = (await c.get(WS)).body.data[0];
  assertError(await c.post(`${WS}/${d.id}/members`, { user_id: outsider.id, workspace_role: 'workspace_user' }), 400, 'invalid_request_error');
  assert.deepEqual(await getWs(c, d.id), d);
  assertError(await c.get(`${WS}/${d.id}/members/${outsider.id}`), 404, 'not_found_error');

  // Removal.
  const del = await c.request('DELETE', `${WS}/${w.id}/members/${people[2].id}`);
  assert.equal(del.status, 200, JSON.stringify(del.body));
  assert.deepEqual(del.body, { type: 'workspace_member_deleted', user_id: people[2].id, workspace_id: w.id });
  assertError(await c.get(`${WS}/${w.id}/members/${people[2].id}`), 404, 'not_found_error');
  assert.equal((await getWs(c, w.id)).member_count, 3);
  assert.deepEqual((await members()).map((m) => m.user_id), [people[0].id, people[1].id, people[3].id]);
  // And back again.
  assert.equal((await c.post(`${WS}/${w.id}/members`, { user_id: people[2].id, workspace_role: 'workspace_billing' })).status, 201);

  // An archived workspace's members cannot change.
  assert.equal((await c.post(`${WS}/${w.id}/archive`)).status, 200);
  assert.ok([400, 409].includes((await c.post(`${WS}/${w.id}/members`, { user_id: outsider.id, workspace_role: 'workspace_user' })).status));
  assert.equal((await getWs(c, w.id)).member_count, 4);
});

test('who sees which workspace: members and Default for users and developers, all for admins and billing', async () => {
  const { client: c } = await freshAdmin(server, 'Visibility');
  const w = await create(c, { name: 'Secret' });
  const v = await create(c, { name: 'Open' });
  const dev = await addMember(server, c, 'developer');
  const usr = await addMember(server, c, 'user');
  const bil = await addMember(server, c, 'billing');
  const outsider = await addMember(server, c, 'user');
  const d = (await c.get(WS)).body.data[0].id;
  assert.equal((await c.post(`${WS}/${w.id}/members`, { user_id: dev.id, workspace_role: 'workspace_developer' })).status, 201);
  assert.equal((await c.post(`${WS}/${v.id}/members`, { user_id: usr.id, workspace_role: 'workspace_user' })).status, 201);

  const ids = async (x) => (await listAll(x, WS)).map((y) => y.id);
  assert.deepEqual(await ids(c), [d, w.id, v.id]);
  assert.deepEqual(await ids(bil.client), [d, w.id, v.id]);
  assert.deepEqual(await ids(dev.client), [d, w.id]);
  assert.deepEqual(await ids(usr.client), [d, v.id]);
  assert.deepEqual(await ids(outsider.client), [d]);

  assert.equal((await dev.client.get(`${WS}/${w.id}`)).status, 200);
  assertError(await dev.client.get(`${WS}/${v.id}`), 404, 'not_found_error');
  assertError(await outsider.client.get(`${WS}/${w.id}`), 404, 'not_found_error');
  assertError(await outsider.client.get(`${WS}/${w.id}/members`), 404, 'not_found_error');
  assert.equal((await outsider.client.get(`${WS}/${d}`)).status, 200);
  assert.equal((await bil.client.get(`${WS}/${v.id}/members`)).status, 200);

  // Only admins create, rename, recolour and archive.
  for (const m of [dev, usr, bil]) {
    await refused(m.client, 'POST', WS, { name: 'Mine' }, 403, 'permission_error', 'create');
    await refused(m.client, 'POST', `${WS}/${w.id}`, { name: 'Mine' }, 403, 'permission_error', 'rename');
    await refused(m.client, 'POST', `${WS}/${w.id}`, { display_color: '#6C5BB9' }, 403, 'permission_error', 'recolour');
    await refused(m.client, 'POST', `${WS}/${w.id}/archive`, undefined, 403, 'permission_error', 'archive');
  }

  // A workspace admin (of any organization role) manages that workspace's members only.
  assert.equal((await c.post(`${WS}/${v.id}/members/${usr.id}`, { workspace_role: 'workspace_admin' })).status, 200);
  const add = await usr.client.post(`${WS}/${v.id}/members`, { user_id: outsider.id, workspace_role: 'workspace_user' });
  assert.equal(add.status, 201, JSON.stringify(add.body));
  assert.equal((await usr.client.post(`${WS}/${v.id}/members/${outsider.id}`, { workspace_role: 'workspace_developer' })).status, 200);
  assert.equal((await usr.client.request('DELETE', `${WS}/${v.id}/members/${outsider.id}`)).status, 200);
  assertError(await usr.client.post(`${WS}/${w.id}/members`, { user_id: outsider.id, workspace_role: 'workspace_user' }), 404, 'not_found_error');
  // A workspace developer does not.
  assertError(await dev.client.post(`${WS}/${w.id}/members`, { user_id: outsider.id, workspace_role: 'workspace_user' }), 403, 'permission_error');
  assertError(await bil.client.post(`${WS}/${w.id}/members`, { user_id: outsider.id, workspace_role: 'workspace_user' }), 403, 'permission_error');
  assert.equal((await getWs(c, w.id)).member_count, 1);
});

test('archiving a workspace archives its keys; no new keys there', async () => {
  const { client: c } = await freshAdmin(server, 'Archive Keys');
  const w = await create(c, { name: 'Doomed' });
  const keep = await create(c, { name: 'Kept' });
  const mk = async (ws, name) => {
    const r = await c.post('/v1/organizations/api_keys', { name, workspace_id: ws });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return r.body;
  };
  const k1 = await mk(w.id, 'one');
  const k2 = await mk(w.id, 'two');
  const k3 = await mk(keep.id, 'three');
  assert.equal((await c.post(`/v1/organizations/api_keys/${k2.id}`, { status: 'inactive' })).status, 200);

  assert.equal((await c.post(`${WS}/${w.id}/archive`)).status, 200);
  for (const k of [k1, k2]) {
    const r = await c.get(`/v1/organizations/api_keys/${k.id}`);
    assert.equal(r.status, 200);
    assert.equal(r.body.status, 'archived', `${k.name} is archived with its workspace`);
    // Final: it cannot come back.
    assertError(await c.post(`/v1/organizations/api_keys/${k.id}`, { status: 'active' }), 400, 'invalid_request_error');
  }
  assert.equal((await c.get(`/v1/organizations/api_keys/${k3.id}`)).body.status, 'active', 'other workspaces are untouched');
  const before = await listAll(c, '/v1/organizations/api_keys');
  const r = await c.post('/v1/organizations/api_keys', { name: 'late', workspace_id: w.id });
  assert.ok(r.status >= 400 && r.status < 500, `a key in an archived workspace: ${r.status}`);
  assert.equal(r.body.type, 'error');
  assert.deepEqual(await listAll(c, '/v1/organizations/api_keys'), before);
});

test('pagination: limit, after_id, before_id, has_more, first_id, last_id', async () => {
  const { client: c } = await freshAdmin(server, 'Pages');
  const d = (await c.get(WS)).body.data[0];
  const made = [d];
  for (let i = 1; i <= 5; i++) made.push(await create(c, { name: `Page ${i}` }));
  const ids = (l) => l.data.map((w) => w.id);
  const all = made.map((w) => w.id);

  // Forward: [D,1] [2,3] [4,5].
  const p1 = assertList(await c.get(`${WS}?limit=2`));
  assert.deepEqual(ids(p1), all.slice(0, 2));
  assert.equal(p1.has_more, true);
  const p2 = assertList(await c.get(`${WS}?limit=2&after_id=${p1.last_id}`));
  assert.deepEqual(ids(p2), all.slice(2, 4));
  assert.equal(p2.has_more, true);
  const p3 = assertList(await c.get(`${WS}?limit=2&after_id=${p2.last_id}`));
  assert.deepEqual(ids(p3), all.slice(4, 6));
  assert.equal(p3.has_more, false);
  const end = assertList(await c.get(`${WS}?limit=2&after_id=${p3.last_id}`));
  assert.deepEqual(end, { data: [], has_more: false, first_id: null, last_id: null });

  // Backward from the last page.
  const b2 = assertList(await c.get(`${WS}?limit=2&before_id=${p3.first_id}`));
  assert.deepEqual(ids(b2), all.slice(2, 4), 'a backward page is still oldest first');
  assert.equal(b2.has_more, true);
  const b1 = assertList(await c.get(`${WS}?limit=2&before_id=${b2.first_id}`));
  assert.deepEqual(ids(b1), all.slice(0, 2));
  assert.equal(b1.has_more, false);
  const b0 = assertList(await c.get(`${WS}?limit=3&before_id=${all[1]}`));
  assert.deepEqual(ids(b0), [all[0]]);
  assert.equal(b0.has_more, false);

  // Default limit 20, and the limits themselves.
  assert.deepEqual(ids(assertList(await c.get(WS))), all);
  assert.deepEqual(ids(assertList(await c.get(`${WS}?limit=1000`))), all);
  const one = assertList(await c.get(`${WS}?limit=1`));
  assert.deepEqual(ids(one), [all[0]]);
  assert.equal(one.has_more, true);

  // Archived ones are skipped unless asked for, also across pages.
  assert.equal((await c.post(`${WS}/${all[2]}/archive`)).status, 200);
  const live = all.filter((id) => id !== all[2]);
  const q1 = assertList(await c.get(`${WS}?limit=2&after_id=${all[1]}`));
  assert.deepEqual(ids(q1), live.slice(2, 4));
  const q2 = assertList(await c.get(`${WS}?limit=2&after_id=${all[1]}&include_archived=true`));
  assert.deepEqual(ids(q2), all.slice(2, 4));

  // Bad parameters.
  const foreignId = (await admin.get(WS)).body.data[0].id;
  for (const q of ['limit=0', 'limit=1001', 'limit=abc', 'limit=', 'limit=-1', 'limit=2.5',
    `after_id=wrkspc_01${'n'.repeat(22)}`, `before_id=wrkspc_01${'n'.repeat(22)}`, 'after_id=',
    `after_id=${foreignId}`, `after_id=${all[1]}&before_id=${all[3]}`]) {
    const r = await c.get(`${WS}?${q}`);
    assertError(r, 400, 'invalid_request_error');
  }
});
