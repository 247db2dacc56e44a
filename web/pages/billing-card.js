// The card on file for Plans & Billing: how a card is shown, and the "Add payment method"
// dialog. With the built-in test provider the card details are typed here and sent to
// POST /v1/organizations/billing/payment_method (the server validates them and keeps only
// brand, last four digits and expiry); with Stripe the card is entered in Stripe's own
// Payment Element instead (billing-stripe.js), so card numbers never touch this page.
import { post, ApiError } from '../api.js';
import { h, field, formDialog, icon } from '../dom.js';
import { formatDate } from '../format.js';

export const PAYMENT_METHOD = '/v1/organizations/billing/payment_method';

// The test provider's well-known cards (src/core/pay_test.c).
export const TEST_CARDS = [
  { number: '4242 4242 4242 4242', result: 'Payment succeeds' },
  { number: '4000 0000 0000 0002', result: 'Declined when added' },
  { number: '4000 0000 0000 0341', result: 'Added, then declined at purchase' },
  { number: '4000 0000 0000 9995', result: 'Added, then declined: insufficient funds' },
];

const BRANDS = [
  { id: 'amex', name: 'American Express', re: /^3[47]/, groups: [4, 6, 5], max: 15, cvc: 4 },
  { id: 'diners', name: 'Diners Club', re: /^3(0[0-5]|[689])/, groups: [4, 6, 4], max: 14, cvc: 3 },
  { id: 'visa', name: 'Visa', re: /^4/, groups: [4, 4, 4, 4, 3], max: 19, cvc: 3 },
  { id: 'mastercard', name: 'Mastercard', re: /^(5[1-5]|2[2-7])/, groups: [4, 4, 4, 4], max: 16, cvc: 3 },
  { id: 'discover', name: 'Discover', re: /^(6011|65|64[4-9])/, groups: [4, 4, 4, 4, 3], max: 19, cvc: 3 },
  { id: 'jcb', name: 'JCB', re: /^35/, groups: [4, 4, 4, 4, 3], max: 19, cvc: 3 },
  { id: 'unionpay', name: 'UnionPay', re: /^62/, groups: [4, 4, 4, 4, 3], max: 19, cvc: 3 },
];
const GENERIC = { id: 'card', name: 'Card', groups: [4, 4, 4, 4, 3], max: 19, cvc: 4 };
const brandFor = (digits) => BRANDS.find((b) => b.re.test(digits)) || GENERIC;

// "visa" → "Visa"; unknown brands as sent.
export function brandName(brand) {
  const b = BRANDS.find((x) => x.id === String(brand || '').toLowerCase());
  if (b) return b.name;
  const s = String(brand || 'Card');
  return s.charAt(0).toUpperCase() + s.slice(1);
}

// A small brand mark, e.g. "VISA" in a rounded box (text, not a logo).
export function brandMark(brand) {
  const id = String(brand || 'card').toLowerCase();
  const short = { visa: 'VISA', mastercard: 'MC', amex: 'AMEX', discover: 'DISC', diners: 'DC', jcb: 'JCB', unionpay: 'UP' }[id];
  return h(`span.card-brand.card-brand-${id.replace(/[^a-z]/g, '') || 'card'}`, { 'aria-hidden': 'true' },
    short || icon('card'));
}

const two = (n) => String(n).padStart(2, '0');
// "12/2030".
export const expiryText = (pm) => `${two(pm.exp_month)}/${pm.exp_year}`;
// "Visa •••• 4242" (the dots are read as "ending in" by screen readers).
export function cardLabel(pm) {
  return h('span.card-label',
    h('span', brandName(pm.brand)), ' ',
    h('span', { 'aria-hidden': 'true' }, '•••• '), h('span.visually-hidden', 'ending in '), h('span', pm.last4));
}
export const cardText = (pm) => `${brandName(pm.brand)} ending in ${pm.last4}`;

// Whether the card's expiry month is over.
export function isExpired(pm, now = new Date()) {
  const y = now.getFullYear();
  const m = now.getMonth() + 1;
  return pm.exp_year < y || (pm.exp_year === y && pm.exp_month < m);
}

// The card on file as a block: brand, number, expiry and when it was added.
export function cardSummary(pm) {
  const expired = isExpired(pm);
  return h('div.card-on-file',
    brandMark(pm.brand),
    h('div.card-on-file-text',
      h('span.card-on-file-number', cardLabel(pm)),
      h('span.card-on-file-meta',
        expired ? h('span.text-error', `Expired ${expiryText(pm)}`) : `Expires ${expiryText(pm)}`,
        pm.added_at ? ` · Added ${formatDate(pm.added_at)}` : '')));
}

