// The console's entry point: a history-API router, the sign-in gate that decides where a
// person belongs (login, onboarding, first organization, the console), and the shell
// (top bar + sidebar) that wraps every console page.
import { loadSession, loadConsoleConfig, getSession, setSession, productName, onUnauthorized, post, rememberNext, takeNext } from './api.js';
import { h, closeAllDialogs } from './dom.js';
import { renderShell } from './shell.js';
import * as login from './pages/login.js';
import * as onboarding from './pages/onboarding.js';
import * as createOrg from './pages/create-organization.js';
import * as dashboard from './pages/dashboard.js';
import * as organization from './pages/organization.js';
import * as members from './pages/members.js';
import * as workspaces from './pages/workspaces.js';
import * as workspace from './pages/workspace.js';
import * as keys from './pages/keys.js';
import * as auditLog from './pages/audit-log.js';
import * as billing from './pages/billing.js';
import * as usage from './pages/usage.js';
import * as cost from './pages/cost.js';
import * as limitsPage from './pages/limits.js';
import * as staffPage from './pages/staff.js';
import * as workbench from './pages/workbench.js';
import * as terms from './pages/terms.js';
import * as help from './pages/help.js';
import * as notFound from './pages/not-found.js';

// kind: 'public' (no session needed), 'onboarding', 'create-org' (signed in, before the
// console), 'app' (inside the shell; needs onboarding and a current organization).
const ROUTES = {
  '/login': { kind: 'public', title: 'Sign in', page: login.renderLogin },
  '/check-email': { kind: 'public', title: 'Check your email', page: login.renderCheckEmail },
  '/sign-in': { kind: 'public', title: 'Signing in', page: login.renderSignIn },
  '/accept-invite': { kind: 'public', title: 'Accepting the invitation', page: login.renderAcceptInvite },
  '/terms': { kind: 'public', title: 'Terms of Service', page: terms.render },
  '/onboarding': { kind: 'onboarding', title: 'Welcome', page: onboarding.render },
  '/create-organization': { kind: 'create-org', title: 'Create organization', page: createOrg.render },
  '/dashboard': { kind: 'app', title: 'Dashboard', page: dashboard.render },
  '/workbench': { kind: 'app', title: 'Workbench', page: workbench.render },
  '/settings/organization': { kind: 'app', title: 'Organization', page: organization.render },
  '/settings/members': { kind: 'app', title: 'Members', page: members.render },
  '/settings/workspaces': { kind: 'app', title: 'Workspaces', page: workspaces.render },
  '/settings/keys': { kind: 'app', title: 'API Keys', page: keys.render },
  '/settings/audit-log': { kind: 'app', title: 'Audit log', page: auditLog.render },
  '/settings/billing': { kind: 'app', title: 'Plans & Billing', page: billing.render },
  '/settings/limits': { kind: 'app', title: 'Limits', page: limitsPage.render },
  '/staff': { kind: 'app', title: 'Staff', page: staffPage.render },
  '/help': { kind: 'app', title: 'Help', page: help.render },
  '/settings/usage': { kind: 'app', title: 'Usage', page: usage.render },
  '/settings/cost': { kind: 'app', title: 'Cost', page: cost.render },
};
// Routes with a parameter: [pattern, route]; the captures become ctx.routeParams.
const PATTERNS = [
  [/^\/settings\/workspaces\/(?<id>[^/]+)$/, { kind: 'app', title: 'Workspace', page: workspace.render }],
];
const ALIASES = { '/settings': '/settings/organization', '/settings/api-keys': '/settings/keys', '/settings/audit': '/settings/audit-log' };

// The route for `path`: {route, params} or null.
function matchRoute(path) {
  if (ROUTES[path]) return { route: ROUTES[path], params: {} };
  for (const [re, route] of PATTERNS) {
    const m = re.exec(path);
    if (m) {
      const params = {};
      for (const [k, v] of Object.entries(m.groups || {})) {
        try { params[k] = decodeURIComponent(v); } catch { params[k] = v; }
      }
      return { route, params };
    }
  }
  return null;
}
// Paths the server owns: links to them are real page loads, never client routes.
const SERVER_PATHS = /^\/(auth|v1|static|healthz|metrics|webhooks)(\/|$)/;

