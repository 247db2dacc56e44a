// Limits on the model API (docs/api.md, "Limits"; docs/architecture.md, "Admission and limits
// in memory"): the prepaid hard cap under 500 concurrent requests, rate limits with their 429s
// and headers, the Anthropic SDK retrying after a 429, monthly spend limits for the
// organization and a workspace (set, hit, raised, removed), tiers that advance with purchases,
// and credits granted by another process seen at once.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import Anthropic from '@anthropic-ai/sdk';
import { STORE, startServer } from './lib/server.mjs';
import { assertError, sql, sqlQuote } from './lib/expect.mjs';
import { buy, readyOrg, assertLedgerConsistent } from './lib/billing.mjs';
import {
  LIMITS, LIMITS_CONFIG, CREDIT_MESSAGE, PRICES, RFC3339, admission, assertRateHeaders, call, grant,
  limits, mockInput, nusd, orgWithKey, price, rateHeaders, until, usd, worstCost,
} from './lib/limits.mjs';

let server;

before(async () => {
  server = await startServer({ config: LIMITS_CONFIG });
});

after(async () => {
  await server?.stop();
});

const MSG = (model, text, maxTokens, extra = {}) =>
  ({ model, max_tokens: maxTokens, messages: [{ role: 'user', content: text }], ...extra });

// The committed usage of an organization: {count, cost} (waits for `count` events).
async function usage(orgId, count) {
  let row;
  await until(() => {
    const out = sql(server, `SELECT count(*) || ' ' || coalesce(sum(cost_nusd), 0) FROM usage_events
      WHERE org_id = ${sqlQuote(orgId)};`).trim().split(' ');
    row = { count: Number(out[0]), cost: BigInt(out[1]) };
    return row.count >= count;
  }, `${count} usage events of ${orgId}`, 20000);
  return row;
}

