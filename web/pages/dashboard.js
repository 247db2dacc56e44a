// /dashboard: where a person lands after signing in.
import { get, getAll, getPage, productName } from '../api.js';
import { signOf, formatUsd } from '../money.js';
import { manageableWorkspaces } from './keys.js';
import { h, icon, codeSample } from '../dom.js';
import { roleLabel } from '../shell.js';

// The "Get started" steps. `who`: the organization roles that can take the step (docs/api.md
// "Roles and who may do what"); `done(state)` reads the organization's real state, loaded
// below. Users and billing members see the key step only where a workspace role lets them
// create keys.
const STEPS = [
  { id: 'billing-details', href: '/settings/organization', icon: 'building', title: 'Enter your billing details',
    text: 'Legal name, billing address and VAT ID, used on your invoices.', who: ['admin', 'billing'],
    done: (st) => billingDone(st.settings) },
  { id: 'credits', href: '/settings/billing', icon: 'card', title: 'Add a payment method and buy credits',
    text: 'Usage is prepaid: credits are drawn down as you call the API.', who: ['admin', 'billing'],
    done: (st) => !!(st.billing && st.billing.payment_method && signOf(st.billing.purchases_total_usd) > 0) },
  { id: 'key', href: '/settings/keys', icon: 'key', title: 'Create an API key',
    text: 'Keys belong to a workspace; the secret is shown once.', who: ['admin', 'developer', 'keys'],
    done: (st) => st.keys > 0 },
  { id: 'team', href: '/settings/members', icon: 'users', title: 'Invite your team',
    text: 'Give each person the User, Developer, Billing or Admin role; done when someone has joined.', who: ['admin'],
    done: (st) => st.members > 1 },
];

// Billing details count as entered once there is a legal name and a full address.
const billingDone = (s) => !!(s && s.legal_name && s.billing_address && s.billing_address.line1 && s.billing_address.country);

// Whether a user or billing member may create keys somewhere (a workspace role).
async function canCreateKeys(ctx) {
  const workspaces = (await getAll('/v1/organizations/workspaces', {}, { signal: ctx.signal })).filter((w) => !w.archived_at);
  return (await manageableWorkspaces(ctx, workspaces)).length > 0;
}

// What the steps are ticked from: settings, billing, the keys and the members the person can see.
async function loadState(ctx, steps) {
  const want = new Set(steps.map((s) => s.id));
  const st = {};
  const jobs = [];
  if (want.has('billing-details')) jobs.push(get('/v1/organizations/me/settings', { signal: ctx.signal }).then((r) => { st.settings = r; }));
  if (want.has('credits')) jobs.push(get('/v1/organizations/billing', { signal: ctx.signal }).then((r) => { st.billing = r; }));
  if (want.has('key')) jobs.push(getPage('/v1/organizations/api_keys', { limit: 1 }, { signal: ctx.signal }).then((r) => { st.keys = r.data.length; }));
  if (want.has('team')) jobs.push(getPage('/v1/organizations/users', { limit: 2 }, { signal: ctx.signal }).then((r) => { st.members = r.data.length; }));
  await Promise.all(jobs);
  return st;
}

