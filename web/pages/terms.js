// /terms: the Terms of Service people accept at onboarding (GET /auth/terms: the operator's
// `[auth] terms_file`, or a placeholder saying none was provided). Shown as plain text, never
// parsed as markup. Public: it is read before signing up too.
import { get, productName, ApiError } from '../api.js';
import { h } from '../dom.js';
import { authCard } from '../layout.js';

export async function render({ signal }) {
  let terms;
  try {
    terms = await get('/auth/terms', { signal });
  } catch (e) {
    if (!(e instanceof ApiError)) throw e;
    return authCard({ title: 'Terms of Service', wide: true }, h('div.alert.alert-error', { role: 'alert' }, e.message));
  }
  return authCard({ title: 'Terms of Service', lead: `Version ${terms.version}`, wide: true },
    h('div.terms-text', { dataset: { provided: String(terms.provided) } }, terms.text),
    h('p.terms-back', h('a', { href: '/' }, `Go to ${productName()}`)));
}
