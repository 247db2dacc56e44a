// The console's only way to talk to the server: a fetch wrapper for the control-plane API
// (docs/api.md) plus the signed-in session it needs for CSRF.
//
// Every state-changing call sends `content-type: application/json` and the session's
// `x-csrf-token`. Every failure becomes an ApiError whose `message` is the server's
// `error.message`, ready to show to a person.

export class ApiError extends Error {
  constructor(status, type, message, requestId = null, retryAfter = null, detail = null) {
    super(message);
    this.name = 'ApiError';
    this.detail = detail; // the whole `error` object, for refusals that carry more fields
    this.status = status;
    this.type = type;
    this.requestId = requestId;
    this.retryAfter = retryAfter;
  }
}

let session = null;
let unauthorizedHandler = null;

// The current session object (GET /auth/session), or null when signed out.
export function getSession() {
  return session;
}

export function setSession(s) {
  session = s;
}

// What signed-out pages need (GET /auth/config): the operator's product name and how long
// sign-in links last. Loaded when there is no session.
let consoleConfig = null;

export async function loadConsoleConfig() {
  try {
    consoleConfig = await get('/auth/config');
  } catch {
    consoleConfig = null;
  }
  return consoleConfig;
}

// The operator's product name, from the session or, signed out, from /auth/config.
export function productName() {
  return (session && session.product_name) || (consoleConfig && consoleConfig.product_name) || 'Gatehouse';
}

// Minutes a sign-in link stays valid.
export function linkMinutes() {
  return (consoleConfig && consoleConfig.link_ttl_minutes) || 15;
}

// The identity provider's name for "Continue with <label>" when OpenID Connect sign-in is
// configured (/auth/config `oidc`), or null.
export function oidcLabel() {
  const oidc = consoleConfig && consoleConfig.oidc;
  return oidc && oidc.enabled ? (oidc.label || 'your identity provider') : null;
}

// Where to go after signing in: the console page a signed-out visitor first asked for.
const NEXT_KEY = 'gatehouse.next';
export function rememberNext(path) {
  try { sessionStorage.setItem(NEXT_KEY, path); } catch { /* storage disabled */ }
}
export function takeNext() {
  try {
    const next = sessionStorage.getItem(NEXT_KEY);
    sessionStorage.removeItem(NEXT_KEY);
    return next;
  } catch {
    return null;
  }
}

// Called when an authenticated call answers 401 (the session expired or was revoked).
export function onUnauthorized(fn) {
  unauthorizedHandler = fn;
}

// The labels of the fields a person fills in on the console's forms. The server names fields
// as the API does ("monthly_spend_limit_usd: must not exceed …"), which is right for API
// clients; the console shows every message as a sentence about the field's label instead.
const FIELD_LABELS = {
  monthly_spend_limit_usd: 'The monthly spend limit',
  monthly_cap_usd: 'The monthly spend cap',
  requests_per_minute: 'Requests per minute',
  input_tokens_per_minute: 'Input tokens per minute',
  output_tokens_per_minute: 'Output tokens per minute',
  amount_usd: 'The amount',
  threshold_usd: 'The minimum balance',
  exp_month: 'The expiry month',
  exp_year: 'The expiry year',
  cvc: 'The security code (CVC)',
  full_name: 'Your full name',
  confirmed_age_18: 'Confirming your age',
  accepted_terms: 'Accepting the terms',
  legal_name: 'The legal name',
  billing_email: 'The billing email',
  billing_address: 'The billing address',
  'billing_address.line1': 'Address line 1',
  'billing_address.line2': 'Address line 2',
  'billing_address.city': 'The city',
  'billing_address.postal_code': 'The postal code',
  'billing_address.state': 'The state or province',
  'billing_address.country': 'The country',
  line1: 'Address line 1',
  line2: 'Address line 2',
  postal_code: 'The postal code',
  vat_id: 'The Tax or VAT ID',
  display_color: 'The colour',
  workspace_role: 'The workspace role',
  workspace_id: 'The workspace',
  intended_use: 'The intended use',
  regulated_industries: 'The regulated industries',
  max_tokens: 'Max tokens',
  temperature: 'The temperature',
  name: 'The name',
  email: 'The email address',
  role: 'The role',
  country: 'The country',
  countries: 'The countries',
  city: 'The city',
  reason: 'The reason',
};
const FIELD_RE = new RegExp(`^(${Object.keys(FIELD_LABELS).map((k) => k.replace('.', '\\.')).sort((a, b) => b.length - a.length).join('|')})(?::\\s*|\\s+)(.*)$`, 's');
const SNAKE_RE = /\b[a-z]+(?:_[a-z0-9]+)+\b/g;

