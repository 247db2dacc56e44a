// A small fake of Stripe's API and of Stripe.js, for tests. Node only (node:http, node:crypto),
// no dependencies. It keeps everything in memory and listens on 127.0.0.1 on a free port.
//
//   const fake = await startFakeStripe({ webhookUrl, webhookSecret, secretKey, autoEvents });
//   // [billing] stripe_api_base = fake.url, stripe_js_url = fake.jsUrl
//   ...
//   await fake.stop();
//
// Options (all optional):
//   webhookUrl      where events are POSTed (can be set later with setWebhookUrl(url))
//   webhookSecret   the endpoint signing secret (default "whsec_fake_gatehouse"; also
//                   fake.webhookSecret)
//   secretKey       the one secret key accepted; without it any "sk_test_…" or "rk_test_…"
//                   key is accepted
//   publishableKey  the one publishable key Stripe.js may use; without it any "pk_test_…"
//   echoKeyInErrors unlike Stripe, quote a refused key in full in the 401 message, to check
//                   that a client never repeats what a provider says about its key
//   autoEvents      send events by themselves like Stripe does (default true; only when a
//                   webhook URL is set): setup_intent.succeeded, payment_intent.succeeded,
//                   payment_intent.processing, payment_intent.payment_failed,
//                   payment_intent.canceled. They go out after the API answer; fake.idle()
//                   resolves when every delivery so far has finished.
//
// The API (form-encoded bodies, JSON answers, Stripe's error shape
// {"error":{"type","code","decline_code","message","param","payment_intent"}}):
//   POST /v1/customers                    email, description, metadata[…]
//   GET  /v1/customers/:id
//   POST /v1/setup_intents                customer, usage, payment_method_types[], metadata[…]
//   GET  /v1/setup_intents/:id            secret key, or Stripe.js's key=pk_…&client_secret=…
//   POST /v1/setup_intents/:id/confirm    payment_method=<test token or pm_ id> (or
//                                         payment_method_data[token]=…), with the secret key
//                                         or key=pk_…&client_secret=… (what the fake Stripe.js
//                                         sends). The card is attached to the customer.
//   GET  /v1/payment_methods/:id
//   POST /v1/payment_intents              amount, currency, customer, payment_method,
//                                         confirm, off_session, description, metadata[…]
//   GET  /v1/payment_intents/:id
//   POST /v1/payment_intents/:id/cancel
// Every /v1 call needs "Authorization: Bearer <secret key>" (or Basic with the key as user
// name, as `curl -u sk_test_…:` sends; 401 otherwise), except the two
// Stripe.js calls above. Every POST honours Idempotency-Key like Stripe's v1 API: the same
// key, path and parameters replay the first answer byte for byte (with the header
// Idempotent-Replayed: true); the same key with another path or other parameters is a 400
// idempotency_error; the same key while the first request is still running is a 409.
// Only answers produced by the endpoint are saved, not the ones injected with failNext.
//
// Test cards, by the token given as payment_method when confirming a SetupIntent (the saved
// card gets a pm_… id of its own; the token can also be used directly as payment_method):
//   pm_card_visa, pm_card_mastercard, pm_card_amex   charges succeed
//   pm_card_chargeDeclined                  402 card_declined / generic_decline
//   pm_card_chargeDeclinedInsufficientFunds 402 card_declined / insufficient_funds
//   pm_card_authenticationRequired          off_session: 402 authentication_required;
//                                           on session: status requires_action
//   pm_card_pending      (fake only)        status processing; settle it with completePending
//   pm_card_setupDeclined (fake only)       the SetupIntent confirmation itself is declined
// fake.cards maps tokens to {brand, last4, exp_month, exp_year, outcome}; tests may add their
// own (outcome: 'succeed' | 'decline' | 'insufficient_funds' | 'authentication' | 'pending'
// | 'setup_decline').
//
// Knobs and inspection:
//   fake.requests             every request: {method, path, query, headers, body, form, time}
//   fake.events               every event sent: {id, type, object, status} (status: the
//                             webhook's HTTP status, or 0 when delivery failed)
//   fake.customers, .setupIntents, .paymentMethods, .paymentIntents   Maps by id
//   fake.failNext(n, {status, delayMs, hang, match})
//       the next n API requests (matching `match`, a RegExp or a string prefix of
//       "METHOD /path", when given) are disturbed: `status` answers that status with a Stripe
//       api_error and does nothing; `delayMs` does the work and answers that much later (a
//       client that times out has still been charged); `hang` does nothing and never answers
//       (until the client gives up, or stop() drops the connection). Returns nothing.
//   fake.setWebhookUrl(url)
//   await fake.sendEvent(type, object, {secret, timestamp, signature})
//       builds {"id":"evt_…","object":"event","type":type,"data":{"object":object},…}, signs
//       it ("Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "t.payload">") and POSTs it to
//       the webhook URL; returns the HTTP status. `secret`, `timestamp` or a literal
//       `signature` header override the signing, for tests of refused signatures.
//   await fake.completePending(piId, {succeed = true, declineCode})
//       moves a processing PaymentIntent to succeeded (or requires_payment_method) and sends
//       payment_intent.succeeded (or payment_intent.payment_failed); returns the HTTP status
//       of the delivery, or 0 without a webhook URL.
//   await fake.idle()         waits for automatic deliveries in flight.
//   await fake.waitForRequest(r => …)   the first logged request that matches, once its
//                             work is done (its answer may still be delayed or hanging).
//   fake.sign(payload, {secret, timestamp})   the Stripe-Signature header for a payload.
//
// Stripe.js: GET /v3/ (fake.jsUrl) serves a script defining window.Stripe(pk) with
//   elements({clientSecret}) -> {create('payment'|'card', {fakeToken}) -> element,
//                                getElement(type)}
//   element.mount(selectorOrNode)  renders <input name="fake-stripe-token"> holding a test
//                                  token (`fakeToken`, default "pm_card_visa"); a browser test
//                                  types another token there to pick the card. Also
//                                  element.on('ready'|'change'), .unmount(), .focus()
//   confirmSetup({elements, confirmParams, redirect})  POSTs to /v1/setup_intents/:id/confirm
//       and resolves {setupIntent: {id, status, payment_method}} or {error: {type, code,
//       message}}; without redirect: 'if_required' it goes to confirmParams.return_url with
//       ?setup_intent=…&setup_intent_client_secret=…&redirect_status=… like Stripe.
//   confirmCardSetup(clientSecret, {payment_method: {card: element}}), retrieveSetupIntent()
// Every answer carries Access-Control-Allow-Origin: * and OPTIONS preflights get 204.
import { createServer } from 'node:http';
import { createHmac, randomBytes } from 'node:crypto';

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const BODY_MAX = 1 << 20;

