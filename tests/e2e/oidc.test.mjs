// "Continue with <provider>": OpenID Connect sign-in (docs/oidc.md) against a small OpenID
// provider this test runs on loopback with node's http and crypto. The provider serves
// discovery, /authorize (records the request and redirects straight back with a code: there
// is no login page), /token (checks the client, the redirect URI and the PKCE verifier, and
// answers with an RS256 ID token) and /jwks. Each test can make it misbehave. One test drives
// the console's "Continue with <label>" button in Debian's chromium.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { chromium } from 'playwright-core';
import { generateKeyPairSync, createSign, createHash, createHmac, randomBytes } from 'node:crypto';
import { startServer } from './lib/server.mjs';
import { Client } from './lib/client.mjs';
import { assertError, uniq, sql as runSql } from './lib/expect.mjs';

const CLIENT_ID = 'gatehouse-test-client.apps.example.com';
const CLIENT_SECRET = 'oidc-Secret-Never-Logged-7f3a9c';
const LABEL = 'Example ID';

const b64url = (buf) => Buffer.from(buf).toString('base64url');

function signJwt(header, claims, privateKey) {
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  return `${input}.${b64url(createSign('RSA-SHA256').update(input).sign(privateKey))}`;
}

function newKey(kid) {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { kid, privateKey, jwk: { ...publicKey.export({ format: 'jwk' }), kid, use: 'sig', alg: 'RS256' } };
}

function readBody(req) {
  return new Promise((res, rej) => {
    let text = '';
    req.on('data', (d) => { text += d; });
    req.on('end', () => res(text));
    req.on('error', rej);
  });
}

// The provider. `user` is who the next /authorize signs in; `tamper({claims, header, key,
// other, token})` may change the next ID token (the claims, the header, the signing key, or
// the whole token); `discoveryIssuer` makes discovery lie about the issuer.
async function startProvider({ discoveryIssuer } = {}) {
  const p = {
    issuer: null,
    keys: [newKey('key-1')],
    other: newKey('key-1'), // same kid, another key: a forger's
    authorizations: [], // every /authorize query, as an object
    tokenRequests: [], // {params, ok, error}
    codes: new Map(), // code -> {params, user, challenge}
    issued: [], // every code and id_token handed out, for the log check
    jwksFetches: 0,
    user: null,
    tamper: null,
    corruptChallenge: false,
    reset() { this.tamper = null; this.corruptChallenge = false; this.user = null; },
  };
  const json = (res, status, obj) => {
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(JSON.stringify(obj));
  };
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, p.issuer);
    if (req.method === 'GET' && url.pathname === '/.well-known/openid-configuration') {
      return json(res, 200, {
        issuer: discoveryIssuer ?? p.issuer,
        authorization_endpoint: `${p.issuer}/authorize`,
        token_endpoint: `${p.issuer}/token`,
        jwks_uri: `${p.issuer}/jwks`,
        response_types_supported: ['code'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['RS256'],
        code_challenge_methods_supported: ['S256'],
        token_endpoint_auth_methods_supported: ['client_secret_post'],
      });
    }
    if (req.method === 'GET' && url.pathname === '/jwks') {
      p.jwksFetches++;
      return json(res, 200, { keys: p.keys.map((k) => k.jwk) });
    }
    if (req.method === 'GET' && url.pathname === '/authorize') {
      const params = Object.fromEntries(url.searchParams);
      p.authorizations.push(params);
      const code = b64url(randomBytes(24));
      p.issued.push(code);
      p.codes.set(code, { params, user: p.user, challenge: p.corruptChallenge ? b64url(randomBytes(32)) : params.code_challenge });
      const back = new URL(params.redirect_uri);
      back.searchParams.set('code', code);
      back.searchParams.set('state', params.state);
      res.writeHead(302, { location: back.href });
      return res.end();
    }
    if (req.method === 'POST' && url.pathname === '/token') {
      const params = Object.fromEntries(new URLSearchParams(await readBody(req)));
      const entry = { params, ok: false, error: null };
      p.tokenRequests.push(entry);
      const grant = p.codes.get(params.code);
      p.codes.delete(params.code); // codes work once
      const verifierHash = params.code_verifier ? b64url(createHash('sha256').update(params.code_verifier).digest()) : null;
      if (!(req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded')) entry.error = 'invalid_request';
      else if (params.grant_type !== 'authorization_code') entry.error = 'unsupported_grant_type';
      else if (params.client_id !== CLIENT_ID || params.client_secret !== CLIENT_SECRET) entry.error = 'invalid_client';
      else if (!grant || params.redirect_uri !== grant.params.redirect_uri) entry.error = 'invalid_grant';
      else if (!/^[A-Za-z0-9._~-]{43,128}$/.test(params.code_verifier ?? '') || verifierHash !== grant.challenge) entry.error = 'invalid_grant';
      if (entry.error) return json(res, 400, { error: entry.error, error_description: 'refused by the test provider' });
      entry.ok = true;

      const now = Math.floor(Date.now() / 1000);
      const u = grant.user;
      let claims = {
        iss: p.issuer, aud: CLIENT_ID, azp: CLIENT_ID, sub: u.sub, email: u.email,
        email_verified: u.email_verified ?? true, nonce: grant.params.nonce, iat: now, exp: now + 3600, name: 'Test Person',
      };
      const current = p.keys[p.keys.length - 1];
      let header = { alg: 'RS256', kid: current.kid, typ: 'JWT' };
      let key = current.privateKey;
      let token = null;
      if (p.tamper) ({ claims, header, key, token } = p.tamper({ claims, header, key, other: p.other.privateKey, token }));
      const idToken = token ?? signJwt(header, claims, key);
      const accessToken = b64url(randomBytes(24));
      p.issued.push(idToken, accessToken);
      return json(res, 200, { access_token: accessToken, token_type: 'Bearer', expires_in: 3600, id_token: idToken });
    }
    json(res, 404, { error: 'not_found' });
  });
  await new Promise((res) => server.listen(0, '127.0.0.1', res));
  p.issuer = `http://127.0.0.1:${server.address().port}`;
  p.close = () => new Promise((res) => { server.closeAllConnections(); server.close(res); });
  return p;
}

