// Spend notifications (issue 16, point 10): admins and billing members choose thresholds on
// the month's spend (an amount, or a percentage of the monthly spend limit) and on the credit
// balance; real model calls through the gateway cross them, and the usage writer queues
// exactly one mail per threshold per month (one per balance fall) to admins and billing
// members only, in the transaction that charges the usage, so a restart sends nothing again
// and a SIGKILL right after the crossing calls neither loses the notice nor doubles it.
// The Organization API validates with messages a person can act on, and records audit events.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { startServer } from './lib/server.mjs';
import { addMember, assertError, sql, sqlQuote, idPattern, TIME } from './lib/expect.mjs';
import { readyOrg } from './lib/billing.mjs';
import { LIMITS, LIMITS_CONFIG, PRICES, call, grant, orgWithKey, price, until, usd } from './lib/limits.mjs';

const N = '/v1/organizations/limits/notifications';
const DIME = { model: 'dime', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] };

let server;
const options = { config: LIMITS_CONFIG };

before(async () => {
  server = await startServer(options);
});

after(async () => {
  await server?.stop({ keepData: true });
  if (server) rmSync(server.dataDir, { recursive: true, force: true });
});

// One model call through the gateway; returns its cost in nano-USD (a cent per token).
async function spend(key) {
  const r = await call(server, key, DIME);
  assert.equal(r.status, 200, r.text);
  return price(r.json.usage.input_tokens, PRICES.dime.in) + price(r.json.usage.output_tokens, PRICES.dime.out);
}

// Waits until the usage writer has committed `count` events of the organization (the
// notices are queued in those same transactions).
async function committed(orgId, count) {
  await until(() => Number(sql(server, `SELECT count(*) FROM usage_events WHERE org_id = ${sqlQuote(orgId)};`).trim()) >= count,
    `${count} usage events`);
}

// The notice rows queued in the outbox table for these addresses: [{to, subject}].
function noticeRows(emails) {
  const list = emails.map(sqlQuote).join(',');
  const out = sql(server, `SELECT recipient, subject FROM mail_outbox
    WHERE recipient IN (${list}) AND subject NOT LIKE 'You are invited%' AND subject NOT LIKE 'Sign in%' ORDER BY id;`).trim();
  return out ? out.split('\n').map((l) => { const at = l.indexOf('|'); return { to: l.slice(0, at), subject: l.slice(at + 1) }; }) : [];
}

const cents = (n) => (n / 10_000_000n) * 10_000_000n;