function randomId(prefix, n = 24) {
  const bytes = randomBytes(n);
  let s = '';
  for (const b of bytes) s += ALNUM[b % ALNUM.length];
  return `${prefix}_${s}`;
}

const now = () => Math.floor(Date.now() / 1000);

function defaultCards() {
  const year = new Date().getUTCFullYear() + 3;
  const card = (brand, last4, outcome) => ({ brand, last4, exp_month: 12, exp_year: year, outcome });
  return {
    pm_card_visa: card('visa', '4242', 'succeed'),
    pm_card_mastercard: card('mastercard', '4444', 'succeed'),
    pm_card_amex: card('amex', '8431', 'succeed'),
    pm_card_chargeDeclined: card('visa', '0002', 'decline'),
    pm_card_chargeDeclinedInsufficientFunds: card('visa', '9995', 'insufficient_funds'),
    pm_card_authenticationRequired: card('visa', '3184', 'authentication'),
    pm_card_pending: card('visa', '0077', 'pending'),
    pm_card_setupDeclined: card('visa', '0341', 'setup_decline'),
  };
}

// Parses a form body into {flat, metadata}: `flat` maps each name to its value (an array
// for names ending in "[]" or given twice), `metadata` gathers the metadata[…] entries.
function parseForm(text) {
  const flat = {};
  const metadata = {};
  for (const [k, v] of new URLSearchParams(text)) {
    if (k.endsWith('[]')) (flat[k] ??= []).push(v);
    else if (k in flat) flat[k] = [].concat(flat[k], v);
    else flat[k] = v;
    const m = k.match(/^metadata\[(.+)\]$/);
    if (m) metadata[m[1]] = v;
  }
  return { flat, metadata };
}

// A canonical form of the parameters, for comparing a replay with the first request.
function canonical(flat) {
  return JSON.stringify(Object.keys(flat).sort().map((k) => [k, flat[k]]));
}

class ApiError extends Error {
  constructor(status, error) {
    super(error.message);
    this.status = status;
    this.error = error;
  }
}

