// Billing with the test payment provider (docs/api.md, "Billing"): who may see it, the card
// on file, the first-purchase questions, buying credits with every kind of bad input,
// declines, idempotency and concurrency, pending purchases resolved by the retry job,
// receipts and invoices, auto-reload after usage, staff grants on the command line, the
// ledger check, tax and expiry.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer } from './lib/server.mjs';
import { Client } from './lib/client.mjs';
import { assertError, assertList, addMember, idPattern, KeyClient, TIME, uniq, listAll } from './lib/expect.mjs';
import {
  BILLING, CARD, CARDS, PROFILE, PRICEY, buy, billing, readyOrg, until, wholePass, modelCall,
  gatehouse, assertLedgerConsistent, nusd, usd, newKey,
} from './lib/billing.mjs';

const SELLER = {
  seller_name: 'Example Models S.r.l.', seller_line1: 'Via Roma 1', seller_city: 'Milano',
  seller_postal_code: '20121', seller_country: 'IT', seller_vat_id: 'IT00743110157',
  seller_email: 'billing@models.example',
};

let server; // default settings, fast scheduler
let taxed;  // 22% VAT, credits that expire after 6 seconds

before(async () => {
  [server, taxed] = await Promise.all([
    startServer({ config: { ...PRICEY, billing: { ...SELLER, scheduler_interval_s: 1, pending_retry_s: 1 } } }),
    startServer({
      config: {
        billing: { ...SELLER, tax_rate_bps: 2200, tax_label: 'VAT', credit_expiry_seconds: 6, scheduler_interval_s: 1 },
      },
    }),
  ]);
});

after(async () => {
  await Promise.all([server?.stop(), taxed?.stop()]);
});

describe('who may see billing', () => {
  const endpoints = [
    ['GET', BILLING], ['POST', `${BILLING}/payment_method`, CARD], ['GET', `${BILLING}/payment_methods`],
    ['POST', `${BILLING}/profile`, PROFILE], ['POST', `${BILLING}/purchases`, { amount_usd: '10.00' }],
    ['POST', `${BILLING}/setup_intent`, {}],
    ['GET', `${BILLING}/purchases`], ['GET', `${BILLING}/purchases/pur_01aaaaaaaaaaaaaaaaaaaaaa`],
    ['POST', `${BILLING}/auto_reload`, { enabled: false }], ['GET', '/v1/organizations/invoices'],
    ['GET', '/v1/organizations/invoices/inv_01aaaaaaaaaaaaaaaaaaaaaa'],
    ['GET', '/v1/organizations/invoices/inv_01aaaaaaaaaaaaaaaaaaaaaa/pdf'],
  ];

  test('users and developers get 403 everywhere; billing members, admins and admin keys get in', async () => {
    const { client: admin } = await readyOrg(server, 'Roles');
    for (const role of ['user', 'developer']) {
      const m = await addMember(server, admin, role);
      for (const [method, path, json] of endpoints) {
        const r = await m.client.request(method, path, { json, headers: { 'idempotency-key': newKey() } });
        assertError(r, 403, 'permission_error');
        assert.match(r.body.error.message, /billing or admin role/);
      }
    }
    const billingMember = await addMember(server, admin, 'billing');
    const b = await billing(billingMember.client);
    assert.equal(b.payment_method.last4, '4242');
    const bought = await buy(billingMember.client, '5.00');
    assert.equal(bought.status, 200, JSON.stringify(bought.body));
    assert.equal(bought.body.created_by.id, billingMember.id);
    const ak = (await admin.post('/v1/organizations/admin_keys', { name: 'billing script' })).body.key;
    const kc = new KeyClient(server.consoleUrl, ak);
    assert.equal((await billing(kc)).balance_usd, '5.00');
    const viaKey = await buy(kc, '6.00');
    assert.equal(viaKey.status, 200, JSON.stringify(viaKey.body));
    assert.equal(viaKey.body.created_by.type, 'admin_key');
    assert.equal(viaKey.body.balance_usd, '11.00');
    // Signed out: 401.
    assertError(await new Client(server.consoleUrl).get(BILLING), 401, 'authentication_error');
  });
});

