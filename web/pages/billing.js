// /settings/billing: Plans & Billing. The credit balance and "Add funds" (with the
// first-purchase questions before the first purchase), the card on file, auto-reload, the
// open credit lots and the invoice history with PDF downloads.
//
// API: GET /v1/organizations/billing (the whole page but invoices), POST …/billing/
// payment_method, …/billing/profile, …/billing/purchases (with an idempotency-key header),
// …/billing/auto_reload; GET /v1/organizations/invoices and …/invoices/{id}/pdf. Admins and
// billing members only: anyone else is told why instead of seeing errors.
//
// Money stays in the decimal strings the API sends (money.js): never JS numbers.
import { get, post, getPage, ApiError } from '../api.js';
import {
  h, setChildren, icon, field, formDialog, toast, dataTable, loadMore, loadingBlock, errorBlock, statusBadge, nextId,
} from '../dom.js';
import { timeEl } from '../format.js';
import { myRole, orgRoleLabel } from '../roles.js';
import { loadCountries } from '../countries.js';
import { formatUsd, parseAmountInput, usdToCents, centsToUsd, compareUsd, signOf, ratio } from '../money.js';
import { addPaymentMethodDialog, cardSummary, cardLabel, expiryText, isExpired } from './billing-card.js';

const BILLING = '/v1/organizations/billing';
const INVOICES = '/v1/organizations/invoices';
const INVOICE_PAGE = 10;
const POLL_MS = 4000; // while a purchase is pending
const POLL_MAX = 45;
const EXPIRY_NOTE = 'Purchased credits expire one year after purchase.';

// The answers the first-purchase questions offer (the server accepts any intended-use text;
// the industries are its fixed list).
const USES = [
  'Building a product or service for my customers',
  'Internal tools and automation for my organization',
  'Research, testing or evaluation',
  'Personal or hobby projects',
  'Something else',
];
const INDUSTRIES = [
  ['healthcare', 'Healthcare'],
  ['financial_services', 'Financial services'],
  ['insurance', 'Insurance'],
  ['legal', 'Legal services'],
  ['government', 'Government and public sector'],
  ['education', 'Education'],
  ['critical_infrastructure', 'Critical infrastructure (energy, water, transport)'],
  ['other', 'Another regulated industry'],
];
const LOT_SOURCES = { purchase: 'Purchase', auto_reload: 'Auto-reload', grant: 'Credit grant', promotion: 'Promotional credit' };
const INTENDED_USE_MAX = 500;

export function render(ctx) {
  const { session } = ctx;
  const org = session.current_organization;
  const role = myRole(session);
  const body = h('div.page-body', loadingCard());
  const page = h('div.page.billing-page',
    h('header.page-header',
      h('div',
        h('h1.page-title', 'Plans & Billing'),
        h('p.page-lead', 'Usage is prepaid: buy credits, manage the card they are charged to and auto-reload, and download your invoices.'))),
    body);

  if (role !== 'admin' && role !== 'billing') {
    body.replaceChildren(noAccess(org));
    return page;
  }
  billingPage(ctx, body);
  return page;
}

function loadingCard() {
  return h('section.card.card-padded.loading-card', { 'aria-busy': 'true' },
    h('span.spinner', { 'aria-hidden': 'true' }), h('span', 'Loading billing…'));
}

function noAccess(org) {
  return h('section.card.empty-state', { 'aria-labelledby': 'billing-no-access' },
    h('div.empty-icon', icon('lock', 'icon icon-lg')),
    h('h2.empty-title#billing-no-access', 'You don’t have access to billing'),
    h('p.empty-text', `Only admins and billing members can see billing. Ask an admin of ${org.name} to give you the Billing role.`),
    h('p.empty-text.small', `Your role in ${org.name} is ${orgRoleLabel(org.role)}.`),
    h('a.btn.btn-secondary', { href: '/settings/members' }, icon('users'), h('span', 'See the members')));
}

// ---------------------------------------------------------------------------------------
// The page: the overview sections are drawn from one GET /v1/organizations/billing answer
// and redrawn when it changes; the invoice history keeps its own pages.

