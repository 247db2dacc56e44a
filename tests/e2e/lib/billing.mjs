// Helpers for the billing tests: money as exact decimal strings (never floats), purchases
// with idempotency keys, model requests that cost a known amount, the staff command line,
// and polling for what the billing scheduler does in the background.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { BINARY } from './server.mjs';
import { Client } from './client.mjs';
import { uniq } from './expect.mjs';

export const BILLING = '/v1/organizations/billing';
export const CARD = { number: '4242 4242 4242 4242', exp_month: 12, exp_year: 2030, cvc: '123' };
export const PROFILE = { intended_use: 'A support chatbot for our shop', countries: ['US', 'it'], regulated_industries: [] };

// The well-known test cards (docs/api.md, "The test provider").
export const CARDS = {
  visa: '4242424242424242',
  declined: '4000000000000341', // saved (the setup check passes), declined when charged
  declinedAtSetup: '4000000000000002', // refused by the zero-amount check: never saved
  insufficient: '4000000000009995',
  pending: '4000000000000259',
};

// A mock model priced at $100,000 per million tokens ($0.10 a token): a request with the
// message "hi" and max_tokens 5 is 5 input and 5 output tokens, exactly $1.00.
export const PRICEY = { 'model pricey': { style: 'mock', price_input: 100000, price_output: 100000 } };
export const DOLLAR_REQUEST = { model: 'pricey', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] };

// Exact money: a decimal USD string to BigInt nano-USD and back (as the API writes it).
export function nusd(text) {
  assert.match(text, /^-?\d+(\.\d{1,9})?$/, `not a USD amount: ${text}`);
  const neg = text.startsWith('-');
  const [whole, frac = ''] = text.replace('-', '').split('.');
  const v = BigInt(whole) * 1_000_000_000n + BigInt(frac.padEnd(9, '0'));
  return neg ? -v : v;
}

export function usd(n) {
  const neg = n < 0n;
  const mag = neg ? -n : n;
  let frac = (mag % 1_000_000_000n).toString().padStart(9, '0');
  while (frac.length > 2 && frac.endsWith('0')) frac = frac.slice(0, -1);
  return `${neg ? '-' : ''}${mag / 1_000_000_000n}.${frac}`;
}

let keys = 0;
export const newKey = () => `k-${process.pid}-${Date.now()}-${++keys}`;

// POST /v1/organizations/billing/purchases with an idempotency key.
export function buy(client, amount, key = newKey()) {
  return client.post(`${BILLING}/purchases`, { amount_usd: amount }, { headers: { 'idempotency-key': key } });
}

export async function billing(client) {
  const r = await client.get(BILLING);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
}

// A new organization whose admin answered the first-purchase questions and added `number`.
export async function readyOrg(server, name, number = CARDS.visa) {
  const client = new Client(server.consoleUrl);
  const s = await client.signUpWithOrg(server, uniq(name.toLowerCase()), name);
  const p = await client.post(`${BILLING}/profile`, PROFILE);
  assert.equal(p.status, 200, JSON.stringify(p.body));
  const c = await client.post(`${BILLING}/payment_method`, { ...CARD, number });
  assert.equal(c.status, 200, JSON.stringify(c.body));
  return { client, orgId: s.current_organization.id, email: s.account.email };
}

// Polls `fn` (async) until it returns something truthy, or fails after `timeoutMs`.
export async function until(fn, what, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// The billing scheduler's completed passes, from /metrics.
export async function passes(server) {
  const text = await (await fetch(`${server.consoleUrl}/metrics`)).text();
  const m = text.match(/^gatehouse_billing_scheduler_passes_total (\d+)$/m);
  assert.ok(m, 'no billing scheduler metric');
  return Number(m[1]);
}

// Waits until two more scheduler passes have completed: at least one whole pass started
// after this call.
export async function wholePass(server) {
  const start = await passes(server);
  await until(async () => (await passes(server)) >= start + 2, 'two billing scheduler passes');
}

// One request to the model API with an API key.
export async function modelCall(server, key, json = DOLLAR_REQUEST) {
  const r = await fetch(`${server.apiUrl}/v1/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': key, 'anthropic-version': '2023-06-01' },
    body: JSON.stringify(json),
  });
  const body = await r.json();
  assert.equal(r.status, 200, JSON.stringify(body));
  return body;
}

// Runs a staff command (`gatehouse credits ...`, `gatehouse ledger check`) against a server's
// data directory and configuration.
export function gatehouse(server, ...args) {
  return spawnSync(BINARY, [...args, '--config', join(server.dataDir, 'gatehouse.ini'), '--data-dir', server.dataDir],
    { encoding: 'utf8' });
}

// `gatehouse ledger check` passes.
export function assertLedgerConsistent(server) {
  const r = gatehouse(server, 'ledger', 'check');
  assert.equal(r.status, 0, `ledger check failed:\n${r.stdout}${r.stderr}`);
  assert.match(r.stdout, /the ledger is consistent/);
  assert.doesNotMatch(r.stdout, /MISMATCH/);
  return r.stdout;
}
