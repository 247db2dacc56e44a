// /onboarding: full name, age confirmation and terms acceptance, once per account.
import { get, post, setSession, productName, ApiError } from '../api.js';
import { h, field, alertBox, busy, nextId } from '../dom.js';
import { authCard } from '../layout.js';

function checkbox(label, extra) {
  const id = nextId('check');
  const input = h('input.checkbox', { type: 'checkbox', id });
  const error = h('p.field-error', { id: `${id}-error`, hidden: true });
  const wrap = h('div.check-field',
    h('div.check-row', input, h('label', { for: id }, label, extra || null)),
    error);
  return {
    wrap, input,
    setError(msg) {
      error.textContent = msg || '';
      error.hidden = !msg;
      if (msg) { input.setAttribute('aria-invalid', 'true'); input.setAttribute('aria-describedby', error.id); }
      else { input.removeAttribute('aria-invalid'); input.removeAttribute('aria-describedby'); }
    },
  };
}

export function render({ session, navigate }) {
  const name = h('input.input', { type: 'text', name: 'full_name', autocomplete: 'name', maxlength: '100',
    required: true, value: session.account.full_name || '' });
  const nameField = field(name, { label: 'Full name' });
  const age = checkbox('I confirm that I am at least 18 years old');
  // The terms are a link people can read first: the operator's page ([auth] terms_url) or
  // Gatehouse's /terms, in a new tab so the form keeps what was typed.
  const termsLink = h('a', { href: '/terms', target: '_blank', rel: 'noopener' }, 'Terms of Service');
  get('/auth/config').then((cfg) => { if (cfg.terms_url) termsLink.href = cfg.terms_url; }).catch(() => { /* /terms */ });
  const terms = checkbox(['I accept the ', termsLink],
    h('span.check-sub', `Version ${session.terms_version}`));
  const alert = alertBox('error');
  const submit = h('button.btn.btn-primary.btn-block', { type: 'submit' }, 'Continue');
  submit.dataset.busyLabel = 'Saving…';

  const form = h('form.form', { novalidate: true }, nameField.wrap, h('div.check-group', age.wrap, terms.wrap), alert.el, submit);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    alert.clear();
    const fullName = name.value.trim();
    nameField.setError(fullName ? null : 'Enter your full name.');
    age.setError(age.input.checked ? null : `You must be at least 18 years old to use ${productName()}.`);
    terms.setError(terms.input.checked ? null : 'Accept the Terms of Service to continue.');
    const firstBad = form.querySelector('[aria-invalid="true"]');
    if (firstBad) { firstBad.focus(); return; }
    await busy(submit, async () => {
      try {
        setSession(await post('/auth/onboarding', { full_name: fullName, confirmed_age_18: true, accepted_terms: true }));
        navigate('/', { replace: true });
      } catch (e) {
        if (!(e instanceof ApiError)) throw e;
        alert.show(e.message);
      }
    });
  });

  return authCard({ title: `Welcome to ${productName()}`, lead: 'Tell us who you are to finish creating your account.' },
    h('p.signed-in-as', 'Signed in as ', h('strong.break', session.account.email)),
    form);
}