function billingPage(ctx, body) {
  let billing = null;
  let version = 0; // bumped by every change made here: an older refresh answer is dropped
  let pollTimer = null;
  let polls = 0;
  const invoices = invoicesCard(ctx);
  const live = h('p.visually-hidden', { role: 'status', 'aria-live': 'polite' });

  async function load() {
    body.replaceChildren(loadingCard());
    try {
      billing = await get(BILLING, { signal: ctx.signal });
    } catch (e) {
      if (ctx.stale() || !(e instanceof ApiError)) return;
      if (e.status === 403) { body.replaceChildren(noAccess(ctx.session.current_organization)); return; }
      body.replaceChildren(h('section.card.card-padded', errorBlock(`Could not load billing. ${e.message}`, load)));
      return;
    }
    if (ctx.stale()) return;
    draw();
    invoices.load();
    if (billing.pending_purchases > 0) schedulePoll();
    if (billing.provider === 'stripe' && location.search.includes('setup_intent=')) stripeReturn();
  }

  // Back from a redirect of Stripe's card form: finish saving the card.
  async function stripeReturn() {
    try {
      const { finishStripeReturn } = await import('./billing-stripe.js');
      const pm = await finishStripeReturn();
      if (!pm || ctx.stale()) return;
      apply({ payment_method: pm });
      toast(`Card ending in ${pm.last4} saved`);
    } catch (e) {
      if (!ctx.stale()) toast(e instanceof ApiError ? e.message : 'The card could not be saved.', 'error');
    }
  }

  // Quietly reloads the overview (after a change, or while a purchase is pending).
  async function refresh() {
    const before = billing;
    const asked = version;
    try {
      const next = await get(BILLING, { signal: ctx.signal });
      if (ctx.stale() || asked !== version) return;
      billing = next;
    } catch (e) {
      if (ctx.stale() || !(e instanceof ApiError)) return;
      if (billing.pending_purchases > 0) schedulePoll();
      return;
    }
    draw();
    if (before && before.pending_purchases > billing.pending_purchases) {
      invoices.load();
      live.textContent = `Your credit balance is ${formatUsd(billing.balance_usd)}.`;
    }
    if (billing.pending_purchases > 0) schedulePoll();
  }

  function schedulePoll() {
    if (pollTimer || ctx.stale() || polls >= POLL_MAX) return;
    polls++;
    pollTimer = setTimeout(() => {
      pollTimer = null;
      if (!ctx.stale()) refresh();
    }, POLL_MS);
  }

  // Redraws the overview, keeping keyboard focus on the "same" control when it is rebuilt.
  function draw() {
    const focusKey = document.activeElement && body.contains(document.activeElement) ? document.activeElement.dataset.focus : null;
    setChildren(body,
      live,
      pendingNotice(),
      setupCard(),
      h('div.billing-grid', balanceCard(), paymentCard()),
      autoReloadCard(),
      lotsCard(),
      invoices.el);
    if (focusKey) {
      const el = body.querySelector(`[data-focus="${focusKey}"]`) || body.querySelector('[data-focus="add-funds"]');
      if (el) el.focus({ preventScroll: true });
    }
  }

  // A change made here (from a POST's answer), shown at once.
  function apply(changes) {
    billing = { ...billing, ...changes };
    version++;
    draw();
  }

  const button = (cls, focus, label, onClick, iconName) => {
    const b = h(`button.btn.${cls}`, { type: 'button', dataset: { focus } }, iconName ? icon(iconName) : null, h('span', label));
    b.addEventListener('click', onClick);
    return b;
  };

  // -- actions --

  async function addCard() {
    const pm = await addPaymentMethodDialog(billing);
    if (!pm) return;
    apply({ payment_method: pm });
    toast(`Card ending in ${pm.last4} saved`);
    refresh();
  }

  // "Add funds" (and "Complete setup"): whatever the first purchase still needs (a card, the
  // questions), then the amount. Each step is its own dialog, numbered when there are several.
  async function addFunds() {
    const needCard = !billing.payment_method;
    const needProfile = !billing.profile_complete;
    const total = 1 + (needCard ? 1 : 0) + (needProfile ? 1 : 0);
    let n = 0;
    const step = (what) => (total > 1 ? `Step ${++n} of ${total}: ${what}` : null);
    if (needCard) {
      const pm = await addPaymentMethodDialog(billing, { step: step('add the card your credits are charged to.') });
      if (!pm) return;
      apply({ payment_method: pm });
    }
    if (needProfile) {
      const done = await profileDialog(ctx, billing, step('tell us how you will use the API.'));
      if (!done) { if (needCard) refresh(); return; }
      apply({ profile_complete: true });
    }
    const r = await purchaseDialog(billing, step('choose the amount.'));
    if (!r) { if (needCard || needProfile) refresh(); return; }
    if (r.status === 'succeeded') {
      const bought = (usdToCents(billing.purchases_total_usd) ?? 0n) + (usdToCents(r.amount_usd) ?? 0n);
      apply({ balance_usd: r.balance_usd ?? billing.balance_usd, purchases_total_usd: centsToUsd(bought) });
      toast(`Added ${formatUsd(r.amount_usd)} to your credit balance`);
      live.textContent = `Your credit balance is now ${formatUsd(r.balance_usd)}.`;
      invoices.load();
    } else {
      apply({ pending_purchases: (billing.pending_purchases || 0) + 1 });
      toast('Your payment is processing. Credits are added as soon as it is confirmed.');
    }
    refresh();
  }

  async function editAutoReload() {
    const saved = await autoReloadDialog(billing);
    if (!saved) return;
    const ar = saved.auto_reload || saved;
    if (ar && typeof ar.enabled === 'boolean') apply({ auto_reload: { ...billing.auto_reload, ...ar } });
    else draw();
    toast(billing.auto_reload.enabled ? 'Auto-reload is on' : 'Auto-reload is off');
    refresh();
  }

  // -- sections --

  function pendingNotice() {
    const n = billing.pending_purchases || 0;
    if (!n) return null;
    const check = button('btn-secondary.btn-sm', 'check-pending', 'Check now', () => { polls = 0; refresh(); }, 'refresh');
    return h('div.alert.alert-info.billing-notice', { role: 'status' },
      h('div.billing-notice-row',
        icon('clock'),
        h('div.billing-notice-text',
          h('strong', n === 1 ? 'A purchase is processing.' : `${n} purchases are processing.`), ' ',
          h('span', 'The card network has not confirmed the payment yet. Your balance updates as soon as it does, and you will never be charged twice.')),
        check));
  }

  // "Complete setup": shown until the first purchase, with what is done and what is left.
  function setupCard() {
    const bought = compareUsd(billing.purchases_total_usd, '0') > 0;
    if (bought || billing.pending_purchases > 0) return null;
    const steps = [
      ['Add a payment method', !!billing.payment_method],
      ['Answer a few questions about your use', !!billing.profile_complete],
      ['Buy credits', false],
    ];
    return h('section.card.setup-card', { 'aria-labelledby': 'billing-setup-title' },
      h('div.setup-card-body',
        h('div.setup-card-text',
          h('h2.card-title#billing-setup-title', 'Complete setup'),
          h('p.card-lead', `Add a card and buy credits to start calling the API. The first purchase is at least ${formatUsd(billing.first_purchase_min_usd)}.`),
          h('ol.setup-steps', steps.map(([label, done], i) => h(`li.setup-step${done ? '.setup-step-done' : ''}`,
            h('span.setup-step-mark', { 'aria-hidden': 'true' }, done ? icon('check') : String(i + 1)),
            h('span', label),
            h('span.visually-hidden', done ? ' (done)' : ' (to do)'))))),
        button('btn-primary.setup-button', 'setup', 'Complete setup', addFunds)));
  }

  function balanceCard() {
    const negative = signOf(billing.balance_usd) < 0;
    return h('section.card.balance-card', { 'aria-labelledby': 'billing-balance-title' },
      h('div.card-header.balance-header',
        h('h2.card-title#billing-balance-title', 'Credit balance'),
        billing.test_mode ? testBadge() : null),
      h('div.card-body.balance-body',
        h('div',
          h('p.balance-amount#billing-balance', { class: negative ? 'balance-negative' : null }, formatUsd(billing.balance_usd)),
          h('p.balance-meta', negative
            ? 'Usage went past your credits. The difference is settled from your next purchase.'
            : `Purchased to date: ${formatUsd(billing.purchases_total_usd)}`)),
        h('div.balance-actions',
          button('btn-primary', 'add-funds', 'Add funds', addFunds, 'plus'))));
  }

  function paymentCard() {
    const pm = billing.payment_method;
    const change = pm ? button('btn-secondary.btn-sm', 'change-card', 'Change', addCard) : null;
    if (change) change.setAttribute('aria-label', 'Change payment method');
    return h('section.card.payment-card', { 'aria-labelledby': 'billing-pm-title' },
      h('div.card-header.card-header-split',
        h('h2.card-title#billing-pm-title', 'Payment method'),
        change),
      h('div.card-body',
        pm
          ? [
            cardSummary(pm),
            isExpired(pm) ? h('div.alert.alert-warning', icon('alert'),
              h('span', 'This card has expired. Add a new one to keep buying credits and auto-reload working.')) : null,
            h('p.field-hint', 'Adding a new card replaces this one.'),
          ]
          : [
            h('p.muted', 'No payment method yet. Add a credit or debit card to buy credits; it is charged in US dollars.'),
            h('div', button('btn-secondary', 'add-card', 'Add payment method', addCard, 'card')),
          ]));
  }

  function autoReloadCard() {
    const ar = billing.auto_reload || { enabled: false };
    const pm = billing.payment_method;
    let text;
    if (ar.enabled) {
      text = h('p', 'When your balance falls below ', h('strong', formatUsd(ar.threshold_usd)), ', ',
        h('strong', formatUsd(ar.amount_usd)), ' of credits are bought',
        pm ? [' with ', cardLabel(pm)] : null, '.');
    } else {
      text = h('p.muted', 'Off. Credits are bought only when you add funds, so your spending is capped at what you have bought.');
    }
    return h('section.card', { 'aria-labelledby': 'billing-ar-title' },
      h('div.card-header.card-header-split',
        h('div',
          h('h2.card-title#billing-ar-title', 'Auto-reload', statusBadge(ar.enabled ? 'on' : 'off', ar.enabled ? 'On' : 'Off')),
          h('p.card-lead', 'Buy credits automatically when your balance drops below a threshold you choose.')),
        button('btn-secondary.btn-sm', 'edit-auto-reload', 'Edit settings', editAutoReload)),
      h('div.card-body',
        text,
        !ar.enabled && ar.disabled_reason ? h('div.alert.alert-warning', icon('alert'),
          h('span', h('strong', 'Auto-reload was turned off. '), ar.disabled_reason, ' Check your payment method, then turn it back on in Edit settings.')) : null));
  }

  function lotsCard() {
    const lots = billing.lots || [];
    const table = dataTable({
      label: 'Credit lots',
      columns: [
        { label: 'Source', className: 'col-primary' },
        { label: 'Amount', className: 'col-money' },
        { label: 'Remaining', className: 'col-remaining' },
        { label: 'Added', className: 'col-date' },
        { label: 'Expires on', className: 'col-date' },
      ],
    });
    const soon = Date.now() + 30 * 86400000;
    for (const lot of lots) {
      const meter = h('span.meter', { 'aria-hidden': 'true' }, h('span.meter-fill'));
      meter.firstChild.style.width = `${Math.round(ratio(lot.remaining_usd, lot.amount_usd) * 100)}%`;
      const expiring = lot.expires_at && new Date(lot.expires_at).getTime() < soon;
      table.addRow([
        h('span.cell-title', LOT_SOURCES[lot.source] || cap(lot.source)),
        h('span.money', formatUsd(lot.amount_usd)),
        h('span.remaining', h('span.money', formatUsd(lot.remaining_usd)), meter),
        timeEl(lot.created_at),
        h('span', { class: expiring ? 'text-warning' : null }, timeEl(lot.expires_at), expiring ? h('span.small', ' (soon)') : null),
      ]);
    }
    return h('section.card', { 'aria-labelledby': 'billing-lots-title' },
      h('div.card-header',
        h('h2.card-title#billing-lots-title', 'Credit lots'),
        h('p.card-lead', `Each purchase adds a lot of credits; usage draws from the lot that expires first. ${EXPIRY_NOTE}`)),
      lots.length
        ? h('div.card-body.card-body-flush', h('div.card-section', table.el))
        : h('div.card-body', h('p.muted', 'No credits yet. Credits you buy appear here with their expiry date.')));
  }

  load();
}

