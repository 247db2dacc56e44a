// The console's frame: a top bar (product, organization switcher, account, sign out) and a
// sidebar listing every section. On narrow screens the sidebar becomes a drawer opened by
// the menu button. The frame is built once per session state and reused across pages.
import { post, productName } from './api.js';
import { h, icon, brandMark, toast } from './dom.js';

const NAV = [
  { items: [{ href: '/dashboard', label: 'Dashboard', icon: 'home' }, { href: '/workbench', label: 'Workbench', icon: 'terminal' }] },
  {
    heading: 'Settings',
    items: [
      { href: '/settings/organization', label: 'Organization', icon: 'building' },
      { href: '/settings/members', label: 'Members', icon: 'users' },
      { href: '/settings/workspaces', label: 'Workspaces', icon: 'grid' },
      { href: '/settings/keys', label: 'API Keys', icon: 'key' },
      { href: '/settings/billing', label: 'Billing', icon: 'card' },
      { href: '/settings/limits', label: 'Limits', icon: 'gauge' },
      { href: '/settings/usage', label: 'Usage', icon: 'chart' },
      { href: '/settings/cost', label: 'Cost', icon: 'coins' },
      { href: '/settings/audit-log', label: 'Audit log', icon: 'list', adminOnly: true },
    ],
  },
  { heading: 'Platform', staffOnly: true, items: [{ href: '/staff', label: 'Staff', icon: 'shield' }] },
];

export const ROLE_LABELS = { admin: 'Admin', developer: 'Developer', billing: 'Billing', user: 'User' };
export const roleLabel = (r) => ROLE_LABELS[r] || r;

let current = null; // {key, root, main, setActive}

function sessionKey(s) {
  return JSON.stringify([s.account.id, s.account.email, s.account.is_staff, s.current_organization && s.current_organization.id,
    s.organizations.map((o) => [o.id, o.name, o.role]), s.product_name]);
}

// Builds (or reuses) the frame inside `root` and returns {setContent(node)}.
export function renderShell(root, { session, path, navigate, onSessionChange }) {
  const key = sessionKey(session);
  if (!current || current.key !== key || !root.contains(current.main)) {
    current = build(root, { session, navigate, onSessionChange });
    current.key = key;
  }
  current.setActive(path);
  current.closeDrawer();
  const shell = current;
  return { setContent: (node) => shell.main.replaceChildren(node) };
}

function build(root, { session, navigate, onSessionChange }) {
  const product = productName();
  const org = session.current_organization;

  const signOut = async (button) => {
    button.disabled = true;
    try {
      await post('/auth/logout', {});
    } catch (e) {
      if (e.status !== 401) {
        button.disabled = false;
        toast(e.message, 'error');
        return;
      }
    }
    onSessionChange(null);
  };
  const signOutButton = (cls) => {
    const b = h(`button.btn.btn-ghost.${cls}`, { type: 'button' }, icon('signout'), h('span', 'Sign out'));
    b.addEventListener('click', () => signOut(b));
    return b;
  };

  // Sidebar
  const links = [];
  const nav = h('nav.sidebar#sidebar', { 'aria-label': 'Console' }, h('div.sidebar-inner',
    h('div.sidebar-brand', brandMark(product), h('span', product)),
    NAV.filter((group) => !group.staffOnly || session.account.is_staff).map((group) => h('div.nav-group',
      group.heading ? h('h2.nav-heading', { id: `nav-${group.heading.toLowerCase()}` }, group.heading) : null,
      h('ul.nav-list', group.heading ? { 'aria-labelledby': `nav-${group.heading.toLowerCase()}` } : {},
        group.items.filter((item) => !item.adminOnly || (org && org.role === 'admin')).map((item) => {
          const a = h('a.nav-link', { href: item.href }, icon(item.icon), h('span.nav-label', item.label),
            item.soon ? h('span.nav-soon', { title: 'Coming in a later release' }, 'Soon') : null);
          links.push(a);
          return h('li', a);
        })))),
    h('div.sidebar-account',
      h('div.sidebar-account-email', session.account.email),
      signOutButton('sidebar-signout'))));
  const scrim = h('div.scrim', { hidden: true });
  const menuButton = h('button.menu-button', { type: 'button', 'aria-controls': 'sidebar', 'aria-expanded': 'false' },
    icon('menu'), h('span.visually-hidden', 'Menu'));
  const setDrawer = (open) => {
    nav.classList.toggle('open', open);
    scrim.hidden = !open;
    menuButton.setAttribute('aria-expanded', String(open));
    menuButton.replaceChildren(icon(open ? 'close' : 'menu'), h('span.visually-hidden', open ? 'Close menu' : 'Menu'));
    document.body.classList.toggle('drawer-open', open);
    if (open) (nav.querySelector('[aria-current="page"]') || nav.querySelector('a')).focus();
  };
  menuButton.addEventListener('click', () => setDrawer(!nav.classList.contains('open')));
  scrim.addEventListener('click', () => setDrawer(false));
  const onEscape = (ev) => {
    if (ev.key !== 'Escape') return;
    if (!root.contains(nav)) return document.removeEventListener('keydown', onEscape);
    if (nav.classList.contains('open')) {
      setDrawer(false);
      menuButton.focus();
    }
  };
  document.addEventListener('keydown', onEscape);

  // Top bar
  const topbar = h('header.topbar',
    menuButton,
    h('a.brand', { href: '/dashboard' }, brandMark(product), h('span.brand-name', product)),
    h('span.topbar-divider', { 'aria-hidden': 'true' }),
    orgSwitcher(session, navigate, onSessionChange),
    h('div.topbar-spacer'),
    h('div.topbar-account',
      h('span.account-email', { title: session.account.email }, session.account.email),
      signOutButton('topbar-signout')));

  const main = h('main.main#main', { tabindex: '-1', 'aria-label': org ? org.name : 'Console' });
  const frame = h('div.shell', topbar, h('div.shell-body', nav, scrim, main));
  root.replaceChildren(frame);

  return {
    root,
    main,
    closeDrawer: () => { if (nav.classList.contains('open')) setDrawer(false); },
    setActive(path) {
      // A page under a section (a workspace's page) marks its section as current.
      for (const a of links) {
        const href = a.getAttribute('href');
        if (href === path) a.setAttribute('aria-current', 'page');
        else if (path.startsWith(`${href}/`)) a.setAttribute('aria-current', 'true');
        else a.removeAttribute('aria-current');
      }
    },
  };
}

