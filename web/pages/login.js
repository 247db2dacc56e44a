// /login (ask for an email, send a sign-in link) and /check-email (link sent; resend).
import { post, loadSession, productName, linkMinutes, oidcLabel, ApiError } from '../api.js';
import { h, field, alertBox, busy, icon, setChildren } from '../dom.js';
import { authCard } from '../layout.js';

const LINK_ERRORS = {
  expired_link: 'That sign-in link has expired. Enter your email to get a new one.',
  used_link: 'That sign-in link was already used: each link works once. Enter your email to get a new one.',
  invalid_link: 'That sign-in link is not valid. Enter your email to get a new one.',
};

// Errors from "Continue with <provider>" (/auth/oidc/callback sends them in ?error=).
const OIDC_ERRORS = {
  oidc_failed: (p) => `Could not sign you in with ${p}. Try again, or enter your email to get a sign-in link.`,
  oidc_denied: (p) => `Sign-in with ${p} was cancelled or refused. Try again, or enter your email to get a sign-in link.`,
  oidc_unverified_email: (p) => `${p} has not verified the email address of your account, so it cannot be used to sign in. Verify it with ${p}, or enter your email to get a sign-in link.`,
  oidc_unavailable: (p) => `${p} could not be reached. Try again in a minute, or enter your email to get a sign-in link.`,
};

const EMAIL_RE = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

export function renderLogin({ session, params, navigate }) {
  const email = h('input.input', { type: 'email', name: 'email', autocomplete: 'email', inputmode: 'email',
    spellcheck: 'false', required: true, maxlength: '254', placeholder: 'name@company.com', value: params.get('email') || '' });
  const emailField = field(email, { label: 'Email' });
  const alert = alertBox('error');
  const submit = h('button.btn.btn-primary.btn-block', { type: 'submit' }, 'Continue with email');
  submit.dataset.busyLabel = 'Sending link…';

  const linkError = params.get('error');
  const provider = oidcLabel();
  const bannerText = Object.hasOwn(OIDC_ERRORS, linkError)
    ? OIDC_ERRORS[linkError](provider || 'your identity provider')
    : LINK_ERRORS[linkError] || 'That sign-in link could not be used. Enter your email to get a new one.';
  const banner = linkError
    ? h('div.alert.alert-warning', { role: 'alert' }, icon('alert'), h('span', bannerText))
    : null;
  // A full-page navigation: the server sends the browser on to the provider.
  const oidcChoice = provider
    ? [h('a.btn.btn-secondary.btn-block', { href: '/auth/oidc/start' }, `Continue with ${provider}`),
      h('p.auth-divider', { role: 'separator' }, 'or')]
    : null;
  const signedIn = session && !linkError
    ? h('div.alert.alert-info', { role: 'status' },
      h('span', 'You are signed in as ', h('strong', session.account.email), '. '),
      h('a', { href: '/' }, 'Go to the console'))
    : null;

  const form = h('form.form', { novalidate: true },
    emailField.wrap, alert.el, submit);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    alert.clear();
    const value = email.value.trim();
    if (!EMAIL_RE.test(value)) {
      emailField.setError(value ? 'Enter a valid email address, like name@company.com.' : 'Enter your email address.');
      email.focus();
      return;
    }
    emailField.setError(null);
    await busy(submit, async () => {
      try {
        const r = await post('/auth/email', { email: value }, { quiet401: true });
        navigate(`/check-email?email=${encodeURIComponent((r && r.email) || value)}`);
      } catch (e) {
        if (!(e instanceof ApiError)) throw e;
        alert.show(e.message);
      }
    });
  });

  return authCard({
    title: `Sign in to ${productName()}`,
    lead: 'Enter your email and we will send you a link to sign in. New here? The same link creates your account.',
  }, banner, signedIn, oidcChoice, form,
  h('p.auth-note', icon('lock'), h('span', `No password needed: each link works once and expires after ${linkMinutes()} minutes.`)));
}