const cap = (s) => (s ? String(s).charAt(0).toUpperCase() + String(s).slice(1).replace(/_/g, ' ') : '—');
const testBadge = () => h('span.badge.badge-test', { title: 'Cards are not really charged' }, 'Test mode');

// ---------------------------------------------------------------------------------------
// Invoice history: newest pages as the API lists them, "Load more", a PDF per invoice.

function invoicesCard(ctx) {
  const body = h('div.card-section', loadingBlock('Loading invoices…'));
  const el = h('section.card', { 'aria-labelledby': 'billing-invoices-title' },
    h('div.card-header',
      h('h2.card-title#billing-invoices-title', 'Invoice history'),
      h('p.card-lead', 'An invoice for every purchase. A receipt is also emailed to the organization’s billing email.')),
    h('div.card-body.card-body-flush', body));
  const table = dataTable({
    label: 'Invoices',
    columns: [
      { label: 'Invoice', className: 'col-primary' },
      { label: 'Date', className: 'col-date' },
      { label: 'Total', className: 'col-money' },
      { label: 'Status' },
      { label: 'Download', hideLabel: true, className: 'col-actions' },
    ],
  });
  const more = loadMore(async (after) => {
    const page = await getPage(INVOICES, { limit: INVOICE_PAGE, after_id: after }, { signal: ctx.signal });
    addRows(page.data);
    return page;
  });
  function addRows(list) {
    for (const inv of list) {
      const number = inv.number || inv.id;
      const pdf = h('a.btn.btn-secondary.btn-sm', {
        href: inv.pdf_url || `${INVOICES}/${encodeURIComponent(inv.id)}/pdf`,
        download: `${number}.pdf`,
        'aria-label': `Download PDF of invoice ${number}`,
      }, icon('download'), h('span', 'Download PDF'));
      table.addRow([
        h('span.cell-title', h('span.invoice-number', number), inv.test_mode ? h('span.badge.badge-test', 'Test') : null),
        timeEl(inv.issued_at),
        h('span.money', formatUsd(inv.total_usd)),
        inv.status ? statusBadge(inv.status) : null,
        pdf,
      ], { dataset: { invoiceId: inv.id } });
    }
  }
  let seq = 0;
  async function load() {
    const mine = ++seq;
    if (!body.firstChild || !table.body.children.length) body.replaceChildren(loadingBlock('Loading invoices…'));
    try {
      const page = await getPage(INVOICES, { limit: INVOICE_PAGE }, { signal: ctx.signal });
      if (ctx.stale() || mine !== seq) return;
      table.clear();
      more.set(page);
      if (!page.data.length) {
        body.replaceChildren(h('div.empty-state.empty-state-inline',
          h('div.empty-icon', icon('list', 'icon icon-lg')),
          h('h3.empty-title', 'No invoices yet'),
          h('p.empty-text', 'An invoice is issued for every purchase. You will find them here, ready to download as PDF.')));
        return;
      }
      addRows(page.data);
      body.replaceChildren(table.el, more.el);
    } catch (e) {
      if (ctx.stale() || mine !== seq || !(e instanceof ApiError)) return;
      body.replaceChildren(errorBlock(`Could not load the invoices. ${e.message}`, load));
    }
  }
  return { el, load };
}

