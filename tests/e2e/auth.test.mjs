// Sign-up and sign-in by emailed link, sessions and sign-out, against a real `gatehouse serve`
// (docs/api.md, "Authentication"). Mail goes to the outbox (no SMTP), which the tests read.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startServer, lastLink } from './lib/server.mjs';
import { Client } from './lib/client.mjs';
import { assertError, uniq } from './lib/expect.mjs';

let server; // default limits
let throttled; // link_limit_per_email 2, link_limit_per_ip 4
let shortLinks; // link_ttl_seconds 1
const sessionSecrets = new Set(); // every gh_session value and csrf token handed out by `server`


before(async () => {
  [server, throttled, shortLinks] = await Promise.all([
    startServer(),
    startServer({ config: { auth: { link_limit_per_email: 2, link_limit_per_ip: 4 } } }),
    startServer({ config: { auth: { link_ttl_seconds: 1 } } }),
  ]);
});

after(async () => {
  await Promise.all([server?.stop(), throttled?.stop(), shortLinks?.stop()]);
});

// The redirect target as an absolute URL (a relative Location resolves against the console).
const location = (r, base) => new URL(r.headers.get('location') ?? '', base).href;

function sessionCookie(res) {
  return (res.headers.getSetCookie?.() ?? []).find((c) => c.startsWith('gh_session='));
}

function remember(client) {
  if (client.cookies.get('gh_session')) sessionSecrets.add(client.cookies.get('gh_session'));
  if (client.csrf) sessionSecrets.add(client.csrf);
}

// Opens a sign-in link as the console does: the GET, then the POST of its token from
// /sign-in (client.mjs). The GET's answer when it did not lead there.
function open(client, link, headers = {}) {
  return client.openLink(link, headers);
}