export function renderCheckEmail({ params, navigate }) {
  const email = (params.get('email') || '').trim();
  if (!email) {
    navigate('/login', { replace: true });
    return null;
  }
  const status = alertBox('success');
  const resend = h('button.btn.btn-secondary', { type: 'button' }, 'Resend');
  resend.dataset.busyLabel = 'Sending…';
  resend.addEventListener('click', () => busy(resend, async () => {
    status.clear();
    try {
      await post('/auth/email', { email }, { quiet401: true });
      status.show(`We sent a new link to ${email}. It is valid for ${linkMinutes()} minutes.`, 'success');
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      // 429 carries the server's own wording about when to try again.
      status.show(e.message, 'error');
    }
  }));

  return authCard({ title: 'Check your email', icon: icon('mail', 'icon icon-xl') },
    h('p.auth-text', 'We sent a sign-in link to ', h('strong.break', email), '.'),
    h('p.auth-text', `Open it on this device to continue. The link is valid for ${linkMinutes()} minutes and works once. If you do not see the email, check your spam folder.`),
    status.el,
    h('div.auth-actions',
      h('a.btn.btn-ghost', { href: '/login' }, 'Use a different email'),
      resend));
}

// /sign-in#token=… and /accept-invite#token=…: where an emailed link lands after the server
// checked it. The link itself (a GET) never signs in or accepts, because mail scanners and
// link previews fetch links; this page's script posts the token, which uses it, and then goes
// on like any sign-in. The token leaves the address bar at once.
function linkLanding(endpoint, refusalCode, title) {
  return ({ navigate }) => {
    const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
    const token = m ? decodeURIComponent(m[1]) : '';
    history.replaceState(history.state, '', location.pathname);
    if (!token) {
      navigate('/login?error=invalid_link', { replace: true });
      return null;
    }
    const status = alertBox('error');
    const body = h('div', h('p.auth-text', 'One moment while we check your link.'));
    // Another account signed in on this browser is never replaced without asking: someone
    // else's link, opened by mistake or planted, would otherwise switch accounts silently and
    // what the person types next would land in the other account.
    const askFirst = (signedInAs, linkEmail) => {
      card.querySelector('.auth-title').textContent = 'Switch accounts?';
      const cont = h('button.btn.btn-primary', { type: 'button' }, `Continue as ${linkEmail}`);
      cont.dataset.busyLabel = 'Switching…';
      cont.addEventListener('click', () => busy(cont, () => use(true)));
      setChildren(body,
        h('p.auth-text', 'You are signed in as ', h('strong.break', signedInAs), '. Continue as ',
          h('strong.break', linkEmail), '?'),
        h('p.auth-text', `Continuing signs ${signedInAs} out on this browser. If you did not expect this link, stay signed in.`),
        h('div.auth-actions',
          h('a.btn.btn-secondary', { href: '/' }, `Stay signed in as ${signedInAs}`),
          cont));
    };
    const use = async (switchAccount) => {
      try {
        await post(endpoint, switchAccount ? { token, switch: true } : { token }, { quiet401: true });
        await loadSession();
        navigate('/', { replace: true });
      } catch (e) {
        if (!(e instanceof ApiError) || e.status >= 500) {
          status.show('That did not work. Open the link from your email again.', 'error');
          return;
        }
        if (e.status === 409 && e.detail && e.detail.signed_in_as && e.detail.link_email) {
          askFirst(e.detail.signed_in_as, e.detail.link_email);
          return;
        }
        navigate(`/login?error=${refusalCode(e.message)}`, { replace: true });
      }
    };
    const card = authCard({ title, icon: icon('mail', 'icon icon-xl') }, body, status.el);
    use(false);
    return card;
  };
}

export const renderSignIn = linkLanding('/auth/verify',
  (m) => (/expired/.test(m) ? 'expired_link' : /already used/.test(m) ? 'used_link' : 'invalid_link'),
  'Signing you in…');

export const renderAcceptInvite = linkLanding('/auth/invite',
  (m) => (/already accepted/.test(m) ? 'invite_used' : /revoked/.test(m) ? 'invite_revoked'
    : /expired/.test(m) ? 'invite_expired' : 'invalid_link'),
  'Joining the organization…');