// ---------------------------------------------------------------------------------------
// Dialogs

// A dollar amount field: "$" in front, decimal keyboard on phones.
function moneyInput(attrs = {}) {
  const input = h('input.input.input-money', { type: 'text', inputmode: 'decimal', autocomplete: 'off', spellcheck: 'false', placeholder: '0.00', ...attrs });
  return input;
}
function moneyField(input, opts) {
  const f = field(input, opts);
  f.label.after(h('div.money-wrap', h('span.money-prefix', { 'aria-hidden': 'true' }, '$'), input));
  return f;
}
// A server amount as the "12.50" an input shows.
const inputValue = (usd) => {
  const c = usdToCents(usd);
  return c === null ? '' : centsToUsd(c);
};

// The first-purchase questions (POST /v1/organizations/billing/profile). Resolves true when
// answered and saved.
async function profileDialog(ctx, billing, step) {
  const [countries, settings] = await Promise.all([
    loadCountries(ctx.signal).catch(() => null),
    get('/v1/organizations/me/settings', { signal: ctx.signal }).catch(() => null),
  ]);
  if (!countries) { toast('Could not load the list of countries. Check your connection and try again.', 'error'); return false; }

  const use = h('select.input.select', { name: 'intended_use' },
    h('option', { value: '' }, 'Select one'), USES.map((u) => h('option', { value: u }, u)));
  const useField = field(use, { label: 'What will you use the API for?' });
  const details = h('textarea.input.textarea.textarea-sm', { name: 'intended_use_details', maxlength: '400', rows: '2' });
  const detailsField = field(details, {
    label: 'Describe your use', optional: true,
    hint: 'A sentence or two, e.g. “A support assistant for our online store.”',
  });
  const syncDetails = () => {
    const other = use.value === 'Something else';
    detailsField.label.querySelector('.optional').hidden = other;
  };
  use.addEventListener('change', () => { syncDetails(); useField.setError(null); detailsField.setError(null); });

  const home = settings && settings.billing_address && settings.billing_address.country;
  const picker = countryPicker(countries, home ? [home] : []);

  // Regulated industries: yes/no, then which.
  const groupName = nextId('regulated');
  const radio = (value, label) => {
    const id = nextId('radio');
    const input = h('input.radio', { type: 'radio', name: groupName, id, value });
    return { input, el: h('div.check-row', input, h('label', { for: id }, label)) };
  };
  const no = radio('no', 'No');
  const yes = radio('yes', 'Yes');
  const labels = new Map(INDUSTRIES);
  const choices = Array.isArray(billing.regulated_industry_choices) && billing.regulated_industry_choices.length
    ? billing.regulated_industry_choices.map((v) => [v, labels.get(v) || cap(v)])
    : INDUSTRIES;
  const industryBoxes = choices.map(([value, label]) => {
    const id = nextId('industry');
    const input = h('input.checkbox', { type: 'checkbox', id, value });
    input.addEventListener('change', () => setRegError(null));
    return { input, el: h('div.check-row', input, h('label', { for: id }, label)) };
  });
  const industriesSet = h('fieldset.fieldset.subfieldset', { hidden: true },
    h('legend.fieldset-legend.fieldset-legend-sm', 'Which ones?'),
    h('div.check-grid', industryBoxes.map((b) => b.el)));
  const regError = h('p.field-error', { id: nextId('reg-error'), hidden: true });
  const regulated = h('fieldset.fieldset', { 'aria-describedby': regError.id },
    h('legend.fieldset-legend', 'Will your use of the API involve any regulated industries?'),
    h('p.field-hint', 'For example healthcare, financial services, insurance or legal advice.'),
    h('div.radio-row', no.el, yes.el),
    industriesSet,
    regError);
  const syncRegulated = () => { industriesSet.hidden = !yes.input.checked; setRegError(null); };
  no.input.addEventListener('change', syncRegulated);
  yes.input.addEventListener('change', syncRegulated);
  const setRegError = (msg) => { regError.textContent = msg || ''; regError.hidden = !msg; };

  const saved = await formDialog({
    title: 'Before your first purchase',
    lead: step || 'A few questions we ask once, before the first purchase. You can answer in a minute.',
    size: 'lg',
    fields: [useField.wrap, detailsField.wrap, picker.el, regulated],
    submitLabel: 'Continue',
    busyLabel: 'Saving…',
    onSubmit: async ({ error }) => {
      useField.setError(null);
      detailsField.setError(null);
      picker.setError(null);
      setRegError(null);
      const errors = [];
      const extra = details.value.trim();
      if (!use.value) { useField.setError('Select what you will use the API for.'); errors.push(use); }
      else if (use.value === 'Something else' && !extra) { detailsField.setError('Describe how you will use the API.'); errors.push(details); }
      if (!picker.values().length) { picker.setError('Select at least one country.'); errors.push(picker.focusTarget()); }
      const chosen = industryBoxes.filter((b) => b.input.checked).map((b) => b.input.value);
      if (!no.input.checked && !yes.input.checked) { setRegError('Answer yes or no.'); errors.push(no.input); }
      else if (yes.input.checked && !chosen.length) { setRegError('Select the regulated industries, or answer No.'); errors.push(industryBoxes[0].input); }
      if (errors.length) { errors[0].focus(); return false; }
      const intended = (extra ? `${use.value}: ${extra}` : use.value).slice(0, INTENDED_USE_MAX);
      try {
        await post(`${BILLING}/profile`, {
          intended_use: intended,
          countries: picker.values(),
          regulated_industries: yes.input.checked ? chosen : [],
        });
      } catch (e) {
        if (!(e instanceof ApiError)) throw e;
        error.show(e.message);
        return false;
      }
      return true;
    },
  });
  return saved === true;
}