let provider, server;

before(async () => {
  provider = await startProvider();
  server = await startServer({
    config: { oidc: { issuer: provider.issuer, client_id: CLIENT_ID, label: LABEL } },
    env: { GATEHOUSE_OIDC_CLIENT_SECRET: CLIENT_SECRET },
  });
});

after(async () => {
  await server?.stop();
  await provider?.close();
});

beforeEach(() => provider.reset());

// The trimmed output of `statement` on the server's database (either backend).
const sql = (statement) => runSql(server, statement).trim();
const q = (s) => `'${String(s).replaceAll("'", "''")}'`;
const accountsWithEmail = (email) => Number(sql(`SELECT count(*) FROM accounts WHERE email = ${q(email.toLowerCase())}`));

// Resolves when the server log written after offset `mark` matches `re` (the log arrives
// through a pipe, so a line written before a response was sent can come after it).
function logSince(mark, re, timeoutMs = 5000) {
  return new Promise((res, rej) => {
    const check = () => { if (re.test(server.log.slice(mark))) { done(); res(); } };
    const timer = setTimeout(() => { done(); rej(new Error(`log did not match ${re} within ${timeoutMs} ms:\n${server.log.slice(mark)}`)); }, timeoutMs);
    const done = () => { clearTimeout(timer); server.child.stderr.off('data', check); server.child.stdout.off('data', check); };
    server.child.stderr.on('data', check);
    server.child.stdout.on('data', check);
    check();
  });
}

const setCookie = (r, name) => (r.headers.getSetCookie?.() ?? []).find((c) => c.startsWith(`${name}=`));

// Runs the browser's part of a sign-in: /auth/oidc/start on `client` (keeping cookies), the
// provider's /authorize, and the callback delivered by `callbackClient` (the same browser
// unless a test says otherwise). Returns every step's response.
async function flow(client, user, { callbackClient = client, headers = {} } = {}) {
  provider.user = user;
  const start = await client.get('/auth/oidc/start');
  assert.equal(start.status, 303, `start: ${start.status} ${JSON.stringify(start.body)}`);
  const authorize = new URL(start.headers.get('location'));
  assert.equal(authorize.origin + authorize.pathname, `${provider.issuer}/authorize`);
  const atProvider = await fetch(authorize, { redirect: 'manual' });
  assert.equal(atProvider.status, 302);
  const callback = new URL(atProvider.headers.get('location'));
  const done = await callbackClient.get(callback.pathname + callback.search, { headers });
  return { start, authorize, callback, done };
}

