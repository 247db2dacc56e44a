// /dashboard: where a person lands after signing in.
import { get, productName } from '../api.js';
import { h, icon } from '../dom.js';
import { roleLabel } from '../shell.js';

const STEPS = [
  { href: '/settings/organization', icon: 'building', title: 'Enter your billing details',
    text: 'Legal name, billing address and VAT ID, used on your invoices.', ready: true },
  { href: '/settings/billing', icon: 'card', title: 'Add a payment method and buy credits',
    text: 'Usage is prepaid: credits are drawn down as you call the API.' },
  { href: '/settings/keys', icon: 'key', title: 'Create an API key',
    text: 'Keys belong to a workspace; the secret is shown once.', ready: true },
  { href: '/settings/members', icon: 'users', title: 'Invite your team',
    text: 'Give each person the User, Developer, Billing or Admin role.', ready: true },
];

// Billing details count as entered once there is a legal name and a full address.
const billingDone = (s) => !!(s.legal_name && s.billing_address && s.billing_address.line1 && s.billing_address.country);

export function render({ session, signal }) {
  const org = session.current_organization;
  const first = (session.account.full_name || '').trim().split(/\s+/)[0];
  const page = h('div.page',
    h('header.page-header',
      h('div',
        h('h1.page-title', first ? `Welcome, ${first}` : `Welcome to ${productName()}`),
        h('p.page-lead', 'You are working in ', h('strong', org.name), ' ', h('span.badge.badge-role', roleLabel(org.role)))),
      h('a.btn.btn-secondary', { href: '/settings/organization' }, icon('building'), h('span', 'Organization settings'))),
    h('section.card', { 'aria-labelledby': 'getting-started' },
      h('div.card-header',
        h('h2.card-title#getting-started', 'Get started'),
        h('p.card-lead', `Set up ${org.name} to start calling the API.`)),
      h('ol.steps', STEPS.map((s, i) => h('li.step',
        h('a.step-link', { href: s.href },
          h('span.step-number', { 'aria-hidden': 'true', dataset: { step: String(i) } }, String(i + 1)),
          h('span.step-body',
            h('span.step-title', s.title, s.ready ? null : h('span.badge', 'Coming soon')),
            h('span.step-text', s.text)),
          icon('arrow', 'icon step-arrow')))))));

  get('/v1/organizations/me/settings', { signal }).then((settings) => {
    if (!billingDone(settings)) return;
    const number = page.querySelector('[data-step="0"]');
    number.classList.add('step-done');
    number.replaceChildren(icon('check'));
    number.closest('.step-link').querySelector('.step-title').append(h('span.badge.badge-done', 'Done'));
  }).catch(() => { /* the checklist still works without the tick */ });
  return page;
}
