// Invitation mail bombs and names that disguise themselves (issue 12, point 10): invitations
// and resends are limited per organization and per recipient (429 with retry-after), and names
// refuse bidirectional and other control characters.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './lib/server.mjs';
import { Client } from './lib/client.mjs';
import { uniq, ONBOARDING } from './lib/expect.mjs';

const INVITES = '/v1/organizations/invites';
let server;

before(async () => {
  server = await startServer({
    config: { organizations: { invite_limit_per_recipient: 3, invite_limit_per_org: 6 } },
  });
});

after(async () => {
  await server?.stop();
});

const mailsTo = (email) => server.outbox().filter((m) => m.to && m.to.toLowerCase().includes(email)).length;

test('60 resends at once mail one address no more than the per-recipient limit', async () => {
  const admin = new Client(server.consoleUrl);
  await admin.signUpWithOrg(server, uniq('bomber').toLowerCase(), 'Bomb Co');
  const target = uniq('target').toLowerCase();
  const inv = await admin.post(INVITES, { email: target, role: 'user' });
  assert.equal(inv.status, 201, JSON.stringify(inv.body));

  const results = await Promise.all(Array.from({ length: 60 },
    () => admin.post(`${INVITES}/${inv.body.id}/resend`, {})));
  const ok = results.filter((r) => r.status === 200).length;
  const limited = results.filter((r) => r.status === 429);
  assert.equal(ok, 2, 'the invitation and two resends make three mails');
  assert.equal(limited.length, 58);
  assert.equal(mailsTo(target), 3);
  for (const r of limited) {
    assert.equal(r.body.error.type, 'rate_limit_error');
    assert.match(r.body.error.message, new RegExp(`Too many invitation emails were sent to ${target.replace(/[.]/g, '\\.')}`));
    const wait = Number(r.headers.get('retry-after'));
    assert.ok(wait >= 1 && wait <= 3600, `retry-after ${r.headers.get('retry-after')}`);
  }

  // The organization's own limit (6 mails) covers different addresses too: three so far.
  for (let i = 0; i < 3; i++)
    assert.equal((await admin.post(INVITES, { email: uniq(`team${i}`).toLowerCase(), role: 'user' })).status, 201);
  const over = await admin.post(INVITES, { email: uniq('one-too-many').toLowerCase(), role: 'user' });
  assert.equal(over.status, 429, JSON.stringify(over.body));
  assert.match(over.body.error.message, /This organization has sent too many invitation emails/);
  assert.ok(Number(over.headers.get('retry-after')) >= 1);
  // Refused invitations leave nothing behind.
  const list = await admin.get(INVITES);
  assert.equal(list.body.data.length, 4);
});

test('names refuse text-direction and control characters', async () => {
  const c = new Client(server.consoleUrl);
  await c.signIn(server, uniq('names').toLowerCase());
  const RLO = '\u202e';
  const cases = [
    ['\u202egnp.exe', /control characters or text-direction marks/],
    ['Eve\u2066Admin\u2069', /control characters or text-direction marks/],
    ['Eve\u200fAdmin', /control characters or text-direction marks/],
    ['Line\u2028Break', /control characters or text-direction marks/],
    ['C1\u0085next', /control characters or text-direction marks/],
  ];
  for (const [name, re] of cases) {
    const r = await c.post('/auth/onboarding', { ...ONBOARDING, full_name: name });
    assert.equal(r.status, 400, `full name ${JSON.stringify(name)}`);
    assert.match(r.body.error.message, re);
  }
  assert.equal((await c.post('/auth/onboarding', { ...ONBOARDING, full_name: 'Zoë Ångström' })).status, 200);

  const org = await c.post('/auth/organizations', { name: `Acme${RLO}Corp` });
  assert.equal(org.status, 400, JSON.stringify(org.body));
  assert.match(org.body.error.message, /control characters or text-direction marks/);
  assert.equal((await c.post('/auth/organizations', { name: 'Acme Corp' })).status, 201);
  const settings = await c.post('/v1/organizations/me/settings', { name: `Acme${RLO}Corp` });
  assert.equal(settings.status, 400, JSON.stringify(settings.body));

  const ws = await c.post('/v1/organizations/workspaces', { name: `prod${RLO}dev` });
  assert.equal(ws.status, 400, JSON.stringify(ws.body));
  assert.match(ws.body.error.message, /workspace name must not contain control characters or text-direction marks/);

  const key = await c.post('/v1/organizations/api_keys', { name: `ci${RLO}key` });
  assert.equal(key.status, 400, JSON.stringify(key.body));
  assert.match(key.body.error.message, /key name must not contain control characters or text-direction marks/);
  // Scripts written right to left are names like any other.
  assert.equal((await c.post('/v1/organizations/workspaces', { name: 'שלום' })).status, 201);
});
