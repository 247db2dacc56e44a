// Billing with [billing] provider = stripe against the fake Stripe (lib/fake-stripe.mjs) on
// loopback: starting needs both secrets; the console's policy lets Stripe.js in; a card is set
// up through a SetupIntent confirmed the way Stripe.js does it (card numbers are refused);
// purchases succeed, decline, time out and stay pending until the signed webhook settles them
// exactly once; replayed, forged and stale webhooks change nothing; a processing charge is
// credited when Stripe completes it; the retry job charges again with the same idempotency
// key; and neither secret ever reaches the server's log.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startServer } from './lib/server.mjs';
import { Client } from './lib/client.mjs';
import { startFakeStripe } from './lib/fake-stripe.mjs';
import { assertError, uniq } from './lib/expect.mjs';
import { BILLING, PROFILE, CARD, buy, billing, until, newKey, assertLedgerConsistent } from './lib/billing.mjs';

const token = (n = 16) => randomBytes(n).toString('hex');
const SECRET = `sk_test_gatehouseE2E${token()}`;
const WHSEC = `whsec_gatehouseE2E${token()}`;
const PK = `pk_test_gatehouseE2E${token(8)}`;
const ENV = { GH_E2E_STRIPE_KEY: SECRET, GH_E2E_STRIPE_WHSEC: WHSEC };
const INVOICES = '/v1/organizations/invoices';

function stripeConfig(fake, extra = {}) {
  return {
    billing: {
      provider: 'stripe', stripe_api_base: fake.url, stripe_js_url: fake.jsUrl,
      stripe_publishable_key: PK, stripe_secret_key_env: 'GH_E2E_STRIPE_KEY',
      stripe_webhook_secret_env: 'GH_E2E_STRIPE_WHSEC', stripe_timeout_ms: 1500,
      scheduler_interval_s: 1, pending_retry_s: 3600, ...extra,
    },
  };
}

let fake;   // webhooks go to `server`
let server; // retries only after an hour: webhooks settle what is pending
let quiet;  // a fake that sends no webhooks, for the retry job
let retrier;

before(async () => {
  [fake, quiet] = await Promise.all([
    startFakeStripe({ webhookSecret: WHSEC, secretKey: SECRET, publishableKey: PK }),
    startFakeStripe({ webhookSecret: WHSEC, secretKey: SECRET, publishableKey: PK }),
  ]);
  [server, retrier] = await Promise.all([
    startServer({ config: stripeConfig(fake), env: ENV }),
    startServer({ config: stripeConfig(quiet, { stripe_timeout_ms: 1000, pending_retry_s: 1 }), env: ENV }),
  ]);
  fake.setWebhookUrl(`${server.consoleUrl}/webhooks/stripe`);
});

after(async () => {
  await Promise.all([fake?.idle(), quiet?.idle()]);
  await Promise.all([server?.stop(), retrier?.stop()]);
  await Promise.all([fake?.stop(), quiet?.stop()]);
});

// Confirms SetupIntent `clientSecret` with a test card token, as Stripe.js does from the
// browser (publishable key and client secret, no secret key).
async function confirmAtStripe(f, clientSecret, card = 'pm_card_visa') {
  const id = clientSecret.split('_secret_')[0];
  const res = await fetch(`${f.url}/v1/setup_intents/${id}/confirm`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ key: PK, client_secret: clientSecret, payment_method: card }),
  });
  const body = await res.json();
  assert.equal(res.status, 200, JSON.stringify(body));
  return id;
}

// Adds the card `card` (a fake Stripe test token) the way the console does.
async function addCard(client, f, card = 'pm_card_visa') {
  const s = await client.post(`${BILLING}/setup_intent`, {});
  assert.equal(s.status, 200, JSON.stringify(s.body));
  const id = await confirmAtStripe(f, s.body.client_secret, card);
  const r = await client.post(`${BILLING}/payment_method`, { setup_intent: id });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return { card: r.body, setupIntent: id };
}

// A new organization on `srv` with its first-purchase answers and the card `card`.
async function stripeOrg(srv, f, name, card = 'pm_card_visa') {
  const client = new Client(srv.consoleUrl);
  const s = await client.signUpWithOrg(srv, uniq(name.toLowerCase()), name);
  const p = await client.post(`${BILLING}/profile`, PROFILE);
  assert.equal(p.status, 200, JSON.stringify(p.body));
  const { card: pm } = await addCard(client, f, card);
  return { client, orgId: s.current_organization.id, card: pm };
}

