// /help: the console's own guide, one section per page. Every console page links to its
// section from its header ("Help"), so the link and the section cannot drift apart: both come
// from SECTIONS below.
import { productName } from '../api.js';
import { h, icon } from '../dom.js';

// [console path, section id, title, paragraphs]
export const SECTIONS = [
  ['/dashboard', 'dashboard', 'Dashboard', [
    'The dashboard shows what is left to set up (billing details, a payment method and credits, a first API key, a team), ticked as each is done; you see only the steps your role can take, and the list goes away once everything is done.',
    'The Quickstart shows a first call in curl, Python, TypeScript and with the OpenAI SDK, with the model API’s address filled in, and the models with their prices per million tokens.',
  ]],
  ['/workbench', 'workbench', 'Workbench', [
    'Try prompts without writing code: choose a workspace and a model, write a system prompt and the conversation, set max tokens and temperature, and run. The answer appears as it is written, then its input and output tokens and its cost.',
    'Workbench calls are real API calls: they count against your credits, spend limits and rate limits, and show in Usage and Cost under the workspace’s key named “Workbench”, which the console manages and whose secret is never shown. Get code gives the same request as curl, Python or TypeScript, to run with a key of your own.',
    'You can use the Workbench in the workspaces where you may use API keys.',
  ]],
  ['/settings/organization', 'organization', 'Organization', [
    'The organization’s name, and the billing details printed on invoices: legal name, billing email, address and, in countries with VAT, the VAT ID with its country prefix. The VAT ID is checked when you save.',
    'Admins change everything; billing members change the billing details.',
  ]],
  ['/settings/members', 'members', 'Members', [
    'Everyone in the organization and the invitations waiting for an answer. Invite people by email address, one per line, with a role: User, Developer, Billing or Admin. Links in invitations last 21 days; you can resend or revoke them.',
    'Admins and billing members reach every workspace; users and developers reach the Default workspace and the workspaces they are added to.',
  ]],
  ['/settings/workspaces', 'workspaces', 'Workspaces', [
    'Workspaces separate projects or teams: every API key belongs to one, and usage and cost can be filtered by workspace. Every organization has a Default workspace.',
    'Admins create, rename, recolour and archive workspaces and manage their members; a workspace can also have its own, lower limits (see Limits).',
  ]],
  ['/settings/keys', 'api-keys', 'API Keys', [
    'API keys authenticate calls to the model API. Create one in a workspace and copy its secret at once: it is shown only when the key is created. Deactivate a key to stop it for a while, archive it to stop it for good.',
    'Admin keys (admins only) call the Organization API instead of the model API.',
  ]],
  ['/settings/billing', 'billing', 'Plans & Billing', [
    'Usage is prepaid: add a card, buy credits and they are drawn down as you call the API. Credits expire a year after purchase. The card is checked when you add it; a card that is declined then is not saved.',
    'Auto-reload buys credits when the balance falls below a threshold you choose. Every purchase has an invoice you can download.',
  ]],
  ['/settings/limits', 'limits', 'Limits', [
    'Your usage tier sets your monthly spend cap and rate limits; it rises with the credits you buy, or on request. You can set a lower monthly spend limit for the organization and for each workspace: once it is reached, calls are refused until the month ends or the limit is raised.',
  ]],
  ['/settings/usage', 'usage', 'Usage', [
    'Tokens used per day, hour or minute, filterable by workspace, model and API key, and groupable by any of them. Times are in UTC. Export CSV downloads what is shown.',
  ]],
  ['/settings/cost', 'cost', 'Cost', [
    'What the usage cost, with the same filters as Usage, split into input, output and cache tokens. Amounts under a cent show as “<$0.01”; the CSV has the exact amounts.',
  ]],
  ['/settings/audit-log', 'audit-log', 'Audit log', [
    'Every change to members, invitations, workspaces, keys, settings, billing and limits, with who made it and when; filter by person or action. Secrets are never recorded.',
  ]],
  ['/staff', 'staff', 'Staff', [
    'For the platform team: review requests for higher limits from every organization.',
  ]],
];

// The help section for a console path (a workspace's page belongs to Workspaces).
export function sectionFor(path) {
  const exact = SECTIONS.find((s) => s[0] === path);
  if (exact) return exact[1];
  const parent = SECTIONS.find((s) => path.startsWith(`${s[0]}/`));
  return parent ? parent[1] : null;
}

// The "Help" link a page header gets.
export function helpLink(path) {
  const id = sectionFor(path);
  if (!id) return null;
  const title = SECTIONS.find((s) => s[1] === id)[2];
  return h('a.help-link', { href: `/help#${id}`, 'aria-label': `Help: ${title}` }, icon('help'), h('span', 'Help'));
}

export function render({ session }) {
  const sections = SECTIONS.filter(([path]) => path !== '/staff' || session.account.is_staff);
  return h('div.page.page-narrow.help-page',
    h('header.page-header',
      h('div',
        h('h1.page-title', 'Help'),
        h('p.page-lead', `How each part of the ${productName()} console works.`))),
    h('nav.help-toc', { 'aria-label': 'Sections' },
      h('ul', sections.map(([, id, title]) => h('li', h('a', { href: `#${id}` }, title))))),
    sections.map(([path, id, title, paragraphs]) => h('section.card.card-padded.help-section', { id, 'aria-labelledby': `${id}-title`, tabindex: '-1' },
      h('h2.card-title', { id: `${id}-title` }, title),
      paragraphs.map((p) => h('p', p)),
      h('p', h('a', { href: path }, `Open ${title}`)))));
}