function luhnOk(digits) {
  let sum = 0;
  let dbl = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (dbl) { d *= 2; if (d > 9) d -= 9; }
    sum += d;
    dbl = !dbl;
  }
  return sum % 10 === 0;
}

function groupDigits(digits) {
  const { groups } = brandFor(digits);
  const out = [];
  let i = 0;
  for (const g of groups) {
    if (i >= digits.length) break;
    out.push(digits.slice(i, i + g));
    i += g;
  }
  if (i < digits.length) out.push(digits.slice(i));
  return out.join(' ');
}

// Keeps the card number in groups of four (4-6-5 for Amex) as it is typed or pasted, with
// the caret staying after the same digit.
function formatNumberAsTyped(input) {
  const caretDigits = input.value.slice(0, input.selectionStart ?? input.value.length).replace(/\D/g, '').length;
  const digits = input.value.replace(/\D/g, '').slice(0, 19);
  const formatted = groupDigits(digits);
  if (formatted === input.value) return;
  input.value = formatted;
  let pos = 0;
  let seen = 0;
  while (pos < formatted.length && seen < caretDigits) {
    if (/\d/.test(formatted[pos])) seen++;
    pos++;
  }
  if (document.activeElement === input) input.setSelectionRange(pos, pos);
}

// "MM / YY" as it is typed: "1" stays, "2" becomes "02 / ", "123" becomes "12 / 3".
function formatExpiryAsTyped(input, ev) {
  if (ev && ev.inputType && ev.inputType.startsWith('delete')) return;
  let d = input.value.replace(/\D/g, '').slice(0, 6);
  if (d.length === 1 && d > '1') d = `0${d}`;
  input.value = d.length >= 2 ? `${d.slice(0, 2)} / ${d.slice(2, d.length === 6 ? 6 : 4)}` : d;
}

// "MM / YY", "MM/YYYY", "MMYY" → {month, year} (four-digit year) or null.
export function parseExpiry(text) {
  const m = /^\s*(\d{1,2})\s*(?:\/|-|\s)?\s*(\d{2}|\d{4})\s*$/.exec(text || '');
  if (!m) return null;
  const month = Number(m[1]);
  let year = Number(m[2]);
  if (m[2].length === 2) year += 2000;
  if (month < 1 || month > 12) return null;
  return { month, year };
}

// Which field a server message is about (the server's message is shown either way).
function fieldFor(message) {
  const m = message.toLowerCase();
  if (m.includes('security code') || /\bcvc\b|\bcvv\b/.test(m)) return 'cvc';
  if (m.includes('expir') || m.includes('exp_month') || m.includes('exp_year')) return 'exp';
  if (m.includes('card number') || m.includes('number')) return 'number';
  return null;
}

// Opens the dialog for adding (or replacing) the card. Resolves with the new payment method
// object, or undefined when cancelled. `billing` is the GET /v1/organizations/billing answer.
export async function addPaymentMethodDialog(billing, { step } = {}) {
  if (billing.provider === 'stripe') {
    const { stripePaymentMethodDialog } = await import('./billing-stripe.js');
    return stripePaymentMethodDialog(billing, { step });
  }
  return testCardDialog(billing, { step });
}