// The PaymentIntents the fake holds for purchase `id`.
const intentsFor = (f, id) => [...f.paymentIntents.values()].filter((pi) => pi.metadata.purchase_id === id);

// A Stripe event for PaymentIntent-like `object`, and its delivery (with the right signature
// unless told otherwise).
function eventFor(type, object) {
  return JSON.stringify({ id: `evt_${token(12)}`, object: 'event', api_version: '2024-06-20',
    created: Math.floor(Date.now() / 1000), livemode: false, pending_webhooks: 1, type,
    data: { object } }, null, 2);
}
async function deliver(srv, payload, signature = fake.sign(payload)) {
  const res = await fetch(`${srv.consoleUrl}/webhooks/stripe`, {
    method: 'POST',
    headers: { 'content-type': 'application/json; charset=utf-8', 'stripe-signature': signature },
    body: payload,
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : null };
}
function paidIntent(purchase, orgId, { id = `pi_${token(12)}`, status = 'succeeded', amount } = {}) {
  const cents = amount ?? Math.round(Number(purchase.total_usd) * 100);
  return { id, object: 'payment_intent', amount: cents, amount_received: status === 'succeeded' ? cents : 0,
    currency: 'usd', status, customer: null, livemode: false,
    metadata: { purchase_id: purchase.id, org_id: orgId } };
}

async function purchase(client, id) {
  const r = await client.get(`${BILLING}/purchases/${id}`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
}

async function invoices(client) {
  const r = await client.get(INVOICES);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body.data;
}

describe('starting', () => {
  const tryStart = async (env, extra = {}) => {
    try {
      const s = await startServer({ config: stripeConfig(fake, extra), env });
      await s.stop();
      return null;
    } catch (e) {
      return e.message;
    }
  };

  test('needs the secret key and the webhook secret, and never repeats them', async () => {
    const noKey = await tryStart({ GH_E2E_STRIPE_WHSEC: WHSEC });
    assert.match(noKey, /Stripe secret key in the environment variable GH_E2E_STRIPE_KEY/);
    const noWhsec = await tryStart({ GH_E2E_STRIPE_KEY: SECRET });
    assert.match(noWhsec, /webhook signing secret .* GH_E2E_STRIPE_WHSEC/);
    assert.ok(!noWhsec.includes(SECRET));
    const badKey = `pk_test_notASecretKey${token(4)}`;
    const wrong = await tryStart({ GH_E2E_STRIPE_KEY: badKey, GH_E2E_STRIPE_WHSEC: WHSEC });
    assert.match(wrong, /not a Stripe secret key/);
    assert.ok(!wrong.includes(badKey));
    const mixed = await tryStart(ENV, { stripe_publishable_key: 'pk_live_mixedModes' });
    assert.match(mixed, /same mode/);
  });
});

describe('the console', () => {
  test('lets Stripe.js load, frame and call the API in its content security policy', async () => {
    const res = await fetch(`${server.consoleUrl}/settings/billing`);
    assert.equal(res.status, 200);
    const csp = res.headers.get('content-security-policy');
    assert.match(csp, new RegExp(`script-src 'self' ${fake.url};`));
    assert.match(csp, new RegExp(`frame-src ${fake.url};`));
    assert.match(csp, new RegExp(`connect-src 'self' ${fake.url};`));
    assert.equal(csp, "default-src 'self'; img-src 'self' data:; style-src 'self'; " +
      `script-src 'self' ${fake.url}; connect-src 'self' ${fake.url}; frame-src ${fake.url}; ` +
      "object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'");
  });

  test('GET billing says stripe, with what Stripe.js needs', async () => {
    const client = new Client(server.consoleUrl);
    await client.signUpWithOrg(server, uniq('look'), 'Look');
    const b = await billing(client);
    assert.equal(b.provider, 'stripe');
    assert.equal(b.test_mode, true);
    assert.deepEqual(b.stripe, { publishable_key: PK, js_url: fake.jsUrl });
    assert.equal(b.payment_method, null);
  });
});

describe('adding a card', () => {
  test('a SetupIntent confirmed at Stripe saves the card; card numbers are refused', async () => {
    const client = new Client(server.consoleUrl);
    const s = await client.signUpWithOrg(server, uniq('cards'), 'Cards');
    const orgId = s.current_organization.id;

    const raw = await client.post(`${BILLING}/payment_method`, CARD);
    assertError(raw, 400, 'invalid_request_error');
    assert.match(raw.body.error.message, /Card numbers never reach this server/);
    const mixed = await client.post(`${BILLING}/payment_method`, { number: CARD.number, setup_intent: 'seti_x' });
    assertError(mixed, 400, 'invalid_request_error');
    assert.ok(!fake.requests.some((r) => r.body.includes('4242424242424242') || r.body.includes('4242 4242')));

    const first = await client.post(`${BILLING}/setup_intent`, {});
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.equal(first.body.type, 'setup_intent');
    assert.match(first.body.client_secret, /^seti_\w+_secret_\w+$/);
    assert.equal(first.body.publishable_key, PK);
    assert.equal(first.body.stripe_js_url, fake.jsUrl);
    const customers = [...fake.customers.values()].filter((c) => c.metadata.org_id === orgId);
    assert.equal(customers.length, 1);
    assert.equal(customers[0].email, s.account.email);

    // Not confirmed yet: refused.
    const early = await client.post(`${BILLING}/payment_method`, { setup_intent: first.body.client_secret.split('_secret_')[0] });
    assertError(early, 400, 'invalid_request_error');
    assert.match(early.body.error.message, /not saved/);

    // Another setup reuses the customer; confirming it at Stripe then saves the card.
    const second = await client.post(`${BILLING}/setup_intent`, {});
    assert.equal(second.status, 200);
    assert.equal([...fake.customers.values()].filter((c) => c.metadata.org_id === orgId).length, 1);
    const seti = await confirmAtStripe(fake, second.body.client_secret, 'pm_card_mastercard');
    assert.equal(fake.setupIntents.get(seti).customer, customers[0].id);
    const saved = await client.post(`${BILLING}/payment_method`, { setup_intent: seti });
    assert.equal(saved.status, 200, JSON.stringify(saved.body));
    assert.equal(saved.body.brand, 'mastercard');
    assert.equal(saved.body.last4, '4444');
    // Again (a double click), and after Stripe's own setup_intent.succeeded webhook: one card.
    const again = await client.post(`${BILLING}/payment_method`, { setup_intent: seti });
    assert.equal(again.status, 200);
    assert.equal(again.body.id, saved.body.id);
    await fake.idle();
    const hook = fake.events.find((e) => e.type === 'setup_intent.succeeded' && e.object.id === seti);
    assert.equal(hook?.status, 200);
    const list = await client.get(`${BILLING}/payment_methods`);
    assert.deepEqual(list.body.data.map((c) => c.id), [saved.body.id]);
    const b = await billing(client);
    assert.equal(b.payment_method.id, saved.body.id);

    // Another organization's setup is not this one's.
    const other = new Client(server.consoleUrl);
    await other.signUpWithOrg(server, uniq('other'), 'Other');
    const stolen = await other.post(`${BILLING}/payment_method`, { setup_intent: seti });
    assertError(stolen, 400, 'invalid_request_error');
    const theirs = await other.post(`${BILLING}/setup_intent`, {});
    assert.equal(theirs.status, 200);
    const stolenToo = await other.post(`${BILLING}/payment_method`, { setup_intent: seti });
    assertError(stolenToo, 400, 'invalid_request_error');
    assert.match(stolenToo.body.error.message, /another account/);
    assert.equal((await billing(other)).payment_method, null);
  });

  test('Stripe\'s setup_intent.succeeded webhook saves the card when the console did not finish', async () => {
    const client = new Client(server.consoleUrl);
    await client.signUpWithOrg(server, uniq('closed'), 'Closed Tab');
    const s = await client.post(`${BILLING}/setup_intent`, {});
    const seti = await confirmAtStripe(fake, s.body.client_secret, 'pm_card_amex');
    await fake.idle();
    const hook = fake.events.find((e) => e.type === 'setup_intent.succeeded' && e.object.id === seti);
    assert.equal(hook?.status, 200);
    const b = await billing(client);
    assert.equal(b.payment_method?.brand, 'amex');
    assert.equal(b.payment_method.last4, '8431');
    // The console finishing late keeps that card.
    const late = await client.post(`${BILLING}/payment_method`, { setup_intent: seti });
    assert.equal(late.status, 200);
    assert.equal(late.body.id, b.payment_method.id);
    const audit = await client.get('/v1/organizations/audit_log');
    const added = audit.body.data.filter((e) => e.action === 'payment_method.added');
    assert.equal(added.length, 1);
    assert.equal(added[0].actor.type, 'system');
  });

  test('a card the bank refuses at setup is not saved', async () => {
    const client = new Client(server.consoleUrl);
    await client.signUpWithOrg(server, uniq('setupdecline'), 'Setup Decline');
    const s = await client.post(`${BILLING}/setup_intent`, {});
    const id = s.body.client_secret.split('_secret_')[0];
    const res = await fetch(`${fake.url}/v1/setup_intents/${id}/confirm`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ key: PK, client_secret: s.body.client_secret, payment_method: 'pm_card_setupDeclined' }),
    });
    assert.equal(res.status, 402);
    const r = await client.post(`${BILLING}/payment_method`, { setup_intent: id });
    assertError(r, 400, 'invalid_request_error');
    assert.equal((await billing(client)).payment_method, null);
  });
});

