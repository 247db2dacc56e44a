// The console sections that are not built yet: a plain statement of what each will do.
import { h, icon } from '../dom.js';

const SECTIONS = {
  billing: { title: 'Plans & Billing', icon: 'card',
    text: 'It will let you add a card, buy prepaid credits, set up auto-reload and download your invoices.' },
  limits: { title: 'Limits', icon: 'gauge',
    text: 'It will show your rate-limit tier and let you set a monthly spend limit or ask for higher limits.' },
  usage: { title: 'Usage', icon: 'chart',
    text: 'It will show token consumption over time, filtered by workspace, model, API key and date range.' },
  cost: { title: 'Cost', icon: 'coins',
    text: 'It will show what your API usage costs, with the same filters as Usage.' },
};

export function comingSoon(name) {
  const s = SECTIONS[name];
  return () => h('div.page',
    h('header.page-header', h('div', h('h1.page-title', s.title))),
    h('section.card.empty-state', { 'aria-labelledby': `soon-${name}` },
      h('div.empty-icon', icon(s.icon, 'icon icon-lg')),
      h('span.badge', 'Coming soon'),
      h('h2.empty-title', { id: `soon-${name}` }, `${s.title} is coming in a later release`),
      h('p.empty-text', s.text),
      h('a.btn.btn-secondary', { href: '/settings/organization' }, 'Go to Organization settings')));
}
