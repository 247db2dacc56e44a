// Shared assertions and helpers for the end-to-end tests.
import assert from 'node:assert/strict';
import { Client } from './client.mjs';

// The standard error shape: `status`, JSON body {"type":"error","error":{"type","message"},
// "request_id"} with nothing else, a non-empty message, and a request-id header equal to the
// body's request_id.
export function assertError(r, status, type) {
  assert.equal(r.status, status, `expected ${status}, got ${r.status}: ${JSON.stringify(r.body)}`);
  assert.match(r.headers.get('content-type') ?? '', /^application\/json/);
  assert.equal(r.body.type, 'error');
  assert.equal(r.body.error.type, type);
  assert.equal(typeof r.body.error.message, 'string');
  assert.ok(r.body.error.message.trim().length > 0, 'the error message is empty');
  assert.match(r.body.request_id, /^req_01[0-9A-Za-z]{22}$/);
  assert.equal(r.headers.get('request-id'), r.body.request_id);
  assert.deepEqual(Object.keys(r.body).sort(), ['error', 'request_id', 'type']);
  assert.deepEqual(Object.keys(r.body.error).sort(), ['message', 'type']);
}

// A fresh address for each sign-up, so tests sharing a server never collide.
export const uniq = (name) => `${name}.${Date.now()}.${Math.random().toString(36).slice(2, 8)}@example.com`;

// ---- Organization API helpers (members, invites, keys) ----

export const ONBOARDING = { full_name: 'Test Member', confirmed_age_18: true, accepted_terms: true };

// Id shapes of the Organization API: "<prefix>_01" and 22 base62 characters.
export const idPattern = (prefix) => new RegExp(`^${prefix}_01[0-9A-Za-z]{22}$`);

// RFC 3339 UTC time as the API writes it.
export const TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;

// The path and query of a URL (the Client takes paths).
export const pathOf = (url) => { const u = new URL(url); return u.pathname + u.search; };

// Every invitation link (full URL) mailed to `email`, oldest first.
export function inviteLinks(server, email) {
  return server.outbox()
    .filter((m) => m.to && m.to.toLowerCase().includes(email.toLowerCase()))
    .map((m) => (m.body.match(/https?:\/\/\S+\/auth\/invite\?token=[A-Za-z0-9]+/) ?? [])[0])
    .filter(Boolean);
}

// The newest invitation link mailed to `email`.
export function inviteLink(server, email) {
  const links = inviteLinks(server, email);
  if (!links.length) throw new Error(`no invitation mailed to ${email}`);
  return links[links.length - 1];
}

// Opens an invitation link the way the console does: the GET only checks it and redirects
// to /accept-invite#token=…, whose script posts the token. Returns the POST's answer (or the
// GET's, when it redirected elsewhere: an invitation that cannot be used).
export async function openInvite(client, link, headers = {}) {
  const v = await client.get(pathOf(link), { headers });
  const m = /\/accept-invite#token=([^&]+)$/.exec(v.headers.get('location') ?? '');
  if (v.status !== 303 || !m) return v;
  return client.post('/auth/invite', { token: decodeURIComponent(m[1]) });
}

// Opens the newest invitation mailed to `email` in a fresh client (a session), loads the
// session and, when the account is new, onboards it. Returns the client.
export async function acceptInvite(server, email, { onboard = true, fullName = 'Test Member' } = {}) {
  const c = new Client(server.consoleUrl);
  const r = await openInvite(c, inviteLink(server, email));
  if (r.status !== 200) throw new Error(`invite link for ${email}: ${r.status} ${JSON.stringify(r.body)}`);
  const s = await c.refreshSession();
  if (s.status !== 200) throw new Error(`session after invite: ${s.status}`);
  if (onboard && !s.body.account.onboarded) {
    const o = await c.post('/auth/onboarding', { ...ONBOARDING, full_name: fullName });
    if (o.status !== 200) throw new Error(`onboarding: ${o.status} ${JSON.stringify(o.body)}`);
  }
  return c;
}

// `admin` (a session client or a KeyClient of an admin) invites a fresh address with `role`;
// the invitee accepts and onboards. Returns {client, id, email, inviteId}.
export async function addMember(server, admin, role, { name = role, fullName } = {}) {
  const email = uniq(name).toLowerCase();
  const inv = await admin.post('/v1/organizations/invites', { email, role });
  if (inv.status !== 201) throw new Error(`invite ${role}: ${inv.status} ${JSON.stringify(inv.body)}`);
  const client = await acceptInvite(server, email, { fullName: fullName ?? `${role} member` });
  const id = (await client.get('/auth/session')).body.account.id;
  return { client, id, email, inviteId: inv.body.id };
}

// A client that authenticates with a key instead of a session: `x-api-key: <key>`, or
// `authorization: Bearer <key>` with {bearer: true}. It keeps no cookies and sends no CSRF
// header.
export class KeyClient extends Client {
  constructor(baseUrl, key, { bearer = false } = {}) {
    super(baseUrl);
    this.key = key;
    this.bearer = bearer;
  }

  request(method, path, opts = {}) {
    const headers = { ...(opts.headers ?? {}) };
    if (this.bearer) headers.authorization = `Bearer ${this.key}`;
    else headers['x-api-key'] = this.key;
    return super.request(method, path, { ...opts, headers });
  }
}

// Runs SQL on a server's database, whichever the backend: see sql() in server.mjs.
export { sql, sqlObject, sqlTime, sqlSeconds } from './server.mjs';

// Quotes a string for SQL.
export const sqlQuote = (s) => `'${String(s).replaceAll("'", "''")}'`;

// Every item of a paginated list, following after_id (100 a page).
export async function listAll(client, path) {
  const out = [];
  let after = null;
  for (;;) {
    const sep = path.includes('?') ? '&' : '?';
    const r = await client.get(`${path}${sep}limit=100${after ? `&after_id=${encodeURIComponent(after)}` : ''}`);
    assert.equal(r.status, 200, `GET ${path}: ${r.status} ${JSON.stringify(r.body)}`);
    out.push(...r.body.data);
    if (!r.body.has_more) return out;
    after = r.body.last_id;
  }
}

// Asserts the list envelope: exactly {data, has_more, first_id, last_id}, with first_id and
// last_id taken from the data (by `idField`).
export function assertList(r, idField = 'id') {
  assert.equal(r.status, 200, `expected a list, got ${r.status}: ${JSON.stringify(r.body)}`);
  assert.deepEqual(Object.keys(r.body).sort(), ['data', 'first_id', 'has_more', 'last_id']);
  assert.ok(Array.isArray(r.body.data));
  assert.equal(typeof r.body.has_more, 'boolean');
  const n = r.body.data.length;
  assert.equal(r.body.first_id, n ? r.body.data[0][idField] : null);
  assert.equal(r.body.last_id, n ? r.body.data[n - 1][idField] : null);
  return r.body;
}
