// /create-organization: the first organization after onboarding, or another one later
// (from the organization switcher).
import { post, setSession, takeNext, ApiError } from '../api.js';
import { h, field, alertBox, busy, toast } from '../dom.js';
import { authCard } from '../layout.js';

export function render({ session, navigate }) {
  const first = session.organizations.length === 0;
  const name = h('input.input', { type: 'text', name: 'name', autocomplete: 'organization', maxlength: '80', required: true });
  const nameField = field(name, {
    label: 'Name your organization',
    hint: "Your company's name, or your own name if you are just trying things.",
  });
  const alert = alertBox('error');
  const submit = h('button.btn.btn-primary.btn-block', { type: 'submit' }, first ? 'Create Account' : 'Create organization');
  submit.dataset.busyLabel = 'Creating…';

  const form = h('form.form', { novalidate: true }, nameField.wrap, alert.el, submit,
    first ? null : h('a.btn.btn-ghost.btn-block', { href: '/dashboard' }, 'Cancel'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    alert.clear();
    const value = name.value.trim();
    nameField.setError(value ? null : 'Enter a name for your organization.');
    if (!value) { name.focus(); return; }
    await busy(submit, async () => {
      try {
        setSession(await post('/auth/organizations', { name: value }));
        if (!first) toast(`Created ${value}`);
        takeNext(); // a new organization always starts on its dashboard
        navigate('/dashboard');
      } catch (e) {
        if (!(e instanceof ApiError)) throw e;
        alert.show(e.message);
      }
    });
  });

  return authCard({
    title: first ? 'Create your organization' : 'Create another organization',
    lead: first
      ? 'An organization holds your workspaces, API keys, members and billing. You can invite your team later.'
      : 'You will be its admin. It starts with a Default workspace and its own billing.',
  }, form);
}