// A multi-select of countries: a search box over a list of checkboxes, and the chosen ones
// as removable chips. Returns {el, values(), setError(msg), focusTarget()}.
function countryPicker(countries, initial) {
  const selected = new Set(initial.filter((c) => countries.some((x) => x.code === c)));
  const listId = nextId('countries');
  const hintId = nextId('countries-hint');
  const errorEl = h('p.field-error', { id: nextId('countries-error'), hidden: true });
  const search = h('input.input.input-search', {
    type: 'search', placeholder: 'Search countries', autocomplete: 'off', spellcheck: 'false',
    'aria-label': 'Search countries', 'aria-controls': listId,
  });
  const chips = h('ul.chips', { 'aria-label': 'Selected countries' });
  const noMatch = h('p.country-none', { hidden: true }, 'No country matches.');
  const boxes = new Map();
  const options = countries.map((c) => {
    const id = nextId('country');
    const input = h('input.checkbox', { type: 'checkbox', id, value: c.code, checked: selected.has(c.code) });
    boxes.set(c.code, input);
    input.addEventListener('change', () => {
      if (input.checked) selected.add(c.code); else selected.delete(c.code);
      drawChips();
      if (selected.size) setError(null);
    });
    const el = h('div.country-option', input, h('label', { for: id }, c.name));
    return { el, text: `${c.name} ${c.code}`.toLowerCase() };
  });
  const list = h('div.country-list', { id: listId, role: 'group', 'aria-label': 'Countries' }, options.map((o) => o.el), noMatch);
  const count = h('span.country-count', { 'aria-live': 'polite' });
  const byCode = new Map(countries.map((c) => [c.code, c]));

  function drawChips() {
    chips.replaceChildren(...[...selected].map((code) => {
      const name = (byCode.get(code) || { name: code }).name;
      const remove = h('button.chip-remove', { type: 'button', 'aria-label': `Remove ${name}` }, icon('close'));
      remove.addEventListener('click', () => {
        selected.delete(code);
        boxes.get(code).checked = false;
        drawChips();
        search.focus();
      });
      return h('li.chip', h('span', name), remove);
    }));
    chips.hidden = !selected.size;
    count.textContent = selected.size ? `${selected.size} selected` : '';
  }
  search.addEventListener('input', () => {
    const q = search.value.trim().toLowerCase();
    let shown = 0;
    for (const o of options) {
      const show = !q || o.text.includes(q);
      o.el.hidden = !show;
      if (show) shown++;
    }
    noMatch.hidden = shown > 0;
  });
  // Enter in the search box picks the only (or first) match instead of submitting the form.
  search.addEventListener('keydown', (ev) => {
    if (ev.key !== 'Enter') return;
    ev.preventDefault();
    const first = options.find((o) => !o.el.hidden);
    if (!first) return;
    const box = first.el.querySelector('input');
    if (!box.checked) { box.checked = true; box.dispatchEvent(new Event('change')); }
    search.select();
  });
  function setError(msg) {
    errorEl.textContent = msg || '';
    errorEl.hidden = !msg;
    search.toggleAttribute('aria-invalid', !!msg);
    if (msg) search.setAttribute('aria-invalid', 'true');
  }
  drawChips();
  const el = h('fieldset.fieldset.country-picker', { 'aria-describedby': `${hintId} ${errorEl.id}` },
    h('legend.fieldset-legend', 'Countries where you will use the API', count),
    h('p.field-hint', { id: hintId }, 'Select every country where you or your users will call the API. Type to search; Enter selects the first match.'),
    search, chips, list, errorEl);
  return { el, values: () => [...selected], setError, focusTarget: () => search };
}