describe('buying credits', () => {
  test('a purchase succeeds: credited once, with invoice and receipt, even after the webhook', async () => {
    const { client, orgId, card } = await stripeOrg(server, fake, 'Buyer');
    const key = newKey();
    const [r, twin] = await Promise.all([buy(client, '10.00', key), buy(client, '10.00', key)]);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(twin.status, 200, JSON.stringify(twin.body));
    assert.equal(twin.body.id, r.body.id);
    assert.equal(r.body.status, 'succeeded');
    assert.match(r.body.provider_ref, /^pi_/);
    assert.equal(r.body.payment_method_id, card.id);

    const intents = intentsFor(fake, r.body.id);
    assert.equal(intents.length, 1, 'one PaymentIntent for a double click');
    const pi = intents[0];
    assert.equal(pi.id, r.body.provider_ref);
    assert.equal(pi.amount, 1000);
    assert.equal(pi.metadata.org_id, orgId);
    assert.equal(fake.customers.get(pi.customer).metadata.org_id, orgId);
    assert.equal(fake.paymentMethods.get(pi.payment_method).customer, pi.customer);
    const sent = fake.requests.filter((q) => q.method === 'POST' && q.path === '/v1/payment_intents' &&
      q.form['metadata[purchase_id]'] === r.body.id);
    assert.ok(sent.length >= 1);
    for (const q of sent) {
      assert.equal(q.headers['idempotency-key'], r.body.id);
      assert.equal(q.form.confirm, 'true');
      assert.equal(q.form.off_session, 'false');
    }

    await fake.idle();
    const hook = fake.events.find((e) => e.type === 'payment_intent.succeeded' && e.object.id === pi.id);
    assert.equal(hook?.status, 200, 'the webhook is acknowledged');
    const b = await billing(client);
    assert.equal(b.balance_usd, '10.00');
    const inv = await invoices(client);
    assert.equal(inv.length, 1);
    assert.equal(inv[0].purchase_id, r.body.id);
    assert.equal(inv[0].test_mode, true);
    assert.equal(inv[0].payment, 'Visa ending in 4242');
    const pdf = await client.get(`${INVOICES}/${inv[0].id}/pdf`);
    assert.equal(pdf.status, 200);
    assert.equal(pdf.headers.get('content-type'), 'application/pdf');
    assert.ok(String(pdf.body).startsWith('%PDF-'));
    const receipts = server.outbox().filter((m) => /^Receipt for your/.test(m.subject ?? '') && m.body.includes(inv[0].number));
    assert.equal(receipts.length, 1);
  });

  test('a declined card: 402 with Stripe\'s reason, nothing credited, and the webhook changes nothing', async () => {
    const { client } = await stripeOrg(server, fake, 'Broke', 'pm_card_chargeDeclinedInsufficientFunds');
    const r = await buy(client, '10.00');
    assertError(r, 402, 'billing_error');
    assert.match(r.body.error.message, /insufficient funds.*Nothing was charged.*insufficient_funds/);
    await fake.idle();
    const list = await client.get(`${BILLING}/purchases`);
    assert.equal(list.body.data.length, 1);
    const p = list.body.data[0];
    assert.equal(p.status, 'declined');
    assert.equal(p.decline_code, 'insufficient_funds');
    const hook = fake.events.find((e) => e.type === 'payment_intent.payment_failed' && e.object.id === p.provider_ref);
    assert.equal(hook?.status, 200);
    assert.equal((await purchase(client, p.id)).status, 'declined');
    assert.equal((await billing(client)).balance_usd, '0.00');
    assert.deepEqual(await invoices(client), []);
  });

  test('a timeout leaves it pending; the signed webhook credits it exactly once', async () => {
    const { client, orgId } = await stripeOrg(server, fake, 'Slow');
    fake.failNext(1, { hang: true, match: 'POST /v1/payment_intents' });
    // The fake never answers that call, so an answer at all proves the timeout.
    const r = await buy(client, '10.00');
    assert.equal(r.status, 202, JSON.stringify(r.body));
    assert.equal(r.body.status, 'pending');
    assert.match(r.body.message, /did not answer in time/);
    assert.equal((await billing(client)).balance_usd, '0.00');
    assert.equal((await billing(client)).pending_purchases, 1);

    const pi = paidIntent(r.body, orgId);
    const payload = eventFor('payment_intent.succeeded', pi);
    // Forged, stale, missing or for another endpoint: refused, nothing changes.
    const past = Math.floor(Date.now() / 1000) - 600;
    const refused = [
      fake.sign(payload, { secret: 'whsec_notTheEndpointSecret' }),
      fake.sign(payload, { timestamp: past }),
      fake.sign(payload, { timestamp: Math.floor(Date.now() / 1000) + 600 }),
      '',
      't=abc,v1=00',
      fake.sign(`${payload} `),
    ];
    for (const sig of refused) {
      const w = await deliver(server, payload, sig);
      assertError(w, 400, 'invalid_request_error');
      assert.match(w.body.error.message, /Stripe-Signature/);
    }
    assert.equal((await purchase(client, r.body.id)).status, 'pending');
    assert.equal((await billing(client)).balance_usd, '0.00');

    // An amount that is not the purchase's: recorded, ignored.
    const odd = await deliver(server, eventFor('payment_intent.succeeded', paidIntent(r.body, orgId, { amount: 1 })));
    assert.equal(odd.status, 200);
    assert.equal(odd.body.outcome, 'ignored');
    assert.equal((await purchase(client, r.body.id)).status, 'pending');

    const w = await deliver(server, payload);
    assert.equal(w.status, 200, JSON.stringify(w.body));
    assert.equal(w.body.outcome, 'applied');
    const p = await purchase(client, r.body.id);
    assert.equal(p.status, 'succeeded');
    assert.equal(p.provider_ref, pi.id);
    assert.equal((await billing(client)).balance_usd, '10.00');

    // The same delivery again, and another event saying the same: nothing more.
    const replay = await deliver(server, payload);
    assert.equal(replay.status, 200);
    assert.equal(replay.body.outcome, 'duplicate');
    const other = await deliver(server, eventFor('payment_intent.succeeded', pi));
    assert.equal(other.status, 200);
    assert.equal(other.body.outcome, 'ignored');
    const failed = await deliver(server, eventFor('payment_intent.payment_failed', { ...pi, status: 'requires_payment_method' }));
    assert.equal(failed.body.outcome, 'ignored');
    assert.equal((await purchase(client, r.body.id)).status, 'succeeded');
    assert.equal((await billing(client)).balance_usd, '10.00');
    const inv = await invoices(client);
    assert.equal(inv.length, 1);
    assert.equal(server.outbox().filter((m) => m.body.includes(inv[0].number)).length, 1, 'one receipt');
  });

  test('a webhook saying the payment failed declines a pending purchase', async () => {
    const { client, orgId } = await stripeOrg(server, fake, 'SlowDecline');
    fake.failNext(1, { hang: true, match: 'POST /v1/payment_intents' });
    const r = await buy(client, '12.00');
    assert.equal(r.status, 202);
    const pi = paidIntent(r.body, orgId, { status: 'requires_payment_method' });
    pi.last_payment_error = { type: 'card_error', code: 'card_declined', decline_code: 'do_not_honor',
      message: 'Your card was declined.' };
    const w = await deliver(server, eventFor('payment_intent.payment_failed', pi));
    assert.equal(w.body.outcome, 'applied');
    const p = await purchase(client, r.body.id);
    assert.equal(p.status, 'declined');
    assert.equal(p.decline_code, 'do_not_honor');
    assert.match(p.message, /Your card was declined\. Nothing was charged/);
    assert.equal((await billing(client)).balance_usd, '0.00');
  });

  test('events Gatehouse does not use, or for purchases it does not have, are acknowledged', async () => {
    const unknown = await deliver(server, eventFor('customer.created', { id: 'cus_x', object: 'customer' }));
    assert.equal(unknown.status, 200);
    assert.equal(unknown.body.outcome, 'ignored');
    const stray = await deliver(server, eventFor('payment_intent.succeeded', {
      id: `pi_${token(8)}`, object: 'payment_intent', amount: 500, currency: 'usd', status: 'succeeded',
      metadata: { purchase_id: 'pur_01aaaaaaaaaaaaaaaaaaaaaa', org_id: 'org_x' } }));
    assert.equal(stray.status, 200);
    assert.equal(stray.body.outcome, 'ignored');
    const notJson = await deliver(server, 'hello');
    assertError(notJson, 400, 'invalid_request_error');
    const big = 'x'.repeat(300 * 1024);
    const tooBig = await deliver(server, big, fake.sign(big));
    assert.equal(tooBig.status, 413);
  });

  test('a processing charge stays pending until Stripe completes it, then is credited once', async () => {
    const { client } = await stripeOrg(server, fake, 'Processing', 'pm_card_pending');
    const key = newKey();
    const r = await buy(client, '15.00', key);
    assert.equal(r.status, 202, JSON.stringify(r.body));
    assert.equal(r.body.status, 'pending');
    assert.match(r.body.provider_ref, /^pi_/);
    await fake.idle(); // payment_intent.processing: nothing to do
    assert.equal((await purchase(client, r.body.id)).status, 'pending');
    assert.equal((await billing(client)).balance_usd, '0.00');
    // A retried request with the same key answers with the same purchase, still pending, and
    // Stripe sees the same idempotency key again (no second PaymentIntent).
    const same = await buy(client, '15.00', key);
    assert.equal(same.status, 202, JSON.stringify(same.body));
    assert.equal(same.body.id, r.body.id);
    assert.equal(intentsFor(fake, r.body.id).length, 1);

    assert.equal(await fake.completePending(r.body.provider_ref), 200);
    const p = await purchase(client, r.body.id);
    assert.equal(p.status, 'succeeded');
    assert.equal((await billing(client)).balance_usd, '15.00');
    assert.equal((await invoices(client)).length, 1);
    assertLedgerConsistent(server);
  });
});

