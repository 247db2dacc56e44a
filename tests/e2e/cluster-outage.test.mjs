// PostgreSQL stopped under load on a cluster (issue 14, point 5): three nodes, admission on,
// requests flowing through all of them, lease_ttl_ms short. While PostgreSQL is away the nodes
// serve within the leases they hold, then refuse with 529 overloaded_error and a message that
// says the node cannot reach its database; the console answers 503. PostgreSQL comes back on
// the same data and port: every node serves again without a restart, every 200 is charged
// exactly once, the organization is never charged more than its balance, the ledger agrees.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster } from './lib/cluster.mjs';
import { LIMITS_CONFIG, call, orgWithKey, usd } from './lib/limits.mjs';
import { assertLedgerConsistent, gatehouse, until } from './lib/billing.mjs';

const TTL_MS = 3000;
const LAPSED = /^This Gatehouse node (cannot reach its database|could not set aside credit for this request in time: it cannot reach its database)/;
let c;

before(async () => {
  c = await startCluster({ nodes: 3, config: { ...LIMITS_CONFIG, cluster: { lease_ttl_ms: TTL_MS } } });
});

after(async () => {
  await c?.stop();
});

const BODY = JSON.stringify({ model: 'capped', max_tokens: 50, messages: [{ role: 'user', content: 'hi' }] });
const q = (s) => `'${s.replace(/'/g, "''")}'`;

test('PostgreSQL away under load: served within leases, then 529 with the reason; console 503; all back without a restart, nothing lost', async (t) => {
  const o = await orgWithKey({ ...c.nodes[0], outbox: c.outbox }, 'Outage');
  const g = gatehouse(c.nodes[0], 'credits', 'grant', '--org', o.orgId, '--usd', '5.00', '--reason', 'cluster test');
  assert.equal(g.status, 0, g.stderr);
  for (let i = 1; i < 3; i++) await c.restartNode(i); // each node loads the key

  const results = []; // {node, phase, status, id, type, message}
  let phase = 'before', stopping = false;
  const workers = Array.from({ length: 12 }, async (_, w) => {
    for (let i = w; !stopping; i++) {
      const n = c.nodes[i % 3];
      const p = phase;
      const r = await call(n, o.key, BODY);
      results.push({ node: n.index, phase: p, status: r.status, id: r.headers.get('request-id'),
        type: r.json?.error?.type, message: r.json?.error?.message });
    }
  });
  const count = (f) => results.filter(f).length;
  await until(() => [0, 1, 2].every((i) => count((r) => r.node === i && r.status === 200) >= 10), 'every node to serve');

  phase = 'down';
  await c.pg.halt();
  const downAt = Date.now();
  // The console: 503.
  const r503 = await until(async () => {
    const r = await o.admin.get('/v1/organizations/api_keys');
    return r.status === 503 ? r : null;
  }, 'the console to answer 503');
  assert.equal(r503.body.error.type, 'api_error');
  // Every node refuses with 529 once its leases are spent or lapse (within the ttl).
  await until(() => [0, 1, 2].every((i) => count((r) => r.node === i && r.phase === 'down' && r.status === 529) > 0),
    'every node to answer 529', TTL_MS * 10);
  const lapsedAfter = Date.now() - downAt;
  for (const r of results.filter((x) => x.status !== 200)) {
    if (r.status === 529) {
      assert.equal(r.type, 'overloaded_error');
      assert.match(r.message, LAPSED);
    } else {
      assert.fail(`unexpected ${r.status} ${r.type} (phase ${r.phase}, node ${r.node}, ${results.filter((x) => x.status !== 200).length} refusals): ${r.message}`);
    }
  }
  const servedDown = count((r) => r.phase === 'down' && r.status === 200);

  phase = 'after';
  await c.pg.restart();
  // Every node serves again by itself.
  await until(() => [0, 1, 2].every((i) => count((r) => r.node === i && r.phase === 'after' && r.status === 200) >= 5),
    'every node to serve again', 60000);
  stopping = true;
  await Promise.all(workers);
  assert.equal((await o.admin.get('/v1/organizations/api_keys')).status, 200);

  // Nothing lost: every 200 is one usage event, none twice; never above the balance.
  const ids = results.filter((r) => r.status === 200).map((r) => r.id);
  const list = ids.map(q).join(',');
  await until(() => Number(c.sql(`SELECT count(*) FROM usage_events WHERE request_id IN (${list})`).trim()) === ids.length,
    `all ${ids.length} answered requests in usage_events`, 60000);
  assert.equal(c.sql(`SELECT request_id FROM usage_events WHERE org_id = ${q(o.orgId)} GROUP BY 1 HAVING count(*) > 1`).trim(), '');
  const events = Number(c.sql(`SELECT count(*) FROM usage_events WHERE org_id = ${q(o.orgId)}`).trim());
  assert.equal(events, ids.length);
  const charged = BigInt(c.sql(`SELECT coalesce(sum(cost_nusd), 0) FROM usage_events WHERE org_id = ${q(o.orgId)}`).trim());
  assert.ok(charged <= 5_000_000_000n, `charged ${usd(charged)} of $5.00`);
  t.diagnostic(`${servedDown} served while PostgreSQL was away, every node refusing with 529 after ${lapsedAfter} ms; ` +
    `${ids.length} answered in all, ${usd(charged)} charged`);
  assertLedgerConsistent(c.nodes[0]);
});