// POST with a raw Host header (fetch does not let a caller set Host).
function postWithHost(baseUrl, path, host, json) {
  const u = new URL(baseUrl);
  const body = JSON.stringify(json);
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: u.hostname, port: u.port, path, method: 'POST',
      headers: { host, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
    }, (res) => {
      let text = '';
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function untilPast(deadline) {
  while (Date.now() < deadline) await new Promise((r) => setTimeout(r, deadline - Date.now()));
}

test('the whole path: request a link, the email, open it, a fresh session', async () => {
  const email = uniq('Ada.Mixed');
  const lower = email.toLowerCase();
  const before = server.outbox().length;
  // A spoofed Host header must not steer the link to another site.
  const r = await postWithHost(server.consoleUrl, '/auth/email', 'evil.example', { email });
  assert.equal(r.status, 202, r.text);
  assert.deepEqual(JSON.parse(r.text), { type: 'email_sent', email: lower });
  assert.match(r.headers['request-id'], /^req_/);

  const mails = server.outbox();
  assert.equal(mails.length, before + 1, 'exactly one email is written');
  const mail = mails[mails.length - 1];
  assert.ok(mail.to.toLowerCase().includes(lower), `To: ${mail.to}`);
  assert.equal(mail.subject, 'Sign in to Gatehouse');
  const link = lastLink(server, lower);
  assert.ok(link.startsWith(server.consoleUrl + '/auth/verify?token='), `link built from public_url: ${link}`);
  assert.ok(!mail.raw.includes('evil.example'), 'the spoofed host appears in the email');

  const c = new Client(server.consoleUrl);
  // The link itself only checks: it leads to /sign-in with the token in the fragment and
  // starts no session, however often it is fetched (mail scanners, link previews).
  const token = new URL(link).searchParams.get('token');
  for (let i = 0; i < 3; i++) {
    const g = await c.get(new URL(link).pathname + new URL(link).search);
    assert.equal(g.status, 303);
    assert.equal(g.headers.get('location'), `${server.consoleUrl}/sign-in#token=${token}`);
    assert.equal(sessionCookie(g), undefined, 'the GET of the link started a session');
  }
  // The console's /sign-in page posts the token: that uses the link and starts the session.
  const v = await c.post('/auth/verify', { token });
  assert.equal(v.status, 200, JSON.stringify(v.body));
  assert.deepEqual(v.body, { type: 'signed_in', new_account: true });
  const cookie = sessionCookie(v);
  assert.ok(cookie, 'no gh_session cookie was set');
  const attrs = cookie.split(';').map((s) => s.trim().toLowerCase());
  assert.ok(attrs[0].length > 'gh_session='.length, 'empty session cookie');
  assert.ok(attrs.includes('httponly'), cookie);
  assert.ok(attrs.includes('samesite=lax'), cookie);
  assert.ok(attrs.includes('path=/'), cookie);
  assert.ok(!attrs.includes('secure'), `Secure on an http console: ${cookie}`);

  const s = await c.refreshSession();
  assert.equal(s.status, 200);
  assert.equal(s.body.type, 'session');
  assert.match(s.body.account.id, /^user_01/);
  assert.equal(s.body.account.email, lower);
  assert.equal(s.body.account.onboarded, false);
  assert.equal(s.body.account.full_name, null);
  assert.match(s.body.account.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  assert.deepEqual(s.body.organizations, []);
  assert.equal(s.body.current_organization, null);
  assert.equal(typeof s.body.csrf_token, 'string');
  assert.ok(s.body.csrf_token.length >= 16, 'csrf_token too short');
  remember(c);
});

test('the answer is the same for a new and an existing account; signing in again keeps the account', async () => {
  const email = uniq('grace');
  const first = new Client(server.consoleUrl);
  const rNew = await first.post('/auth/email', { email });
  assert.equal(rNew.status, 202);
  await open(first, lastLink(server, email));
  const s1 = await first.refreshSession();
  assert.equal(s1.status, 200);
  remember(first);

  const second = new Client(server.consoleUrl);
  const rOld = await second.post('/auth/email', { email });
  assert.equal(rOld.status, rNew.status);
  assert.deepEqual(rOld.body, rNew.body);
  const v = await open(second, lastLink(server, email));
  assert.equal(v.status, 200);
  assert.equal(v.body.new_account, false);
  const s2 = await second.refreshSession();
  assert.equal(s2.status, 200);
  remember(second);
  assert.equal(s2.body.account.id, s1.body.account.id);
  assert.notEqual(second.cookies.get('gh_session'), first.cookies.get('gh_session'), 'a new session each time');
  // The first session is still valid: signing in elsewhere does not sign out.
  assert.equal((await first.get('/auth/session')).status, 200);
});

test('a used link is refused and starts no session', async () => {
  const email = uniq('used');
  const c = new Client(server.consoleUrl);
  await c.post('/auth/email', { email });
  const link = lastLink(server, email);
  const token = new URL(link).searchParams.get('token');
  assert.equal((await open(c, link)).status, 200);
  remember(c);
  // Posting the token again is refused with the reason.
  const twice = await new Client(server.consoleUrl).post('/auth/verify', { token });
  assertError(twice, 400, 'invalid_request_error');
  assert.equal(twice.body.error.message, 'This sign-in link was already used. Enter your email to get a new one.');
  assert.equal(sessionCookie(twice), undefined);

  const again = new Client(server.consoleUrl);
  const r = await open(again, link);
  assert.equal(r.status, 303);
  assert.equal(location(r, server.consoleUrl), server.consoleUrl + '/login?error=used_link');
  assert.equal(sessionCookie(r), undefined, 'a used link set a cookie');
  assertError(await again.get('/auth/session'), 401, 'authentication_error');

  const j = await open(again, link, { accept: 'application/json' });
  assertError(j, 400, 'invalid_request_error');
  assert.equal(sessionCookie(j), undefined);
});

test('a garbage or unknown token is an invalid link', async () => {
  const c = new Client(server.consoleUrl);
  const unknown = 'A'.repeat(43);
  for (const path of ['/auth/verify?token=garbage', `/auth/verify?token=${unknown}`, '/auth/verify',
    '/auth/verify?token=']) {
    const r = await c.get(path);
    assert.equal(r.status, 303, path);
    assert.equal(location(r, server.consoleUrl), server.consoleUrl + '/login?error=invalid_link', path);
    assert.equal(sessionCookie(r), undefined, path);
    assertError(await c.get(path, { headers: { accept: 'application/json' } }), 400, 'invalid_request_error');
  }
  assert.equal(c.cookies.size, 0);
});

test('an expired link is refused', async () => {
  const email = uniq('late');
  const c = new Client(shortLinks.consoleUrl);
  assert.equal((await c.post('/auth/email', { email })).status, 202);
  const first = lastLink(shortLinks, email);
  assert.equal((await c.post('/auth/email', { email })).status, 202);
  const second = lastLink(shortLinks, email);
  assert.notEqual(first, second);
  // The links expire 1 s after the server made them; wait for that deadline to pass.
  await untilPast(Date.now() + 1100);

  const r = await open(c, first);
  assert.equal(r.status, 303);
  assert.equal(location(r, shortLinks.consoleUrl), shortLinks.consoleUrl + '/login?error=expired_link');
  assert.equal(sessionCookie(r), undefined);
  assertError(await open(c, second, { accept: 'application/json' }), 400, 'invalid_request_error');
  assertError(await c.get('/auth/session'), 401, 'authentication_error');
});

test('sign-in emails are throttled per address and per client IP', async () => {
  const c = new Client(throttled.consoleUrl);
  const start = throttled.outbox().length;
  let mailed = 0;
  const a = uniq('throttle-a');
  for (let i = 0; i < 2; i++) {
    const r = await c.post('/auth/email', { email: a });
    assert.equal(r.status, 202, `request ${i + 1} for one address`);
    mailed++;
  }
  const third = await c.post('/auth/email', { email: a });
  assertError(third, 429, 'rate_limit_error');
  assert.match(third.headers.get('retry-after') ?? '', /^[1-9]\d*$/, 'retry-after in whole seconds');
  assert.equal(throttled.outbox().length, start + mailed, 'a refused request was mailed');

  // Other addresses still work until the per-IP limit (4) is used up; then 429 for anyone.
  let accepted = 0;
  let refused = null;
  for (let i = 0; i < 6 && !refused; i++) {
    const r = await c.post('/auth/email', { email: uniq(`throttle-${i}`) });
    if (r.status === 202) accepted++;
    else refused = r;
  }
  assert.ok(accepted >= 1, 'another address was refused before the per-IP limit');
  assert.ok(accepted <= 2, `more than link_limit_per_ip emails were sent from one IP (${mailed + accepted})`);
  assert.ok(refused, 'the per-IP limit never applied');
  assertError(refused, 429, 'rate_limit_error');
  assert.match(refused.headers.get('retry-after') ?? '', /^[1-9]\d*$/);
  mailed += accepted;
  assert.equal(throttled.outbox().length, start + mailed, 'only accepted requests are mailed');
});

test('bad input to POST /auth/email is a 400 and mails nothing', async () => {
  const c = new Client(server.consoleUrl);
  const start = server.outbox().length;
  const cases = [
    ['not JSON', { body: 'email=ada@example.com', headers: { 'content-type': 'application/json' } }],
    ['wrong content-type', { body: JSON.stringify({ email: 'ada@example.com' }), headers: { 'content-type': 'text/plain' } }],
    ['no content-type', { body: JSON.stringify({ email: 'ada@example.com' }) }],
    ['email not a string', { json: { email: 5 } }],
    ['not an address', { json: { email: 'nope' } }],
    ['unknown field', { json: { email: 'ada@example.com', remember: true } }],
    ['missing email', { json: {} }],
    ['an array', { json: [] }],
    ['null email', { json: { email: null } }],
    ['empty body', { body: '', headers: { 'content-type': 'application/json' } }],
  ];
  for (const [name, opts] of cases) {
    const r = await c.request('POST', '/auth/email', opts);
    assert.equal(r.status, 400, `${name}: ${r.status} ${JSON.stringify(r.body)}`);
    assertError(r, 400, 'invalid_request_error');
  }
  const unknown = await c.post('/auth/email', { email: 'ada@example.com', remember: true });
  assert.match(unknown.body.error.message, /remember/, 'the unknown field is named');
  assert.equal(server.outbox().length, start, 'a refused request was mailed');
});

test('sessions: none, sign-out with and without the CSRF header', async () => {
  const anon = new Client(server.consoleUrl);
  assertError(await anon.get('/auth/session'), 401, 'authentication_error');
  assertError(await anon.get('/auth/session', { headers: { cookie: 'gh_session=notavalidsession' } }), 401,
    'authentication_error');

  const c = new Client(server.consoleUrl);
  await c.signIn(server, uniq('logout'));
  remember(c);
  const secret = c.cookies.get('gh_session');
  assert.ok(secret);

  // Without x-csrf-token: refused, and the session still works.
  const noCsrf = await c.request('POST', '/auth/logout', { csrf: false });
  assertError(noCsrf, 403, 'permission_error');
  assert.equal(sessionCookie(noCsrf), undefined, 'a refused logout touched the cookie');
  const wrong = await c.request('POST', '/auth/logout', { csrf: false, headers: { 'x-csrf-token': 'wrong' } });
  assertError(wrong, 403, 'permission_error');
  assert.equal((await c.get('/auth/session')).status, 200);

  const out = await c.post('/auth/logout');
  assert.equal(out.status, 200);
  assert.deepEqual(out.body, { type: 'logged_out' });
  const cleared = sessionCookie(out);
  assert.ok(cleared, 'logout did not clear the cookie');
  assert.match(cleared, /^gh_session=;/);
  assert.match(cleared, /max-age=0|expires=thu, 01 jan 1970/i);
  assert.equal(c.cookies.size, 0);

  const old = await fetch(server.consoleUrl + '/auth/session', { headers: { cookie: `gh_session=${secret}` } });
  assert.equal(old.status, 401, 'the signed-out session still works');
  assert.equal((await old.json()).error.type, 'authentication_error');
});

test('session secrets never reach the log', async () => {
  assert.ok(sessionSecrets.size >= 6, 'the earlier tests handed out sessions');
  const log = server.log;
  assert.match(log, /console listening on/);
  for (const secret of sessionSecrets) assert.ok(!log.includes(secret), `a session secret is in the log: ${secret}`);
});

test('with an https public_url, links use it and the session cookie is Secure', async () => {
  const tls = await startServer({ config: { server: { public_url: 'https://console.example.test/' } } });
  try {
    const c = new Client(tls.consoleUrl);
    const email = uniq('secure');
    assert.equal((await c.post('/auth/email', { email })).status, 202);
    const link = lastLink(tls, email);
    assert.ok(link.startsWith('https://console.example.test/auth/verify?token='), link);
    const u = new URL(link);
    const g = await c.get(u.pathname + u.search);
    assert.equal(g.status, 303);
    assert.ok(g.headers.get('location').startsWith('https://console.example.test/sign-in#token='));
    const v = await c.openLink(link);
    assert.equal(v.status, 200);
    const cookie = v.headers.getSetCookie().find((x) => x.startsWith('gh_session='));
    assert.match(cookie, /; Secure/);
    assert.match(cookie, /; HttpOnly/);
    assert.match(cookie, /; SameSite=Lax/);
  } finally {
    await tls.stop();
  }
});
