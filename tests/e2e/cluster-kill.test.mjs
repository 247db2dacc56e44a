// Money when a node dies (issue 14, point 5; docs/architecture.md, "Cluster: money"): three
// nodes on one PostgreSQL, admission on, requests flowing through all of them.
//  - A node killed with SIGKILL and started again replays its journal: every 200 response any
//    client received is charged exactly once (one usage event per request id, none twice), and
//    the organization is never charged more than its balance.
//  - A node killed and never started again: its leases lapse after lease_ttl_ms (plus the skew
//    margin), another node returns them to the organization, and the other nodes spend that
//    money, down to less than one request's worst case; the cap still holds.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster } from './lib/cluster.mjs';
import { LIMITS_CONFIG, call, orgWithKey, worstCost, usd } from './lib/limits.mjs';
import { assertLedgerConsistent, gatehouse, until } from './lib/billing.mjs';

const TTL_MS = 5000;
let c;

before(async () => {
  c = await startCluster({ nodes: 3, config: { ...LIMITS_CONFIG, cluster: { lease_ttl_ms: TTL_MS } } });
});

after(async () => {
  await c?.stop();
});

const BODY = JSON.stringify({ model: 'capped', max_tokens: 50, messages: [{ role: 'user', content: 'hi' }] });
const WORST = worstCost('capped', BODY);
const q = (s) => `'${s.replace(/'/g, "''")}'`;

async function fundedOrg(name, amount) {
  const o = await orgWithKey({ ...c.nodes[0], outbox: c.outbox }, name);
  const r = gatehouse(c.nodes[0], 'credits', 'grant', '--org', o.orgId, '--usd', amount, '--reason', 'cluster test');
  assert.equal(r.status, 0, r.stderr);
  for (let i = 1; i < c.nodes.length; i++) await c.restartNode(i); // each node loads the key
  return o;
}

// `workers` loops sending requests to the nodes in `targets()` in turn until stop() is called;
// results: [{node, status, id}] (status 0: the connection failed, a killed node).
function load(o, targets, workers = 24) {
  const results = [];
  let stopping = false;
  const loops = Array.from({ length: workers }, async (_, w) => {
    for (let i = w; !stopping; i++) {
      const nodes = targets();
      const n = nodes[i % nodes.length];
      try {
        const r = await call(n, o.key, BODY);
        results.push({ node: n.index, status: r.status, id: r.headers.get('request-id') });
      } catch {
        results.push({ node: n.index, status: 0 });
      }
    }
  });
  return {
    results,
    ok: () => results.filter((r) => r.status === 200).length,
    async stop() { stopping = true; await Promise.all(loops); return results; },
  };
}

function charged(orgId) {
  return BigInt(c.sql(`SELECT coalesce(sum(cost_nusd), 0) FROM usage_events WHERE org_id = ${q(orgId)}`).trim());
}

// Every 200 among `results` is one usage event, and no request id is charged twice.
async function assertChargedOnce(orgId, results) {
  const ids = results.filter((r) => r.status === 200).map((r) => r.id);
  assert.ok(ids.every(Boolean), 'every 200 has a request-id');
  const list = ids.map(q).join(',');
  await until(() => Number(c.sql(`SELECT count(*) FROM usage_events WHERE request_id IN (${list})`).trim()) === ids.length,
    `all ${ids.length} answered requests in usage_events`, 30000);
  const twice = c.sql(`SELECT request_id FROM usage_events WHERE org_id = ${q(orgId)} GROUP BY request_id HAVING count(*) > 1`).trim();
  assert.equal(twice, '', 'no request charged twice');
  return ids.length;
}

