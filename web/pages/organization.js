// /settings/organization: the organization's name and the billing details used on invoices
// (legal name, billing email, address, VAT ID). GET and POST /v1/organizations/me/settings;
// the country picker comes from GET /v1/countries.
import { get, post, loadSession, ApiError } from '../api.js';
import { h, field, alertBox, busy, toast, icon } from '../dom.js';
import { loadCountries } from '../countries.js';

const SAVED = 'Organization details saved';

export function render(ctx) {
  const body = h('div.page-body', loadingCard());
  const page = h('div.page.page-narrow',
    h('header.page-header',
      h('div',
        h('h1.page-title', 'Organization'),
        h('p.page-lead', 'Your organization’s name and the billing details that appear on invoices and receipts.'))),
    body);

  const load = async () => {
    body.replaceChildren(loadingCard());
    try {
      const [settings, countries] = await Promise.all([
        get('/v1/organizations/me/settings', { signal: ctx.signal }),
        loadCountries(ctx.signal),
      ]);
      if (ctx.stale()) return;
      body.replaceChildren(settingsForm(ctx, settings, countries));
    } catch (e) {
      if (ctx.stale() || !(e instanceof ApiError)) return;
      const retry = h('button.btn.btn-secondary', { type: 'button', onclick: load }, 'Try again');
      body.replaceChildren(h('section.card.card-padded',
        h('div.alert.alert-error', { role: 'alert' }, icon('alert'), h('span', `Could not load the organization settings. ${e.message}`)),
        h('div.form-actions', retry)));
    }
  };
  load();
  return page;
}

function loadingCard() {
  return h('section.card.card-padded.loading-card', { 'aria-busy': 'true' },
    h('span.spinner', { 'aria-hidden': 'true' }), h('span', 'Loading organization settings…'));
}

const text = (attrs) => h('input.input', { type: 'text', ...attrs });
const orNull = (el) => {
  const v = el.value.trim();
  return v === '' ? null : v;
};
const EMAIL_RE = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
// A real Italian VAT number (its check digit and office code are right), so the example in the
// hint passes the server's own check (src/core/vat.c); the guide's IT12345678901 does not.
export const VAT_EXAMPLE = 'IT00743110157';

// Which field a server validation message is about, so it can be shown next to it.
function fieldFor(message) {
  const m = message.toLowerCase();
  if (/\bvat\b/.test(m)) return 'vat_id';
  if (m.includes('email')) return 'billing_email';
  if (m.includes('legal')) return 'legal_name';
  if (m.includes('postal')) return 'postal_code';
  if (m.includes('line2') || m.includes('line 2')) return 'line2';
  if (m.includes('line1') || m.includes('street') || m.includes('address line')) return 'line1';
  if (m.includes('city')) return 'city';
  if (m.includes('state') || m.includes('province')) return 'state';
  if (m.includes('country')) return 'country';
  if (m.includes('name')) return 'name';
  return null;
}

