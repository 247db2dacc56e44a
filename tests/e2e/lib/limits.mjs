// Helpers for the limits tests: a small tier table, organizations with keys, credits granted
// on the command line (and waiting until the running server has seen them), raw model calls
// with their rate-limit headers, and the worst case the gateway reserves.
import assert from 'node:assert/strict';
import { Client } from './client.mjs';
import { uniq } from './expect.mjs';
import { gatehouse, nusd, until, usd } from './billing.mjs';

export const LIMITS = '/v1/organizations/limits';
export const REQUESTS = '/v1/organizations/limit_requests';
export const CREDIT_MESSAGE =
  'Your credit balance is too low to access the API. Please go to Plans & Billing to upgrade or purchase credits.';

// Tiers for tests: Evaluation is generous (so many requests may run at once), Tier 1 is tiny
// (rate limits are reached in a few requests), Tier 2 generous again, and a custom tier.
export const TEST_TIERS = {
  'tier evaluation': { name: 'Evaluation', purchases_usd: 0, monthly_cap_usd: 10, requests_per_minute: 100000,
    input_tokens_per_minute: 100000000, output_tokens_per_minute: 10000000 },
  'tier tier_1': { name: 'Tier 1', purchases_usd: 5, monthly_cap_usd: 100, requests_per_minute: 3,
    input_tokens_per_minute: 2000, output_tokens_per_minute: 300 },
  'tier tier_2': { name: 'Tier 2', purchases_usd: 40, monthly_cap_usd: 500, requests_per_minute: 100000,
    input_tokens_per_minute: 100000000, output_tokens_per_minute: 10000000 },
  'tier custom': { name: 'Custom', monthly_cap_usd: 'none', custom: true },
};

// Priced mock models (USD per million tokens). "dime": a cent a token. "capped": cheap input,
// dearer output, a little latency so that many requests are in flight together.
export const MODELS = {
  'model gatehouse-mock-small': { style: 'mock', model_class: 'small', price_input: 1, price_output: 5 },
  'model dime': { style: 'mock', model_class: 'small', price_input: 10000, price_output: 10000 },
  'model capped': { style: 'mock', model_class: 'large', price_input: 10, price_output: 100, mock_latency_ms: 30 },
};
export const PRICES = { // nano-USD per million tokens
  'gatehouse-mock-small': { in: 1_000_000_000n, out: 5_000_000_000n },
  dime: { in: 10_000_000_000_000n, out: 10_000_000_000_000n },
  capped: { in: 10_000_000_000n, out: 100_000_000_000n },
};

export const LIMITS_CONFIG = { ...TEST_TIERS, ...MODELS, limits: { enforce: true, poll_ms: 50 } };

// The cost of `tokens` at `perMillion` nano-USD per million, rounded half up (as the server).
export const price = (tokens, perMillion) => (BigInt(tokens) * perMillion + 500_000n) / 1_000_000n;

// What the gateway reserves for a request body (src/gateway/gateway.c, worst_cost): the body's
// bytes as input tokens at the input price, max_tokens at the output price, plus 2 nano-USD.
export function worstCost(model, body) {
  const p = PRICES[model];
  return price(Buffer.byteLength(body), p.in) + price(JSON.parse(body).max_tokens, p.out) + 2n;
}

// The mock's input tokens for one message of `text`.
export const mockInput = (text) => 4 + Math.ceil(Buffer.byteLength(text) / 4);

// A signed-up admin with an organization and an API key in its Default workspace.
export async function orgWithKey(server, name = 'Limits') {
  const admin = new Client(server.consoleUrl);
  const email = uniq(name.toLowerCase().replace(/[^a-z0-9]+/g, '-'));
  const s = await admin.signUpWithOrg(server, email, name);
  const k = await admin.post('/v1/organizations/api_keys', { name: 'test key' });
  assert.equal(k.status, 201, JSON.stringify(k.body));
  return { admin, email, key: k.body.key, orgId: s.current_organization.id, workspaceId: k.body.workspace_id };
}

export async function limits(client) {
  const r = await client.get(LIMITS);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
}

// What admission holds for the organization now (balance, reserved, in flight).
export async function admission(client) {
  return (await limits(client)).admission;
}

// Grants credits with `gatehouse credits grant` (another process) and waits until the running
// server's admission has seen them: the balance it holds goes up by the amount.
export async function grant(server, client, orgId, amount) {
  const before = nusd((await admission(client)).balance_usd);
  const r = gatehouse(server, 'credits', 'grant', '--org', orgId, '--usd', amount, '--reason', 'test credits');
  assert.equal(r.status, 0, r.stderr);
  const want = before + nusd(amount);
  await until(async () => nusd((await admission(client)).balance_usd) === want,
    `admission to see the grant of $${amount} (balance ${usd(want)})`);
}

// One raw model request: {status, headers, json, text}.
export async function call(server, key, json, { path = '/v1/messages', headers = {} } = {}) {
  const body = typeof json === 'string' ? json : JSON.stringify(json);
  const res = await fetch(server.apiUrl + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': key, 'anthropic-version': '2023-06-01', ...headers },
    body,
  });
  const text = await res.text();
  let parsed;
  try { parsed = JSON.parse(text); } catch { parsed = undefined; }
  return { status: res.status, headers: res.headers, text, json: parsed };
}

// The anthropic-ratelimit-* headers of a response, as an object.
export function rateHeaders(r) {
  return Object.fromEntries([...r.headers].filter(([n]) => n.startsWith('anthropic-ratelimit-') || n === 'retry-after'));
}

export const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;

// Every kind's -limit, -remaining and -reset are there and well formed.
export function assertRateHeaders(r, kinds = ['requests', 'input-tokens', 'output-tokens', 'tokens']) {
  for (const kind of kinds) {
    const limit = r.headers.get(`anthropic-ratelimit-${kind}-limit`);
    const remaining = r.headers.get(`anthropic-ratelimit-${kind}-remaining`);
    const reset = r.headers.get(`anthropic-ratelimit-${kind}-reset`);
    assert.match(limit ?? '', /^\d+$/, `anthropic-ratelimit-${kind}-limit: ${limit}`);
    assert.match(remaining ?? '', /^\d+$/, `anthropic-ratelimit-${kind}-remaining: ${remaining}`);
    assert.ok(Number(remaining) <= Number(limit));
    assert.match(reset ?? '', RFC3339, `anthropic-ratelimit-${kind}-reset: ${reset}`);
  }
}

export { nusd, usd, until };