function assertSignedIn(r) {
  assert.equal(r.done.status, 303, JSON.stringify(r.done.body));
  assert.equal(r.done.headers.get('location'), `${server.consoleUrl}/`);
  const session = setCookie(r.done, 'gh_session');
  assert.ok(session, 'no session cookie');
  assert.match(session, /^gh_session=[A-Za-z0-9]{43}; Path=\/; Max-Age=\d+; HttpOnly; SameSite=Lax$/);
  assert.match(setCookie(r.done, 'gh_oidc') ?? '', /^gh_oidc=; Path=\/auth\/oidc; Max-Age=0; HttpOnly; SameSite=Lax$/);
}

function assertRefused(r, code = 'oidc_failed') {
  assert.equal(r.done.status, 303, JSON.stringify(r.done.body));
  assert.equal(r.done.headers.get('location'), `${server.consoleUrl}/login?error=${code}`);
  assert.equal(setCookie(r.done, 'gh_session'), undefined, 'a refused sign-in set a session cookie');
  assert.match(setCookie(r.done, 'gh_oidc') ?? '', /^gh_oidc=; .*Max-Age=0/);
}

const person = (name, extra = {}) => ({ sub: `sub-${name}-${b64url(randomBytes(6))}`, email: uniq(name), ...extra });

test('/auth/config says OpenID Connect is on, with its label', async () => {
  const r = await new Client(server.consoleUrl).get('/auth/config');
  assert.equal(r.status, 200);
  assert.deepEqual(r.body.oidc, { enabled: true, label: LABEL });
});

test('start sends the browser to the provider with state, nonce and an S256 challenge', async () => {
  const c = new Client(server.consoleUrl);
  const r = await c.get('/auth/oidc/start');
  assert.equal(r.status, 303);
  const u = new URL(r.headers.get('location'));
  const p = Object.fromEntries(u.searchParams);
  assert.equal(p.response_type, 'code');
  assert.equal(p.client_id, CLIENT_ID);
  assert.equal(p.redirect_uri, `${server.consoleUrl}/auth/oidc/callback`);
  assert.equal(p.scope, 'openid email profile');
  assert.equal(p.code_challenge_method, 'S256');
  assert.match(p.code_challenge, /^[A-Za-z0-9_-]{43}$/);
  assert.match(p.state, /^[A-Za-z0-9]{43}$/);
  assert.match(p.nonce, /^[A-Za-z0-9]{43}$/);
  assert.notEqual(p.state, p.nonce);
  const cookie = setCookie(r, 'gh_oidc');
  assert.equal(cookie, `gh_oidc=${p.state}; Path=/auth/oidc; Max-Age=600; HttpOnly; SameSite=Lax`);
  // Every start is a new state, nonce and challenge.
  const again = Object.fromEntries(new URL((await c.get('/auth/oidc/start')).headers.get('location')).searchParams);
  assert.notEqual(again.state, p.state);
  assert.notEqual(again.nonce, p.nonce);
  assert.notEqual(again.code_challenge, p.code_challenge);
});

test('a new person gets a new account and a session', async () => {
  const c = new Client(server.consoleUrl);
  const who = person('new', { email: uniq('New.Person') });
  const r = await flow(c, who);
  assertSignedIn(r);
  // The provider saw a correct token request: client secret, redirect URI, and a verifier
  // whose SHA-256 is the challenge given at /authorize.
  const t = provider.tokenRequests.at(-1);
  assert.equal(t.ok, true, t.error);
  assert.equal(t.params.grant_type, 'authorization_code');
  assert.equal(t.params.redirect_uri, `${server.consoleUrl}/auth/oidc/callback`);
  assert.equal(b64url(createHash('sha256').update(t.params.code_verifier).digest()), r.authorize.searchParams.get('code_challenge'));

  const s = await c.refreshSession();
  assert.equal(s.status, 200);
  assert.equal(s.body.account.email, who.email.toLowerCase());
  assert.equal(s.body.account.onboarded, false);
  assert.equal(s.body.current_organization, null);
  assert.equal(accountsWithEmail(who.email), 1);
  assert.equal(sql(`SELECT account_id FROM identities WHERE issuer = ${q(provider.issuer)} AND subject = ${q(who.sub)}`), s.body.account.id);
  await server.waitForLog(/oidc: .* signed in as user_01\w+ \(new account\)/);
});