test('a new organization: no card, no balance, test mode', async () => {
  const c = new Client(server.consoleUrl);
  const s = await c.signUpWithOrg(server, uniq('fresh'), 'Fresh');
  const b = await billing(c);
  assert.deepEqual(Object.keys(b).sort(), [
    'auto_reload', 'balance_usd', 'first_purchase_min_usd', 'lots', 'max_purchase_usd', 'min_purchase_usd',
    'next_purchase_min_usd', 'organization_id', 'payment_method', 'pending_purchases', 'profile',
    'profile_complete', 'provider', 'purchases_total_usd', 'regulated_industry_choices', 'stripe',
    'tax_label', 'tax_rate_bps', 'test_mode', 'type',
  ]);
  assert.equal(b.stripe, null);
  assert.equal(b.type, 'billing');
  assert.equal(b.organization_id, s.current_organization.id);
  assert.equal(b.balance_usd, '0.00');
  assert.equal(b.test_mode, true);
  assert.equal(b.provider, 'test');
  assert.equal(b.payment_method, null);
  // Stripe's card setup and webhooks are not for the test provider.
  const setup = await c.post(`${BILLING}/setup_intent`, {});
  assertError(setup, 400, 'invalid_request_error');
  assert.match(setup.body.error.message, /takes card details directly/);
  const seti = await c.post(`${BILLING}/payment_method`, { setup_intent: 'seti_123' });
  assertError(seti, 400, 'invalid_request_error');
  assert.match(seti.body.error.message, /only for \[billing\] provider = stripe/);
  const hook = await fetch(`${server.consoleUrl}/webhooks/stripe`, { method: 'POST', body: '{}',
    headers: { 'content-type': 'application/json', 'stripe-signature': 't=1,v1=00' } });
  assert.equal(hook.status, 404);
  // The console's policy stays 'self' only: no Stripe.js with the test provider.
  const page = await fetch(`${server.consoleUrl}/settings/billing`);
  assert.equal(page.headers.get('content-security-policy'), "default-src 'self'; img-src 'self' data:; " +
    "style-src 'self'; script-src 'self'; connect-src 'self'; object-src 'none'; frame-ancestors 'none'; " +
    "base-uri 'none'; form-action 'self'");
  assert.deepEqual(b.auto_reload, { type: 'auto_reload', enabled: false, threshold_usd: null, amount_usd: null, disabled_reason: null });
  assert.equal(b.profile_complete, false);
  assert.equal(b.profile, null);
  assert.equal(b.min_purchase_usd, '5.00');
  assert.equal(b.first_purchase_min_usd, '5.00');
  assert.equal(b.max_purchase_usd, '10000.00');
  assert.equal(b.purchases_total_usd, '0.00');
  assert.equal(b.pending_purchases, 0);
  assert.deepEqual(b.lots, []);
  assert.ok(b.regulated_industry_choices.includes('healthcare'));
});

test('cards: validated, only brand, last four and expiry kept, a new one replaces the old', async () => {
  const c = new Client(server.consoleUrl);
  await c.signUpWithOrg(server, uniq('cards'), 'Cards');
  const PM = `${BILLING}/payment_method`;
  const bad = [
    [{ ...CARD, number: '4242 4242 4242 4241' }, /not valid/],
    [{ ...CARD, number: '4242' }, /12 to 19 digits/],
    [{ ...CARD, number: '9999 9999 9999 9995' }, /brands accepted/],
    [{ ...CARD, exp_month: 13 }, /1 to 12/],
    [{ ...CARD, exp_year: 2020 }, /expired/],
    [{ ...CARD, exp_year: 30 }, /four-digit year/],
    [{ ...CARD, cvc: '12' }, /3 digits for Visa/],
    [{ ...CARD, number: '3782 822463 10005', cvc: '123' }, /4 digits for American Express/],
    [{ ...CARD, exp_month: '12' }, /exp_month must be a whole number/],
    [{ ...CARD, number: 4242424242424242 }, /number must be a string/],
    [{ number: CARD.number, exp_month: 12, exp_year: 2030 }, /cvc is required/],
    [{ ...CARD, name: 'Ada' }, /Unknown field "name"/],
  ];
  for (const [body, message] of bad) {
    const r = await c.post(PM, body);
    assertError(r, 400, 'invalid_request_error');
    assert.match(r.body.error.message, message, JSON.stringify(body));
  }
  assert.equal((await billing(c)).payment_method, null, 'a refused card changes nothing');

  const first = await c.post(PM, CARD);
  assert.equal(first.status, 200, JSON.stringify(first.body));
  assert.match(first.body.id, idPattern('card'));
  assert.deepEqual({ ...first.body, id: undefined, added_at: undefined },
    { type: 'payment_method', id: undefined, brand: 'visa', last4: '4242', exp_month: 12, exp_year: 2030, added_at: undefined, replaced_at: null });
  assert.match(first.body.added_at, TIME);
  assert.ok(!JSON.stringify(first.body).includes('4242424242424242'));

  const second = await c.post(PM, { number: '5555-5555-5555-4444', exp_month: 3, exp_year: 2031, cvc: '999' });
  assert.equal(second.status, 200);
  const b = await billing(c);
  assert.equal(b.payment_method.id, second.body.id);
  assert.equal(b.payment_method.brand, 'mastercard');
  // History: both, newest first, the old one marked replaced. There is no way to remove a card.
  const history = assertList(await c.get(`${BILLING}/payment_methods`));
  assert.deepEqual(history.data.map((p) => p.id), [second.body.id, first.body.id]);
  assert.equal(history.data[0].replaced_at, null);
  assert.match(history.data[1].replaced_at, TIME);
  assertError(await c.request('DELETE', PM), 405, 'invalid_request_error');
});