const root = document.getElementById('app');
let sessionChecked = false;
let renderSeq = 0;
let controller = null;
let firstRender = true;

export function navigate(to, { replace = false } = {}) {
  if (to !== location.pathname + location.search + location.hash) {
    if (replace) history.replaceState(null, '', to); else history.pushState(null, '', to);
  }
  route();
}

function setTitle(title) {
  document.title = title ? `${title} · ${productName()}` : productName();
}

// Renders the page for the current URL, after sending the person where they belong.
async function route() {
  // A dialog belongs to the page it was opened on: leaving the page (Back, a link, a session
  // that ended) closes it, so nothing is created from a dialog floating over another page.
  closeAllDialogs();
  const seq = ++renderSeq;
  if (controller) controller.abort();
  controller = new AbortController();
  const signal = controller.signal;
  const stale = () => seq !== renderSeq;

  const path = location.pathname.replace(/\/+$/, '') || '/';
  if (ALIASES[path]) return navigate(ALIASES[path], { replace: true });
  const params = new URLSearchParams(location.search);
  const matched = matchRoute(path);
  const r = matched && matched.route;

  if ((path === '/sign-in' || path === '/accept-invite') && !sessionChecked) {
    // A link being opened: the session it starts is loaded once its token is posted (asking
    // for one now would only log a 401 in the browser's console).
    try {
      await loadConsoleConfig();
    } catch (e) {
      if (stale()) return;
      return renderFatal(e);
    }
    if (stale()) return;
  } else if (!sessionChecked || (r && r.kind !== 'public' && !getSession())) {
    try {
      await loadSession();
      sessionChecked = true;
    } catch (e) {
      if (stale()) return;
      return renderFatal(e);
    }
    if (stale()) return;
  }
  const session = getSession();
  const routeParams = matched ? matched.params : {};
  const ctx = { session, params, routeParams, navigate, signal, stale, updateSession,
    setTitle: (t) => { if (!stale()) setTitle(t); } };

  if (r && r.kind === 'public') return mount(r, ctx, false);
  if (!session) {
    if (path !== '/' && path !== '/login') rememberNext(path + location.search);
    return navigate('/login', { replace: true });
  }
  if (!session.account.onboarded) {
    if (path !== '/onboarding') return navigate('/onboarding', { replace: true });
    return mount(r, ctx, false);
  }
  if (path === '/onboarding') return navigate('/', { replace: true });
  if (path === '/create-organization') return mount(r, ctx, false);
  // Platform staff need no organization of their own to review others' requests.
  if (path === '/staff' && session.account.is_staff && !session.organizations.length) return mount(r, ctx, false);
  if (!session.organizations.length) return navigate('/create-organization', { replace: true });
  if (!session.current_organization) {
    // Signed in with organizations but none chosen yet: pick the first one.
    try {
      setSession(await post('/auth/session/organization', { id: session.organizations[0].id }));
    } catch (e) {
      if (stale()) return;
      return renderFatal(e);
    }
    return route();
  }
  if (path === '/') {
    const next = takeNext();
    const known = next && matchRoute(next.split('?')[0]);
    return navigate(known && known.route.kind === 'app' ? next : '/dashboard', { replace: true });
  }
  return mount(r || { kind: 'app', title: 'Page not found', page: notFound.render }, ctx, true);
}