test('the same subject signs in to the same account, even with a changed email', async () => {
  const who = person('again');
  const first = new Client(server.consoleUrl);
  assertSignedIn(await flow(first, who));
  const id = (await first.refreshSession()).body.account.id;

  const second = new Client(server.consoleUrl);
  assertSignedIn(await flow(second, { ...who, email: uniq('renamed') }));
  const s = await second.refreshSession();
  assert.equal(s.body.account.id, id);
  assert.equal(s.body.account.email, who.email.toLowerCase());
  assert.equal(Number(sql(`SELECT count(*) FROM identities WHERE account_id = ${q(id)}`)), 1);
});

test('an account made by email link is linked, not duplicated', async () => {
  const email = uniq('linked');
  const byLink = new Client(server.consoleUrl);
  await byLink.signIn(server, email);
  const id = (await byLink.refreshSession()).body.account.id;

  const byOidc = new Client(server.consoleUrl);
  assertSignedIn(await flow(byOidc, person('linked', { email: email.toUpperCase() })));
  const s = await byOidc.refreshSession();
  assert.equal(s.body.account.id, id);
  assert.equal(accountsWithEmail(email), 1);
  assert.equal(sql(`SELECT count(*) FROM identities WHERE account_id = ${q(id)}`), '1');
  await server.waitForLog(/signed in as \w+ \(linked to the existing account\)/);

  // The email link still opens the same account.
  const again = new Client(server.consoleUrl);
  await again.signIn(server, email);
  assert.equal((await again.refreshSession()).body.account.id, id);
});

test('an email the provider has not verified is refused: no session, no account', async () => {
  for (const email_verified of [false, 'false', undefined]) {
    const who = person('unverified', { email_verified });
    if (email_verified === undefined) provider.tamper = ({ claims, header, key }) => { delete claims.email_verified; return { claims, header, key }; };
    const c = new Client(server.consoleUrl);
    assertRefused(await flow(c, who), 'oidc_unverified_email');
    assert.equal((await c.refreshSession()).status, 401);
    assert.equal(accountsWithEmail(who.email), 0);
    assert.equal(sql(`SELECT count(*) FROM identities WHERE subject = ${q(who.sub)}`), '0');
  }
  await server.waitForLog(/oidc: sign-in refused: the provider has not verified the email/);

  // An API caller asking for JSON gets a clear 400 instead of a redirect.
  const c = new Client(server.consoleUrl);
  const r = await flow(c, person('unverified-json', { email_verified: false }), { headers: { accept: 'application/json' } });
  assertError(r.done, 400, 'invalid_request_error');
  assert.match(r.done.body.error.message, /has not verified the email address/);
  assert.match(setCookie(r.done, 'gh_oidc') ?? '', /Max-Age=0/);
});