// The "Get started" card, filled in once the state is known; removed when every step the
// person can take is done (or there is none).
function gettingStarted(ctx, org) {
  const card = h('section.card.getting-started', { 'aria-labelledby': 'getting-started', 'aria-busy': 'true', hidden: true });
  (async () => {
    const role = org.role;
    let keysToo = false;
    if (role === 'user' || role === 'billing') keysToo = await canCreateKeys(ctx).catch(() => false);
    const steps = STEPS.filter((s) => s.who.includes(role) || (keysToo && s.who.includes('keys')));
    const st = steps.length ? await loadState(ctx, steps) : {};
    if (ctx.stale()) return;
    const done = steps.map((s) => s.done(st));
    if (!steps.length || done.every(Boolean)) { card.remove(); return; }
    const left = done.filter((d) => !d).length;
    card.replaceChildren(
      h('div.card-header',
        h('h2.card-title#getting-started', 'Get started'),
        h('p.card-lead', `Set up ${org.name} to start calling the API: ${left} of ${steps.length} ${steps.length === 1 ? 'step' : 'steps'} left.`)),
      h('ol.steps', steps.map((s, i) => h('li.step', { dataset: { step: s.id, done: String(done[i]) } },
        h('a.step-link', { href: s.href },
          done[i]
            ? h('span.step-number.step-done', { 'aria-hidden': 'true' }, icon('check'))
            : h('span.step-number', { 'aria-hidden': 'true' }, String(i + 1)),
          h('span.step-body',
            h('span.step-title', s.title, done[i] ? h('span.badge.badge-done', 'Done') : null),
            h('span.step-text', s.text)),
          icon('arrow', 'icon step-arrow'))))));
    card.hidden = false;
    card.removeAttribute('aria-busy');
  })().catch(() => { card.remove(); /* the dashboard works without the checklist */ });
  return card;
}

export function render(ctx) {
  const { session, signal } = ctx;
  const org = session.current_organization;
  const first = (session.account.full_name || '').trim().split(/\s+/)[0];
  const page = h('div.page',
    h('header.page-header',
      h('div',
        h('h1.page-title', first ? `Welcome, ${first}` : `Welcome to ${productName()}`),
        h('p.page-lead', 'You are working in ', h('strong', org.name), ' ', h('span.badge.badge-role', roleLabel(org.role)))),
      h('a.btn.btn-secondary', { href: '/settings/organization' }, icon('building'), h('span', 'Organization settings'))),
    gettingStarted(ctx, org));

  page.append(quickstart(signal));
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
  const models = h('table.table.quickstart-models', { 'aria-label': 'Models and prices' });
  const tabs = h('div.tabs', { role: 'tablist', 'aria-label': 'Language' });
  const panel = h('section.card.quickstart', { 'aria-labelledby': 'quickstart-title' },
    h('div.card-header',
      h('h2.card-title#quickstart-title', 'Quickstart'),
      h('p.card-lead', 'Create an API key, export it as GATEHOUSE_API_KEY, then make your first call.')),
    tabs,
    h('div.quickstart-code-wrap', codeSample(code, { label: 'Example code' })),
    h('h3.quickstart-subtitle', 'Models'),
    h('p.quickstart-note', 'Prices in US dollars per million tokens.'),
    h('div.table-wrap.quickstart-models-wrap', models));
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
    const price = (m, k) => (m.price_per_mtok_usd ? formatUsd(m.price_per_mtok_usd[k]) : '—');
    models.replaceChildren(
      h('thead', h('tr', h('th', { scope: 'col' }, 'Model'), h('th.col-money', { scope: 'col' }, 'Input'),
        h('th.col-money', { scope: 'col' }, 'Output'), h('th.col-money', { scope: 'col' }, 'Cache write'), h('th.col-money', { scope: 'col' }, 'Cache read'))),
      h('tbody', cfg.models.map((m) => h('tr', { dataset: { model: m.id } },
        h('td.col-primary', h('span.cell-stack', h('span', h('code', m.id),
          m.mock ? h('span.badge', { title: 'Answers with generated text; for trying Gatehouse out' }, 'Mock') : null),
        m.display_name && m.display_name !== m.id ? h('span.cell-sub', m.display_name) : null)),
        h('td.col-money', { dataset: { label: 'Input' } }, price(m, 'input')),
        h('td.col-money', { dataset: { label: 'Output' } }, price(m, 'output')),
        h('td.col-money', { dataset: { label: 'Cache write' } }, price(m, 'cache_write')),
        h('td.col-money', { dataset: { label: 'Cache read' } }, price(m, 'cache_read'))))));
    show(current);
  }).catch(() => { code.textContent = 'The model API address could not be loaded.'; });
  return panel;
}
