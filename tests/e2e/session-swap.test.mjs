// Session swap (issue 12, point 12): a signed-in person who opens someone else's sign-in or
// invitation link must not be switched to that account silently. POST /auth/verify and
// POST /auth/invite refuse to replace another account's session (409) unless the body says
// "switch": true, and the console's /sign-in and /accept-invite pages ask first.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import { startServer, lastLink } from './lib/server.mjs';
import { Client } from './lib/client.mjs';
import { uniq, inviteLink, pathOf } from './lib/expect.mjs';

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

// The token of the newest sign-in link mailed to `email`, requested now.
async function freshToken(email) {
  const r = await new Client(server.consoleUrl).post('/auth/email', { email });
  assert.equal(r.status, 202);
  return new URL(lastLink(server, email)).searchParams.get('token');
}

async function inviteToken(email) {
  return new URL(inviteLink(server, email)).searchParams.get('token');
}

test('POST /auth/verify does not replace another account\'s session unless told to switch', async () => {
  const victimEmail = uniq('victim').toLowerCase();
  const attackerEmail = uniq('attacker').toLowerCase();
  const victim = new Client(server.consoleUrl);
  await victim.signUpWithOrg(server, victimEmail, 'Victim Co');
  const victimCookie = victim.cookies.get('gh_session');

  // The attacker's link, opened in the victim's browser.
  const token = await freshToken(attackerEmail);
  const r = await victim.post('/auth/verify', { token });
  assert.equal(r.status, 409, JSON.stringify(r.body));
  assert.equal(r.body.error.type, 'conflict_error');
  assert.equal(r.body.error.signed_in_as, victimEmail);
  assert.equal(r.body.error.link_email, attackerEmail);
  assert.match(r.body.error.message, new RegExp(`You are signed in as ${victimEmail}`));
  assert.equal(r.headers.get('set-cookie'), null, 'no new session cookie');
  // Nothing changed: the victim is still the victim, and the link was not used up.
  assert.equal((await victim.refreshSession()).body.account.email, victimEmail);

  // A wrong type for "switch" is a 400, not a switch.
  assert.equal((await victim.post('/auth/verify', { token, switch: 'yes' })).status, 400);

  // Told to switch, it signs in as the link's account and signs the old session out.
  const s = await victim.post('/auth/verify', { token, switch: true });
  assert.equal(s.status, 200, JSON.stringify(s.body));
  assert.equal((await victim.refreshSession()).body.account.email, attackerEmail);
  const old = new Client(server.consoleUrl);
  old.cookies.set('gh_session', victimCookie);
  assert.equal((await old.get('/auth/session')).status, 401, 'the replaced session is signed out');
});

test('a link for the account already signed in needs no switch; a signed-out browser needs none', async () => {
  const email = uniq('same').toLowerCase();
  const c = new Client(server.consoleUrl);
  await c.signIn(server, email);
  const again = await c.post('/auth/verify', { token: await freshToken(email) });
  assert.equal(again.status, 200, JSON.stringify(again.body));
  const fresh = new Client(server.consoleUrl);
  assert.equal((await fresh.post('/auth/verify', { token: await freshToken(uniq('other')) })).status, 200);
});

test('POST /auth/invite does not replace another account\'s session unless told to switch', async () => {
  const admin = new Client(server.consoleUrl);
  await admin.signUpWithOrg(server, uniq('inviter').toLowerCase(), 'Inviter Co');
  const invitedEmail = uniq('invited').toLowerCase();
  const inv = await admin.post('/v1/organizations/invites', { email: invitedEmail, role: 'user' });
  assert.equal(inv.status, 201, JSON.stringify(inv.body));
  const token = await inviteToken(invitedEmail);

  const bystanderEmail = uniq('bystander').toLowerCase();
  const bystander = new Client(server.consoleUrl);
  await bystander.signUpWithOrg(server, bystanderEmail, 'Bystander Co');
  const r = await bystander.post('/auth/invite', { token });
  assert.equal(r.status, 409, JSON.stringify(r.body));
  assert.equal(r.body.error.signed_in_as, bystanderEmail);
  assert.equal(r.body.error.link_email, invitedEmail);
  assert.equal((await bystander.refreshSession()).body.account.email, bystanderEmail);
  // The invitation is still pending.
  const list = await admin.get('/v1/organizations/invites');
  assert.equal(list.body.data.find((i) => i.email === invitedEmail).status, 'pending');

  const s = await bystander.post('/auth/invite', { token, switch: true });
  assert.equal(s.status, 200, JSON.stringify(s.body));
  assert.equal((await bystander.refreshSession()).body.account.email, invitedEmail);
});

test('the console asks "Continue as …?" before switching, and staying changes nothing', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  try {
    const me = uniq('browser-me').toLowerCase();
    const other = uniq('browser-other').toLowerCase();
    // Sign in in the browser by opening my own link.
    await new Client(server.consoleUrl).post('/auth/email', { email: me });
    await page.goto(server.consoleUrl + pathOf(lastLink(server, me)));
    await page.waitForURL((u) => !u.pathname.startsWith('/sign-in'));
    const who = async () => (await (await page.request.get(`${server.consoleUrl}/auth/session`)).json()).account.email;
    assert.equal(await who(), me);

    // Someone else's link: the page asks first.
    await new Client(server.consoleUrl).post('/auth/email', { email: other });
    const link = server.consoleUrl + pathOf(lastLink(server, other));
    await page.goto(link);
    await page.getByRole('heading', { level: 1, name: 'Switch accounts?' }).waitFor();
    const text = await page.locator('.auth-card').innerText();
    assert.match(text, new RegExp(`You are signed in as ${me.replace(/[.]/g, '\\.')}\\. Continue as ${other.replace(/[.]/g, '\\.')}\\?`));
    await page.getByRole('link', { name: `Stay signed in as ${me}` }).click();
    await page.waitForURL((u) => !u.pathname.startsWith('/sign-in'));
    assert.equal(await who(), me, 'staying keeps the session');

    // The same link again (it was not used), and this time continue.
    await page.goto(link);
    await page.getByRole('button', { name: `Continue as ${other}` }).click();
    await page.waitForURL((u) => !u.pathname.startsWith('/sign-in'));
    assert.equal(await who(), other);
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
});