test('ID tokens with a wrong nonce, audience, issuer, expiry or signature are refused', async () => {
  const now = () => Math.floor(Date.now() / 1000);
  const cases = [
    ['nonce', /the ID token's nonce is not the one sent/, (t) => { t.claims.nonce = 'not-the-nonce'; }],
    ['audience', /the ID token's aud does not hold our client_id/, (t) => { t.claims.aud = 'another-client'; }],
    ['azp', /the ID token's azp is not our client_id/, (t) => { t.claims.aud = [CLIENT_ID, 'another-client']; t.claims.azp = 'another-client'; }],
    ['expired', /the ID token has expired/, (t) => { t.claims.exp = now() - 3600; t.claims.iat = now() - 7200; }],
    ['issued in the future', /iat or nbf is in the future/, (t) => { t.claims.iat = now() + 86400; }],
    ['issuer', /the ID token's iss is not the provider's issuer/, (t) => { t.claims.iss = 'https://evil.example.com'; }],
    ['signature', /the ID token's signature does not verify/, (t) => { t.key = t.other; }],
    ['tampered payload', /the ID token's signature does not verify/, (t) => {
      // A good token whose payload is then swapped for one with another email.
      const [h, , sig] = signJwt(t.header, t.claims, t.key).split('.');
      t.token = `${h}.${b64url(JSON.stringify({ ...t.claims, email: 'mallory@example.com' }))}.${sig}`;
    }],
    ['alg none', /not signed with RS256/, (t) => {
      t.header.alg = 'none';
      t.token = `${b64url(JSON.stringify(t.header))}.${b64url(JSON.stringify(t.claims))}.`;
    }],
    ['alg HS256', /not signed with RS256/, (t) => {
      // The key-confusion forgery: HMAC keyed with the provider's public key.
      t.header.alg = 'HS256';
      const input = `${b64url(JSON.stringify(t.header))}.${b64url(JSON.stringify(t.claims))}`;
      const secret = JSON.stringify(provider.keys[0].jwk);
      t.token = `${input}.${b64url(createHmac('sha256', secret).update(input).digest())}`;
    }],
    ['no sub', /no usable sub/, (t) => { delete t.claims.sub; }],
  ];
  for (const [name, logged, change] of cases) {
    const mark = server.log.length;
    const who = person(`bad-${name.replaceAll(' ', '-')}`);
    provider.tamper = (t) => { change(t); return t; };
    const r = await flow(new Client(server.consoleUrl), who);
    assert.equal(provider.tokenRequests.at(-1).ok, true, `${name}: the token request itself failed`);
    assertRefused(r);
    assert.equal(accountsWithEmail(who.email), 0, `${name}: an account was created`);
    assert.equal(accountsWithEmail('mallory@example.com'), 0);
    await logSince(mark, new RegExp(`oidc: sign-in refused: .*${logged.source}`));
  }
});

test('a state works once', async () => {
  const c = new Client(server.consoleUrl);
  const r = await flow(c, person('once'));
  assertSignedIn(r);
  const tokenCalls = provider.tokenRequests.length;
  // Replaying the callback, even with the matching cookie put back, is refused before the
  // provider is asked again.
  const replay = new Client(server.consoleUrl);
  replay.cookies.set('gh_oidc', r.callback.searchParams.get('state'));
  assertRefused({ done: await replay.get(r.callback.pathname + r.callback.search) });
  assert.equal((await replay.refreshSession()).status, 401);
  assert.equal(provider.tokenRequests.length, tokenCalls);
  await server.waitForLog(/oidc: sign-in refused: the state was already used/);

  // A made-up state is refused the same way.
  const forged = new Client(server.consoleUrl);
  const state = 'A'.repeat(43);
  forged.cookies.set('gh_oidc', state);
  assertRefused({ done: await forged.get(`/auth/oidc/callback?code=abc&state=${state}`) });
  await server.waitForLog(/oidc: sign-in refused: the state is unknown/);
});

test('a callback delivered to another browser (no gh_oidc cookie) is refused', async () => {
  const starter = new Client(server.consoleUrl);
  const other = new Client(server.consoleUrl);
  const who = person('other-browser');
  const r = await flow(starter, who, { callbackClient: other });
  assertRefused(r);
  assert.equal((await other.refreshSession()).status, 401);
  assert.equal(accountsWithEmail(who.email), 0);
  await server.waitForLog(/oidc: sign-in refused: the state does not match this browser's gh_oidc cookie/);

  // A cookie holding another flow's state is no better.
  const mixed = new Client(server.consoleUrl);
  await mixed.get('/auth/oidc/start');
  assertRefused({ done: await mixed.get(r.callback.pathname + r.callback.search) });

  // The browser that started the sign-in can still finish it: the state was not spent.
  const done = await starter.get(r.callback.pathname + r.callback.search);
  assertSignedIn({ done });
  assert.equal((await starter.refreshSession()).body.account.email, who.email.toLowerCase());
});

test('the provider checks the PKCE verifier: a verifier that does not match is refused', async () => {
  provider.corruptChallenge = true; // the provider remembers another challenge for the code
  const c = new Client(server.consoleUrl);
  const who = person('pkce');
  assertRefused(await flow(c, who));
  assert.equal(provider.tokenRequests.at(-1).error, 'invalid_grant');
  assert.equal(accountsWithEmail(who.email), 0);
  await server.waitForLog(/oidc: the token endpoint \S+ answered HTTP 400 \(error "invalid_grant"\)/);
});

test('the provider saying no sends the browser back with oidc_denied', async () => {
  const c = new Client(server.consoleUrl);
  const start = await c.get('/auth/oidc/start');
  const state = new URL(start.headers.get('location')).searchParams.get('state');
  const r = await c.get(`/auth/oidc/callback?error=access_denied&error_description=The+user+said+no&state=${state}`);
  assertRefused({ done: r }, 'oidc_denied');
  await server.waitForLog(/oidc: sign-in refused: the provider answered error "access_denied"/);
  // Without a code or state at all.
  assertRefused({ done: await c.get('/auth/oidc/callback') });
});

test('a token signed with a new key makes Gatehouse fetch the keys again', async () => {
  const c = new Client(server.consoleUrl);
  assertSignedIn(await flow(c, person('before-rotation'))); // keys are cached now
  const fetches = provider.jwksFetches;
  provider.keys.push(newKey('key-2'));
  const who = person('after-rotation');
  assertSignedIn(await flow(new Client(server.consoleUrl), who));
  assert.equal(provider.jwksFetches, fetches + 1);
  assert.equal(accountsWithEmail(who.email), 1);
});

test('with no [oidc] configured both routes answer 404', async () => {
  const plain = await startServer();
  try {
    const c = new Client(plain.consoleUrl);
    assert.deepEqual((await c.get('/auth/config')).body.oidc, { enabled: false, label: 'Google' });
    for (const path of ['/auth/oidc/start', '/auth/oidc/callback?code=a&state=b']) {
      const r = await c.get(path);
      assertError(r, 404, 'not_found_error');
      assert.match(r.body.error.message, /not configured/);
    }
  } finally {
    await plain.stop();
  }
});

test('a discovery document naming another issuer is refused', async () => {
  const liar = await startProvider({ discoveryIssuer: 'https://accounts.example.com' });
  const srv = await startServer({ config: { oidc: { issuer: liar.issuer, client_id: CLIENT_ID } } });
  try {
    const c = new Client(srv.consoleUrl);
    const r = await c.get('/auth/oidc/start');
    assert.equal(r.status, 303);
    assert.equal(r.headers.get('location'), `${srv.consoleUrl}/login?error=oidc_unavailable`);
    assert.equal(setCookie(r, 'gh_oidc'), undefined);
    const j = await c.get('/auth/oidc/start', { headers: { accept: 'application/json' } });
    assertError(j, 500, 'api_error');
    assert.match(j.body.error.message, /could not be reached/);
    await srv.waitForLog(/names another issuer/);
    assert.equal(liar.authorizations.length, 0);
  } finally {
    await srv.stop();
    await liar.close();
  }
});

test('in a browser: "Continue with <label>" signs a new person in; oidc errors are explained', async () => {
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
    page.setDefaultTimeout(10_000);
    const problems = [];
    page.on('pageerror', (e) => problems.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error' && !/status of 401\b/.test(m.text())) problems.push(m.text());
    });

    await page.goto(`${server.consoleUrl}/login?error=oidc_unverified_email`);
    await page.getByRole('heading', { level: 1, name: 'Sign in to Gatehouse' }).waitFor();
    await page.getByRole('alert').filter({ hasText: `${LABEL} has not verified the email address` }).waitFor();
    const button = page.getByRole('link', { name: `Continue with ${LABEL}` });
    await button.waitFor();
    await page.getByRole('button', { name: 'Continue with email' }).waitFor();
    mkdirSync(join(import.meta.dirname, 'artifacts'), { recursive: true });
    await page.screenshot({ path: join(import.meta.dirname, 'artifacts', 'login-oidc-1280.png'), animations: 'disabled' });

    // The provider signs straight in and redirects back: a new account lands on onboarding.
    const who = person('browser');
    provider.user = who;
    await button.click();
    await page.getByRole('heading', { level: 1, name: 'Welcome to Gatehouse' }).waitFor();
    const r = await page.request.get(`${server.consoleUrl}/auth/session`);
    assert.equal((await r.json()).account.email, who.email.toLowerCase());
    assert.deepEqual(problems, []);
  } finally {
    await browser.close();
  }
});

test('the log never holds the client secret, a code, a state, a nonce or a token', async () => {
  assert.ok(provider.issued.length > 10);
  await server.waitForLog(/signed in as/);
  const log = server.log;
  assert.ok(!log.includes(CLIENT_SECRET), 'the client secret is in the log');
  for (const secret of provider.issued) assert.ok(!log.includes(secret), 'a code or token is in the log');
  for (const a of provider.authorizations) {
    for (const v of [a.state, a.nonce, a.code_challenge]) assert.ok(!log.includes(v), 'a state, nonce or challenge is in the log');
  }
  for (const t of provider.tokenRequests) assert.ok(!log.includes(t.params.code_verifier), 'a code verifier is in the log');
});
