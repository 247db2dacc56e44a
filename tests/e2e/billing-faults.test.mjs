// Billing when things break: the server killed between charging a card and crediting it
// (the restart credits the purchase exactly once), and killed with SIGKILL while usage is
// being charged to credit lots (the journal replay charges every delivered request once).
// Each ends with `gatehouse ledger check` recomputing every balance.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer } from './lib/server.mjs';
import { sql } from './lib/expect.mjs';
import {
  BILLING, PRICEY, DOLLAR_REQUEST, buy, billing, readyOrg, until, gatehouse, assertLedgerConsistent,
  nusd, usd, newKey,
} from './lib/billing.mjs';

const dirs = [];
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });
const freshDir = () => { const d = mkdtempSync(join(tmpdir(), 'gatehouse-billing-')); dirs.push(d); return d; };

const CONFIG = { ...PRICEY, billing: { scheduler_interval_s: 1, pending_retry_s: 1 } };
const CRASH = { GATEHOUSE_TEST_CRASH_AFTER_CHARGE: '1' };

test('killed between the charge and the credit: the restart credits the purchase exactly once', async () => {
  const dataDir = freshDir();
  let server = await startServer({ dataDir, config: CONFIG, env: CRASH });
  let state;
  try {
    state = await readyOrg(server, 'Crash');
    const login = state.client;
    const k = newKey();
    // The card is charged, then the process dies before anything is credited.
    await assert.rejects(buy(login, '42.00', k));
    const exit = await server.waitExit();
    assert.equal(exit.code, 75, server.log);
    assert.match(server.log, /GATEHOUSE_TEST_CRASH_AFTER_CHARGE is set: exiting between the charge of (pur_01\w{22}) and its credit/);
    const purchaseId = server.log.match(/between the charge of (pur_01\w{22})/)[1];
    const charge = server.log.match(/pay\(test\): charge (test_ch_\w+) of \$42\.00 for pur_01\w{22}: succeeded/)[1];
    assert.equal(sql(server, `SELECT status FROM purchases WHERE id = '${purchaseId}'`).trim(), 'pending');
    assert.equal(sql(server, 'SELECT count(*) FROM credit_lots').trim(), '0');

    // Restarted without the fault: the pending purchase from the previous run is charged again
    // with the same idempotency key (the same charge) and credited once.
    server = await startServer({ dataDir, config: CONFIG });
    login.baseUrl = server.consoleUrl; // the session is in the database; the port is new
    const b = await until(async () => {
      const v = await billing(login);
      return v.balance_usd === '42.00' && v;
    }, 'the purchase to be credited after the restart');
    assert.equal(b.lots.length, 1);
    assert.equal(b.pending_purchases, 0);
    const p = (await login.get(`${BILLING}/purchases/${purchaseId}`)).body;
    assert.equal(p.status, 'succeeded');
    assert.equal(p.provider_ref, charge, 'the retry is the same charge, not a second one');
    assert.equal(p.attempts, 1);
    assert.match(server.log, new RegExp(`retrying pending purchase ${purchaseId}`));
    // The client's own retry with the same key finds the same purchase.
    const again = await buy(login, '42.00', k);
    assert.equal(again.status, 200, JSON.stringify(again.body));
    assert.equal(again.body.id, purchaseId);
    assert.equal(again.body.balance_usd, '42.00');
    assert.equal((await login.get('/v1/organizations/invoices')).body.data.length, 1);
    assert.equal(sql(server, `SELECT count(*) FROM ledger_entries WHERE kind = 'purchase' AND reference = '${purchaseId}'`).trim(), '1');
    assertLedgerConsistent(server);
  } finally {
    await server.stop({ keepData: true, expectFailure: server.child.exitCode !== null });
  }
});

test('SIGKILL while usage is charged: every delivered request is charged once after the restart', async () => {
  const dataDir = freshDir();
  let server = await startServer({ dataDir, config: CONFIG });
  const { client: admin, orgId } = await readyOrg(server, 'Killed');
  assert.equal(gatehouse(server, 'credits', 'grant', '--org', orgId, '--usd', '50', '--reason', 'load test').status, 0);
  const key = (await admin.post('/v1/organizations/api_keys', { name: 'load' })).body.key;
  let delivered = 0;
  let killed = false;
  const body = JSON.stringify(DOLLAR_REQUEST);
  const worker = async () => {
    while (!killed) {
      try {
        const r = await fetch(`${server.apiUrl}/v1/messages`, {
          method: 'POST', body,
          headers: { 'content-type': 'application/json', 'x-api-key': key, 'anthropic-version': '2023-06-01' },
        });
        const j = await r.json();
        if (r.status === 200 && j.type === 'message') delivered++;
      } catch { /* cut off by the kill */ }
    }
  };
  const workers = Array.from({ length: 8 }, worker);
  // Past the $50 of credit, so lots run out and the balance goes negative under load.
  await until(() => delivered >= 120, '120 delivered requests', 30000);
  server.child.kill('SIGKILL');
  killed = true;
  await server.waitExit();
  await Promise.all(workers);

  server = await startServer({ dataDir, config: CONFIG });
  admin.baseUrl = server.consoleUrl;
  try {
    const events = Number(sql(server, `SELECT count(*) FROM usage_events WHERE org_id = '${orgId}'`));
    assert.ok(events >= delivered, `${events} usage events for ${delivered} delivered responses`);
    const cost = BigInt(sql(server, `SELECT sum(cost_nusd) FROM usage_events WHERE org_id = '${orgId}'`).trim());
    assert.equal(cost, BigInt(events) * 1_000_000_000n, 'every request cost $1.00');
    const b = await billing(admin);
    assert.equal(b.balance_usd, usd(nusd('50') - cost));
    assert.ok(nusd(b.balance_usd) < 0n, 'usage went past the credits');
    assert.deepEqual(b.lots, []);
    assertLedgerConsistent(server);
    // A purchase pays what usage took beyond the credits first; the rest is the new balance.
    const bought = await buy(admin, usd(-nusd(b.balance_usd) + nusd('10')));
    assert.equal(bought.status, 200, JSON.stringify(bought.body));
    assert.equal(bought.body.balance_usd, '10.00');
    const lots = (await billing(admin)).lots;
    assert.equal(lots.length, 1);
    assert.equal(lots[0].remaining_usd, '10.00');
    assertLedgerConsistent(server);
  } finally {
    await server.stop();
  }
});
