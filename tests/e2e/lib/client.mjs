// A tiny cookie-keeping HTTP client for the control plane, the way the console uses it:
// session cookie plus the x-csrf-token header on state-changing calls.
import { lastLink } from './server.mjs';

export class Client {
  constructor(baseUrl) {
    this.baseUrl = baseUrl;
    this.cookies = new Map();
    this.csrf = null;
  }

  cookieHeader() {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  keepCookies(res) {
    for (const c of res.headers.getSetCookie?.() ?? []) {
      const [pair] = c.split(';');
      const i = pair.indexOf('=');
      const name = pair.slice(0, i), value = pair.slice(i + 1);
      if (value === '' || /max-age=0/i.test(c)) this.cookies.delete(name); else this.cookies.set(name, value);
    }
  }

  // Sends a request; returns {status, headers, body (parsed JSON or text)}.
  async request(method, path, { json, body, headers = {}, csrf = true, redirect = 'manual' } = {}) {
    const h = { ...headers };
    if (this.cookies.size) h.cookie = this.cookieHeader();
    if (json !== undefined) { h['content-type'] = 'application/json'; body = JSON.stringify(json); }
    if (csrf && this.csrf && method !== 'GET' && method !== 'HEAD') h['x-csrf-token'] = this.csrf;
    const res = await fetch(this.baseUrl + path, { method, headers: h, body, redirect });
    this.keepCookies(res);
    const text = await res.text();
    let parsed = text;
    if ((res.headers.get('content-type') ?? '').includes('application/json')) parsed = JSON.parse(text);
    return { status: res.status, headers: res.headers, body: parsed };
  }

  get(path, opts) { return this.request('GET', path, opts); }
  post(path, json, opts = {}) { return this.request('POST', path, { ...opts, json }); }

  async refreshSession() {
    const r = await this.get('/auth/session');
    if (r.status === 200) this.csrf = r.body.csrf_token;
    return r;
  }

  // Requests a link for `email`, opens it from the outbox, and loads the session.
  async signIn(server, email) {
    const r = await this.post('/auth/email', { email });
    if (r.status !== 202) throw new Error(`POST /auth/email: ${r.status} ${JSON.stringify(r.body)}`);
    const v = await this.openLink(lastLink(server, email));
    if (v.status !== 200) throw new Error(`opening the link: ${v.status} ${JSON.stringify(v.body)}`);
    return this.refreshSession();
  }

  // Opens an emailed sign-in link the way the console does: the GET only checks it and
  // redirects to /sign-in#token=…, whose script posts the token. Returns the POST's answer
  // (or the GET's, when it redirected elsewhere: a link that cannot be used).
  async openLink(link, headers = {}) {
    const u = new URL(link);
    const v = await this.get(u.pathname + u.search, { headers });
    const to = v.headers.get('location') ?? '';
    const m = /\/sign-in#token=([^&]+)$/.exec(to);
    if (v.status !== 303 || !m) return v;
    return this.post('/auth/verify', { token: decodeURIComponent(m[1]) });
  }

  // Signs up, onboards and creates an organization: the common starting point.
  async signUpWithOrg(server, email, orgName = 'Acme', fullName = 'Ada Lovelace') {
    await this.signIn(server, email);
    const o = await this.post('/auth/onboarding', { full_name: fullName, confirmed_age_18: true, accepted_terms: true });
    if (o.status !== 200) throw new Error(`onboarding: ${o.status} ${JSON.stringify(o.body)}`);
    const c = await this.post('/auth/organizations', { name: orgName });
    if (c.status !== 201) throw new Error(`create org: ${c.status} ${JSON.stringify(c.body)}`);
    return c.body;
  }
}
