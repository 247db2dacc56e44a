// Money exact across nodes (issue 14, point 3; docs/architecture.md, "Cluster: money"): three
// nodes on one PostgreSQL, admission on. Each node spends only its lease of an organization's
// money, so whatever the interleaving the cluster never charges more than the balance: 500
// concurrent requests spread over the three nodes, in waves until the money is gone, against an
// organization at $1.00 and one at $0.05; `gatehouse ledger check` agrees; every 200 response is
// one usage event. Once traffic stops, idle nodes give their leases back and ONE node spends
// down to less than one request's worst case. A monthly limit is leased the same way: $0.50 of
// limit with $10 of credit is never exceeded.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster } from './lib/cluster.mjs';
import { LIMITS, LIMITS_CONFIG, CREDIT_MESSAGE, PRICES, call, mockInput, orgWithKey, price, worstCost, usd } from './lib/limits.mjs';
import { assertLedgerConsistent, gatehouse, until } from './lib/billing.mjs';

const TTL_MS = 2000;
let c;

before(async () => {
  c = await startCluster({ nodes: 3, config: { ...LIMITS_CONFIG, cluster: { lease_ttl_ms: TTL_MS } } });
});

after(async () => {
  await c?.stop();
});

const MSG = (text, maxTokens) => ({ model: 'capped', max_tokens: maxTokens, messages: [{ role: 'user', content: text }] });
const q = (s) => `'${s.replace(/'/g, "''")}'`;
const big = (s) => BigInt(s.trim() || '0');

// A figure of a node's /metrics, as a BigInt.
async function metric(node, name) {
  const text = await (await fetch(`${node.consoleUrl}/metrics`)).text();
  const m = text.match(new RegExp(`^${name} (-?\\d+)$`, 'm'));
  assert.ok(m, `no ${name} in /metrics`);
  return BigInt(m[1]);
}

// An organization with a key and `amount` granted (on the command line, against node 0's
// data directory: the same database), known to every node (nodes 1 and 2 restarted, so that
// this file does not depend on the change feed).
async function fundedOrg(name, amount) {
  const o = await orgWithKey({ ...c.nodes[0], outbox: c.outbox }, name);
  const r = gatehouse(c.nodes[0], 'credits', 'grant', '--org', o.orgId, '--usd', amount, '--reason', 'cluster test');
  assert.equal(r.status, 0, r.stderr);
  for (let i = 1; i < c.nodes.length; i++) await c.restartNode(i);
  return o;
}

// Committed usage of an organization: {count, cost}.
function usage(orgId) {
  const [n, cost] = c.sql(`SELECT count(*), coalesce(sum(cost_nusd), 0) FROM usage_events WHERE org_id = ${q(orgId)}`).trim().split('|');
  return { count: Number(n), cost: BigInt(cost) };
}

const leased = (orgId, where = '') =>
  big(c.sql(`SELECT coalesce(sum(amount_nusd), 0) FROM cluster_leases WHERE org_id = ${q(orgId)} ${where}`));

// Waves of 500 concurrent requests, round robin over the nodes, until a wave gets nothing
// through. Every refusal is the credit refusal (never an error, never a 5xx).
async function wavesUntilRefused(o, body, outputTokens, message = CREDIT_MESSAGE) {
  let ok = 0, refused = 0, busy = 0, waves = 0;
  for (;;) {
    waves++;
    const results = await Promise.all(Array.from({ length: 500 }, (_, i) => call(c.nodes[i % c.nodes.length], o.key, body)));
    let got = 0;
    for (const r of results) {
      if (r.status === 200) {
        got++;
        assert.equal(r.json.usage.output_tokens, outputTokens);
      } else if (r.status === 529) {
        // Waited its whole turn for a refill while others took the money first: the node
        // could not set credit aside in time (the SDK retries a 529), never a wrong charge.
        assert.equal(r.json.error.type, 'overloaded_error', r.text);
        assert.match(r.json.error.message, /^This Gatehouse node could not set aside credit for this request in time/);
        busy++;
      } else {
        assert.equal(r.status, 400, r.text);
        assert.equal(r.json.error.type, 'invalid_request_error');
        if (typeof message === 'string') assert.equal(r.json.error.message, message);
        else assert.match(r.json.error.message, message);
        refused++;
      }
    }
    ok += got;
    if (got === 0 || waves === 20) break;
  }
  return { ok, refused: refused + busy, busy, waves };
}