function testCardDialog(billing, { step }) {
  const current = billing.payment_method;
  const number = h('input.input.input-card', {
    type: 'text', inputmode: 'numeric', autocomplete: 'cc-number', name: 'cardnumber', spellcheck: 'false',
    placeholder: '1234 1234 1234 1234', maxlength: '23', autofocus: true,
  });
  const exp = h('input.input', {
    type: 'text', inputmode: 'numeric', autocomplete: 'cc-exp', name: 'exp-date', placeholder: 'MM / YY', maxlength: '9',
  });
  const cvc = h('input.input', {
    type: 'text', inputmode: 'numeric', autocomplete: 'cc-csc', name: 'cvc', placeholder: '123', maxlength: '4',
  });
  const f = {
    number: field(number, { label: 'Card number' }),
    exp: field(exp, { label: 'Expiration date', hint: 'Month and year, MM / YY' }),
    cvc: field(cvc, { label: 'Security code (CVC)', hint: '3 or 4 digits' }),
  };
  const brandEl = h('span.input-brand', { 'aria-hidden': 'true' });
  const syncBrand = () => {
    const digits = number.value.replace(/\D/g, '');
    const b = digits ? brandFor(digits) : null;
    brandEl.replaceChildren(b && b !== GENERIC ? brandMark(b.id) : '');
  };
  number.addEventListener('input', () => { formatNumberAsTyped(number); syncBrand(); f.number.setError(null); });
  exp.addEventListener('input', (ev) => { formatExpiryAsTyped(exp, ev); f.exp.setError(null); });
  cvc.addEventListener('input', () => {
    const v = cvc.value.replace(/\D/g, '').slice(0, 4);
    if (v !== cvc.value) cvc.value = v;
    f.cvc.setError(null);
  });
  // The brand mark sits inside the number field, on the right.
  f.number.label.after(h('div.input-with-brand', number, brandEl));

  let testCards = null;
  if (billing.test_mode) {
    testCards = h('div.test-cards',
      h('p.test-cards-title', h('span.badge.badge-test', 'Test mode'), ' No real charges. Use a test card with any future date and any CVC:'),
      h('ul.test-cards-list', TEST_CARDS.map((c) => {
        const use = h('button.btn.btn-ghost.btn-sm', { type: 'button', 'aria-label': `Use test card ${c.number}` }, 'Use');
        use.addEventListener('click', () => {
          number.value = c.number;
          syncBrand();
          f.number.setError(null);
          if (!exp.value) exp.value = `12 / ${String((new Date().getFullYear() + 3) % 100).padStart(2, '0')}`;
          if (!cvc.value) cvc.value = '123';
          number.focus();
        });
        return h('li', h('code', c.number), h('span.test-card-result', c.result), use);
      })));
  }

  const replaceNote = current
    ? h('div.alert.alert-warning', icon('alert'), h('span', 'Adding a new card replaces ', cardLabel(current),
      '. There is no way to keep both.'))
    : null;

  const fine = h('p.field-hint.card-fineprint', icon('lock'),
    h('span', 'Only credit and debit cards are accepted. Charges are in US dollars: make sure the card allows online and international payments.'));

  const checks = () => {
    const errors = {};
    const digits = number.value.replace(/\D/g, '');
    if (!digits) errors.number = 'Enter the card number.';
    else if (/[^\d\s-]/.test(number.value)) errors.number = 'The card number can only have digits.';
    else if (digits.length < 12 || digits.length > 19 || !luhnOk(digits)) errors.number = 'This card number is not valid. Check it for typos.';
    const e = parseExpiry(exp.value);
    if (!exp.value.trim()) errors.exp = 'Enter the expiration date.';
    else if (!e) errors.exp = 'Enter the expiration date as MM / YY.';
    else if (isExpired({ exp_month: e.month, exp_year: e.year })) errors.exp = 'This card has expired.';
    const c = cvc.value.trim();
    if (!c) errors.cvc = 'Enter the security code.';
    else if (!/^\d{3,4}$/.test(c)) errors.cvc = 'The security code is 3 or 4 digits.';
    return { errors, digits, e, c };
  };

  return formDialog({
    title: current ? 'Change payment method' : 'Add payment method',
    lead: step || (current ? 'Enter the new card. It is used for purchases and auto-reload from now on.' : 'Add a credit or debit card to buy credits.'),
    fields: [replaceNote, testCards, f.number.wrap, h('div.field-row', f.exp.wrap, f.cvc.wrap), fine],
    submitLabel: current ? 'Replace card' : 'Add card',
    busyLabel: 'Saving card…',
    onSubmit: async ({ error }) => {
      for (const k of Object.keys(f)) f[k].setError(null);
      const { errors, digits, e, c } = checks();
      const keys = Object.keys(errors);
      if (keys.length) {
        for (const k of keys) f[k].setError(errors[k]);
        ({ number, exp, cvc })[keys[0]].focus();
        return false;
      }
      try {
        return await post(PAYMENT_METHOD, { number: digits, exp_month: e.month, exp_year: e.year, cvc: c });
      } catch (err) {
        if (!(err instanceof ApiError)) throw err;
        const k = err.status === 400 ? fieldFor(err.message) : null;
        if (k) {
          f[k].setError(err.message);
          ({ number, exp, cvc })[k].focus();
          error.show(`Card not saved. ${err.message}`);
          return false;
        }
        throw err;
      }
    },
  });
}
