// Checks the fake Stripe itself (tests/e2e/lib/fake-stripe.mjs), so that tests built on it
// test Gatehouse and not the fake: authentication, idempotency, decline shapes, pending
// payments, injected failures, signed webhooks (verified here with node:crypto, not with the
// fake's own signing) and the fake Stripe.js.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { createHmac, timingSafeEqual } from 'node:crypto';
import vm from 'node:vm';
import { startFakeStripe } from './lib/fake-stripe.mjs';

const KEY = 'sk_test_fakeGatehouse123';

// A webhook endpoint on loopback that records what it receives and answers `status`.
async function startReceiver(status = 200) {
  const received = [];
  const waiters = [];
  const server = createServer(async (req, res) => {
    let body = '';
    for await (const c of req) body += c;
    received.push({ headers: req.headers, body, event: JSON.parse(body) });
    res.writeHead(status).end();
    waiters.splice(0).forEach((w) => w());
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${server.address().port}/webhooks/stripe`,
    received,
    // Resolves with the first event of `type` (waits for it to arrive).
    async next(type) {
      for (;;) {
        const e = received.find((x) => x.event.type === type);
        if (e) return e;
        await new Promise((r) => waiters.push(r));
      }
    },
    stop: () => new Promise((r) => { server.closeAllConnections(); server.close(r); }),
  };
}

// Stripe's documented scheme, written independently of the fake.
function signatureValid(header, payload, secret, toleranceS = 300) {
  const items = header.split(',').map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]);
  const t = items.find(([k]) => k === 't')?.[1];
  if (!t || !/^\d+$/.test(t)) return false;
  const want = Buffer.from(createHmac('sha256', secret).update(`${t}.${payload}`, 'utf8').digest('hex'));
  const ok = items.some(([k, v]) => k === 'v1' && v.length === want.length && timingSafeEqual(Buffer.from(v), want));
  return ok && Math.abs(Date.now() / 1000 - Number(t)) <= toleranceS;
}

async function api(fake, method, path, params, { key = KEY, idempotencyKey, signal } = {}) {
  const headers = {};
  if (key) headers.authorization = `Bearer ${key}`;
  if (idempotencyKey) headers['idempotency-key'] = idempotencyKey;
  let url = fake.url + path;
  let body;
  if (params && method === 'GET') url += `?${new URLSearchParams(params)}`;
  else if (params) {
    headers['content-type'] = 'application/x-www-form-urlencoded';
    body = new URLSearchParams(params).toString();
  }
  const res = await fetch(url, { method, headers, body, signal });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, json: JSON.parse(text) };
}

// A customer with a saved card (confirmed the way the fake Stripe.js does it).
async function customerWithCard(fake, token = 'pm_card_visa') {
  const cus = (await api(fake, 'POST', '/v1/customers', { email: 'a@example.com', 'metadata[org_id]': 'org_1' })).json;
  const si = (await api(fake, 'POST', '/v1/setup_intents', { customer: cus.id, usage: 'off_session', 'payment_method_types[]': 'card' })).json;
  const done = await api(fake, 'POST', `/v1/setup_intents/${si.id}/confirm`,
    { key: 'pk_test_x', client_secret: si.client_secret, payment_method: token }, { key: null });
  assert.equal(done.status, 200, done.text);
  return { customer: cus.id, pm: done.json.payment_method, si: done.json };
}

const charge = (fake, c, extra = {}, opts = {}) => api(fake, 'POST', '/v1/payment_intents', {
  amount: '1500', currency: 'usd', customer: c.customer, payment_method: c.pm, confirm: 'true',
  off_session: 'true', 'metadata[purchase_id]': 'pur_1', ...extra }, opts);

test('every API call needs the secret key', async () => {
  const fake = await startFakeStripe({ secretKey: KEY });
  try {
    const none = await api(fake, 'POST', '/v1/payment_intents', { amount: '100' }, { key: null });
    assert.equal(none.status, 401);
    assert.equal(none.json.error.type, 'invalid_request_error');
    const wrong = await api(fake, 'POST', '/v1/payment_intents', { amount: '100' }, { key: 'sk_test_wrongWrong999' });
    assert.equal(wrong.status, 401);
    assert.match(wrong.json.error.message, /Invalid API Key provided: sk_test_\*+g999$/);
    assert.ok(!wrong.text.includes('sk_test_wrongWrong999'), 'Stripe masks the key');
    const live = await api(fake, 'POST', '/v1/customers', {}, { key: 'pk_test_x' });
    assert.equal(live.status, 401);
    assert.equal((await api(fake, 'GET', '/v1/payment_intents/pi_x')).status, 404);
    assert.equal(fake.paymentIntents.size, 0);
  } finally {
    await fake.stop();
  }
});

test('a retry with the same Idempotency-Key replays the answer and charges once', async () => {
  const fake = await startFakeStripe();
  try {
    const c = await customerWithCard(fake);
    const first = await charge(fake, c, {}, { idempotencyKey: 'pur_1' });
    assert.equal(first.status, 200);
    assert.equal(first.json.status, 'succeeded');
    assert.equal(first.json.amount_received, 1500);
    assert.deepEqual(first.json.metadata, { purchase_id: 'pur_1' });
    const again = await charge(fake, c, {}, { idempotencyKey: 'pur_1' });
    assert.equal(again.status, 200);
    assert.equal(again.text, first.text, 'byte for byte');
    assert.equal(again.headers.get('idempotent-replayed'), 'true');
    assert.equal(fake.paymentIntents.size, 1);

    const other = await charge(fake, c, { amount: '1600' }, { idempotencyKey: 'pur_1' });
    assert.equal(other.status, 400);
    assert.equal(other.json.error.type, 'idempotency_error');
    assert.equal(fake.paymentIntents.size, 1);

    // Declines are saved and replayed too.
    const bad = await customerWithCard(fake, 'pm_card_chargeDeclined');
    const d1 = await charge(fake, bad, {}, { idempotencyKey: 'pur_2' });
    const d2 = await charge(fake, bad, {}, { idempotencyKey: 'pur_2' });
    assert.equal(d1.status, 402);
    assert.equal(d2.text, d1.text);
    assert.equal(fake.paymentIntents.size, 2);
  } finally {
    await fake.stop();
  }
});

test('declines have Stripe\'s error shape', async () => {
  const fake = await startFakeStripe();
  try {
    const poor = await customerWithCard(fake, 'pm_card_chargeDeclinedInsufficientFunds');
    const r = await charge(fake, poor);
    assert.equal(r.status, 402);
    const e = r.json.error;
    assert.equal(e.type, 'card_error');
    assert.equal(e.code, 'card_declined');
    assert.equal(e.decline_code, 'insufficient_funds');
    assert.equal(e.message, 'Your card has insufficient funds.');
    assert.match(e.payment_intent.id, /^pi_/);
    assert.equal(e.payment_intent.status, 'requires_payment_method');
    assert.equal(e.payment_intent.last_payment_error.decline_code, 'insufficient_funds');
    assert.equal(fake.paymentIntents.get(e.payment_intent.id).status, 'requires_payment_method');

    const generic = await charge(fake, await customerWithCard(fake, 'pm_card_chargeDeclined'));
    assert.equal(generic.json.error.decline_code, 'generic_decline');

    const sca = await customerWithCard(fake, 'pm_card_authenticationRequired');
    const off = await charge(fake, sca);
    assert.equal(off.status, 402);
    assert.equal(off.json.error.code, 'authentication_required');
    const on = await charge(fake, sca, { off_session: 'false' });
    assert.equal(on.status, 200);
    assert.equal(on.json.status, 'requires_action');

    // A card whose setup itself is declined.
    const cus = (await api(fake, 'POST', '/v1/customers', { email: 'b@example.com' })).json;
    const si = (await api(fake, 'POST', '/v1/setup_intents', { customer: cus.id })).json;
    const no = await api(fake, 'POST', `/v1/setup_intents/${si.id}/confirm`,
      { key: 'pk_test_x', client_secret: si.client_secret, payment_method: 'pm_card_setupDeclined' }, { key: null });
    assert.equal(no.status, 402);
    assert.equal(no.json.error.type, 'card_error');
    // The wrong client secret is refused.
    const forged = await api(fake, 'POST', `/v1/setup_intents/${si.id}/confirm`,
      { key: 'pk_test_x', client_secret: `${si.id}_secret_nope`, payment_method: 'pm_card_visa' }, { key: null });
    assert.equal(forged.status, 400);
  } finally {
    await fake.stop();
  }
});

test('saved cards are readable with the secret key', async () => {
  const fake = await startFakeStripe();
  try {
    const c = await customerWithCard(fake, 'pm_card_mastercard');
    const si = await api(fake, 'GET', `/v1/setup_intents/${c.si.id}`);
    assert.equal(si.json.status, 'succeeded');
    assert.equal(si.json.customer, c.customer);
    const pm = await api(fake, 'GET', `/v1/payment_methods/${si.json.payment_method}`);
    assert.equal(pm.json.customer, c.customer);
    assert.equal(pm.json.card.brand, 'mastercard');
    assert.equal(pm.json.card.last4, '4444');
    assert.ok(pm.json.card.exp_year > new Date().getUTCFullYear());
    assert.ok(!('fake_token' in pm.json));
  } finally {
    await fake.stop();
  }
});

test('events are signed with Stripe\'s scheme', async () => {
  const hook = await startReceiver();
  const fake = await startFakeStripe({ webhookUrl: hook.url, webhookSecret: 'whsec_checkme' });
  try {
    const c = await customerWithCard(fake);
    const r = await charge(fake, c, {}, { idempotencyKey: 'pur_9' });
    const got = await hook.next('payment_intent.succeeded');
    assert.ok(signatureValid(got.headers['stripe-signature'], got.body, 'whsec_checkme'));
    assert.ok(!signatureValid(got.headers['stripe-signature'], got.body, 'whsec_other'));
    assert.ok(!signatureValid(got.headers['stripe-signature'], `${got.body} `, 'whsec_checkme'));
    assert.match(got.event.id, /^evt_/);
    assert.equal(got.event.data.object.id, r.json.id);
    assert.equal(got.event.data.object.metadata.purchase_id, 'pur_1');
    assert.ok((await hook.next('setup_intent.succeeded')).event.data.object.payment_method);

    // sendEvent returns the endpoint's status; overrides make bad signatures on purpose.
    assert.equal(await fake.sendEvent('payment_intent.payment_failed', { id: 'pi_x', object: 'payment_intent' }), 200);
    await fake.sendEvent('test.wrong_secret', { id: 'x' }, { secret: 'whsec_nope' });
    await fake.sendEvent('test.old', { id: 'x' }, { timestamp: Math.floor(Date.now() / 1000) - 3600 });
    const wrong = hook.received.find((x) => x.event.type === 'test.wrong_secret');
    const old = hook.received.find((x) => x.event.type === 'test.old');
    assert.ok(!signatureValid(wrong.headers['stripe-signature'], wrong.body, 'whsec_checkme'));
    assert.ok(!signatureValid(old.headers['stripe-signature'], old.body, 'whsec_checkme'));
    assert.ok(signatureValid(old.headers['stripe-signature'], old.body, 'whsec_checkme', 7200));
    assert.equal(fake.sign('{}', { timestamp: 1 }),
      `t=1,v1=${createHmac('sha256', 'whsec_checkme').update('1.{}').digest('hex')}`);
  } finally {
    await fake.stop();
    await hook.stop();
  }
});

test('a pending charge settles later with an event', async () => {
  const hook = await startReceiver();
  const fake = await startFakeStripe({ webhookUrl: hook.url });
  try {
    const c = await customerWithCard(fake, 'pm_card_pending');
    const r = await charge(fake, c);
    assert.equal(r.status, 200);
    assert.equal(r.json.status, 'processing');
    assert.equal(await fake.completePending(r.json.id), 200);
    const got = await hook.next('payment_intent.succeeded');
    assert.equal(got.event.data.object.id, r.json.id);
    assert.equal((await api(fake, 'GET', `/v1/payment_intents/${r.json.id}`)).json.status, 'succeeded');
    await fake.idle();
    assert.ok(fake.events.every((e) => e.status === 200));
  } finally {
    await fake.stop();
    await hook.stop();
  }
});

test('failNext injects errors, slowness and silence', async () => {
  const fake = await startFakeStripe();
  try {
    const c = await customerWithCard(fake);
    fake.failNext(1, { status: 500, match: 'POST /v1/payment_intents' });
    const e500 = await charge(fake, c, {}, { idempotencyKey: 'k500' });
    assert.equal(e500.status, 500);
    assert.equal(e500.json.error.type, 'api_error');
    assert.equal(fake.paymentIntents.size, 0, 'an injected 500 does nothing');
    const retry = await charge(fake, c, {}, { idempotencyKey: 'k500' });
    assert.equal(retry.json.status, 'succeeded', 'and is not saved under the key');

    // Hanging: no answer and nothing done.
    fake.failNext(1, { hang: true });
    await assert.rejects(charge(fake, c, {}, { idempotencyKey: 'khang', signal: AbortSignal.timeout(200) }));
    assert.equal(fake.paymentIntents.size, 1);

    // Slow: done at once, answered late; a concurrent retry sees the key in use.
    fake.failNext(1, { delayMs: 300 });
    const slow = charge(fake, c, {}, { idempotencyKey: 'kslow' });
    await fake.waitForRequest((r) => r.headers['idempotency-key'] === 'kslow');
    assert.equal(fake.paymentIntents.size, 2);
    const busy = await charge(fake, c, {}, { idempotencyKey: 'kslow' });
    assert.equal(busy.status, 409);
    const late = await slow;
    assert.equal(late.json.status, 'succeeded');
    assert.equal((await charge(fake, c, {}, { idempotencyKey: 'kslow' })).text, late.text);
  } finally {
    await fake.stop();
  }
});

test('the fake Stripe.js confirms a SetupIntent through CORS', async () => {
  const fake = await startFakeStripe();
  try {
    const js = await fetch(fake.jsUrl);
    assert.equal(js.status, 200);
    assert.match(js.headers.get('content-type'), /^application\/javascript/);
    const pre = await fetch(`${fake.url}/v1/setup_intents/seti_x/confirm`, { method: 'OPTIONS' });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers.get('access-control-allow-origin'), '*');

    const cus = (await api(fake, 'POST', '/v1/customers', { email: 'c@example.com' })).json;
    const si = (await api(fake, 'POST', '/v1/setup_intents', { customer: cus.id })).json;
    assert.equal((await api(fake, 'GET', `/v1/setup_intents/${si.id}`)).headers.get('access-control-allow-origin'), '*');

    // Just enough DOM for the script: one node to mount on, inputs, labels.
    const node = (tag) => ({ tag, children: [], value: '', attrs: {}, listeners: {},
      appendChild(c) { this.children.push(c); c.parentNode = this; }, remove() {},
      setAttribute(k, v) { this.attrs[k] = v; }, addEventListener(t, f) { this.listeners[t] = f; },
      set innerHTML(_) { this.children = []; } });
    const mountPoint = node('div');
    const context = { fetch, URLSearchParams, setTimeout, Promise,
      document: { createElement: node, querySelector: (s) => (s === '#card' ? mountPoint : null) } };
    context.window = context;
    vm.runInNewContext(await js.text(), context);

    const stripe = context.window.Stripe('pk_test_x');
    const elements = stripe.elements({ clientSecret: si.client_secret });
    elements.create('payment').mount('#card');
    const input = mountPoint.children[0].children[0];
    assert.equal(input.value, 'pm_card_visa');
    input.value = 'pm_card_amex';
    const ok = await stripe.confirmSetup({ elements, redirect: 'if_required' });
    assert.equal(ok.setupIntent.id, si.id);
    assert.equal(ok.setupIntent.status, 'succeeded');
    assert.equal(fake.paymentMethods.get(ok.setupIntent.payment_method).card.brand, 'amex');

    const si2 = (await api(fake, 'POST', '/v1/setup_intents', { customer: cus.id })).json;
    const els2 = stripe.elements({ clientSecret: si2.client_secret });
    els2.create('card', { fakeToken: 'pm_card_setupDeclined' }).mount(mountPoint);
    const no = await stripe.confirmSetup({ elements: els2, redirect: 'if_required' });
    assert.equal(no.error.message, 'Your card was declined.');
  } finally {
    await fake.stop();
  }
});
