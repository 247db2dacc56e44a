// /dashboard: where a person lands after signing in.
import { get, productName } from '../api.js';
import { h, icon } from '../dom.js';
import { roleLabel } from '../shell.js';

const STEPS = [
  { href: '/settings/organization', icon: 'building', title: 'Enter your billing details',
    text: 'Legal name, billing address and VAT ID, used on your invoices.', ready: true },
  { href: '/settings/billing', icon: 'card', title: 'Add a payment method and buy credits',
    text: 'Usage is prepaid: credits are drawn down as you call the API.', ready: true },
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

  page.append(quickstart(signal));

  get('/v1/organizations/me/settings', { signal }).then((settings) => {
    if (!billingDone(settings)) return;
    const number = page.querySelector('[data-step="0"]');
    number.classList.add('step-done');
    number.replaceChildren(icon('check'));
    number.closest('.step-link').querySelector('.step-title').append(h('span.badge.badge-done', 'Done'));
  }).catch(() => { /* the checklist still works without the tick */ });
  return page;
}

// The three ways to make a first call, for the model API's public address and the first
// model; filled in once /auth/config answers. Keys are never shown here: the snippets read
// the key from an environment variable.
const SNIPPETS = {
  curl: (base, model) => `curl ${base}/v1/messages \\
  -H "x-api-key: $GATEHOUSE_API_KEY" \\
  -H "anthropic-version: 2023-06-01" \\
  -H "content-type: application/json" \\
  -d '{"model": "${model}", "max_tokens": 256,
       "messages": [{"role": "user", "content": "Hello"}]}'`,
  python: (base, model) => `import os
from anthropic import Anthropic

client = Anthropic(base_url="${base}", api_key=os.environ["GATEHOUSE_API_KEY"])
message = client.messages.create(
    model="${model}",
    max_tokens=256,
    messages=[{"role": "user", "content": "Hello"}],
)
print(message.content[0].text)`,
  typescript: (base, model) => `import Anthropic from '@anthropic-ai/sdk';

const client = new Anthropic({ baseURL: '${base}', apiKey: process.env.GATEHOUSE_API_KEY });
const message = await client.messages.create({
  model: '${model}',
  max_tokens: 256,
  messages: [{ role: 'user', content: 'Hello' }],
});
console.log(message.content[0].text);`,
  openai: (base, model) => `from openai import OpenAI
import os

client = OpenAI(base_url="${base}/v1", api_key=os.environ["GATEHOUSE_API_KEY"])
reply = client.chat.completions.create(
    model="${model}",
    messages=[{"role": "user", "content": "Hello"}],
)
print(reply.choices[0].message.content)`,
};
const TABS = [['curl', 'curl'], ['python', 'Python'], ['typescript', 'TypeScript'], ['openai', 'OpenAI SDK']];

function quickstart(signal) {
  const code = h('code.quickstart-code', 'Loading…');
  const models = h('ul.quickstart-models');
  const tabs = h('div.tabs', { role: 'tablist', 'aria-label': 'Language' });
  const panel = h('section.card.quickstart', { 'aria-labelledby': 'quickstart-title' },
    h('div.card-header',
      h('h2.card-title#quickstart-title', 'Quickstart'),
      h('p.card-lead', 'Create an API key, export it as GATEHOUSE_API_KEY, then make your first call.')),
    tabs,
    h('pre.quickstart-pre', { tabindex: '0', 'aria-label': 'Example code' }, code),
    h('h3.quickstart-subtitle', 'Models'),
    models);
  get('/auth/config', { signal }).then((cfg) => {
    const model = (cfg.models[0] && cfg.models[0].id) || 'MODEL';
    let current = 'curl';
    const show = (lang) => {
      current = lang;
      code.textContent = SNIPPETS[lang](cfg.api_base_url, model);
      for (const b of tabs.children) b.setAttribute('aria-selected', String(b.dataset.lang === current));
    };
    tabs.replaceChildren(...TABS.map(([lang, label]) =>
      h('button.tab', { type: 'button', role: 'tab', dataset: { lang }, onclick: () => show(lang) }, label)));
    models.replaceChildren(...cfg.models.map((m) => h('li',
      h('code', m.id), ' ', h('span.muted', m.display_name),
      m.mock ? h('span.badge', { title: 'Answers with generated text; for trying Gatehouse out' }, 'Mock') : null)));
    show(current);
  }).catch(() => { code.textContent = 'The model API address could not be loaded.'; });
  return panel;
}