for (const [name, amount, dollars] of [['Dollar', '1.00', 1_000_000_000n], ['Nickel', '0.05', 50_000_000n]]) {
  test(`$${amount}: 500 concurrent requests over three nodes never charge more than the balance; then one node spends it down`, async (t) => {
    const o = await fundedOrg(name, amount);
    const body = JSON.stringify(MSG('hi', 50));
    const worst = worstCost('capped', body);
    const actual = price(mockInput('hi'), PRICES.capped.in) + price(30, PRICES.capped.out); // 30 natural tokens

    const w = await wavesUntilRefused(o, body, 30);
    assert.ok(w.waves < 20, 'a wave got nothing through');
    assert.ok(w.ok > 0, 'requests were admitted');
    // Every 200 is one usage event, charged its actual cost, and the total is within the balance.
    await until(() => usage(o.orgId).count >= w.ok, `${w.ok} usage events`);
    let u = usage(o.orgId);
    assert.equal(u.count, w.ok);
    assert.equal(u.cost, BigInt(w.ok) * actual);
    assert.ok(u.cost <= dollars, `charged ${usd(u.cost)} of $${amount}`);
    t.diagnostic(`${w.waves} waves of 500 over 3 nodes: ${w.ok} admitted (${usd(u.cost)}), ${w.refused} refused (${w.busy} of them 529 after waiting for a refill)`);

    // In the database: the leases never exceed the balance, and the ledger agrees. One
    // statement, so one snapshot: an idle node may give its lease back at any moment now
    // (after lease_ttl_ms), and two separate reads could straddle that return.
    const [balance, leasedTotal, leaseRows] = c.sql(`SELECT b.balance_nusd, m.leased_nusd,
      (SELECT coalesce(sum(amount_nusd), 0) FROM cluster_leases WHERE org_id = ${q(o.orgId)})
      FROM billing_accounts b JOIN cluster_money m USING (org_id)
      WHERE org_id = ${q(o.orgId)}`).trim().split('|').map(BigInt);
    assert.equal(balance, dollars - u.cost);
    assert.ok(leasedTotal <= balance, `leased ${leasedTotal} <= balance ${balance}`);
    assert.equal(leaseRows, leasedTotal);
    assertLedgerConsistent(c.nodes[0]);

    // Traffic stops: the idle nodes 1 and 2 give their leases back (after lease_ttl_ms idle).
    await until(() => leased(o.orgId, `AND node_id <> ${q(c.nodes[0].nodeId)}`) === 0n,
      'nodes 1 and 2 to return their idle leases', 30000);
    // Node 0 alone now spends down to less than one worst case.
    let more = 0;
    for (;;) {
      const r = await call(c.nodes[0], o.key, body);
      if (r.status !== 200) {
        assert.equal(r.status, 400, r.text);
        assert.deepEqual(r.json.error, { type: 'invalid_request_error', message: CREDIT_MESSAGE });
        break;
      }
      more++;
      assert.ok(more < 100000);
    }
    await until(() => usage(o.orgId).count >= w.ok + more, 'the sequential usage events');
    u = usage(o.orgId);
    assert.equal(u.count, w.ok + more);
    assert.ok(u.cost <= dollars, `charged ${usd(u.cost)} of $${amount}`);
    assert.ok(dollars - u.cost < worst, `left ${usd(dollars - u.cost)}, a request reserves ${usd(worst)} (${more} sequential requests on node 0)`);
    // Node 0's engine holds exactly what its lease rows hold, once every cost is committed
    // (lease.h, I2), and /metrics says so.
    const rows = () => big(c.sql(`SELECT coalesce(sum(amount_nusd), 0) FROM cluster_leases WHERE node_id = ${q(c.nodes[0].nodeId)}`));
    await until(async () => (await metric(c.nodes[0], 'gatehouse_cluster_leases_held_nusd')) === rows(),
      'node 0\'s engine to hold what its lease rows hold');
    assert.ok((await metric(c.nodes[0], 'gatehouse_cluster_lease_refills_total')) > 0n);
    t.diagnostic(`then ${more} sequential requests on node 0: ${usd(dollars - u.cost)} left, worst case ${usd(worst)}`);
    assertLedgerConsistent(c.nodes[0]);
  });
}

test('a monthly limit of $0.50 with $10 of credit: three nodes never spend more than the limit', async (t) => {
  const o = await fundedOrg('Monthly', '10.00');
  // Set on node 0 only: the lease function reads the organization's own limit from the
  // database, so nodes that have not heard of it yet cannot lease past it.
  const r = await o.admin.post(LIMITS, { monthly_spend_limit_usd: '0.50' });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const body = JSON.stringify(MSG('hi', 50));
  const actual = price(mockInput('hi'), PRICES.capped.in) + price(30, PRICES.capped.out);
  const limit = 500_000_000n;
  const w = await wavesUntilRefused(o, body, 30,
    /^(Your credit balance is too low|You have reached your organization's monthly spend limit of \$0\.50\.)/);
  await until(() => usage(o.orgId).count >= w.ok, `${w.ok} usage events`);
  const u = usage(o.orgId);
  assert.equal(u.count, w.ok);
  assert.equal(u.cost, BigInt(w.ok) * actual);
  assert.ok(u.cost <= limit, `spent ${usd(u.cost)} of a $0.50 limit`);
  assert.ok(u.cost > limit / 2n, `spent ${usd(u.cost)}: most of the limit was usable`);
  const [spent, leasedTotal] = c.sql(`SELECT month_spent_nusd, leased_nusd FROM cluster_money WHERE org_id = ${q(o.orgId)}`).trim().split('|').map(BigInt);
  assert.equal(spent, u.cost);
  assert.ok(spent + leasedTotal <= limit, `spent ${spent} + leased ${leasedTotal} <= ${limit}`);
  // Once the limit binds, refusals say so.
  const last = await call(c.nodes[1], o.key, body);
  if (last.status !== 200) assert.match(last.json.error.message, /monthly spend limit of \$0\.50/, last.text);
  t.diagnostic(`${w.waves} waves over 3 nodes: ${w.ok} admitted, ${usd(u.cost)} of a $0.50 limit with $10 of credit`);
  assertLedgerConsistent(c.nodes[0]);
});
