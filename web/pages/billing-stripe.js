// Card entry with Stripe (provider = stripe): the card is typed into Stripe's Payment Element,
// an iframe served by Stripe, so card details never reach Gatehouse. The flow:
//   1. POST /v1/organizations/billing/setup_intent → {client_secret, publishable_key, stripe_js_url}
//   2. load Stripe.js from stripe_js_url, Stripe(pk).elements({clientSecret}).create('payment')
//      mounted in the dialog
//   3. stripe.confirmSetup({elements, redirect: 'if_required'}) on submit (Stripe runs 3-D
//      Secure itself if the bank asks for it)
//   4. POST /v1/organizations/billing/payment_method {"setup_intent": id} → the payment method
// Cards never need a redirect; should Stripe redirect anyway, it comes back to
// /settings/billing?setup_intent=…&redirect_status=… and finishStripeReturn() does step 4.
//
// The console's content security policy (src/api/web.c) allows Stripe.js in stripe mode:
// script-src and frame-src for the origin of stripe_js_url, connect-src for the API's.
// Tested with the fake Stripe.js in tests/e2e/billing-stripe-browser.test.mjs.
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
  let confirmed = null; // the SetupIntent id once Stripe saved the card
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
        if (!confirmed) {
          const r = await stripe.confirmSetup({
            elements,
            redirect: 'if_required',
            confirmParams: { return_url: `${location.origin}/settings/billing` },
          });
          if (r.error) { error.show(r.error.message || 'The card could not be saved.'); return; }
          confirmed = r.setupIntent.id;
        }
        // Stripe has the card; a retry after a failure here only repeats this step.
        result = await post(PAYMENT_METHOD, { setup_intent: confirmed });
      } catch (e) {
        error.show(e instanceof ApiError ? e.message : 'The card could not be saved. Try again.');
      }
    }).finally(() => {
      dlg.setBusy(false);
      cancel.disabled = false;
      if (result) dlg.close(result);
    });
  });
  return dlg.closed.then(() => result);
}

// Back from a Stripe redirect (/settings/billing?setup_intent=seti_…&redirect_status=…):
// saves the card if the setup succeeded and takes the parameters out of the address.
// Resolves with the payment method, null when there was nothing to finish; throws ApiError.
export async function finishStripeReturn() {
  const q = new URLSearchParams(location.search);
  const id = q.get('setup_intent');
  if (!id) return null;
  history.replaceState(history.state, '', location.pathname);
  if (q.get('redirect_status') !== 'succeeded') throw new ApiError(400, 'invalid_request_error', 'The card was not saved. Please enter it again.');
  return post(PAYMENT_METHOD, { setup_intent: id });
}