test('purchases need the first-purchase answers and a card', async () => {
  const c = new Client(server.consoleUrl);
  await c.signUpWithOrg(server, uniq('first'), 'First');
  let r = await buy(c, '10.00');
  assertError(r, 400, 'invalid_request_error');
  assert.match(r.body.error.message, /answer a few questions: POST \/v1\/organizations\/billing\/profile/);

  const bad = [
    [{ ...PROFILE, intended_use: '   ' }, /intended_use is required/],
    [{ ...PROFILE, intended_use: 'x'.repeat(501) }, /at most 500 characters/],
    [{ ...PROFILE, countries: [] }, /at least one/],
    [{ ...PROFILE, countries: ['US', 'XX'] }, /"XX" is not an ISO 3166 country code/],
    [{ ...PROFILE, countries: 'US' }, /countries must be an array/],
    [{ ...PROFILE, regulated_industries: ['healthcare', 'casinos'] }, /"casinos" is not one of/],
    [{ intended_use: 'x', countries: ['US'] }, /regulated_industries is required/],
  ];
  for (const [body, message] of bad) {
    const p = await c.post(`${BILLING}/profile`, body);
    assertError(p, 400, 'invalid_request_error');
    assert.match(p.body.error.message, message);
  }
  const p = await c.post(`${BILLING}/profile`, { intended_use: ' Coding assistant ', countries: ['it', 'US', 'IT'], regulated_industries: ['healthcare', 'financial_services'] });
  assert.equal(p.status, 200, JSON.stringify(p.body));
  assert.deepEqual({ ...p.body, answered_at: undefined }, {
    type: 'billing_profile', intended_use: 'Coding assistant', countries: ['IT', 'US'],
    regulated_industries: ['healthcare', 'financial_services'], answered_at: undefined,
  });
  const b = await billing(c);
  assert.equal(b.profile_complete, true);
  assert.deepEqual(b.profile, p.body);

  r = await buy(c, '10.00');
  assertError(r, 400, 'invalid_request_error');
  assert.match(r.body.error.message, /no card on file/);
  assert.equal((await billing(c)).balance_usd, '0.00');
});

test('bad amounts and missing keys are refused with a reason and change nothing', async () => {
  const { client: c } = await readyOrg(server, 'Amounts');
  const cases = [
    [{ amount_usd: '-5.00' }, /cannot be negative/],
    [{ amount_usd: '0' }, /positive amount|minimum/],
    [{ amount_usd: '0.00' }, /positive amount|minimum/],
    [{ amount_usd: '4.99' }, /minimum first purchase is \$5\.00/],
    [{ amount_usd: '5.001' }, /whole cents/],
    [{ amount_usd: '10.0000000001' }, /whole cents/],
    [{ amount_usd: '10000.01' }, /at most \$10000\.00/],
    [{ amount_usd: '99999999999999999999' }, /too large/],
    [{ amount_usd: 'ten' }, /like "25\.00"/],
    [{ amount_usd: '1e3' }, /like "25\.00"/],
    [{ amount_usd: '' }, /like "25\.00"/],
    [{ amount_usd: 25 }, /never sent as a JSON number/],
    [{ amount_usd: 25.5 }, /never sent as a JSON number/],
    [{ amount_usd: null }, /must be a string/],
    [{}, /amount_usd is required/],
    [{ amount_usd: '10.00', currency: 'EUR' }, /Unknown field "currency"/],
  ];
  for (const [body, message] of cases) {
    const r = await c.post(`${BILLING}/purchases`, body, { headers: { 'idempotency-key': newKey() } });
    assertError(r, 400, 'invalid_request_error');
    assert.match(r.body.error.message, message, JSON.stringify(body));
  }
  for (const headers of [{}, { 'idempotency-key': 'x'.repeat(256) }, { 'idempotency-key': 'has space' }]) {
    const r = await c.post(`${BILLING}/purchases`, { amount_usd: '10.00' }, { headers });
    assertError(r, 400, 'invalid_request_error');
    assert.match(r.body.error.message, /idempotency-key/);
  }
  const r = await c.request('POST', `${BILLING}/purchases`, { body: '{"amount_usd":"10.00"}', headers: { 'idempotency-key': newKey() } });
  assertError(r, 400, 'invalid_request_error');
  const b = await billing(c);
  assert.equal(b.balance_usd, '0.00');
  assert.equal(b.purchases_total_usd, '0.00');
  assert.deepEqual((await c.get(`${BILLING}/purchases`)).body.data, []);
});