// A server message as a sentence about the field's label: "monthly_spend_limit_usd: must not
// exceed …" → "The monthly spend limit must not exceed …". Field names later in the sentence
// get their label in lower case. Messages about no field are unchanged.
export function humanizeMessage(message) {
  let text = String(message || '');
  const m = FIELD_RE.exec(text);
  if (m) {
    const rest = m[2];
    const verb = /^(must|is|are|has|cannot|can|should|needs?|was|does)\b/.test(rest);
    text = verb ? `${FIELD_LABELS[m[1]]} ${rest}` : `${FIELD_LABELS[m[1]]}: ${rest}`;
  }
  text = text.replace(/,? or null for no (limit|cap)/g, ', or leave it empty for no $1');
  return text.replace(SNAKE_RE, (w) => (FIELD_LABELS[w] ? FIELD_LABELS[w].replace(/^(The|Your) /, '').replace(/^./, (c) => c.toLowerCase()) : w));
}

const FALLBACK = {
  400: 'The request was not valid.',
  401: 'Your session has ended. Please sign in again.',
  403: 'You do not have permission to do that.',
  404: 'Not found.',
  409: 'That conflicts with the current state. Reload and try again.',
  413: 'That request is too large.',
  429: 'Too many requests. Please wait a moment and try again.',
  500: 'Something went wrong on our side. Please try again.',
  502: 'The server is unavailable. Please try again shortly.',
  503: 'The server is unavailable. Please try again shortly.',
  504: 'The server took too long to answer. Please try again.',
};

// Sends a request and returns the parsed JSON body. Throws ApiError on any failure.
// options: {body, signal, quiet401, headers}: quiet401 skips the global sign-out handling
// (used by the boot check and the sign-in pages, which expect 401); headers adds request
// headers (e.g. idempotency-key).
export async function request(method, path, options = {}) {
  const headers = { ...(options.headers || {}), accept: 'application/json' };
  const init = { method, headers, credentials: 'same-origin', signal: options.signal };
  if (method !== 'GET' && method !== 'HEAD') {
    headers['content-type'] = 'application/json';
    if (session && session.csrf_token) headers['x-csrf-token'] = session.csrf_token;
    init.body = JSON.stringify(options.body ?? {});
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    if (e && e.name === 'AbortError') throw e;
    throw new ApiError(0, 'network_error', 'Could not reach the server. Check your connection and try again.');
  }
  let data = null;
  const text = await res.text();
  if (text) {
    try { data = JSON.parse(text); } catch { data = null; }
  }
  if (!res.ok) {
    const err = data && data.type === 'error' && data.error ? data.error : null;
    const retry = res.headers.get('retry-after');
    const e = new ApiError(
      res.status,
      err ? err.type : 'http_error',
      (err && err.message ? humanizeMessage(err.message) : null) || FALLBACK[res.status] || `Request failed (HTTP ${res.status}).`,
      (data && data.request_id) || res.headers.get('request-id'),
      retry ? Number(retry) : null,
      err,
    );
    if (res.status === 401 && !options.quiet401 && unauthorizedHandler) unauthorizedHandler(e);
    throw e;
  }
  return data;
}

export const get = (path, options) => request('GET', path, options);
export const post = (path, body, options = {}) => request('POST', path, { ...options, body });
export const del = (path, options) => request('DELETE', path, options);

// `path` with a query string built from `params`, leaving out empty values.
export function withQuery(path, params = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '' && v !== false) q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

// One page of a list endpoint (docs/api.md "Lists and pagination"):
// {data, has_more, first_id, last_id}.
export const getPage = (path, params, options) => get(withQuery(path, params), options);

// Every item of a list, following `after_id` (capped, so a huge list cannot hang a page).
export async function getAll(path, params = {}, options = {}) {
  const out = [];
  let after = null;
  for (let i = 0; i < 20; i++) {
    const page = await getPage(path, { ...params, limit: 1000, after_id: after }, options);
    out.push(...page.data);
    if (!page.has_more || !page.last_id) break;
    after = page.last_id;
  }
  return out;
}

// Loads the session; resolves to null when signed out (401).
export async function loadSession() {
  try {
    const s = await get('/auth/session', { quiet401: true });
    setSession(s);
    return s;
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      setSession(null);
      await loadConsoleConfig();
      return null;
    }
    throw e;
  }
}