describe('the retry job', () => {
  test('charges a pending purchase again with the same idempotency key: one charge, one credit', async () => {
    const { client } = await stripeOrg(retrier, quiet, 'Retried');
    // Stripe charges but answers after the client gave up.
    quiet.failNext(1, { delayMs: 2500, match: 'POST /v1/payment_intents' });
    const r = await buy(client, '10.00');
    assert.equal(r.status, 202, JSON.stringify(r.body));
    assert.equal(r.body.status, 'pending');
    assert.equal(intentsFor(quiet, r.body.id).length, 1, 'Stripe did charge');
    const p = await until(async () => {
      const q = await purchase(client, r.body.id);
      return q.status !== 'pending' && q;
    }, 'the retry job to settle the purchase');
    assert.equal(p.status, 'succeeded');
    assert.ok(p.attempts >= 2);
    assert.equal(intentsFor(quiet, r.body.id).length, 1, 'no second charge');
    assert.equal(p.provider_ref, intentsFor(quiet, r.body.id)[0].id);
    const attempts = quiet.requests.filter((q) => q.method === 'POST' && q.path === '/v1/payment_intents' &&
      q.headers['idempotency-key'] === r.body.id);
    assert.ok(attempts.length >= 2, `charged ${attempts.length} times`);
    assert.equal((await billing(client)).balance_usd, '10.00');
    assert.equal((await invoices(client)).length, 1);
    assertLedgerConsistent(retrier);
  });
});

describe('secrets', () => {
  test('the secret key and the webhook secret never reach the log', async () => {
    await fake.idle();
    for (const s of [server, retrier]) {
      assert.ok(s.log.length > 1000);
      assert.ok(!s.log.includes(SECRET), 'the secret key is in the log');
      assert.ok(!s.log.includes(SECRET.slice(8)), 'part of the secret key is in the log');
      assert.ok(!s.log.includes(WHSEC), 'the webhook secret is in the log');
      assert.match(s.log, /payment provider stripe \(test mode/);
    }
  });
});