function formatTime(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return null;
  return d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

function settingsForm(ctx, initial, countries) {
  let settings = initial;
  const canName = !!settings.can_edit?.name;
  const canBilling = !!settings.can_edit?.billing;
  const byCode = new Map(countries.map((c) => [c.code, c]));

  // Controls
  const c = {
    name: text({ name: 'name', maxlength: '80', autocomplete: 'organization', required: true }),
    legal_name: text({ name: 'legal_name', maxlength: '200' }),
    billing_email: h('input.input', { type: 'email', name: 'billing_email', maxlength: '254', autocomplete: 'email', spellcheck: 'false' }),
    line1: text({ name: 'line1', maxlength: '200', autocomplete: 'address-line1' }),
    line2: text({ name: 'line2', maxlength: '200', autocomplete: 'address-line2' }),
    city: text({ name: 'city', maxlength: '100', autocomplete: 'address-level2' }),
    postal_code: text({ name: 'postal_code', maxlength: '20', autocomplete: 'postal-code' }),
    state: text({ name: 'state', maxlength: '100', autocomplete: 'address-level1' }),
    country: h('select.input.select', { name: 'country', autocomplete: 'country' },
      h('option', { value: '' }, 'Select a country'),
      countries.map((x) => h('option', { value: x.code }, x.name))),
    vat_id: text({ name: 'vat_id', maxlength: '32', autocomplete: 'off', spellcheck: 'false', placeholder: VAT_EXAMPLE }),
  };
  const f = {
    name: field(c.name, { label: 'Organization name', note: canName ? null : 'Only admins can change the organization name.' }),
    legal_name: field(c.legal_name, { label: 'Legal name', optional: true, hint: 'The registered company name, if it differs from the organization name.' }),
    billing_email: field(c.billing_email, { label: 'Billing email', optional: true, hint: 'Receipts and invoices are sent here.' }),
    line1: field(c.line1, { label: 'Street address' }),
    line2: field(c.line2, { label: 'Address line 2', optional: true, hint: 'Apartment, suite, floor, etc.' }),
    city: field(c.city, { label: 'City' }),
    postal_code: field(c.postal_code, { label: 'Postal code' }),
    state: field(c.state, { label: 'State/Province', optional: true }),
    country: field(c.country, { label: 'Country' }),
    vat_id: field(c.vat_id, { label: 'Tax or VAT ID', optional: true, hint: `Include the country prefix, e.g. ${VAT_EXAMPLE}` }),
  };
  const BILLING = ['legal_name', 'billing_email', 'line1', 'line2', 'city', 'postal_code', 'state', 'country', 'vat_id'];

  if (!canName) c.name.readOnly = true;
  if (!canBilling) {
    for (const k of BILLING) {
      if (k === 'country') c.country.disabled = true; else c[k].readOnly = true;
    }
  }

  const vatApplies = () => {
    const country = byCode.get(c.country.value);
    return country ? !!country.vat : false;
  };
  const syncVat = () => {
    const show = vatApplies();
    f.vat_id.wrap.hidden = !show;
    if (!show) f.vat_id.setError(null);
  };

  function fill(s) {
    const a = s.billing_address || {};
    c.name.value = s.name || '';
    c.legal_name.value = s.legal_name || '';
    c.billing_email.value = s.billing_email || '';
    c.line1.value = a.line1 || '';
    c.line2.value = a.line2 || '';
    c.city.value = a.city || '';
    c.postal_code.value = a.postal_code || '';
    c.state.value = a.state || '';
    if (a.country && !byCode.has(a.country)) {
      c.country.append(h('option', { value: a.country }, a.country));
      byCode.set(a.country, { code: a.country, name: a.country, vat: !!s.vat_applicable });
    }
    c.country.value = a.country || '';
    c.vat_id.value = s.vat_id || '';
    syncVat();
  }

  // The request body: only the fields this member may change; empty optional ones as null.
  function payload() {
    const out = {};
    if (canName) out.name = c.name.value.trim();
    if (canBilling) {
      out.legal_name = orNull(c.legal_name);
      out.billing_email = orNull(c.billing_email);
      out.billing_address = {
        line1: orNull(c.line1), line2: orNull(c.line2), city: orNull(c.city),
        postal_code: orNull(c.postal_code), state: orNull(c.state), country: c.country.value || null,
      };
      out.vat_id = vatApplies() ? orNull(c.vat_id) : null;
    }
    return out;
  }

  function validate(p) {
    const errors = {};
    if (canName && !p.name) errors.name = 'Enter the organization name.';
    if (canBilling) {
      if (p.billing_email && !EMAIL_RE.test(p.billing_email)) errors.billing_email = 'Enter a valid email address, like billing@company.com.';
      const a = p.billing_address;
      if (Object.values(a).some((v) => v !== null)) {
        if (!a.line1) errors.line1 = 'Enter the street address.';
        if (!a.city) errors.city = 'Enter the city.';
        if (!a.postal_code) errors.postal_code = 'Enter the postal code.';
        if (!a.country) errors.country = 'Select the country.';
      }
    }
    return errors;
  }

  const clearErrors = () => { for (const k of Object.keys(f)) f[k].setError(null); };

  // Save bar
  const formAlert = alertBox('error');
  const saved = h('p.save-status', { role: 'status', 'aria-live': 'polite' });
  const lastSaved = h('p.save-meta');
  const save = h('button.btn.btn-primary', { type: 'submit' }, 'Save changes');
  save.dataset.busyLabel = 'Saving…';
  const discard = h('button.btn.btn-ghost', { type: 'button', disabled: true }, 'Discard changes');
  const showLastSaved = () => {
    const t = settings.updated_at && formatTime(settings.updated_at);
    lastSaved.textContent = t ? `Last saved ${t}` : '';
  };

  let pristine = '';
  const markPristine = () => { pristine = JSON.stringify(payload()); discard.disabled = true; };
  const onEdit = () => {
    discard.disabled = JSON.stringify(payload()) === pristine;
    saved.textContent = '';
  };

  const orgCard = h('section.card', { 'aria-labelledby': 'org-general' },
    h('div.card-header', h('h2.card-title#org-general', 'General')),
    h('div.card-body',
      f.name.wrap,
      h('div.field',
        h('span.field-label', 'Organization ID'),
        h('code.id-value', settings.id))));

  const billingCard = h('section.card', { 'aria-labelledby': 'org-billing' },
    h('div.card-header',
      h('h2.card-title#org-billing', 'Billing details'),
      h('p.card-lead', 'Shown on invoices and receipts. Enter them before you buy credits.')),
    h('div.card-body',
      canBilling ? null : h('p.readonly-note', icon('lock'), h('span', 'Only admins and billing members can change billing details.')),
      f.legal_name.wrap,
      f.billing_email.wrap,
      h('fieldset.fieldset',
        h('legend.fieldset-legend', 'Billing address'),
        f.line1.wrap,
        f.line2.wrap,
        h('div.field-row', f.city.wrap, f.postal_code.wrap),
        h('div.field-row', f.state.wrap, f.country.wrap)),
      f.vat_id.wrap));

  const editable = canName || canBilling;
  const saveBar = editable
    ? h('div.save-bar', h('div.save-info', saved, lastSaved), h('div.save-actions', discard, save))
    : h('p.readonly-note', icon('lock'), h('span', 'You can view these details but not change them. Ask an admin of this organization.'));

  const form = h('form.settings-form', { novalidate: true, 'aria-label': 'Organization settings' },
    orgCard, billingCard, formAlert.el, saveBar);

  fill(settings);
  markPristine();
  showLastSaved();
  c.country.addEventListener('change', syncVat);
  form.addEventListener('input', onEdit);
  form.addEventListener('change', onEdit);

  discard.addEventListener('click', () => {
    clearErrors();
    formAlert.clear();
    fill(settings);
    markPristine();
  });

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (!editable || save.disabled) return;
    clearErrors();
    formAlert.clear();
    saved.textContent = '';
    const p = payload();
    const errors = validate(p);
    const keys = Object.keys(errors);
    if (keys.length) {
      for (const k of keys) f[k].setError(errors[k]);
      formAlert.show(keys.length === 1 ? 'Check the highlighted field.' : `Check the ${keys.length} highlighted fields.`);
      c[keys[0]].focus();
      return;
    }
    const nameChanged = canName && p.name !== settings.name;
    await busy(save, async () => {
      try {
        settings = await post('/v1/organizations/me/settings', p);
      } catch (e) {
        if (!(e instanceof ApiError)) throw e;
        const k = e.status === 400 ? fieldFor(e.message) : null;
        if (k && f[k] && !f[k].wrap.hidden) {
          f[k].setError(e.message);
          formAlert.show(`Changes not saved. ${e.message}`);
          c[k].focus();
        } else {
          formAlert.show(e.message);
        }
        return;
      }
      fill(settings);
      markPristine();
      showLastSaved();
      saved.replaceChildren(icon('check'), h('span', SAVED));
      toast(SAVED);
      if (nameChanged) {
        // The new name shows in the top bar and the organization switcher.
        try { ctx.updateSession(await loadSession()); } catch { /* the page is right; the bar catches up on reload */ }
      }
    });
  });

  return form;
}