test('a purchase credits a lot at once, mails a receipt and issues an invoice', async () => {
  const { client: c, orgId } = await readyOrg(server, 'Buyer');
  const settings = await c.post('/v1/organizations/me/settings', {
    legal_name: 'Buyer GmbH', billing_email: 'accounts@buyer.example',
    billing_address: { line1: 'Hauptstr. 5', city: 'Berlin', postal_code: '10115', country: 'DE' },
    vat_id: 'DE136695976',
  });
  assert.equal(settings.status, 200, JSON.stringify(settings.body));
  const r = await buy(c, '25.00');
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const p = r.body;
  assert.match(p.id, idPattern('pur'));
  assert.equal(p.type, 'purchase');
  assert.equal(p.kind, 'manual');
  assert.equal(p.status, 'succeeded');
  assert.equal(p.amount_usd, '25.00');
  assert.equal(p.tax_usd, '0.00');
  assert.equal(p.total_usd, '25.00');
  assert.equal(p.balance_usd, '25.00');
  assert.equal(p.decline_code, null);
  assert.match(p.invoice_id, idPattern('inv'));
  assert.match(p.provider_ref, /^test_ch_/);

  const b = await billing(c);
  assert.equal(b.balance_usd, '25.00');
  assert.equal(b.purchases_total_usd, '25.00');
  assert.equal(b.lots.length, 1);
  const lot = b.lots[0];
  assert.equal(lot.source, 'purchase');
  assert.equal(lot.amount_usd, '25.00');
  assert.equal(lot.remaining_usd, '25.00');
  // One year to the second after it was credited.
  assert.equal(Date.parse(lot.expires_at) - Date.parse(lot.created_at), 365 * 86400 * 1000);

  // The invoice: gap-free number, both parties, the line, tax and total.
  const list = assertList(await c.get('/v1/organizations/invoices'));
  assert.equal(list.data.length, 1);
  const inv = list.data[0];
  assert.equal(inv.id, p.invoice_id);
  assert.match(inv.number, /^GH-\d{4}-\d{6}$/);
  assert.equal(inv.purchase_id, p.id);
  assert.equal(inv.subtotal_usd, '25.00');
  assert.equal(inv.total_usd, '25.00');
  assert.equal(inv.currency, 'USD');
  assert.equal(inv.status, 'paid');
  assert.equal(inv.payment, 'Visa ending in 4242');
  assert.equal(inv.test_mode, true);
  assert.deepEqual(inv.seller, {
    name: SELLER.seller_name, line1: 'Via Roma 1', line2: null, city: 'Milano', postal_code: '20121',
    state: null, country: 'IT', vat_id: 'IT00743110157', email: SELLER.seller_email,
  });
  assert.deepEqual(inv.buyer, {
    name: 'Buyer GmbH', line1: 'Hauptstr. 5', line2: null, city: 'Berlin', postal_code: '10115',
    state: null, country: 'DE', vat_id: 'DE136695976', email: 'accounts@buyer.example',
  });
  assert.deepEqual((await c.get(`/v1/organizations/invoices/${inv.id}`)).body, inv);
  const pdf = await c.get(inv.pdf_url);
  assert.equal(pdf.status, 200);
  assert.equal(pdf.headers.get('content-type'), 'application/pdf');
  assert.equal(pdf.headers.get('content-disposition'), `attachment; filename="${inv.number}.pdf"`);
  assert.ok(pdf.body.startsWith('%PDF-'));
  // The PDF reads as the invoice it is: its text (pdftotext, from poppler-utils) has the
  // number, both parties with their VAT IDs, the line and the total.
  const raw = Buffer.from(await (await fetch(server.consoleUrl + inv.pdf_url, { headers: { cookie: c.cookieHeader() } })).arrayBuffer());
  const dir = mkdtempSync(join(tmpdir(), 'gh-invoice-'));
  try {
    writeFileSync(join(dir, 'invoice.pdf'), raw);
    const text = execFileSync('pdftotext', ['-layout', join(dir, 'invoice.pdf'), '-'], { encoding: 'utf8' });
    // The seller's address and VAT ID, and (a German buyer with a VAT ID, an Italian seller
    // registered for VAT) the reverse charge, even though this seller charges no tax at home.
    for (const want of [inv.number, 'Invoice', 'Bill to', 'Buyer GmbH', 'DE136695976', SELLER.seller_name,
      'Via Roma 1', '20121', 'Milano', 'IT00743110157', 'Gatehouse API credits', '$25.00', 'Total', 'TEST MODE',
      'Reverse charge', 'VAT 0% (reverse charge)']) {
      assert.ok(text.includes(want), `the invoice PDF lacks ${JSON.stringify(want)}:\n${text}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assertError(await c.get('/v1/organizations/invoices/inv_01aaaaaaaaaaaaaaaaaaaaaa/pdf'), 404, 'not_found_error');
  assertError(await c.get('/v1/organizations/invoices/nonsense/pdf'), 404, 'not_found_error');

  // The receipt, to the billing email.
  const mail = server.outbox().filter((m) => m.to.includes('accounts@buyer.example'));
  assert.equal(mail.length, 1);
  assert.match(mail[0].subject, new RegExp(`Receipt .*${inv.number}`));
  for (const text of ['Credits added:   $25.00', 'Total charged:   $25.00 to Visa ending in 4242', `Invoice:         ${inv.number}`, 'Balance now:     $25.00', 'Test mode'])
    assert.ok(mail[0].body.includes(text), `the receipt lacks "${text}":\n${mail[0].body}`);

  // Another organization cannot see it.
  const { client: other } = await readyOrg(server, 'Other');
  assertError(await other.get(`/v1/organizations/invoices/${inv.id}/pdf`), 404, 'not_found_error');
  assertError(await other.get(`${BILLING}/purchases/${p.id}`), 404, 'not_found_error');
  assert.equal((await other.get('/v1/organizations/invoices')).body.data.length, 0);

  // Recorded in the audit log.
  const audit = await c.get('/v1/organizations/audit_log?action=purchase.succeeded');
  assert.equal(audit.body.data.length, 1);
  assert.equal(audit.body.data[0].target.id, p.id);
  assert.equal(audit.body.data[0].details.invoice, inv.number);
  assert.equal((await c.get('/v1/organizations/audit_log?action=payment_method.added')).body.data.length, 1);
  assert.ok(orgId);
});

test('a declined card credits nothing and says why; the same key gets the same answer', async () => {
  for (const [number, why] of [[CARDS.declined, /declined/], [CARDS.insufficient, /insufficient funds/]]) {
    const { client: c } = await readyOrg(server, 'Declined', number);
    const k = newKey();
    const r = await buy(c, '20.00', k);
    assertError(r, 402, 'billing_error');
    assert.match(r.body.error.message, why);
    assert.match(r.body.error.message, /Nothing was charged/);
    const again = await buy(c, '20.00', k);
    assertError(again, 402, 'billing_error');
    assert.equal(again.body.error.message, r.body.error.message);
    const b = await billing(c);
    assert.equal(b.balance_usd, '0.00');
    assert.deepEqual(b.lots, []);
    const [p] = (await c.get(`${BILLING}/purchases`)).body.data;
    assert.equal(p.status, 'declined');
    assert.equal(p.invoice_id, null);
    assert.equal((await c.get('/v1/organizations/invoices')).body.data.length, 0);
    // A good card afterwards works.
    assert.equal((await c.post(`${BILLING}/payment_method`, CARD)).status, 200);
    assert.equal((await buy(c, '20.00')).body.balance_usd, '20.00');
  }
});

test('a card that fails the zero-amount check at setup is not saved (402, the network\'s reason)', async () => {
  const c = new Client(server.consoleUrl);
  await c.signUpWithOrg(server, uniq('setupcheck'), 'Setup check');
  assert.equal((await c.post(`${BILLING}/profile`, PROFILE)).status, 200);
  const r = await c.post(`${BILLING}/payment_method`, { ...CARD, number: CARDS.declinedAtSetup });
  assertError(r, 402, 'billing_error');
  assert.match(r.body.error.message, /^Your card was declined\. The card was not saved/);
  assert.equal((await billing(c)).payment_method, null);
  assert.equal((await c.get(`${BILLING}/payment_methods`)).body.data.length, 0);
  assert.equal((await c.get('/v1/organizations/audit_log?action=payment_method.added')).body.data.length, 0);
  // A good card is saved afterwards; the declining one never replaces it.
  assert.equal((await c.post(`${BILLING}/payment_method`, CARD)).status, 200);
  assertError(await c.post(`${BILLING}/payment_method`, { ...CARD, number: CARDS.declinedAtSetup }), 402, 'billing_error');
  assert.equal((await billing(c)).payment_method.last4, '4242');
});

test('a double click or a retried request never buys twice', async () => {
  const { client: c } = await readyOrg(server, 'Clicks');
  const k = newKey();
  const answers = await Promise.all(Array.from({ length: 6 }, () => buy(c, '15.00', k)));
  for (const r of answers) {
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.id, answers[0].body.id);
    assert.equal(r.body.status, 'succeeded');
  }
  const replay = await buy(c, '15.00', k);
  assert.equal(replay.body.id, answers[0].body.id);
  const conflict = await buy(c, '16.00', k);
  assertError(conflict, 409, 'conflict_error');
  assert.match(conflict.body.error.message, /already used for a purchase of \$15\.00/);
  const b = await billing(c);
  assert.equal(b.balance_usd, '15.00');
  assert.equal(b.lots.length, 1);
  assert.equal((await c.get(`${BILLING}/purchases`)).body.data.length, 1);
  assert.equal((await c.get('/v1/organizations/invoices')).body.data.length, 1);
});

test('concurrent purchases: every one credited, the balance exact, invoice numbers gap-free', async () => {
  const { client: c } = await readyOrg(server, 'Busy');
  const amounts = ['5.00', '5.01', '7.25', '9.99', '10.00', '12.34', '50.00', '100.10'];
  const answers = await Promise.all(amounts.map((a) => buy(c, a)));
  for (const r of answers) assert.equal(r.status, 200, JSON.stringify(r.body));
  const total = amounts.reduce((s, a) => s + nusd(a), 0n);
  const b = await billing(c);
  assert.equal(b.balance_usd, usd(total));
  assert.equal(b.purchases_total_usd, usd(total));
  const numbers = (await listAll(c, '/v1/organizations/invoices')).map((i) => i.number);
  assert.equal(new Set(numbers).size, amounts.length);
  assertLedgerConsistent(server);
});

test('a purchase the provider leaves pending is resolved by the retry job, once', async () => {
  const { client: c } = await readyOrg(server, 'Slow', CARDS.pending);
  const r = await buy(c, '30.00');
  assert.equal(r.status, 202, JSON.stringify(r.body));
  assert.equal(r.body.status, 'pending');
  assert.equal(r.body.invoice_id, null);
  assert.equal(r.body.balance_usd, '0.00', 'never credited on a guess');
  assert.match(r.body.message, /processing/);
  assert.equal((await billing(c)).pending_purchases, 1);
  const done = await until(async () => {
    const p = (await c.get(`${BILLING}/purchases/${r.body.id}`)).body;
    return p.status === 'succeeded' && p;
  }, 'the pending purchase to be retried');
  assert.equal(done.attempts, 2);
  assert.match(done.invoice_id, idPattern('inv'));
  await wholePass(server);
  const b = await billing(c);
  assert.equal(b.balance_usd, '30.00');
  assert.equal(b.pending_purchases, 0);
  assert.equal(b.lots.length, 1);
  assertLedgerConsistent(server);
});

describe('auto-reload', () => {
  async function withKey(c) {
    const r = await c.post('/v1/organizations/api_keys', { name: 'usage' });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return r.body.key;
  }
  const reloads = async (c) => (await listAll(c, `${BILLING}/purchases`)).filter((p) => p.kind === 'auto_reload');

  test('settings are validated and need a card and the answers', async () => {
    const c = new Client(server.consoleUrl);
    await c.signUpWithOrg(server, uniq('reloadset'), 'ReloadSet');
    const AR = `${BILLING}/auto_reload`;
    let r = await c.post(AR, { enabled: true, threshold_usd: '10.00', amount_usd: '20.00' });
    assertError(r, 400, 'invalid_request_error');
    assert.match(r.body.error.message, /first-purchase questions/);
    await c.post(`${BILLING}/profile`, PROFILE);
    r = await c.post(AR, { enabled: true, threshold_usd: '10.00', amount_usd: '20.00' });
    assertError(r, 400, 'invalid_request_error');
    assert.match(r.body.error.message, /Add a card/);
    await c.post(`${BILLING}/payment_method`, CARD);
    for (const [body, message] of [
      [{ enabled: true }, /send threshold_usd .* and amount_usd/],
      [{ enabled: true, threshold_usd: '10.00', amount_usd: '4.99' }, /from \$5\.00 \(the minimum purchase\)/],
      [{ enabled: true, threshold_usd: '10.00', amount_usd: '10000.01' }, /to \$10000\.00/],
      [{ enabled: true, threshold_usd: '-1', amount_usd: '10' }, /cannot be negative/],
      [{ enabled: true, threshold_usd: '10.005', amount_usd: '10' }, /whole cents/],
      [{ enabled: true, threshold_usd: 10, amount_usd: '10' }, /JSON number/],
      [{ enabled: 'yes', threshold_usd: '10', amount_usd: '10' }, /enabled must be true or false/],
      [{ threshold_usd: '10', amount_usd: '10' }, /enabled is required/],
    ]) {
      r = await c.post(AR, body);
      assertError(r, 400, 'invalid_request_error');
      assert.match(r.body.error.message, message, JSON.stringify(body));
    }
    r = await c.post(AR, { enabled: false, threshold_usd: '2.50', amount_usd: '10' });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(r.body, { type: 'auto_reload', enabled: false, threshold_usd: '2.50', amount_usd: '10.00', disabled_reason: null });
    // Turning it on keeps what was set; turning it off any time.
    await buy(c, '5.00');
    r = await c.post(AR, { enabled: true });
    assert.equal(r.body.enabled, true);
    assert.equal(r.body.threshold_usd, '2.50');
    assert.deepEqual((await billing(c)).auto_reload, r.body);
    r = await c.post(AR, { enabled: false });
    assert.equal(r.body.enabled, false);
    assert.equal((await c.get('/v1/organizations/audit_log?action=auto_reload.updated')).body.data.length, 3);
  });

  test('usage that takes the balance below the threshold reloads once', async () => {
    const { client: c } = await readyOrg(server, 'Reload');
    const key = await withKey(c);
    assert.equal((await buy(c, '10.00')).body.balance_usd, '10.00');
    const on = await c.post(`${BILLING}/auto_reload`, { enabled: true, threshold_usd: '8.00', amount_usd: '5.00' });
    assert.equal(on.status, 200, JSON.stringify(on.body));
    // $1.00 a request: 9, 8 (not below), 7 (below): one reload, to 12.
    for (let i = 0; i < 3; i++) await modelCall(server, key);
    const b = await until(async () => {
      const v = await billing(c);
      return v.balance_usd === '12.00' && v;
    }, 'the balance after one reload');
    await wholePass(server);
    const done = await reloads(c);
    assert.equal(done.length, 1);
    assert.equal(done[0].status, 'succeeded');
    assert.equal(done[0].amount_usd, '5.00');
    assert.equal(done[0].created_by.type, 'system');
    assert.equal(b.lots.length, 2);
    assert.equal((await billing(c)).balance_usd, '12.00');
    // The receipt says it was auto-reload.
    const inv = (await c.get('/v1/organizations/invoices')).body.data.find((i) => i.purchase_id === done[0].id);
    assert.ok(inv, 'the reload has an invoice');
    assertLedgerConsistent(server);
  });

  test('a reload that leaves the balance below the threshold is not repeated for the same crossing', async () => {
    const { client: c } = await readyOrg(server, 'Once');
    const key = await withKey(c);
    await buy(c, '10.00');
    // Already below when turned on: one reload, to 15, still below 20.
    await c.post(`${BILLING}/auto_reload`, { enabled: true, threshold_usd: '20.00', amount_usd: '5.00' });
    await until(async () => (await billing(c)).balance_usd === '15.00', 'the first reload');
    await modelCall(server, key); // 14: usage settles and the scheduler checks again
    await until(async () => (await billing(c)).balance_usd === '14.00', 'the usage to be charged');
    await wholePass(server);
    await wholePass(server);
    assert.equal((await reloads(c)).length, 1);
    assert.equal((await billing(c)).balance_usd, '14.00');
    // Back above the threshold re-arms it: the next crossing reloads again.
    assert.equal((await buy(c, '10.00')).body.balance_usd, '24.00');
    for (let i = 0; i < 5; i++) await modelCall(server, key); // 19
    await until(async () => (await reloads(c)).length === 2, 'the second reload');
    await until(async () => (await billing(c)).balance_usd === '24.00', 'the second reload credited');
    assertLedgerConsistent(server);
  });

  test('a declined reload turns auto-reload off, says why and mails the billing contacts', async () => {
    const { client: c, email } = await readyOrg(server, 'NoFunds');
    const key = await withKey(c);
    await c.post('/v1/organizations/me/settings', { billing_email: 'ap@nofunds.example' });
    await buy(c, '10.00');
    await c.post(`${BILLING}/payment_method`, { ...CARD, number: CARDS.insufficient });
    await c.post(`${BILLING}/auto_reload`, { enabled: true, threshold_usd: '9.50', amount_usd: '5.00' });
    await modelCall(server, key); // 9.00: below
    const b = await until(async () => {
      const v = await billing(c);
      return !v.auto_reload.enabled && v;
    }, 'auto-reload to be turned off');
    assert.match(b.auto_reload.disabled_reason, /insufficient funds/);
    assert.equal(b.balance_usd, '9.00');
    const [r] = await reloads(c);
    assert.equal(r.status, 'declined');
    assert.equal(r.decline_code, 'insufficient_funds');
    for (const to of ['ap@nofunds.example', email]) {
      const mail = await until(() => server.outbox().find((m) => m.to.includes(to) && /Auto-reload is off/.test(m.subject)), `the mail to ${to}`);
      assert.match(mail.body, /insufficient funds/);
    }
    const audit = (await c.get('/v1/organizations/audit_log?action=auto_reload.disabled')).body.data;
    assert.equal(audit.length, 1);
    assert.equal(audit[0].actor.type, 'system');
    // More usage does not try again.
    await modelCall(server, key);
    await wholePass(server);
    assert.equal((await reloads(c)).length, 1);
  });
});

describe('staff on the command line', () => {
  test('credits grant: a running server shows the credit at once; ledger check passes', async () => {
    const { client: c, orgId } = await readyOrg(server, 'Granted');
    const r = gatehouse(server, 'credits', 'grant', '--org', orgId, '--usd', '1.00', '--reason', 'Sorry for the outage');
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, new RegExp(`^granted \\$1\\.00 to ${orgId} \\(lot lot_01\\w{22}\\); balance now \\$1\\.00`));
    const b = await billing(c);
    assert.equal(b.balance_usd, '1.00');
    assert.equal(b.lots[0].source, 'grant');
    const audit = (await c.get('/v1/organizations/audit_log?action=credits.granted')).body.data[0];
    assert.equal(audit.actor.type, 'staff');
    assert.equal(audit.details.reason, 'Sorry for the outage');
    assert.equal(audit.details.amount_usd, '1.00');

    const back = gatehouse(server, 'credits', 'clawback', '--org', orgId, '--usd', '0.40', '--reason', 'Partly in error');
    assert.equal(back.status, 0, back.stdout + back.stderr);
    assert.equal((await billing(c)).balance_usd, '0.60');
    const tooMuch = gatehouse(server, 'credits', 'clawback', '--org', orgId, '--usd', '5', '--reason', 'x');
    assert.equal(tooMuch.status, 1);
    assert.match(tooMuch.stderr, /only \$0\.60 of credits/);
    for (const args of [
      ['credits', 'grant', '--org', orgId, '--usd', '1.00'],
      ['credits', 'grant', '--org', orgId, '--usd', '-1', '--reason', 'x'],
      ['credits', 'gift', '--org', orgId, '--usd', '1', '--reason', 'x'],
    ]) assert.equal(gatehouse(server, ...args).status, 2, args.join(' '));
    const unknown = gatehouse(server, 'credits', 'grant', '--org', 'org_01aaaaaaaaaaaaaaaaaaaaaa', '--usd', '1', '--reason', 'x');
    assert.equal(unknown.status, 1);
    assert.match(unknown.stderr, /no organization/);
    const out = assertLedgerConsistent(server);
    assert.match(out, new RegExp(`${orgId} +ok +balance \\$0\\.60`));
    assert.match(out, /invoices +ok +\d{4}: \d+ invoices numbered 1 to \d+ without gaps/);
  });
});

describe('tax and expiry', () => {
  test('tax is added to the charge, not to the credits; EU reverse charge', async () => {
    const { client: c } = await readyOrg(taxed, 'Taxed');
    const r = await buy(c, '10.05');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.amount_usd, '10.05');
    assert.equal(r.body.tax_usd, '2.21'); // 221.1 cents
    assert.equal(r.body.total_usd, '12.26');
    assert.equal(r.body.tax_label, 'VAT 22%');
    assert.equal(r.body.balance_usd, '10.05');
    const inv = (await c.get(`/v1/organizations/invoices/${r.body.invoice_id}`)).body;
    assert.equal(inv.tax_usd, '2.21');
    assert.equal(inv.total_usd, '12.26');
    assert.equal(inv.note, null);

    const { client: eu } = await readyOrg(taxed, 'Reverse');
    await eu.post('/v1/organizations/me/settings', { billing_address: { country: 'DE' }, vat_id: 'DE136695976' });
    const rc = await buy(eu, '10.00');
    assert.equal(rc.body.tax_usd, '0.00');
    assert.equal(rc.body.tax_label, 'VAT 0% (reverse charge)');
    assert.match((await eu.get(`/v1/organizations/invoices/${rc.body.invoice_id}`)).body.note, /Reverse charge/);
  });

  test('what is left of a lot expires, and usage never drew from it after', async () => {
    const { client: c, orgId } = await readyOrg(taxed, 'Expiring');
    assert.equal((await buy(c, '5.00')).body.balance_usd, '5.00');
    assert.equal(gatehouse(taxed, 'credits', 'grant', '--org', orgId, '--usd', '2.5', '--reason', 'trial').status, 0);
    const b = await billing(c);
    assert.equal(b.balance_usd, '7.50');
    for (const lot of b.lots) assert.equal(Date.parse(lot.expires_at) - Date.parse(lot.created_at), 6000);
    const gone = await until(async () => {
      const v = await billing(c);
      return v.balance_usd === '0.00' && v;
    }, 'the lots to expire');
    assert.deepEqual(gone.lots, []);
    assertLedgerConsistent(taxed);
  });
});