// An unknown id: 404 when it is in the path, 400 when a parameter names it (as Stripe does).
const missing = (kind, id, param, status = 404) =>
  new ApiError(status, { type: 'invalid_request_error', code: 'resource_missing', param,
    message: `No such ${kind}: '${id}'` });
const invalid = (message, param, code = 'parameter_invalid') =>
  new ApiError(400, { type: 'invalid_request_error', code, param, message });

export async function startFakeStripe(options = {}) {
  const webhookSecret = options.webhookSecret ?? 'whsec_fake_gatehouse';
  const autoEvents = options.autoEvents ?? true;
  let webhookUrl = options.webhookUrl ?? null;

  const cards = defaultCards();
  const customers = new Map();
  const setupIntents = new Map();
  const paymentMethods = new Map();
  const paymentIntents = new Map();
  const idempotency = new Map(); // key -> {path, params, done, status, body}
  const requests = [];
  const events = [];
  const failures = []; // {remaining, status, delayMs, hang, match}
  const inFlight = new Set();
  const requestWaiters = new Set(); // {test, resolve}
  const timers = new Set();
  let base = '';

  // ---- auth ----

  // The key a request presents: Bearer, or Basic with the key as user name (curl -u sk_…:).
  function presentedKey(req) {
    const h = req.headers.authorization ?? '';
    const bearer = h.match(/^Bearer (\S+)$/);
    if (bearer) return bearer[1];
    const basic = h.match(/^Basic ([A-Za-z0-9+/=]+)$/);
    return basic ? Buffer.from(basic[1], 'base64').toString('utf8').split(':')[0] || null : null;
  }

  function secretKeyOk(req) {
    const key = presentedKey(req);
    if (!key) return false;
    return options.secretKey ? key === options.secretKey : /^(sk|rk)_test_/.test(key);
  }

  function publishableKeyOk(key) {
    if (typeof key !== 'string') return false;
    return options.publishableKey ? key === options.publishableKey : key.startsWith('pk_test_');
  }

  function requireSecretKey(req) {
    if (secretKeyOk(req)) return;
    const key = presentedKey(req);
    const shown = !key ? '' : options.echoKeyInErrors ? key
      : `${key.slice(0, 8)}${'*'.repeat(Math.max(0, key.length - 12))}${key.slice(-4)}`;
    throw new ApiError(401, { type: 'invalid_request_error',
      message: key ? `Invalid API Key provided: ${shown}`
        : 'You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. \'Authorization: Bearer YOUR_SECRET_KEY\').' });
  }

  // Stripe.js calls: the publishable key and the SetupIntent's client secret, or a secret key.
  function requireClientSecret(req, form, si) {
    if (secretKeyOk(req)) return;
    if (!publishableKeyOk(form.key))
      throw new ApiError(401, { type: 'invalid_request_error', message: 'Invalid API Key provided.' });
    if (form.client_secret !== si.client_secret)
      throw invalid('The client_secret provided does not match the client_secret associated with the SetupIntent.', 'client_secret');
  }

  // ---- objects ----

  function newPaymentMethod(token, customer) {
    const card = cards[token];
    if (!card) throw missing('PaymentMethod', token, 'payment_method', 400);
    const pm = {
      id: randomId('pm'), object: 'payment_method', type: 'card', created: now(), livemode: false,
      customer, metadata: {},
      billing_details: { address: {}, email: null, name: null, phone: null },
      card: { brand: card.brand, last4: card.last4, exp_month: card.exp_month, exp_year: card.exp_year,
        country: 'US', funding: 'credit', fingerprint: `fp${card.last4}` },
      fake_token: token,
    };
    paymentMethods.set(pm.id, pm);
    return pm;
  }

  const view = (o) => { const { fake_token, ...rest } = o; return rest; };

  function declineError(pi, pm, code, declineCode, message) {
    pi.status = 'requires_payment_method';
    pi.last_payment_error = { type: 'card_error', code, decline_code: declineCode, message,
      payment_method: view(pm) };
    return new ApiError(402, { type: 'card_error', code, decline_code: declineCode, message,
      charge: randomId('ch'), payment_intent: view(pi), payment_method: view(pm),
      doc_url: `https://stripe.com/docs/error-codes/${code.replaceAll('_', '-')}` });
  }

  // ---- endpoints ----

  function createCustomer(req, form) {
    requireSecretKey(req);
    const c = { id: randomId('cus', 14), object: 'customer', created: now(), livemode: false,
      email: form.flat.email ?? null, description: form.flat.description ?? null,
      metadata: form.metadata, invoice_settings: { default_payment_method: null } };
    customers.set(c.id, c);
    return [200, c];
  }

  function getCustomer(req, id) {
    requireSecretKey(req);
    const c = customers.get(id);
    if (!c) throw missing('customer', id, 'id');
    return [200, c];
  }

  function createSetupIntent(req, form) {
    requireSecretKey(req);
    const customer = form.flat.customer ?? null;
    if (customer && !customers.has(customer)) throw missing('customer', customer, 'customer', 400);
    const usage = form.flat.usage ?? 'off_session';
    if (!['on_session', 'off_session'].includes(usage)) throw invalid('Invalid usage', 'usage');
    const id = randomId('seti');
    const si = { id, object: 'setup_intent', created: now(), livemode: false,
      client_secret: `${id}_secret_${randomId('x', 25).slice(2)}`, customer, usage,
      payment_method_types: form.flat['payment_method_types[]'] ?? ['card'],
      payment_method: null, status: 'requires_payment_method', last_setup_error: null,
      metadata: form.metadata, next_action: null };
    setupIntents.set(id, si);
    return [200, si];
  }

  function getSetupIntent(req, id, query) {
    const si = setupIntents.get(id);
    if (!si) {
      requireSecretKey(req);
      throw missing('setup_intent', id, 'intent');
    }
    requireClientSecret(req, Object.fromEntries(query), si);
    return [200, si];
  }

  function confirmSetupIntent(req, id, form) {
    const si = setupIntents.get(id);
    if (!si) throw missing('setup_intent', id, 'intent');
    requireClientSecret(req, form.flat, si);
    if (si.status === 'succeeded')
      throw new ApiError(400, { type: 'invalid_request_error', code: 'setup_intent_unexpected_state',
        message: 'You cannot confirm this SetupIntent because it has already succeeded.', setup_intent: si });
    const token = form.flat.payment_method ?? form.flat['payment_method_data[token]'];
    if (!token) throw invalid('You must provide a payment_method.', 'payment_method', 'parameter_missing');
    let pm = paymentMethods.get(token);
    if (pm) {
      if (pm.customer && pm.customer !== si.customer)
        throw invalid('The payment method belongs to another customer.', 'payment_method');
    } else {
      pm = newPaymentMethod(token, null);
    }
    if (cards[pm.fake_token]?.outcome === 'setup_decline') {
      const message = 'Your card was declined.';
      si.status = 'requires_payment_method';
      si.last_setup_error = { type: 'card_error', code: 'card_declined', decline_code: 'generic_decline', message };
      paymentMethods.delete(pm.id);
      throw new ApiError(402, { type: 'card_error', code: 'card_declined', decline_code: 'generic_decline',
        message, setup_intent: si });
    }
    pm.customer = si.customer;
    si.payment_method = pm.id;
    si.status = 'succeeded';
    si.last_setup_error = null;
    event('setup_intent.succeeded', si);
    return [200, si];
  }

  function getPaymentMethod(req, id) {
    requireSecretKey(req);
    const pm = paymentMethods.get(id);
    if (!pm) throw missing('PaymentMethod', id, 'payment_method');
    return [200, view(pm)];
  }

  function createPaymentIntent(req, form) {
    requireSecretKey(req);
    const f = form.flat;
    if (!/^[1-9][0-9]{0,10}$/.test(f.amount ?? '')) throw invalid('Invalid integer: amount', 'amount');
    if (f.currency !== 'usd') throw invalid(`Invalid currency: ${f.currency}`, 'currency');
    if (f.customer && !customers.has(f.customer)) throw missing('customer', f.customer, 'customer', 400);
    let pm = f.payment_method ? paymentMethods.get(f.payment_method) : null;
    if (f.payment_method && !pm && cards[f.payment_method]) pm = newPaymentMethod(f.payment_method, f.customer ?? null);
    if (f.payment_method && !pm) throw missing('PaymentMethod', f.payment_method, 'payment_method', 400);
    if (pm && pm.customer && pm.customer !== f.customer)
      throw invalid(`The provided PaymentMethod belongs to a different Customer.`, 'payment_method');
    const id = randomId('pi');
    const pi = { id, object: 'payment_intent', created: now(), livemode: false,
      amount: Number(f.amount), amount_received: 0, currency: 'usd', customer: f.customer ?? null,
      payment_method: pm?.id ?? null, description: f.description ?? null, metadata: form.metadata,
      status: pm ? 'requires_confirmation' : 'requires_payment_method', capture_method: 'automatic',
      confirmation_method: 'automatic', client_secret: `${id}_secret_${randomId('x', 25).slice(2)}`,
      last_payment_error: null, latest_charge: null, next_action: null,
      payment_method_types: ['card'] };
    paymentIntents.set(id, pi);
    if (f.confirm !== 'true') return [200, pi];
    if (!pm) throw invalid('You must provide a payment_method to confirm.', 'payment_method', 'parameter_missing');
    const offSession = f.off_session === 'true';
    switch (cards[pm.fake_token]?.outcome ?? 'succeed') {
      case 'decline':
        event('payment_intent.payment_failed', pi);
        throw declineError(pi, pm, 'card_declined', 'generic_decline', 'Your card was declined.');
      case 'insufficient_funds':
        event('payment_intent.payment_failed', pi);
        throw declineError(pi, pm, 'card_declined', 'insufficient_funds', 'Your card has insufficient funds.');
      case 'authentication':
        if (offSession) {
          event('payment_intent.payment_failed', pi);
          throw declineError(pi, pm, 'authentication_required', 'authentication_required',
            'Your card was declined. This transaction requires authentication.');
        }
        pi.status = 'requires_action';
        pi.next_action = { type: 'use_stripe_sdk', use_stripe_sdk: {} };
        return [200, pi];
      case 'pending':
        pi.status = 'processing';
        event('payment_intent.processing', pi);
        return [200, pi];
      default:
        pi.status = 'succeeded';
        pi.amount_received = pi.amount;
        pi.latest_charge = randomId('ch');
        event('payment_intent.succeeded', pi);
        return [200, pi];
    }
  }

  function getPaymentIntent(req, id) {
    requireSecretKey(req);
    const pi = paymentIntents.get(id);
    if (!pi) throw missing('payment_intent', id, 'intent');
    return [200, pi];
  }

  function cancelPaymentIntent(req, id) {
    requireSecretKey(req);
    const pi = paymentIntents.get(id);
    if (!pi) throw missing('payment_intent', id, 'intent');
    if (['succeeded', 'canceled'].includes(pi.status))
      throw new ApiError(400, { type: 'invalid_request_error', code: 'payment_intent_unexpected_state',
        message: `You cannot cancel this PaymentIntent because it has a status of ${pi.status}.`, payment_intent: pi });
    pi.status = 'canceled';
    pi.canceled_at = now();
    event('payment_intent.canceled', pi);
    return [200, pi];
  }

  const routes = [
    ['POST', /^\/v1\/customers$/, (req, m, form) => createCustomer(req, form)],
    ['GET', /^\/v1\/customers\/([^/]+)$/, (req, m) => getCustomer(req, m[1])],
    ['POST', /^\/v1\/setup_intents$/, (req, m, form) => createSetupIntent(req, form)],
    ['GET', /^\/v1\/setup_intents\/([^/]+)$/, (req, m, form, query) => getSetupIntent(req, m[1], query)],
    ['POST', /^\/v1\/setup_intents\/([^/]+)\/confirm$/, (req, m, form) => confirmSetupIntent(req, m[1], form)],
    ['GET', /^\/v1\/payment_methods\/([^/]+)$/, (req, m) => getPaymentMethod(req, m[1])],
    ['POST', /^\/v1\/payment_intents$/, (req, m, form) => createPaymentIntent(req, form)],
    ['GET', /^\/v1\/payment_intents\/([^/]+)$/, (req, m) => getPaymentIntent(req, m[1])],
    ['POST', /^\/v1\/payment_intents\/([^/]+)\/cancel$/, (req, m) => cancelPaymentIntent(req, m[1])],
  ];

  // Runs the endpoint for an API request and returns [status, body text].
  function dispatch(req, path, query, form) {
    const route = routes.find(([method, re]) => method === req.method && re.test(path));
    try {
      if (!route) {
        if (routes.some(([, re]) => re.test(path)))
          throw new ApiError(405, { type: 'invalid_request_error', message: `Method ${req.method} not allowed` });
        throw new ApiError(404, { type: 'invalid_request_error', message: `Unrecognized request URL (${req.method}: ${path}).` });
      }
      const [status, obj] = route[2](req, path.match(route[1]), form, query);
      return [status, JSON.stringify(obj, null, 2)];
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      return [e.status, JSON.stringify({ error: e.error }, null, 2)];
    }
  }

  // ---- webhooks ----

  function sign(payload, { secret = webhookSecret, timestamp = now() } = {}) {
    const v1 = createHmac('sha256', secret).update(`${timestamp}.${payload}`).digest('hex');
    return `t=${timestamp},v1=${v1}`;
  }

  async function sendEvent(type, object, opts = {}) {
    if (!webhookUrl) throw new Error('fake Stripe: no webhook URL (setWebhookUrl first)');
    const evt = { id: randomId('evt'), object: 'event', api_version: '2024-06-20', created: now(),
      livemode: false, pending_webhooks: 1, request: { id: null, idempotency_key: null }, type,
      data: { object: structuredClone(object) } };
    const payload = JSON.stringify(evt, null, 2);
    const record = { id: evt.id, type, object: evt.data.object, status: null };
    events.push(record);
    const headers = { 'content-type': 'application/json; charset=utf-8',
      'user-agent': 'Stripe/1.0 (+https://stripe.com/docs/webhooks)',
      'stripe-signature': opts.signature ?? sign(payload, opts) };
    try {
      const res = await fetch(webhookUrl, { method: 'POST', headers, body: payload,
        signal: AbortSignal.timeout(10000) });
      await res.arrayBuffer();
      record.status = res.status;
    } catch {
      record.status = 0;
    }
    return record.status;
  }

  // Automatic events: sent after the current answer, like Stripe's asynchronous deliveries,
  // with the object as it is then (a decline changes it just before the error is thrown).
  function event(type, object) {
    if (!autoEvents || !webhookUrl) return;
    const p = new Promise((res) => setImmediate(res)).then(() => sendEvent(type, view(object)));
    inFlight.add(p);
    p.finally(() => inFlight.delete(p));
  }

  async function completePending(piId, { succeed = true, declineCode = 'generic_decline' } = {}) {
    const pi = paymentIntents.get(piId);
    if (!pi) throw new Error(`fake Stripe: no PaymentIntent ${piId}`);
    if (pi.status !== 'processing') throw new Error(`fake Stripe: ${piId} is ${pi.status}, not processing`);
    if (succeed) {
      pi.status = 'succeeded';
      pi.amount_received = pi.amount;
      pi.latest_charge = randomId('ch');
    } else {
      pi.status = 'requires_payment_method';
      pi.last_payment_error = { type: 'card_error', code: 'card_declined', decline_code: declineCode,
        message: 'Your card was declined.' };
    }
    if (!webhookUrl) return 0;
    return sendEvent(succeed ? 'payment_intent.succeeded' : 'payment_intent.payment_failed', pi);
  }

  // ---- Stripe.js ----

  function stripeJs() {
    return `// Fake Stripe.js served by tests/e2e/lib/fake-stripe.mjs: not Stripe's code.
(function () {
  var API = ${JSON.stringify(base)};
  function form(o) {
    return Object.keys(o).map(function (k) { return encodeURIComponent(k) + '=' + encodeURIComponent(o[k]); }).join('&');
  }
  function seti(clientSecret) { return String(clientSecret || '').split('_secret_')[0]; }
  function makeElement(type, opts) {
    var el = { _type: type, _input: null, _handlers: {}, _token: (opts && opts.fakeToken) || 'pm_card_visa' };
    el.mount = function (target) {
      var node = typeof target === 'string' ? document.querySelector(target) : target;
      if (!node) throw new Error('fake Stripe.js: nothing to mount on at ' + target);
      var label = document.createElement('label');
      label.textContent = 'Test card token (fake Stripe) ';
      var input = document.createElement('input');
      input.name = 'fake-stripe-token';
      input.setAttribute('data-fake-stripe', type);
      input.value = el._token;
      input.addEventListener('input', function () { (el._handlers.change || []).forEach(function (h) { h({ complete: !!input.value, empty: !input.value }); }); });
      label.appendChild(input);
      node.innerHTML = '';
      node.appendChild(label);
      el._input = input;
      setTimeout(function () { (el._handlers.ready || []).forEach(function (h) { h({ elementType: type }); }); }, 0);
      return el;
    };
    el.unmount = function () { if (el._input && el._input.parentNode) el._input.parentNode.remove(); el._input = null; };
    el.destroy = el.unmount;
    el.update = function () {};
    el.focus = function () { if (el._input) el._input.focus(); };
    el.on = function (name, h) { (el._handlers[name] = el._handlers[name] || []).push(h); return el; };
    el.token = function () { return el._input ? el._input.value.trim() : el._token; };
    return el;
  }
  window.Stripe = function (pk) {
    if (!(this instanceof window.Stripe)) return new window.Stripe(pk);
    var stripe = this;
    function confirm(clientSecret, token) {
      var id = seti(clientSecret);
      return fetch(API + '/v1/setup_intents/' + encodeURIComponent(id) + '/confirm', {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: form({ key: pk, client_secret: clientSecret, payment_method: token }),
      }).then(function (res) {
        return res.json().then(function (body) {
          if (!res.ok) return { error: body.error || { message: 'fake Stripe: HTTP ' + res.status } };
          return { setupIntent: { id: body.id, status: body.status, payment_method: body.payment_method, client_secret: body.client_secret } };
        });
      }, function (e) { return { error: { type: 'api_connection_error', message: String(e && e.message || e) } }; });
    }
    stripe.elements = function (opts) {
      var made = {};
      return {
        _clientSecret: opts && opts.clientSecret,
        create: function (type, o) { made[type] = makeElement(type, o); return made[type]; },
        getElement: function (type) { return made[type] || null; },
        submit: function () { return Promise.resolve({}); },
        update: function () {},
      };
    };
    stripe.confirmSetup = function (args) {
      var els = args && args.elements;
      var clientSecret = (args && args.clientSecret) || (els && els._clientSecret);
      var el = els && (els.getElement('payment') || els.getElement('card'));
      var token = el ? el.token() : 'pm_card_visa';
      return confirm(clientSecret, token).then(function (r) {
        var ret = args && args.confirmParams && args.confirmParams.return_url;
        if (args.redirect !== 'if_required' && ret) {
          var st = r.setupIntent ? r.setupIntent.status : 'failed';
          var sep = ret.indexOf('?') < 0 ? '?' : '&';
          window.location.assign(ret + sep + 'setup_intent=' + encodeURIComponent(seti(clientSecret)) +
            '&setup_intent_client_secret=' + encodeURIComponent(clientSecret) + '&redirect_status=' + st);
          return new Promise(function () {});
        }
        return r;
      });
    };
    stripe.confirmCardSetup = function (clientSecret, data) {
      var el = data && data.payment_method && data.payment_method.card;
      return confirm(clientSecret, el && el.token ? el.token() : 'pm_card_visa');
    };
    stripe.retrieveSetupIntent = function (clientSecret) {
      var q = form({ key: pk, client_secret: clientSecret });
      return fetch(API + '/v1/setup_intents/' + encodeURIComponent(seti(clientSecret)) + '?' + q)
        .then(function (res) { return res.json().then(function (b) { return res.ok ? { setupIntent: b } : { error: b.error }; }); });
    };
  };
})();
`;
  }

  // ---- the server ----

  function send(res, status, body, headers = {}) {
    if (res.destroyed) return;
    res.writeHead(status, { 'content-type': 'application/json', 'access-control-allow-origin': '*',
      'request-id': randomId('req', 14), ...headers });
    res.end(body);
  }

  function takeFailure(req, path) {
    const line = `${req.method} ${path}`;
    const f = failures.find((x) => !x.match || (x.match instanceof RegExp ? x.match.test(line) : line.startsWith(x.match)));
    if (!f) return null;
    if (--f.remaining <= 0) failures.splice(failures.indexOf(f), 1);
    return f;
  }

  function later(ms, fn) {
    const t = setTimeout(() => { timers.delete(t); fn(); }, ms);
    timers.add(t);
  }

  async function handle(req, res) {
    const url = new URL(req.url, 'http://fake');
    const path = url.pathname;
    if (req.method === 'OPTIONS') {
      res.writeHead(204, { 'access-control-allow-origin': '*',
        'access-control-allow-methods': 'GET, POST, DELETE, OPTIONS',
        'access-control-allow-headers': 'Authorization, Content-Type, Idempotency-Key, Stripe-Version',
        'access-control-max-age': '600' });
      res.end();
      return;
    }
    if (req.method === 'GET' && (path === '/v3' || path === '/v3/' || path === '/v3/stripe.js')) {
      res.writeHead(200, { 'content-type': 'application/javascript; charset=utf-8',
        'access-control-allow-origin': '*', 'cache-control': 'no-store' });
      res.end(stripeJs());
      return;
    }

    const chunks = [];
    let size = 0;
    for await (const c of req) {
      size += c.length;
      if (size > BODY_MAX) { send(res, 413, JSON.stringify({ error: { type: 'invalid_request_error', message: 'Request too large' } })); return; }
      chunks.push(c);
    }
    const body = Buffer.concat(chunks).toString('utf8');
    const form = parseForm(body);
    const logged = { method: req.method, path, query: Object.fromEntries(url.searchParams),
      headers: { ...req.headers }, body, form: form.flat, time: Date.now() };
    requests.push(logged);
    // Waiters run as microtasks, after this handler has done the request's work.
    for (const w of [...requestWaiters]) if (w.test(logged)) { requestWaiters.delete(w); w.resolve(logged); }

    if (!path.startsWith('/v1/')) {
      send(res, 404, JSON.stringify({ error: { type: 'invalid_request_error', message: `Unrecognized request URL (${req.method}: ${path}).` } }));
      return;
    }
    const failure = takeFailure(req, path);
    if (failure?.hang) return; // never answered; stop() drops the connection
    if (failure?.status) {
      const answer = () => send(res, failure.status, JSON.stringify({ error: { type: 'api_error',
        message: 'An unknown error occurred' } }));
      if (failure.delayMs) later(failure.delayMs, answer);
      else answer();
      return;
    }
    const respond = (status, text, headers) => {
      if (failure?.delayMs) later(failure.delayMs, () => send(res, status, text, headers));
      else send(res, status, text, headers);
    };

    const key = req.method === 'POST' ? req.headers['idempotency-key'] : undefined;
    if (key) {
      const params = canonical(form.flat);
      const prior = idempotency.get(key);
      if (prior) {
        if (prior.path !== path || prior.params !== params) {
          respond(400, JSON.stringify({ error: { type: 'idempotency_error',
            message: `Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '${key}' if you meant to execute a different request.` } }, null, 2));
        } else if (!prior.done) {
          respond(409, JSON.stringify({ error: { type: 'invalid_request_error', code: 'idempotency_key_in_use',
            message: 'There is currently another in-progress request using this Idempotent Key (that probably means you submitted twice, and the other request is still going through): ' + key + '. Please try again later.' } }, null, 2));
        } else {
          respond(prior.status, prior.body, { 'idempotent-replayed': 'true', 'idempotency-key': key });
        }
        return;
      }
      const entry = { path, params, done: false };
      idempotency.set(key, entry);
      const [status, text] = dispatch(req, path, url.searchParams, form);
      Object.assign(entry, { done: true, status, body: text });
      // A delayed answer keeps the key "in progress" until it is sent, like a slow Stripe.
      if (failure?.delayMs) {
        entry.done = false;
        later(failure.delayMs, () => { entry.done = true; send(res, status, text, { 'idempotency-key': key }); });
      } else {
        send(res, status, text, { 'idempotency-key': key });
      }
      return;
    }
    const [status, text] = dispatch(req, path, url.searchParams, form);
    respond(status, text);
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((e) => {
      send(res, 500, JSON.stringify({ error: { type: 'api_error', message: `fake Stripe bug: ${e.message}` } }));
    });
  });
  await new Promise((res, rej) => {
    server.once('error', rej);
    server.listen(0, '127.0.0.1', res);
  });
  const port = server.address().port;
  base = `http://127.0.0.1:${port}`;

  return {
    url: base,
    port,
    jsUrl: `${base}/v3/`,
    webhookSecret,
    cards,
    customers,
    setupIntents,
    paymentMethods,
    paymentIntents,
    requests,
    events,
    sign,
    sendEvent,
    completePending,
    setWebhookUrl(u) { webhookUrl = u; },
    failNext(n, { status, delayMs, hang, match } = {}) {
      if (!(n > 0)) return;
      failures.push({ remaining: n, status, delayMs, hang: !!hang, match });
    },
    // Resolves with the first request (already logged or still to come) for which
    // test(request) is true; its work is done by then, though its answer may be delayed.
    waitForRequest(testFn) {
      const seen = requests.find(testFn);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve) => requestWaiters.add({ test: testFn, resolve }));
    },
    async idle() {
      while (inFlight.size) await Promise.allSettled([...inFlight]);
    },
    async stop() {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      await Promise.allSettled([...inFlight]);
      server.closeAllConnections();
      await new Promise((res) => server.close(() => res()));
    },
  };
}