describe('the prepaid hard cap', () => {
  test('without credits a model request is refused with Anthropic\'s message, and headers', async () => {
    const o = await orgWithKey(server, 'Broke');
    const r = await call(server, o.key, MSG('gatehouse-mock-small', 'hi', 10));
    assert.equal(r.status, 400);
    assert.deepEqual(r.json.error, { type: 'invalid_request_error', message: CREDIT_MESSAGE });
    assertRateHeaders(r);
    // OpenAI's shape on /v1/chat/completions, with the same message.
    const c = await call(server, o.key, MSG('gatehouse-mock-small', 'hi', 10), { path: '/v1/chat/completions' });
    assert.equal(c.status, 400);
    assert.equal(c.json.error.message, CREDIT_MESSAGE);
    assert.equal(c.json.error.type, 'invalid_request_error');
    // count_tokens costs nothing: it is admitted without credit.
    const t = await call(server, o.key, MSG('gatehouse-mock-small', 'hi', 10), { path: '/v1/messages/count_tokens' });
    assert.equal(t.status, 200, t.text);
    assert.equal(t.headers.get('anthropic-ratelimit-requests-limit'), '100000');
  });

  test('500 concurrent requests against $1 never charge more than $1', async (t) => {
    const o = await orgWithKey(server, 'Dollar');
    await grant(server, o.admin, o.orgId, '1.00');
    const body = JSON.stringify(MSG('capped', 'hi', 50));
    const worst = worstCost('capped', body);
    const actual = price(mockInput('hi'), PRICES.capped.in) + price(30, PRICES.capped.out); // 30 natural tokens
    let ok = 0, refused = 0, waves = 0;
    // Waves of 500 at once until the credit is gone (a wave where nothing gets through).
    for (;;) {
      waves++;
      const results = await Promise.all(Array.from({ length: 500 }, () => call(server, o.key, body)));
      let got = 0;
      for (const r of results) {
        if (r.status === 200) {
          got++;
          assert.equal(r.json.usage.output_tokens, 30);
        } else {
          assert.equal(r.status, 400, r.text);
          assert.deepEqual(r.json.error, { type: 'invalid_request_error', message: CREDIT_MESSAGE });
          refused++;
        }
      }
      ok += got;
      if (got === 0 || waves === 10) break;
    }
    assert.ok(waves < 10, 'the credit ran out');
    t.diagnostic(`${waves} waves of 500: ${ok} admitted, ${refused} refused`);
    assert.ok(refused >= 500, `refused ${refused}`);
    const u = await usage(o.orgId, ok);
    assert.equal(u.count, ok); // refused requests are not usage events
    assert.equal(u.cost, BigInt(ok) * actual);
    const dollar = 1_000_000_000n;
    assert.ok(u.cost <= dollar, `charged ${usd(u.cost)} of $1.00`);
    // Nearly everything was used: what is left cannot pay for one more worst case.
    assert.ok(dollar - u.cost < worst, `left ${usd(dollar - u.cost)}, a request reserves ${usd(worst)}`);
    const a = await admission(o.admin);
    assert.equal(a.reserved_usd, '0.00');
    assert.equal(a.in_flight, 0);
    assert.equal(nusd(a.balance_usd), dollar - u.cost);
    // The ledger agrees, once the writer has charged the usage.
    await until(async () => (await o.admin.get('/v1/organizations/billing')).body.balance_usd === usd(dollar - u.cost),
      'the ledger balance');
    assertLedgerConsistent(server);
  });

  test('a grant made by another process admits at once, and is reported in GET limits', async () => {
    const o = await orgWithKey(server, 'Granted');
    assert.equal((await call(server, o.key, MSG('gatehouse-mock-small', 'hi', 5))).status, 400);
    await grant(server, o.admin, o.orgId, '2.50');
    const r = await call(server, o.key, MSG('gatehouse-mock-small', 'hi', 5));
    assert.equal(r.status, 200, r.text);
    // A clawback by another process takes it away again. The balance before it is read once
    // it has settled at the ledger's (the request's usage committed): on PostgreSQL a lease
    // taken after the grant is in the database a moment before the engine holds it, and a
    // balance read in between is low by the lease.
    const { cost } = await usage(o.orgId, 1);
    const before = await until(async () => {
      const b = nusd((await admission(o.admin)).balance_usd);
      return b === 2_500_000_000n - cost ? b : null;
    }, 'the balance to settle at the ledger\'s');
    const { gatehouse } = await import('./lib/billing.mjs');
    const cb = gatehouse(server, 'credits', 'clawback', '--org', o.orgId, '--usd', '2.00', '--reason', 'test');
    assert.equal(cb.status, 0, cb.stderr);
    // At least the $2.00, and at most a cent more (on PostgreSQL the balance shown is the
    // database's less this node's uncommitted costs, and a lease given back after the clawback
    // moves the two in separate steps).
    const after = await until(async () => {
      const b = nusd((await admission(o.admin)).balance_usd);
      return before - b >= 2_000_000_000n ? b : null;
    }, 'the clawback');
    assert.ok(before - after <= 2_010_000_000n, `the clawback took ${before - after} nano-USD`);
  });
});