describe('spend notifications', () => {
  let o, billing, dev, user, c;

  before(async () => {
    o = await orgWithKey(server, 'Notify Co');
    billing = await addMember(server, o.admin, 'billing');
    dev = await addMember(server, o.admin, 'developer');
    user = await addMember(server, o.admin, 'user');
    await grant(server, o.admin, o.orgId, '10.00');
    const l = await o.admin.post(LIMITS, { monthly_spend_limit_usd: '8.00' });
    assert.equal(l.status, 200, JSON.stringify(l.body));
  });

  test('the API validates, and only admins and billing members manage them', async () => {
    let r = await o.admin.get(N);
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { data: [], max_count: 20 });
    const bad = [
      [{ kind: 'spend_amount', amount_usd: '0' }, /above \$0 with whole cents/],
      [{ kind: 'spend_amount', amount_usd: '-5' }, /above \$0 with whole cents/],
      [{ kind: 'spend_amount', amount_usd: '1.001' }, /whole cents/],
      [{ kind: 'spend_amount', amount_usd: 5 }, /like "50.00"/],
      [{ kind: 'spend_amount' }, /amount must be in USD/],
      [{ kind: 'balance_below', amount_usd: 'ten' }, /amount must be in USD/],
      [{ kind: 'spend_percent', percent: 0 }, /whole number from 1 to 100/],
      [{ kind: 'spend_percent', percent: 101 }, /whole number from 1 to 100/],
      [{ kind: 'spend_percent', percent: 50.5 }, /whole number from 1 to 100/],
      [{ kind: 'spend_percent', amount_usd: '5.00', percent: 5 }, /takes a percent, not an amount/],
      [{ kind: 'spend_amount', amount_usd: '5.00', percent: 5 }, /not a percent/],
      [{ kind: 'weekly', amount_usd: '5.00' }, /Choose what to be notified about/],
      [{ amount_usd: '5.00' }, /Choose what to be notified about/],
      [{ kind: 'spend_amount', amount_usd: '5.00', email: 'x@example.com' }, /email/],
    ];
    for (const [body, msg] of bad) {
      r = await o.admin.post(N, body);
      assertError(r, 400, 'invalid_request_error');
      assert.match(r.body.error.message, msg, JSON.stringify(body));
      assert.doesNotMatch(r.body.error.message, /^[a-z_]+: /, 'a sentence, not a field name');
    }
    // Developers and users can neither see nor add them.
    for (const m of [dev, user]) {
      assertError(await m.client.get(N), 403, 'permission_error');
      assertError(await m.client.post(N, { kind: 'spend_amount', amount_usd: '5.00' }), 403, 'permission_error');
    }
    assert.deepEqual((await o.admin.get(N)).body.data, [], 'nothing was added by a refused request');

    // At most 20; a duplicate is a conflict; a billing member may add and remove.
    const made = [];
    for (let i = 1; i <= 20; i++) {
      r = await billing.client.post(N, { kind: 'spend_amount', amount_usd: `${1000 + i}.00` });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      made.push(r.body.id);
    }
    r = await o.admin.post(N, { kind: 'spend_amount', amount_usd: '3000.00' });
    assertError(r, 400, 'invalid_request_error');
    assert.match(r.body.error.message, /at most 20 spend notifications\. Remove one/);
    for (const id of made.slice(1)) assert.equal((await billing.client.request('DELETE', `${N}/${id}`)).status, 200);
    r = await o.admin.post(N, { kind: 'spend_amount', amount_usd: '1001.00' });
    assertError(r, 409, 'conflict_error');
    assert.match(r.body.error.message, /already a notification for the monthly spend of \$1001\.00/);
    assert.equal((await o.admin.request('DELETE', `${N}/${made[0]}`)).status, 200);
    r = await o.admin.request('DELETE', `${N}/${made[0]}`);
    assertError(r, 404, 'not_found_error');
    assert.match(r.body.error.message, /no spend notification with that id/);
    assert.deepEqual((await o.admin.get(N)).body.data, []);

    // Each change is in the audit log, filterable by its action.
    const a = await o.admin.get('/v1/organizations/audit_log?action=limits.notification_added&limit=100');
    assert.equal(a.status, 200, JSON.stringify(a.body));
    assert.equal(a.body.data.length, 20);
    assert.equal(a.body.data[0].actor.label, billing.email);
    assert.equal(a.body.data[0].target.type ?? a.body.data[0].target_type, 'spend_notification');
    const d = await o.admin.get('/v1/organizations/audit_log?action=limits.notification_removed&limit=100');
    assert.equal(d.body.data.length, 20);
  });

  test('crossing thresholds with real calls mails admins and billing members once per threshold', async () => {
    // One call first, to know what a call costs (whole cents: a cent a token).
    c = await spend(o.key);
    await committed(o.orgId, 1);
    assert.equal(noticeRows([o.email, billing.email, dev.email, user.email]).length, 0);

    // After five calls in all: the amount (three calls' worth) and the percentage (of the $8
    // limit, at most five calls' worth) are reached, the balance ($10 less four calls' worth,
    // reached after the fourth call) falls below its amount, $500 is not reached.
    const amount = 3n * c;
    const percent = Number((5n * c * 100n) / 8_000_000_000n);
    assert.ok(percent >= 1 && (8_000_000_000n * BigInt(percent)) / 100n > c, `a usable percentage (${percent})`);
    const below = 10_000_000_000n - 3n * c - 1n;
    const add = async (body) => {
      const r = await o.admin.post(N, body);
      assert.equal(r.status, 201, JSON.stringify(r.body));
      assert.match(r.body.id, idPattern('spendntf'));
      assert.match(r.body.created_at, TIME);
      assert.equal(r.body.notified_at, null);
      return r.body;
    };
    const rAmount = await add({ kind: 'spend_amount', amount_usd: usd(amount) });
    const rNever = await add({ kind: 'spend_amount', amount_usd: '500.00' });
    const rPct = await add({ kind: 'spend_percent', percent });
    const rBal = await add({ kind: 'balance_below', amount_usd: usd(cents(below)) });
    assert.equal(rPct.percent, percent);
    assert.equal(rPct.amount_usd, null);

    for (let i = 0; i < 4; i++) await spend(o.key);
    await committed(o.orgId, 5);
    const contacts = [o.email, billing.email].sort();
    const everyone = [o.email, billing.email, dev.email, user.email];
    let rows = noticeRows(everyone);
    const subjects = {
      amount: `Gatehouse: Notify Co spent $${usd(amount)} this month`,
      pct: `Gatehouse: Notify Co reached ${percent}% of its monthly spend limit`,
      bal: `Gatehouse: the credit balance of Notify Co is below $${usd(cents(below))}`,
    };
    for (const s of Object.values(subjects))
      assert.deepEqual(rows.filter((r) => r.subject === s).map((r) => r.to).sort(), contacts, s);
    assert.equal(rows.length, 6, JSON.stringify(rows));

    // The .eml files: the same six, to the admin and the billing member only.
    await until(() => server.outbox().filter((m) => /^Gatehouse: /.test(m.subject ?? '')).length >= 6, 'six notice mails');
    const mails = server.outbox().filter((m) => /^Gatehouse: /.test(m.subject ?? ''));
    assert.equal(mails.length, 6);
    assert.deepEqual([...new Set(mails.map((m) => m.to))].sort(), contacts);
    const pctMail = mails.find((m) => m.subject === subjects.pct);
    assert.match(pctMail.body, /has spent \$\d+\.\d\d this month \(UTC\), \d+% or more of its monthly spend limit of \$8\.00/);
    assert.ok(pctMail.body.includes(`${server.consoleUrl}/settings/limits`));
    assert.match(pctMail.html, /<a class="button" href="[^"]+\/settings\/limits"[^>]*>Open Limits<\/a>/);
    const balMail = mails.find((m) => m.subject === subjects.bal);
    assert.match(balMail.body, /Auto-reload is off/);

    // The list shows what was notified this month.
    const list = (await billing.client.get(N)).body.data;
    const byId = Object.fromEntries(list.map((n) => [n.id, n]));
    for (const r of [rAmount, rPct, rBal]) assert.match(byId[r.id].notified_at ?? '', TIME, r.kind);
    assert.equal(byId[rNever.id].notified_at, null);

    // More spend in the same month notifies nothing again.
    await spend(o.key);
    await spend(o.key);
    await committed(o.orgId, 7);
    assert.equal(noticeRows(everyone).length, 6);
  });

  test('a restart sends nothing again', async () => {
    assert.ok(c, 'the previous test ran');
    await server.stop({ keepData: true });
    server = await startServer({ ...options, dataDir: server.dataDir });
    await spend(o.key);
    await committed(o.orgId, 8);
    // The mailer sent what it had (nothing new) after the start; the files are still six.
    assert.equal(noticeRows([o.email, billing.email, dev.email, user.email]).length, 6);
    const unsent = sql(server, { sqlite: 'SELECT count(*) FROM mail_outbox WHERE sent_at_ms IS NULL;',
      postgres: 'SELECT count(*) FROM mail_outbox WHERE sent_at IS NULL;' }).trim();
    assert.equal(unsent, '0');
    assert.equal(server.outbox().filter((m) => /^Gatehouse: /.test(m.subject ?? '')).length, 6);
  });

  test('SIGKILL right after the crossing calls: after the restart, exactly one notice per contact', async () => {
    assert.ok(c, 'the first tests ran');
    const q = await orgWithKey(server, 'Crash Co');
    const qb = await addMember(server, q.admin, 'billing');
    await grant(server, q.admin, q.orgId, '10.00');
    const r = await q.admin.post(N, { kind: 'spend_amount', amount_usd: usd(2n * c) });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    // Three calls answered (their usage is in the journal, maybe not yet in the database),
    // then the server dies at once.
    for (const x of await Promise.all([0, 1, 2].map(() => call(server, q.key, DIME)))) assert.equal(x.status, 200, x.text);
    server.child.kill('SIGKILL');
    await server.waitExit();
    server = await startServer({ ...options, dataDir: server.dataDir });
    await committed(q.orgId, 3);
    const subject = `Gatehouse: Crash Co spent $${usd(2n * c)} this month`;
    const rows = noticeRows([q.email, qb.email]);
    assert.deepEqual(rows.map((x) => x.subject), [subject, subject]);
    assert.deepEqual(rows.map((x) => x.to).sort(), [q.email, qb.email].sort());
    await until(() => server.outbox().filter((m) => m.subject === subject).length >= 2, 'the two notices sent');
    assert.equal(server.outbox().filter((m) => m.subject === subject).length, 2);
  });

  test('the balance notice waits while auto-reload is on, and comes again after a new fall', async () => {
    const p = await readyOrg(server, 'ReloadCo');
    const k = await p.client.post('/v1/organizations/api_keys', { name: 'reload key' });
    assert.equal(k.status, 201, JSON.stringify(k.body));
    const key = k.body.key;
    await grant(server, p.client, p.orgId, '5.00');
    const AR = '/v1/organizations/billing/auto_reload';
    let r = await p.client.post(AR, { enabled: true, threshold_usd: '1.00', amount_usd: '10.00' });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    r = await p.client.post(N, { kind: 'balance_below', amount_usd: '4.90' });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    let n = 0;
    const spendTo = async (nusdBelow) => { // calls until the balance is below the amount
      for (;;) {
        const bal = BigInt(sql(server, `SELECT balance_nusd FROM billing_accounts WHERE org_id = ${sqlQuote(p.orgId)};`).trim());
        if (bal < nusdBelow) return;
        await spend(key);
        await committed(p.orgId, ++n);
      }
    };
    await spendTo(4_900_000_000n);
    await spend(key);
    await committed(p.orgId, ++n);
    assert.equal(noticeRows([p.email]).length, 0, 'no notice while auto-reload is on');
    r = await p.client.post(AR, { enabled: false });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    await spend(key);
    await committed(p.orgId, ++n);
    assert.equal(noticeRows([p.email]).length, 1, 'auto-reload off: notified');
    await spend(key);
    await committed(p.orgId, ++n);
    assert.equal(noticeRows([p.email]).length, 1, 'once per fall');
    // Back above the amount (the next usage sees it), then below again: a second notice.
    await grant(server, p.client, p.orgId, '2.00');
    await spend(key);
    await committed(p.orgId, ++n);
    assert.equal(noticeRows([p.email]).length, 1, 'above the amount: nothing');
    await spendTo(4_900_000_000n);
    assert.equal(noticeRows([p.email]).length, 2, 'a new fall is notified again');
  });
});
