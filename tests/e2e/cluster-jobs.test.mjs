// Billing jobs run once cluster-wide (issue 14, point 5): three nodes on one PostgreSQL; only
// the leader (one session lock) runs the billing scheduler's passes, the others pass their
// kicks on. An auto-reload crossed by usage on every node fires once; every mail is sent by
// exactly one node (all nodes' outboxes counted); after the leader is killed with SIGKILL
// another node takes over and the next reload fires there, once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster } from './lib/cluster.mjs';
import { BILLING, PRICEY, billing, buy, modelCall, passes, readyOrg, until, assertLedgerConsistent } from './lib/billing.mjs';
import { listAll } from './lib/expect.mjs';

const health = async (n) => (await fetch(`${n.consoleUrl}/healthz`)).json();
const alive = (n) => n.child.exitCode === null && n.child.signalCode === null;

async function leaderOf(nodes) {
  return until(async () => {
    const h = await Promise.all(nodes.map(health));
    const leaders = nodes.filter((_, i) => h[i].leader);
    return leaders.length === 1 && leaders[0];
  }, 'exactly one leader');
}

test('auto-reload fires once, mail is sent once, and another node takes over when the leader is killed', async () => {
  const c = await startCluster({ nodes: 3, config: { ...PRICEY, billing: { scheduler_interval_s: 1 }, cluster: { poll_ms: 200, lease_ttl_ms: 2000 } } });
  try {
    const viaA = { ...c.nodes[0], outbox: c.outbox };
    const leader = await leaderOf(c.nodes);
    const followers = c.nodes.filter((n) => n !== leader);

    const { client, email } = await readyOrg(viaA, 'Reload');
    const key = (await client.post('/v1/organizations/api_keys', { name: 'usage' })).body.key;
    assert.equal((await buy(client, '10.00')).body.balance_usd, '10.00');
    const on = await client.post(`${BILLING}/auto_reload`, { enabled: true, threshold_usd: '8.00', amount_usd: '5.00' });
    assert.equal(on.status, 200, JSON.stringify(on.body));
    const reloads = async () => (await listAll(client, `${BILLING}/purchases`)).filter((p) => p.kind === 'auto_reload');

    // $1.00 a request, one on each node: 9, 8 (not below), 7 (below): one reload, to 12.
    for (const n of c.nodes) await modelCall(n, key);
    await until(async () => (await billing(client)).balance_usd === '12.00', 'the balance after one reload');
    // Two whole passes of the leader later, still one reload, and no follower ran a pass.
    const start = await passes(leader);
    await until(async () => (await passes(leader)) >= start + 2, 'two passes of the leader', 90000);
    assert.equal((await reloads()).length, 1);
    assert.equal((await billing(client)).balance_usd, '12.00');
    for (const f of followers) assert.equal(await passes(f), 0, `node ${f.index} ran a billing pass`);

    // Every mail queued (sign-in links, receipts) was sent by exactly one node.
    const sent = async () => Number(c.sql('SELECT count(*) FROM mail_outbox WHERE sent_at IS NOT NULL').trim());
    await until(async () => Number(c.sql('SELECT count(*) FROM mail_outbox WHERE sent_at IS NULL').trim()) === 0, 'the outbox to empty');
    const files = c.outbox();
    assert.equal(files.length, await sent(), `${files.length} .eml files for ${await sent()} mails`);
    const receipts = files.filter((m) => m.to?.toLowerCase().includes(email.toLowerCase()) && /receipt/i.test(m.subject ?? ''));
    console.log(`mails: ${files.length} sent, by nodes ${c.nodes.map((n) => n.outbox().length).join('/')}; receipts to the org: ${receipts.length}`);
    assert.equal(new Set(files.map((m) => m.raw)).size, files.length, 'no mail twice');
    assert.equal(receipts.length, 2, 'one receipt for the purchase, one for the reload');

    // The leader dies: another node takes the lock.
    leader.child.kill('SIGKILL');
    await leader.waitExit();
    const next = await leaderOf(followers);
    console.log(`leader node ${leader.index} killed; node ${next.index} took over`);
    client.baseUrl = next.consoleUrl;
    // Back above the threshold re-arms auto-reload; the next crossing reloads once, on the new leader.
    assert.equal((await buy(client, '10.00')).body.balance_usd, '22.00');
    for (let i = 0; i < 15; i++) await modelCall(followers[i % 2], key); // 22 - 15 = 7, below 8
    await until(async () => (await reloads()).length === 2, 'the second reload');
    await until(async () => (await billing(client)).balance_usd === '12.00', 'the second reload credited');
    const start2 = await passes(next);
    await until(async () => (await passes(next)) >= start2 + 2, 'two passes of the new leader', 90000);
    assert.equal((await reloads()).length, 2);
    for (const f of followers.filter((n) => n !== next)) assert.equal(await passes(f), 0);
    assertLedgerConsistent(next);
  } finally {
    await c.stop();
  }
});