function newIdempotencyKey() {
  if (typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  // Consoles served over plain http (not a secure context) have no randomUUID.
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

// "Add funds": the amount and a confirmation of the card it is charged to. Resolves with the
// purchase ({status: succeeded|pending, …}) or undefined when cancelled.
//
// One purchase attempt = one idempotency key: a retry after an unknown outcome (network
// failure, 5xx) reuses it, so the server answers with the purchase already made instead of
// charging twice; a definite answer (a decline, a refusal) or another amount starts a new one.
function purchaseDialog(billing, step) {
  const first = compareUsd(billing.purchases_total_usd, '0') === 0;
  const min = billing.next_purchase_min_usd
    || (first ? (billing.first_purchase_min_usd || billing.min_purchase_usd) : billing.min_purchase_usd);
  const max = billing.max_purchase_usd;
  const minCents = usdToCents(min) ?? 0n;
  const maxCents = usdToCents(max);
  const pm = billing.payment_method;

  const amount = moneyInput({ name: 'amount', autofocus: true });
  const f = moneyField(amount, {
    label: 'Amount (USD)',
    hint: `${first ? 'Your first purchase must be at least' : 'Minimum'} ${formatUsd(min)}${maxCents !== null ? `, maximum ${formatUsd(max)}` : ''}.`,
  });
  const quick = [10n, 25n, 50n, 100n].map((d) => d * 100n).filter((c) => c >= minCents && (maxCents === null || c <= maxCents));
  const quickButtons = quick.map((c) => {
    const b = h('button.chip-button', { type: 'button', 'aria-pressed': 'false' }, formatUsd(centsToUsd(c)).replace(/\.00$/, ''));
    b.addEventListener('click', () => {
      amount.value = centsToUsd(c);
      syncQuick();
      f.setError(null);
      amount.focus();
    });
    b.dataset.cents = String(c);
    return b;
  });
  const syncQuick = () => {
    const p = parseAmountInput(amount.value);
    for (const b of quickButtons) b.setAttribute('aria-pressed', String(!p.error && String(p.cents) === b.dataset.cents));
  };
  amount.addEventListener('input', () => { syncQuick(); f.setError(null); });
  const quickRow = quickButtons.length ? h('div.quick-amounts', { role: 'group', 'aria-label': 'Suggested amounts' }, quickButtons) : null;

  const summary = h('dl.purchase-summary',
    h('div', h('dt', 'Charged to'), h('dd', cardLabel(pm), h('span.muted', ` · expires ${expiryText(pm)}`))),
    h('div', h('dt', 'Credits expire'), h('dd', 'One year after purchase')));
  const rate = Number(billing.tax_rate_bps) || 0;
  const notes = h('p.field-hint',
    rate > 0
      ? `${billing.tax_label || 'Tax'} (${rate / 100}%) is added to the charge where it applies; your invoice shows the exact amount. `
      : 'Any applicable tax is added to the charge and shown on your invoice. ',
    billing.test_mode ? h('strong', 'Test mode: the card is not really charged.') : null);

  let key = null;
  let keyAmount = null;
  return formDialog({
    title: 'Add funds',
    lead: step || 'Buy prepaid credits for API usage.',
    fields: [
      isExpired(pm) ? h('div.alert.alert-warning', icon('alert'), h('span', 'The card on file has expired: the payment will probably be declined. Change the payment method first.')) : null,
      f.wrap, quickRow, summary, notes],
    submitLabel: 'Buy credits',
    busyLabel: 'Processing payment…',
    onSubmit: async ({ error }) => {
      f.setError(null);
      const p = parseAmountInput(amount.value, { label: 'the amount to buy' });
      let msg = p.error;
      if (!msg && p.cents < minCents) msg = first ? `Your first purchase must be at least ${formatUsd(min)}.` : `The minimum purchase is ${formatUsd(min)}.`;
      if (!msg && maxCents !== null && p.cents > maxCents) msg = `The maximum for one purchase is ${formatUsd(max)}.`;
      if (msg) { f.setError(msg); amount.focus(); return false; }
      if (!key || keyAmount !== p.usd) { key = newIdempotencyKey(); keyAmount = p.usd; }
      try {
        const r = await post(`${BILLING}/purchases`, { amount_usd: p.usd }, { headers: { 'idempotency-key': key } });
        key = null;
        return r;
      } catch (e) {
        if (!(e instanceof ApiError)) throw e;
        const unknown = e.status === 0 || e.status >= 500;
        if (!unknown) key = null; // a definite answer: the next try is a new purchase
        if (e.status === 400 && /amount/i.test(e.message)) { f.setError(e.message); amount.focus(); return false; }
        error.show(unknown ? `${e.message} Trying again is safe: you will not be charged twice.` : e.message);
        return false;
      }
    },
  });
}

// "Edit settings" for auto-reload. Resolves with the server's answer once saved.
function autoReloadDialog(billing) {
  const ar = billing.auto_reload || {};
  const pm = billing.payment_method;
  const canEnable = !!pm || ar.enabled;
  const enabledId = nextId('ar-enabled');
  const enabled = h('input.checkbox.switch', { type: 'checkbox', id: enabledId, role: 'switch', checked: !!ar.enabled, disabled: !canEnable });
  const toggle = h('div.check-row.switch-row', enabled,
    h('label', { for: enabledId }, h('span.switch-label', 'Auto-reload'),
      h('span.check-sub', 'Buy credits automatically when your balance runs low.')));
  const threshold = moneyInput({ name: 'threshold', value: inputValue(ar.threshold_usd) });
  const amount = moneyInput({ name: 'reload_amount', value: inputValue(ar.amount_usd) });
  const tf = moneyField(threshold, { label: 'When the balance falls below', hint: 'The balance that triggers a reload.' });
  const af = moneyField(amount, {
    label: 'Reload amount',
    hint: `At least ${formatUsd(billing.min_purchase_usd)}, the minimum purchase.`,
  });
  threshold.addEventListener('input', () => tf.setError(null));
  amount.addEventListener('input', () => af.setError(null));
  const settings = h('fieldset.fieldset.ar-settings', h('legend.visually-hidden', 'Auto-reload settings'), h('div.field-row', tf.wrap, af.wrap));
  const sync = () => { settings.disabled = !enabled.checked; };
  enabled.addEventListener('change', sync);
  sync();

  const notes = [
    !ar.enabled && ar.disabled_reason ? h('div.alert.alert-warning', icon('alert'),
      h('span', h('strong', 'Auto-reload was turned off. '), ar.disabled_reason)) : null,
    !pm ? h('div.alert.alert-info', 'Add a payment method before turning on auto-reload.') : null,
    h('p.field-hint', pm ? ['Reloads are charged to ', cardLabel(pm), '. '] : null,
      'Leave auto-reload off to cap your spending at the credits you have bought. ', EXPIRY_NOTE),
  ];

  return formDialog({
    title: 'Auto-reload settings',
    fields: [toggle, settings, ...notes],
    submitLabel: 'Save settings',
    busyLabel: 'Saving…',
    onSubmit: async () => {
      tf.setError(null);
      af.setError(null);
      const on = enabled.checked;
      const t = parseAmountInput(threshold.value, { label: 'the balance that triggers a reload' });
      const a = parseAmountInput(amount.value, { label: 'the reload amount' });
      const body = { enabled: on };
      if (on) {
        const minC = usdToCents(billing.min_purchase_usd) ?? 0n;
        const maxC = usdToCents(billing.max_purchase_usd);
        let aErr = a.error;
        if (!aErr && a.cents < minC) aErr = `The reload amount must be at least ${formatUsd(billing.min_purchase_usd)}, the minimum purchase.`;
        if (!aErr && maxC !== null && a.cents > maxC) aErr = `The reload amount can be at most ${formatUsd(billing.max_purchase_usd)}.`;
        let tErr = t.error;
        if (!tErr && t.cents === 0n) tErr = 'Enter a threshold above $0.00.';
        if (tErr) tf.setError(tErr);
        if (aErr) af.setError(aErr);
        if (tErr || aErr) { (tErr ? threshold : amount).focus(); return false; }
      }
      if (!t.error) body.threshold_usd = t.usd;
      if (!a.error) body.amount_usd = a.usd;
      return post(`${BILLING}/auto_reload`, body);
    },
  });
}
