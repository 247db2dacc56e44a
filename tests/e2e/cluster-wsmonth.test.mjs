// Workspace monthly limits exact across nodes (issue 14, point 3; docs/architecture.md,
// "Cluster: money"): three nodes on one PostgreSQL, admission on. A workspace with a monthly
// limit is leased per node like its organization's money, so no node admits against headroom
// another node may spend: an organization with $10 of credit and a workspace limited to $0.30,
// 500 concurrent requests over the three nodes in waves until refused -> the workspace's spend
// stays within $0.30, the refusals are the workspace-limit error, `gatehouse ledger check`
// agrees, and the organization's other workspace is still served. Once traffic stops, idle
// nodes give their workspace leases back and ONE node spends the workspace down to less than
// one request's worst case.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster } from './lib/cluster.mjs';
import { LIMITS_CONFIG, PRICES, call, mockInput, orgWithKey, price, worstCost, usd } from './lib/limits.mjs';
import { assertLedgerConsistent, gatehouse, until } from './lib/billing.mjs';

const TTL_MS = 2000;
const LIMIT = 300_000_000n; // $0.30
const WS_REFUSAL = /^You have reached this workspace's monthly spend limit of \$0\.30\. You will regain access on \d{4}-\d\d-\d\d at 00:00 UTC, or sooner if an admin raises the limit\.$/;
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

function usage(where) {
  const [n, cost] = c.sql(`SELECT count(*), coalesce(sum(cost_nusd), 0) FROM usage_events WHERE ${where}`).trim().split('|');
  return { count: Number(n), cost: BigInt(cost) };
}

// Waves of 500 concurrent requests, round robin over the nodes, until a wave gets nothing
// through. Every refusal is the workspace-limit refusal, or a 529 after waiting its whole turn
// for a refill (the SDK retries those); never another error.
async function wavesUntilRefused(key, body, outputTokens) {
  let ok = 0, refused = 0, busy = 0, waves = 0;
  for (;;) {
    waves++;
    const results = await Promise.all(Array.from({ length: 500 }, (_, i) => call(c.nodes[i % c.nodes.length], key, body)));
    let got = 0;
    for (const r of results) {
      if (r.status === 200) {
        got++;
        assert.equal(r.json.usage.output_tokens, outputTokens);
      } else if (r.status === 529) {
        assert.equal(r.json.error.type, 'overloaded_error', r.text);
        busy++;
      } else {
        assert.equal(r.status, 400, r.text);
        assert.equal(r.json.error.type, 'invalid_request_error');
        assert.match(r.json.error.message, WS_REFUSAL);
        refused++;
      }
    }
    ok += got;
    if (got === 0 || waves === 20) break;
  }
  return { ok, refused, busy, waves };
}

test('a workspace limit of $0.30 with $10 of credit: three nodes never spend more than the limit; the other workspace is unaffected', async (t) => {
  const node0 = { ...c.nodes[0], outbox: c.outbox };
  const o = await orgWithKey(node0, 'WsMonth');
  const g = gatehouse(c.nodes[0], 'credits', 'grant', '--org', o.orgId, '--usd', '10.00', '--reason', 'cluster test');
  assert.equal(g.status, 0, g.stderr);
  const team = await o.admin.post('/v1/organizations/workspaces', { name: 'Capped team' });
  assert.equal(team.status, 201, JSON.stringify(team.body));
  const lim = await o.admin.post(`/v1/organizations/workspaces/${team.body.id}/limits`, { monthly_spend_limit_usd: '0.30' });
  assert.equal(lim.status, 200, JSON.stringify(lim.body));
  const k = await o.admin.post('/v1/organizations/api_keys', { name: 'team key', workspace_id: team.body.id });
  assert.equal(k.status, 201, JSON.stringify(k.body));
  // Nodes 1 and 2 restarted, so that this file does not depend on the change feed.
  for (let i = 1; i < c.nodes.length; i++) await c.restartNode(i);

  const body = JSON.stringify(MSG('hi', 50));
  const worst = worstCost('capped', body);
  const actual = price(mockInput('hi'), PRICES.capped.in) + price(30, PRICES.capped.out);
  const wsWhere = `workspace_id = ${q(team.body.id)}`;

  const w = await wavesUntilRefused(k.body.key, body, 30);
  assert.ok(w.waves < 20, 'a wave got nothing through');
  assert.ok(w.refused > 0, 'the workspace limit refused requests');
  await until(() => usage(wsWhere).count >= w.ok, `${w.ok} usage events`);
  let u = usage(wsWhere);
  assert.equal(u.count, w.ok);
  assert.equal(u.cost, BigInt(w.ok) * actual);
  assert.ok(u.cost <= LIMIT, `the workspace spent ${usd(u.cost)} of a $0.30 limit`);
  assert.ok(u.cost > LIMIT / 2n, `spent ${usd(u.cost)}: most of the limit was usable`);
  t.diagnostic(`${w.waves} waves of 500 over 3 nodes: ${w.ok} admitted (${usd(u.cost)} of $0.30), ${w.refused} refused with the workspace limit, ${w.busy} 529 after waiting for a refill`);

  // In the database: month spend + leased never exceeds the limit, the leases add up.
  // One statement, one snapshot: an idle node may give its lease back between two reads.
  const [spent, leasedTotal, leaseRows] = c.sql(`SELECT month_spent_nusd, leased_nusd,
    (SELECT coalesce(sum(amount_nusd), 0) FROM cluster_ws_leases WHERE ${wsWhere})
    FROM cluster_ws_money WHERE ${wsWhere}`).trim().split('|').map(BigInt);
  assert.equal(spent, u.cost);
  assert.ok(spent + leasedTotal <= LIMIT, `spent ${spent} + leased ${leasedTotal} <= ${LIMIT}`);
  assert.equal(leaseRows, leasedTotal);
  assertLedgerConsistent(c.nodes[0]);

  // The organization's other workspace (the default one) is served on every node.
  for (const n of c.nodes) {
    const r = await call(n, o.key, body);
    assert.equal(r.status, 200, r.text);
  }

  // Traffic stops: nodes 1 and 2 give their workspace leases back once idle, and node 0 alone
  // spends the workspace down to less than one request's worst case.
  await until(() => big(c.sql(`SELECT coalesce(sum(amount_nusd), 0) FROM cluster_ws_leases WHERE ${wsWhere} AND node_id <> ${q(c.nodes[0].nodeId)}`)) === 0n,
    'nodes 1 and 2 to return their idle workspace leases', 30000);
  let more = 0;
  for (;;) {
    const r = await call(c.nodes[0], k.body.key, body);
    if (r.status !== 200) {
      assert.equal(r.status, 400, r.text);
      assert.match(r.json.error.message, WS_REFUSAL);
      break;
    }
    more++;
    assert.ok(more < 100000);
  }
  await until(() => usage(wsWhere).count >= w.ok + more, 'the sequential usage events');
  u = usage(wsWhere);
  assert.ok(u.cost <= LIMIT, `the workspace spent ${usd(u.cost)} of $0.30`);
  assert.ok(LIMIT - u.cost < worst, `left ${usd(LIMIT - u.cost)}, a request reserves ${usd(worst)}`);
  t.diagnostic(`then ${more} sequential requests on node 0: ${usd(LIMIT - u.cost)} of the limit left, worst case ${usd(worst)}`);
  assertLedgerConsistent(c.nodes[0]);
});