test('a node killed under load and started again: every 200 is charged exactly once, never above the balance', async (t) => {
  const o = await fundedOrg('Killed', '1.00');
  const l = load(o, () => c.nodes);
  await until(() => l.ok() >= 60, '60 answered requests');
  const killed = c.nodes[1].nodeId;
  await c.restartNode(1, { kill: true }); // SIGKILL, then the same data directory again
  const before = l.ok();
  await until(() => l.results.filter((r) => r.status === 200 && r.node === 1).length > 0 && l.ok() >= before + 60,
    'the restarted node to serve again');
  const results = await l.stop();
  const answered = await assertChargedOnce(o.orgId, results);
  const failed = results.filter((r) => r.status === 0).length;
  // The restarted node kept its id and went on with its own journal.
  assert.equal(c.nodes[1].nodeId, killed);
  const total = charged(o.orgId);
  assert.ok(total <= 1_000_000_000n, `charged ${usd(total)} of $1.00`);
  // What is charged beyond the 200s is only requests cut by the kill (served, journaled, the
  // response lost with the connection): at most one per failed connection.
  const events = Number(c.sql(`SELECT count(*) FROM usage_events WHERE org_id = ${q(o.orgId)}`).trim());
  assert.ok(events >= answered && events <= answered + failed, `${events} events, ${answered} answered, ${failed} cut`);
  t.diagnostic(`${answered} answered (${failed} connections cut by the kill), ${events} usage events, ${usd(total)} charged`);
  assertLedgerConsistent(c.nodes[0]);
});

test('a node killed and never started again: its leases lapse and go back; the others spend them; the cap holds', async (t) => {
  const o = await fundedOrg('Lapsed', '0.20');
  const dead = c.nodes[2];
  const l = load(o, () => c.nodes.slice(0, 3), 12);
  await until(() => l.results.filter((r) => r.status === 200 && r.node === 2).length >= 3, 'node 2 to serve');
  dead.child.kill('SIGKILL');
  await dead.waitExit();
  const held = BigInt(c.sql(`SELECT coalesce(sum(amount_nusd), 0) FROM cluster_leases
    WHERE org_id = ${q(o.orgId)} AND node_id = ${q(dead.nodeId)}`).trim());
  const results = await l.stop();
  // The dead node's lease is swept once it expired (plus the margin) by a live node.
  const t0 = Date.now();
  await until(() => c.sql(`SELECT count(*) FROM cluster_leases WHERE node_id = ${q(dead.nodeId)}`).trim() === '0',
    'the dead node\'s leases to lapse', TTL_MS * 4);
  t.diagnostic(`node 2 held ${usd(held)} when killed; swept ${Date.now() - t0} ms after the load stopped`);
  // The live nodes spend what is left, the dead node's lease included: once node 1 is idle and
  // has given its lease back, node 0 alone spends down to less than one worst case.
  await until(() => c.sql(`SELECT coalesce(sum(amount_nusd), 0) FROM cluster_leases WHERE org_id = ${q(o.orgId)}
    AND node_id <> ${q(c.nodes[0].nodeId)}`).trim() === '0', 'node 1 to give its idle lease back', TTL_MS * 4);
  let more = 0;
  for (;;) {
    const r = await call(c.nodes[0], o.key, BODY);
    if (r.status !== 200) {
      assert.equal(r.status, 400, r.text);
      break;
    }
    results.push({ node: 0, status: 200, id: r.headers.get('request-id') });
    more++;
  }
  // Every 200 of a live node is charged once; the dead node's last answers may never be (its
  // journal is gone with it), so the charged total is within the balance.
  const live = results.filter((r) => r.node !== 2);
  await assertChargedOnce(o.orgId, live);
  await until(() => Number(c.sql(`SELECT count(*) FROM usage_events WHERE org_id = ${q(o.orgId)}
    AND node_id <> ${q(dead.nodeId)}`).trim()) === live.filter((r) => r.status === 200).length, 'the live nodes\' events');
  const total = charged(o.orgId);
  const balance = 200_000_000n;
  assert.ok(total <= balance, `charged ${usd(total)} of $0.20`);
  assert.ok(balance - total < WORST, `left ${usd(balance - total)}; a request reserves ${usd(WORST)}`);
  // One statement, one snapshot: a node may give its lease back between two reads.
  const [leased, leaseRows] = c.sql(`SELECT leased_nusd,
    (SELECT coalesce(sum(amount_nusd), 0) FROM cluster_leases WHERE org_id = ${q(o.orgId)})
    FROM cluster_money WHERE org_id = ${q(o.orgId)}`).trim().split('|').map(BigInt);
  assert.equal(leased, leaseRows);
  t.diagnostic(`then ${more} sequential requests on node 0: ${usd(total)} charged, ${usd(balance - total)} left`);
  assertLedgerConsistent(c.nodes[0]);
});
