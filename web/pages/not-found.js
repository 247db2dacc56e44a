// Any unknown console path, shown inside the console frame.
import { h } from '../dom.js';

export function render() {
  return h('div.page',
    h('div.empty-state',
      h('h1.page-title', 'Page not found'),
      h('p.empty-text', 'There is nothing at this address. It may have moved, or the link may be mistyped.'),
      h('a.btn.btn-primary', { href: '/dashboard' }, 'Go to the dashboard')));
}
