// The centred card used by the pages before the console: sign-in, check email, onboarding
// and creating an organization.
import { productName } from './api.js';
import { h, brandMark } from './dom.js';

export function authCard({ title, lead, icon: art, wide = false }, ...children) {
  const product = productName();
  return h('div.auth-wrap',
    h('div.auth-brand', brandMark(product), h('span', product)),
    h(wide ? 'div.auth-card.auth-card-wide' : 'div.auth-card',
      art ? h('div.auth-icon', art) : null,
      h('h1.auth-title', title),
      lead ? h('p.auth-lead', lead) : null,
      children),
    h('p.auth-footer', `© ${new Date().getFullYear()} ${product}`));
}