async function mount(r, ctx, inShell) {
  setTitle(r.title);
  let content;
  try {
    content = await r.page(ctx);
  } catch (e) {
    if (ctx.stale()) return;
    return renderFatal(e);
  }
  if (ctx.stale() || !content) return;
  root.classList.remove('app-loading');
  root.removeAttribute('aria-busy');
  if (inShell) {
    // Every page's header links to its section of the help page.
    const header = content.querySelector && content.querySelector('header.page-header');
    const link = header && location.pathname !== '/help' && !header.querySelector('.help-link') ? help.helpLink(location.pathname) : null;
    if (link) header.append(link);
    const shell = renderShell(root, { session: ctx.session, path: location.pathname, navigate, onSessionChange });
    shell.setContent(content);
  } else {
    root.replaceChildren(h('main.auth-layout#main', { tabindex: '-1' }, content));
  }
  window.scrollTo(0, 0);
  // An address with a #section shows that section (the help page's links).
  const target = location.hash.length > 1 ? document.getElementById(decodeURIComponent(location.hash.slice(1))) : null;
  if (target) {
    target.scrollIntoView({ block: 'start' });
    target.focus({ preventScroll: true });
    firstRender = false;
    return;
  }
  if (!firstRender) {
    const h1 = root.querySelector('main h1');
    if (h1) {
      h1.setAttribute('tabindex', '-1');
      h1.focus({ preventScroll: true });
    }
  }
  firstRender = false;
}

// The session changed (organization switched or renamed): re-render the current page.
// null means signed out.
function onSessionChange(session) {
  setSession(session);
  if (!session) {
    announceSignOut();
    return navigate('/login');
  }
  route();
}

// The session changed under the current page (e.g. the organization was renamed): redraw
// the frame around the page without reloading it.
function updateSession(session) {
  setSession(session);
  const main = root.querySelector('main.main');
  if (!session || !main) return;
  const content = main.firstElementChild;
  const focused = document.activeElement;
  const shell = renderShell(root, { session, path: location.pathname, navigate, onSessionChange });
  if (content) shell.setContent(content);
  if (focused && content && content.contains(focused)) focused.focus({ preventScroll: true });
}

function renderFatal(e) {
  root.classList.remove('app-loading');
  root.removeAttribute('aria-busy');
  setTitle('Error');
  const retry = h('button.btn.btn-primary', { type: 'button', onclick: () => location.reload() }, 'Try again');
  root.replaceChildren(h('main.auth-layout#main', { tabindex: '-1' },
    h('div.auth-card',
      h('h1.auth-title', 'Something went wrong'),
      h('p.auth-text', (e && e.message) || 'The console could not load.'),
      e && e.requestId ? h('p.muted.small', `Request ID: ${e.requestId}`) : null,
      h('div.form-actions', retry))));
}

// The session ended: close what was open and go to the sign-in page.
function sessionLost() {
  closeAllDialogs();
  setSession(null);
  sessionChecked = true;
  if (location.pathname !== '/login') navigate('/login', { replace: true });
}

onUnauthorized(sessionLost);

// Signing out in one tab ends the session in every tab of this browser at once (they share
// the cookie); a tab also checks its session when it becomes visible again, which notices a
// sign-out made elsewhere (another browser, an expired or revoked session).
const sessionChannel = typeof BroadcastChannel === 'function' ? new BroadcastChannel('gatehouse-session') : null;
export function announceSignOut() {
  if (sessionChannel) sessionChannel.postMessage('signed-out');
}
if (sessionChannel) {
  sessionChannel.onmessage = (ev) => { if (ev.data === 'signed-out' && getSession()) sessionLost(); };
}
document.addEventListener('visibilitychange', async () => {
  if (document.visibilityState !== 'visible' || !getSession()) return;
  try {
    if (!(await loadSession())) sessionLost();
  } catch { /* offline: the next request will tell */ }
});

// Same-origin links to console routes are handled here instead of reloading the page.
document.addEventListener('click', (ev) => {
  if (ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
  const a = ev.target.closest('a[href]');
  if (!a || a.target || a.hasAttribute('download')) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || SERVER_PATHS.test(url.pathname)) return;
  if (url.pathname === location.pathname && url.search === location.search && url.hash) return;
  ev.preventDefault();
  navigate(url.pathname + url.search + url.hash);
});

window.addEventListener('popstate', route);
route();