describe('rate limits', () => {
  // Tier 1 of the test table: 3 requests, 2,000 input and 300 output tokens per minute.
  async function tierOne(name) {
    const o = await readyOrg(server, name);
    const b = await buy(o.client, '5.00');
    assert.equal(b.status, 200, JSON.stringify(b.body));
    const k = await o.client.post('/v1/organizations/api_keys', { name: 'k' });
    const l = await limits(o.client);
    assert.equal(l.tier, 'tier_1');
    return { ...o, key: k.body.key };
  }

  test('requests per minute: 429 rate_limit_error with retry-after and the headers', async () => {
    const o = await tierOne('Rpm');
    for (let i = 0; i < 3; i++) {
      const r = await call(server, o.key, MSG('gatehouse-mock-small', 'hi', 5));
      assert.equal(r.status, 200, r.text);
      assertRateHeaders(r);
      assert.equal(r.headers.get('anthropic-ratelimit-requests-limit'), '3');
      assert.equal(r.headers.get('anthropic-ratelimit-requests-remaining'), String(2 - i));
      assert.equal(r.headers.get('retry-after'), null);
    }
    const r = await call(server, o.key, MSG('gatehouse-mock-small', 'hi', 5));
    assert.equal(r.status, 429, r.text);
    assert.equal(r.json.error.type, 'rate_limit_error');
    assert.match(r.json.error.message, /your organization's rate limit of 3 requests per minute for small models/);
    assert.match(r.headers.get('request-id'), /^req_01/);
    assertRateHeaders(r);
    assert.equal(r.headers.get('anthropic-ratelimit-requests-limit'), '3');
    assert.equal(r.headers.get('anthropic-ratelimit-requests-remaining'), '0');
    const retry = Number(r.headers.get('retry-after'));
    assert.ok(retry >= 1 && retry <= 20, `retry-after ${retry}`); // one request refills in 20 s
    const reset = Date.parse(r.headers.get('anthropic-ratelimit-requests-reset'));
    assert.ok(reset > Date.now() && reset <= Date.now() + 61000);
    // The other model class has buckets of its own.
    const other = await call(server, o.key, MSG('capped', 'hi', 5));
    assert.equal(other.status, 200, other.text);
    // OpenAI's shape on chat completions.
    const c = await call(server, o.key, MSG('gatehouse-mock-small', 'hi', 5), { path: '/v1/chat/completions' });
    assert.equal(c.status, 429);
    assert.deepEqual(Object.keys(c.json), ['error']);
    assert.equal(c.json.error.type, 'rate_limit_error');
    assert.ok(Number(c.headers.get('retry-after')) >= 1);
  });

  test('input tokens per minute: the input bound is taken up front and corrected at settlement', async () => {
    const o = await tierOne('Itpm');
    const big = 'x'.repeat(2400); // ~2,500 bytes of body: more than the 2,000-token bucket holds
    const first = await call(server, o.key, MSG('gatehouse-mock-small', big, 5));
    assert.equal(first.status, 200, first.text); // a take above the capacity waits for a full bucket
    assert.equal(first.headers.get('anthropic-ratelimit-input-tokens-limit'), '2000');
    assert.equal(first.headers.get('anthropic-ratelimit-input-tokens-remaining'), '0');
    const second = await call(server, o.key, MSG('gatehouse-mock-small', big, 5));
    assert.equal(second.status, 429, second.text);
    assert.match(second.json.error.message, /rate limit of 2000 input tokens per minute/);
    assertRateHeaders(second);
    // The settlement gave back what the first did not use: ~600 of 2,000 were used.
    const left = Number(second.headers.get('anthropic-ratelimit-input-tokens-remaining'));
    assert.ok(left >= 2000 - mockInput(big) - 5 && left < 2000, `remaining ${left}`);
    assert.ok(Number(second.headers.get('retry-after')) >= 1);
  });

  test('output tokens per minute: max_tokens is reserved and corrected at settlement', async () => {
    const o = await tierOne('Otpm');
    const first = await call(server, o.key, MSG('gatehouse-mock-small', 'hi', 300));
    assert.equal(first.status, 200, first.text);
    assert.equal(first.json.usage.output_tokens, 30);
    assert.equal(first.headers.get('anthropic-ratelimit-output-tokens-remaining'), '0');
    const second = await call(server, o.key, MSG('gatehouse-mock-small', 'hi', 300));
    assert.equal(second.status, 429);
    assert.match(second.json.error.message, /300 output tokens per minute/);
    const left = Number(second.headers.get('anthropic-ratelimit-output-tokens-remaining'));
    assert.ok(left >= 270 && left < 300, `remaining ${left}`); // 270 came back
    // A request that fits what is left is admitted.
    const small = await call(server, o.key, MSG('gatehouse-mock-small', 'hi', 100));
    assert.equal(small.status, 200, small.text);
  });

  test('the Anthropic SDK retries after a 429 and succeeds', async () => {
    const o = await orgWithKey(server, 'Sdk');
    await grant(server, o.admin, o.orgId, '5.00');
    // A workspace limit of 300 output tokens a minute: five come back every second.
    const path = `/v1/organizations/workspaces/${o.workspaceId}/limits`;
    const w = await o.admin.post(path, { output_tokens_per_minute: 300 });
    assert.equal(w.status, 200, JSON.stringify(w.body));
    assert.equal(w.body.output_tokens_per_minute, 300);
    // Requests of max_tokens 20 use all 20 (the mock writes 30 when it may): drain the bucket.
    let r;
    for (let i = 0; i < 40; i++) {
      r = await call(server, o.key, MSG('gatehouse-mock-small', 'hi', 20));
      if (r.status !== 200) break;
    }
    assert.equal(r.status, 429, r.text);
    assert.match(r.json.error.message, /this workspace's rate limit of 300 output tokens per minute for small models/);
    assert.equal(r.headers.get('anthropic-ratelimit-output-tokens-limit'), '300');
    // Less than 20 tokens are left; the SDK asks for 25, so its first try is refused for a
    // second or more. It waits retry-after and tries again.
    const statuses = [];
    const counting = async (url, init) => {
      const res = await fetch(url, init);
      statuses.push(res.status);
      return res;
    };
    // On PostgreSQL the node admits from shares of the database's buckets (docs/architecture.md,
    // "Cluster: rate limits"): the database's bucket can lag the node's by what is in flight
    // between them (unused tokens go back with the next draw), so a retry-after read off the
    // node's bucket can be early, seen about one run in three here; the SDK's next retry passes.
    const client = new Anthropic({ apiKey: o.key, baseURL: server.apiUrl, maxRetries: STORE === 'postgres' ? 4 : 2, fetch: counting });
    const t0 = Date.now();
    const { data: msg, response } = await client.messages
      .create(MSG('gatehouse-mock-small', 'Say hello', 25)).withResponse();
    assert.equal(msg.type, 'message');
    assert.equal(msg.usage.output_tokens, 25);
    if (STORE === 'postgres') {
      assert.equal(statuses[0], 429);
      assert.deepEqual(statuses.slice(1, -1).filter((s) => s !== 429), [], statuses.join());
      assert.equal(statuses.at(-1), 200);
    } else {
      assert.deepEqual(statuses, [429, 200]); // one node: its bucket is the limit, the wait exact
    }
    assert.ok(Date.now() - t0 >= 900, 'the SDK waited for retry-after');
    assert.equal(response.headers.get('anthropic-ratelimit-output-tokens-limit'), '300');
    // Removing the workspace limit applies at once.
    const off = await o.admin.post(path, { output_tokens_per_minute: null });
    assert.equal(off.body.output_tokens_per_minute, null);
    for (let i = 0; i < 3; i++)
      assert.equal((await call(server, o.key, MSG('gatehouse-mock-small', 'hi', 20))).status, 200);
  });
});

describe('monthly spend limits', () => {
  // "dime": a cent a token. "hi" with max_tokens 5 costs 10 cents; the worst case reserved is
  // the body's bytes at a cent, plus 5 cents.
  const BODY = JSON.stringify(MSG('dime', 'hi', 5));
  const WORST = worstCost('dime', BODY);
  const COST = 100_000_000n;

  test('set, hit, raised and removed; never above the tier\'s cap', async () => {
    const o = await orgWithKey(server, 'Spend');
    await grant(server, o.admin, o.orgId, '9.00');
    let l = await limits(o.admin);
    assert.equal(l.tier, 'evaluation');
    assert.equal(l.monthly_spend_limit_usd, null);
    assert.equal(l.tier_monthly_cap_usd, '10.00');
    assert.equal(l.month_to_date_usd, '0.00');
    assert.match(l.month_resets_at, RFC3339);
    assert.ok(l.month_resets_at.endsWith('-01T00:00:00Z'));

    // Above the cap, not whole cents, not a string: 400 with a clear message; nothing changes.
    let r = await o.admin.post(LIMITS, { monthly_spend_limit_usd: '50.00' });
    assertError(r, 400, 'invalid_request_error');
    assert.equal(r.body.error.message,
      'monthly_spend_limit_usd: must not exceed your tier\'s monthly cap of $10.00 (Evaluation). To spend more, ask for a higher tier.');
    for (const bad of ['1.001', '-5', 'ten', 5, '0', '0.00']) {
      r = await o.admin.post(LIMITS, { monthly_spend_limit_usd: bad });
      assertError(r, 400, 'invalid_request_error');
      assert.match(r.body.error.message, /monthly_spend_limit_usd/);
    }
    assertError(await o.admin.post(LIMITS, {}), 400, 'invalid_request_error');
    assertError(await o.admin.post(LIMITS, { monthly_spend_limit_usd: '5', extra: 1 }), 400, 'invalid_request_error');

    // A limit that lets three requests through: each reserves WORST while it runs, and a
    // request is admitted while spend + WORST fits.
    const limit = 3n * COST + WORST - 2n * COST; // spend 0,10,20c admitted; at 30c refused
    const limitText = usd(((limit + 9_999_999n) / 10_000_000n) * 10_000_000n); // round up to a cent
    r = await o.admin.post(LIMITS, { monthly_spend_limit_usd: limitText });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.monthly_spend_limit_usd, limitText);
    assert.equal(r.body.effective_monthly_limit_usd, limitText);
    const cap = nusd(limitText);
    let spent = 0n, admitted = 0;
    for (;;) {
      const c = await call(server, o.key, BODY);
      if (spent + WORST <= cap) {
        assert.equal(c.status, 200, c.text);
        spent += COST;
        admitted++;
        continue;
      }
      assert.equal(c.status, 400, c.text);
      assert.equal(c.json.error.type, 'invalid_request_error');
      assert.match(c.json.error.message,
        new RegExp(`^You have reached your organization's monthly spend limit of \\$${limitText.replace('.', '\\.')}\\. You will regain access on \\d{4}-\\d\\d-01 at 00:00 UTC, or sooner if an admin raises the limit\\.$`));
      assertRateHeaders(c);
      break;
    }
    assert.ok(admitted >= 2);
    l = await limits(o.admin);
    assert.equal(l.month_to_date_usd, usd(spent));

    // Raised: admitted at once.
    r = await o.admin.post(LIMITS, { monthly_spend_limit_usd: '9.50' });
    assert.equal(r.status, 200);
    assert.equal((await call(server, o.key, BODY)).status, 200);
    spent += COST;
    // Lowered below what was spent: refused at once.
    r = await o.admin.post(LIMITS, { monthly_spend_limit_usd: '0.10' });
    assert.equal(r.status, 200);
    assert.equal((await call(server, o.key, BODY)).status, 400);
    // Removed: the tier's cap ($10) is the limit again.
    r = await o.admin.post(LIMITS, { monthly_spend_limit_usd: null });
    assert.equal(r.status, 200);
    assert.equal(r.body.monthly_spend_limit_usd, null);
    assert.equal(r.body.effective_monthly_limit_usd, '10.00');
    assert.equal((await call(server, o.key, BODY)).status, 200);
    spent += COST;
    assert.equal((await limits(o.admin)).month_to_date_usd, usd(spent));

    // Every change is in the audit log, with from and to.
    const audit = await o.admin.get('/v1/organizations/audit_log?limit=100');
    const actions = audit.body.data.map((e) => e.action);
    assert.ok(actions.includes('limits.spend_limit_set'));
    assert.ok(actions.includes('limits.spend_limit_removed'));
    const removed = audit.body.data.find((e) => e.action === 'limits.spend_limit_removed');
    assert.deepEqual(removed.details.monthly_spend_limit_usd, { from: '0.10', to: null });
    const sets = await o.admin.get('/v1/organizations/audit_log?action=limits.spend_limit_set');
    assert.equal(sets.status, 200);
    assert.equal(sets.body.data.length, 3);
    assert.deepEqual(sets.body.data[2].details.monthly_spend_limit_usd, { from: null, to: limitText });
  });

  test('a workspace can have its own lower limit', async () => {
    const o = await orgWithKey(server, 'WsSpend');
    await grant(server, o.admin, o.orgId, '9.00');
    const ws = await o.admin.post('/v1/organizations/workspaces', { name: 'Capped team' });
    assert.equal(ws.status, 201);
    const k = await o.admin.post('/v1/organizations/api_keys', { name: 'team key', workspace_id: ws.body.id });
    assert.equal(k.status, 201, JSON.stringify(k.body));
    const path = `/v1/organizations/workspaces/${ws.body.id}/limits`;
    // Not above the organization's limit.
    await o.admin.post(LIMITS, { monthly_spend_limit_usd: '5.00' });
    let r = await o.admin.post(path, { monthly_spend_limit_usd: '6.00' });
    assertError(r, 400, 'invalid_request_error');
    assert.match(r.body.error.message, /must not exceed the organization's monthly limit of \$5\.00/);
    const wsLimit = usd(((WORST + COST + 9_999_999n) / 10_000_000n) * 10_000_000n);
    r = await o.admin.post(path, { monthly_spend_limit_usd: wsLimit });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.monthly_spend_limit_usd, wsLimit);
    assert.equal(r.body.month_to_date_usd, '0.00');
    // Two requests fit; the third is refused with the workspace's message.
    assert.equal((await call(server, k.body.key, BODY)).status, 200);
    assert.equal((await call(server, k.body.key, BODY)).status, 200);
    const refused = await call(server, k.body.key, BODY);
    assert.equal(refused.status, 400);
    assert.match(refused.json.error.message, /^You have reached this workspace's monthly spend limit of \$/);
    // The Default workspace's key is not limited by it.
    assert.equal((await call(server, o.key, BODY)).status, 200);
    // The limits page lists the workspace with its spend.
    const l = await limits(o.admin);
    const entry = l.workspaces.find((w) => w.workspace_id === ws.body.id);
    assert.equal(entry.monthly_spend_limit_usd, wsLimit);
    assert.equal(entry.month_to_date_usd, '0.20');
    assert.equal(l.month_to_date_usd, '0.30');
    // Removed: the workspace is admitted again.
    r = await o.admin.post(path, { monthly_spend_limit_usd: null });
    assert.equal(r.body.monthly_spend_limit_usd, null);
    assert.equal((await call(server, k.body.key, BODY)).status, 200);
  });

  test('only admins change limits; every member reads them', async () => {
    const o = await orgWithKey(server, 'Roles');
    const { addMember } = await import('./lib/expect.mjs');
    for (const role of ['user', 'developer', 'billing']) {
      const m = await addMember(server, o.admin, role);
      assert.equal((await m.client.get(LIMITS)).status, 200);
      assertError(await m.client.post(LIMITS, { monthly_spend_limit_usd: '5.00' }), 403, 'permission_error');
      assertError(await m.client.post('/v1/organizations/limit_requests', { tier: 'tier_1', reason: 'x' }), 403, 'permission_error');
      assertError(await m.client.post(`/v1/organizations/workspaces/${o.workspaceId}/limits`, { requests_per_minute: 5 }), 403, 'permission_error');
    }
  });
});

describe('tiers', () => {
  test('an organization advances when its purchases reach the next tier, at once', async () => {
    const o = await readyOrg(server, 'Advance');
    const k = await o.client.post('/v1/organizations/api_keys', { name: 'k' });
    let l = await limits(o.client);
    assert.equal(l.tier, 'evaluation');
    assert.equal(l.tier_set_by, 'purchases');
    assert.equal(l.next_tier.id, 'tier_1');
    assert.equal(l.next_tier.purchases_required_usd, '5.00');
    assert.equal(l.next_tier.purchases_needed_usd, '5.00');
    assert.equal(l.next_tier.progress_bp, 0);
    assert.deepEqual(l.rate_limits.map((x) => x.model_class), ['small', 'large']);
    assert.deepEqual(l.rate_limits[0], { model_class: 'small', requests_per_minute: 100000,
      input_tokens_per_minute: 100000000, output_tokens_per_minute: 10000000 });
    assert.equal(l.tiers.length, 4);

    const b = await buy(o.client, '5.00');
    assert.equal(b.status, 200, JSON.stringify(b.body));
    l = await limits(o.client);
    assert.equal(l.tier, 'tier_1');
    assert.equal(l.tier_name, 'Tier 1');
    assert.equal(l.tier_monthly_cap_usd, '100.00');
    assert.equal(l.purchases_total_usd, '5.00');
    assert.equal(l.rate_limits[0].requests_per_minute, 3);
    assert.equal(l.next_tier.id, 'tier_2');
    assert.equal(l.next_tier.purchases_needed_usd, '35.00');
    // The very next request runs on Tier 1's limits.
    const r = await call(server, k.body.key, MSG('gatehouse-mock-small', 'hi', 5));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers.get('anthropic-ratelimit-requests-limit'), '3');

    await buy(o.client, '10.00');
    l = await limits(o.client);
    assert.equal(l.next_tier.purchases_needed_usd, '25.00');
    assert.equal(l.next_tier.progress_bp, 2857); // $10 of the $35 between Tier 1 and Tier 2
    const up = await buy(o.client, '25.00');
    assert.equal(up.status, 200);
    l = await limits(o.client);
    assert.equal(l.tier, 'tier_2');
    assert.equal(l.next_tier, null);
    const after2 = await call(server, k.body.key, MSG('gatehouse-mock-small', 'hi', 5));
    assert.equal(after2.headers.get('anthropic-ratelimit-requests-limit'), '100000');
  });

  test('limit requests: asking for a tier or custom limits, one at a time', async () => {
    const o = await orgWithKey(server, 'Asks');
    let r = await o.admin.post('/v1/organizations/limit_requests', { tier: 'evaluation', reason: 'More please' });
    assertError(r, 400, 'invalid_request_error');
    assert.match(r.body.error.message, /not above your current tier/);
    assertError(await o.admin.post('/v1/organizations/limit_requests', { tier: 'tier_2' }), 400, 'invalid_request_error');
    assertError(await o.admin.post('/v1/organizations/limit_requests', { reason: 'x' }), 400, 'invalid_request_error');
    assertError(await o.admin.post('/v1/organizations/limit_requests', { tier: 'custom', reason: 'x' }), 400, 'invalid_request_error');
    r = await o.admin.post('/v1/organizations/limit_requests', { tier: 'tier_2', reason: 'Our launch needs more' });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.match(r.body.id, /^limreq_01/);
    assert.equal(r.body.status, 'pending');
    assert.equal(r.body.kind, 'tier');
    assert.equal(r.body.tier, 'tier_2');
    assert.equal(r.body.requested_by.label, o.email.toLowerCase());
    r = await o.admin.post('/v1/organizations/limit_requests', { custom: { requests_per_minute: 9000 }, reason: 'Again' });
    assertError(r, 409, 'conflict_error');
    const list = await o.admin.get('/v1/organizations/limit_requests');
    assert.equal(list.status, 200);
    assert.equal(list.body.data.length, 1);
    assert.equal(list.body.data[0].reason, 'Our launch needs more');
  });
});

describe('every admitted request is settled exactly once, whatever happens upstream', () => {
  let upstream;
  let gw;

  before(async () => {
    // An Anthropic-style upstream that answers by the first message's text.
    upstream = http.createServer((req, res) => {
      let raw = '';
      req.on('data', (d) => { raw += d; });
      req.on('end', () => {
        const body = JSON.parse(raw);
        const mode = body.messages[0].content;
        const usage = { input_tokens: 7, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 };
        const sse = (type, data) => res.write(`event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`);
        if (mode === 'fail') {
          res.writeHead(500, { 'content-type': 'application/json' });
          res.end('{"type":"error","error":{"type":"api_error","message":"boom"}}');
        } else if (mode === 'garbage') {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end('this is not json');
        } else if (mode === 'cut' || mode === 'slow') {
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          sse('message_start', { message: { id: 'm', type: 'message', role: 'assistant', model: body.model, content: [], usage: { ...usage, output_tokens: 1 } } });
          sse('content_block_start', { index: 0, content_block: { type: 'text', text: '' } });
          sse('content_block_delta', { index: 0, delta: { type: 'text_delta', text: 'Hi' } });
          if (mode === 'cut') { res.destroy(); return; }
          setTimeout(() => {
            sse('content_block_stop', { index: 0 });
            sse('message_delta', { delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 9 } });
            sse('message_stop', {});
            res.end();
          }, 300);
        } else {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ id: 'm', type: 'message', role: 'assistant', model: body.model,
            content: [{ type: 'text', text: 'Hi' }], stop_reason: 'end_turn', stop_sequence: null, usage: { ...usage, output_tokens: 3 } }));
        }
      });
    });
    await new Promise((r) => upstream.listen(0, '127.0.0.1', r));
    gw = await startServer({ config: { ...LIMITS_CONFIG,
      'model up': { style: 'anthropic', upstream_url: `http://127.0.0.1:${upstream.address().port}`, model_class: 'large',
        price_input: 1000, price_output: 1000, first_byte_timeout_ms: 5000 } } });
  });

  after(async () => {
    await gw?.stop();
    upstream?.close();
  });

  test('upstream errors, garbage, broken streams and clients that leave', async () => {
    const o = await orgWithKey(gw, 'Faults');
    await grant(gw, o.admin, o.orgId, '1.00');
    const req = (mode, extra = {}) => JSON.stringify({ model: 'up', max_tokens: 50, messages: [{ role: 'user', content: mode }], ...extra });
    const results = await Promise.all([
      call(gw, o.key, req('ok')), call(gw, o.key, req('fail')), call(gw, o.key, req('garbage')),
      call(gw, o.key, req('cut', { stream: true })), call(gw, o.key, req('slow', { stream: true })),
      call(gw, o.key, req('ok')),
    ]);
    // (How the relay answers each is tests/e2e/gateway.test.mjs's business; here: what is settled.)
    assert.deepEqual(results.map((r) => r.status), [200, 502, 200, 502, 200, 200]);
    // A client that leaves in the middle of a stream: the upstream is read to its end and charged.
    const ac = new AbortController();
    const res = await fetch(`${gw.apiUrl}/v1/messages`, { method: 'POST', signal: ac.signal,
      headers: { 'content-type': 'application/json', 'x-api-key': o.key }, body: req('slow', { stream: true }) });
    assert.equal(res.status, 200);
    ac.abort();
    // Every hold is released, and the balance in memory is $1 less exactly what was charged.
    const events = 7;
    let u;
    await until(async () => {
      const a = await admission(o.admin);
      u = sql(gw, `SELECT count(*) || ' ' || coalesce(sum(cost_nusd), 0) FROM usage_events WHERE org_id = ${sqlQuote(o.orgId)};`).trim().split(' ');
      return a.in_flight === 0 && Number(u[0]) === events &&
        nusd(a.balance_usd) === 1_000_000_000n - BigInt(u[1]) && a.reserved_usd === '0.00';
    }, 'every request settled', 10000);
    // $0.001 a token: ok twice (7 + 3 tokens), slow twice (7 + 9, the one whose client left
    // included), the broken stream what it reported before breaking (if anything), failures 0.
    const cost = BigInt(u[1]);
    assert.ok(cost === 52_000_000n || cost === 60_000_000n, `charged ${cost}`);
  });
});
