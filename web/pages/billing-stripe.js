// Card entry with Stripe (provider = stripe): the card is typed into Stripe's Payment Element,
// an iframe served by Stripe, so card details never reach Gatehouse. The flow:
//   1. POST /v1/organizations/billing/setup_intent → {client_secret, publishable_key, stripe_js_url}
//   2. load Stripe.js from stripe_js_url, Stripe(pk).elements({clientSecret}).create('payment')
//      mounted in the dialog
//   3. stripe.confirmSetup({elements, redirect: 'if_required'}) on submit
//   4. POST /v1/organizations/billing/payment_method {"setup_intent": id} → the payment method
//
// Not exercised by the tests yet (the Stripe provider is not built). For it to work the
// console's content security policy (src/api/web.c) must allow Stripe.js: script-src and
// frame-src for the js.stripe.com origin, connect-src for api.stripe.com.
import { post, ApiError } from '../api.js';
import { h, openDialog, alertBox, busy, loadingBlock } from '../dom.js';
import { PAYMENT_METHOD, cardLabel } from './billing-card.js';

const SETUP_INTENT = '/v1/organizations/billing/setup_intent';
const scripts = new Map(); // url → Promise<window.Stripe>

function loadStripeJs(url) {
  if (window.Stripe) return Promise.resolve(window.Stripe);
  if (!scripts.has(url)) {
    scripts.set(url, new Promise((resolve, reject) => {
      const s = document.createElement('script');
      s.src = url;
      s.async = true;
      s.addEventListener('load', () => (window.Stripe ? resolve(window.Stripe) : reject(new Error('Stripe.js did not load.'))));
      s.addEventListener('error', () => { scripts.delete(url); reject(new Error('Could not load Stripe.js. Check your connection and try again.')); });
      document.head.append(s);
    }));
  }
  return scripts.get(url);
}

// Resolves with the new payment method, or undefined when cancelled.
export function stripePaymentMethodDialog(billing, { step } = {}) {
  const current = billing.payment_method;
  const error = alertBox('error');
  const mount = h('div.stripe-element', loadingBlock('Loading the secure card form…'));
  const cancel = h('button.btn.btn-ghost', { type: 'button' }, 'Cancel');
  const submit = h('button.btn.btn-primary', { type: 'button', disabled: true }, current ? 'Replace card' : 'Add card');
  submit.dataset.busyLabel = 'Saving card…';
  const dlg = openDialog({
    title: current ? 'Change payment method' : 'Add payment method',
    lead: step || 'Card details are entered in a secure form provided by Stripe.',
    body: [
      current ? h('div.alert.alert-warning', h('span', 'Adding a new card replaces ', cardLabel(current), '.')) : null,
      mount,
      error.el,
    ],
    actions: [cancel, submit],
  });
  cancel.addEventListener('click', () => dlg.close());

  let stripe = null;
  let elements = null;
  let result;
  (async () => {
    try {
      const intent = await post(SETUP_INTENT, {});
      const Stripe = await loadStripeJs(intent.stripe_js_url);
      if (!dlg.isOpen) return;
      stripe = Stripe(intent.publishable_key);
      elements = stripe.elements({ clientSecret: intent.client_secret });
      mount.replaceChildren();
      elements.create('payment').mount(mount);
      submit.disabled = false;
    } catch (e) {
      mount.replaceChildren();
      error.show(e instanceof ApiError ? e.message : (e && e.message) || 'Could not load the card form.');
    }
  })();

  submit.addEventListener('click', () => {
    if (!stripe || submit.disabled) return;
    error.clear();
    dlg.setBusy(true);
    cancel.disabled = true;
    busy(submit, async () => {
      try {
        const r = await stripe.confirmSetup({ elements, redirect: 'if_required' });
        if (r.error) { error.show(r.error.message || 'The card could not be saved.'); return; }
        result = await post(PAYMENT_METHOD, { setup_intent: r.setupIntent.id });
      } catch (e) {
        if (!(e instanceof ApiError)) throw e;
        error.show(e.message);
      }
    }).finally(() => {
      dlg.setBusy(false);
      cancel.disabled = false;
      if (result) dlg.close(result);
    });
  });
  return dlg.closed.then(() => result);
}