// The organization switcher: a menu button listing the account's organizations with the
// person's role in each, and an entry to create another one.
function orgSwitcher(session, navigate, onSessionChange) {
  const org = session.current_organization;
  const button = h('button.org-button', { type: 'button', 'aria-haspopup': 'menu', 'aria-expanded': 'false', 'aria-controls': 'org-menu' },
    h('span.org-avatar', { 'aria-hidden': 'true' }, org.name.trim().charAt(0).toUpperCase()),
    h('span.org-button-text',
      h('span.visually-hidden', 'Organization: '),
      h('span.org-button-name', org.name),
      h('span.org-button-role', roleLabel(org.role))),
    icon('chevron', 'icon icon-chevron'));

  const items = session.organizations.map((o) => {
    const selected = o.id === org.id;
    const item = h('button.menu-item', { type: 'button', role: 'menuitemradio', 'aria-checked': String(selected), tabindex: '-1' },
      h('span.org-avatar.org-avatar-sm', { 'aria-hidden': 'true' }, o.name.trim().charAt(0).toUpperCase()),
      h('span.menu-item-text', h('span.menu-item-title', o.name), h('span.menu-item-sub', roleLabel(o.role))),
      selected ? icon('check', 'icon icon-check') : h('span.icon-placeholder'));
    item.addEventListener('click', async () => {
      close();
      if (selected) return;
      button.disabled = true;
      try {
        const s = await post('/auth/session/organization', { id: o.id });
        toast(`Switched to ${o.name}`);
        onSessionChange(s);
      } catch (e) {
        button.disabled = false;
        toast(e.message, 'error');
      }
    });
    return item;
  });
  const create = h('a.menu-item.menu-item-action', { href: '/create-organization', role: 'menuitem', tabindex: '-1' },
    icon('plus'), h('span', 'Create organization'));
  create.addEventListener('click', () => close());
  const menu = h('div.menu#org-menu', { role: 'menu', 'aria-label': 'Organizations', hidden: true },
    h('div.menu-label', { 'aria-hidden': 'true' }, 'Organizations'),
    items,
    h('div.menu-separator', { role: 'separator' }),
    create);
  const all = [...items, create];
  const wrap = h('div.org-switcher', button, menu);

  function open(focusIndex) {
    menu.hidden = false;
    button.setAttribute('aria-expanded', 'true');
    const i = focusIndex ?? Math.max(0, items.findIndex((it) => it.getAttribute('aria-checked') === 'true'));
    all[(i + all.length) % all.length].focus();
    document.addEventListener('pointerdown', outside, true);
  }
  function close(refocus = false) {
    if (menu.hidden) return;
    menu.hidden = true;
    button.setAttribute('aria-expanded', 'false');
    document.removeEventListener('pointerdown', outside, true);
    if (refocus) button.focus();
  }
  function outside(ev) {
    if (!wrap.contains(ev.target)) close();
  }
  button.addEventListener('click', () => (menu.hidden ? open() : close()));
  button.addEventListener('keydown', (ev) => {
    if (ev.key === 'ArrowDown') { ev.preventDefault(); open(); }
    if (ev.key === 'ArrowUp') { ev.preventDefault(); open(all.length - 1); }
  });
  menu.addEventListener('keydown', (ev) => {
    const i = all.indexOf(document.activeElement);
    if (ev.key === 'ArrowDown') { ev.preventDefault(); all[(i + 1) % all.length].focus(); }
    else if (ev.key === 'ArrowUp') { ev.preventDefault(); all[(i - 1 + all.length) % all.length].focus(); }
    else if (ev.key === 'Home') { ev.preventDefault(); all[0].focus(); }
    else if (ev.key === 'End') { ev.preventDefault(); all[all.length - 1].focus(); }
    else if (ev.key === 'Escape') { ev.preventDefault(); close(true); }
    else if (ev.key === 'Tab') close();
  });
  return wrap;
}
