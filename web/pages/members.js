// /settings/members: everyone in the organization (GET /v1/organizations/users) and, for
// admins, inviting people by email, the pending invites (resend, revoke), role changes and
// removing members. Everyone else sees the list read-only.
import { get, post, del, getPage, loadSession, setSession, ApiError } from '../api.js';
import {
  h, icon, field, alertBox, busy, toast, openDialog, confirmDialog, actionMenu, dataTable, loadMore,
  statusBadge, loadingBlock, errorBlock,
} from '../dom.js';
import { timeEl } from '../format.js';
import { ORG_ROLES, orgRoleLabel, orgRoleText, isAdmin } from '../roles.js';

const USERS = '/v1/organizations/users';
const INVITES = '/v1/organizations/invites';
const PAGE = 50;
const EMAIL_RE = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const MAX_INVITES = 50;

export function render(ctx) {
  const { session } = ctx;
  const admin = isAdmin(session);
  const org = session.current_organization;

  const inviteButton = admin
    ? h('button.btn.btn-primary', { type: 'button' }, icon('plus'), h('span', 'Invite'))
    : null;

  const membersSection = membersCard(ctx, admin);
  const invitesSection = admin ? invitesCard(ctx) : null;

  if (inviteButton) {
    inviteButton.addEventListener('click', () => inviteDialog({
      onSent: () => invitesSection.reload(),
    }));
  }

  return h('div.page',
    h('header.page-header',
      h('div',
        h('h1.page-title', 'Members'),
        h('p.page-lead', `Everyone in ${org.name}, and what each person can do.`)),
      inviteButton),
    admin ? null : h('p.readonly-note', icon('lock'),
      h('span', 'Only admins can invite people, change roles or remove members. You can see who is in the organization.')),
    membersSection.el,
    invitesSection ? invitesSection.el : null);
}

// The member list, a page at a time.
function membersCard(ctx, admin) {
  const { session } = ctx;
  const me = session.account.id;
  const status = alertBox('error');
  const body = h('div.card-section', loadingBlock('Loading members…'));
  const count = h('span.card-count');
  const el = h('section.card', { 'aria-labelledby': 'members-title' },
    h('div.card-header.card-header-row',
      h('h2.card-title#members-title', 'Members ', count)),
    h('div.card-body.card-body-flush', status.el, body));

  const table = dataTable({
    label: 'Members',
    columns: [
      { label: 'Name', className: 'col-primary' },
      { label: 'Email' },
      { label: 'Role', className: 'col-role' },
      { label: 'Joined', className: 'col-date' },
      admin ? { label: 'Actions', hideLabel: true, className: 'col-actions' } : null,
    ].filter(Boolean),
  });
  let shown = 0;
  const more = loadMore(async (after) => {
    const page = await getPage(USERS, { limit: PAGE, after_id: after }, { signal: ctx.signal });
    addRows(page.data);
    return page;
  });

  const setCount = () => { count.textContent = shown ? `(${shown}${more.button.hidden ? '' : '+'})` : ''; };

  function addRows(users) {
    for (const u of users) {
      table.addRow(row(u), { dataset: { userId: u.id } });
      shown++;
    }
    setCount();
  }

  function row(u) {
    const isMe = u.id === me;
    const display = u.name || u.email;
    const nameCell = h('div.cell-stack',
      h('span.cell-title', u.name || h('span.muted', 'No name yet'), isMe ? h('span.badge', 'You') : null));
    let roleCell = h('span', orgRoleLabel(u.role));
    if (admin) {
      const select = h('select.input.select.select-sm', { 'aria-label': `Role for ${display}` },
        ORG_ROLES.map((r) => h('option', { value: r.value }, r.label)));
      select.value = u.role;
      select.addEventListener('change', async () => {
        status.clear();
        const to = select.value;
        const from = u.role;
        select.disabled = true;
        try {
          const updated = await post(`${USERS}/${encodeURIComponent(u.id)}`, { role: to });
          u.role = updated && updated.role ? updated.role : to;
          select.value = u.role;
          toast(`${display} is now ${orgRoleLabel(u.role)}`);
          if (isMe) {
            // My own role changed: the console's frame and this page depend on it.
            setSession(await loadSession());
            ctx.navigate(location.pathname, { replace: true });
            return;
          }
        } catch (e) {
          if (!(e instanceof ApiError)) throw e;
          select.value = from;
          status.show(`Could not change the role of ${display}. ${e.message}`);
        } finally {
          select.disabled = false;
        }
      });
      roleCell = select;
    }
    const menu = admin ? actionMenu({
      label: `Actions for ${display}`,
      items: [{ label: isMe ? 'Leave organization' : 'Remove from organization', danger: true, onSelect: () => remove(u, isMe) }],
    }) : null;
    return [nameCell, h('span.break', u.email), roleCell, timeEl(u.added_at), admin ? menu : null].slice(0, admin ? 5 : 4);
  }

  async function remove(u, isMe) {
    const display = u.name || u.email;
    const org = session.current_organization.name;
    const done = await confirmDialog({
      title: isMe ? `Leave ${org}?` : `Remove ${display}?`,
      message: isMe
        ? `You will lose access to ${org} and its workspaces at once. An admin can invite you again.`
        : [h('p.dialog-text', h('strong.break', u.email), ` will lose access to ${org} and all its workspaces at once.`),
          h('p.dialog-text', 'You can invite them again later.')],
      confirmLabel: isMe ? 'Leave organization' : 'Remove member',
      busyLabel: 'Removing…',
      onConfirm: () => del(`${USERS}/${encodeURIComponent(u.id)}`),
    });
    if (!done) return;
    if (isMe) {
      setSession(await loadSession());
      ctx.navigate('/', { replace: true });
      return;
    }
    toast(`Removed ${display}`);
    const tr = table.body.querySelector(`tr[data-user-id="${CSS.escape(u.id)}"]`);
    if (tr) tr.remove();
    shown--;
    setCount();
  }

  async function load() {
    body.replaceChildren(loadingBlock('Loading members…'));
    table.clear();
    shown = 0;
    try {
      const page = await getPage(USERS, { limit: PAGE }, { signal: ctx.signal });
      if (ctx.stale()) return;
      more.set(page);
      addRows(page.data);
      body.replaceChildren(table.el, more.el);
    } catch (e) {
      if (ctx.stale() || !(e instanceof ApiError)) return;
      body.replaceChildren(errorBlock(`Could not load the members. ${e.message}`, load));
    }
  }
  load();
  return { el, reload: load };
}

// Invites waiting to be accepted (pending, and expired ones that can be resent).
function invitesCard(ctx) {
  const status = alertBox('error');
  const body = h('div.card-section', loadingBlock('Loading invites…'));
  const el = h('section.card', { 'aria-labelledby': 'invites-title' },
    h('div.card-header',
      h('h2.card-title#invites-title', 'Pending invites'),
      h('p.card-lead', 'Each invite link works once and expires after 21 days. Resending sends a new link and stops the old one.')),
    h('div.card-body.card-body-flush', status.el, body));

  const table = dataTable({
    label: 'Pending invites',
    columns: [
      { label: 'Email', className: 'col-primary' },
      { label: 'Role', className: 'col-role' },
      { label: 'Invited', className: 'col-date' },
      { label: 'Expires', className: 'col-date' },
      { label: 'Status' },
      { label: 'Actions', hideLabel: true, className: 'col-actions' },
    ],
  });
  const empty = h('p.empty-inline', 'No pending invites. Invite people with the Invite button.');
  // Two sources: pending and expired invites, each paged on its own.
  const cursors = { pending: null, expired: null };
  const more = h('button.btn.btn-secondary', { type: 'button' }, 'Load more');
  more.dataset.busyLabel = 'Loading…';
  const moreWrap = h('div.load-more', { hidden: true }, more);

  const syncEmpty = () => {
    const n = table.body.children.length;
    empty.hidden = n > 0;
    table.el.hidden = n === 0;
    moreWrap.hidden = !cursors.pending && !cursors.expired;
  };

  async function fetchPage(which, after) {
    const page = await getPage(INVITES, { status: which, limit: PAGE, after_id: after }, { signal: ctx.signal });
    cursors[which] = page.has_more ? page.last_id : null;
    return page.data.filter((i) => i.status === which);
  }

  function addRows(invites) {
    for (const inv of invites) table.addRow(row(inv), { dataset: { inviteId: inv.id } });
    syncEmpty();
  }

  function row(inv) {
    const resend = h('button.btn.btn-ghost.btn-sm', { type: 'button', 'aria-label': `Resend invite to ${inv.email}` }, 'Resend');
    resend.dataset.busyLabel = 'Sending…';
    const revoke = h('button.btn.btn-ghost.btn-sm.btn-ghost-danger', { type: 'button', 'aria-label': `Revoke invite to ${inv.email}` }, 'Revoke');
    resend.addEventListener('click', () => busy(resend, async () => {
      status.clear();
      try {
        const updated = await post(`${INVITES}/${encodeURIComponent(inv.id)}/resend`, {});
        const tr = resend.closest('tr');
        tr.replaceWith(table.addRow(row(updated || inv), { dataset: { inviteId: inv.id } }));
        toast(`Sent a new invite link to ${inv.email}`);
      } catch (e) {
        if (!(e instanceof ApiError)) throw e;
        status.show(`Could not resend the invite to ${inv.email}. ${e.message}`);
      }
    }));
    revoke.addEventListener('click', async () => {
      status.clear();
      const done = await confirmDialog({
        title: 'Revoke invite?',
        message: [h('p.dialog-text', 'The invite link sent to ', h('strong.break', inv.email), ' will stop working.'),
          h('p.dialog-text', 'You can invite them again later.')],
        confirmLabel: 'Revoke invite',
        busyLabel: 'Revoking…',
        onConfirm: () => del(`${INVITES}/${encodeURIComponent(inv.id)}`),
      });
      if (!done) return;
      toast(`Revoked the invite to ${inv.email}`);
      const tr = table.body.querySelector(`tr[data-invite-id="${CSS.escape(inv.id)}"]`);
      if (tr) tr.remove();
      syncEmpty();
    });
    return [
      h('span.break', inv.email),
      orgRoleLabel(inv.role),
      timeEl(inv.invited_at),
      timeEl(inv.expires_at),
      statusBadge(inv.status),
      h('div.row-actions', resend, revoke),
    ];
  }

  more.addEventListener('click', () => busy(more, async () => {
    status.clear();
    try {
      const lists = await Promise.all(['pending', 'expired'].filter((w) => cursors[w]).map((w) => fetchPage(w, cursors[w])));
      addRows(lists.flat());
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      status.show(`Could not load more invites. ${e.message}`);
    }
  }));

  async function load() {
    body.replaceChildren(loadingBlock('Loading invites…'));
    table.clear();
    try {
      const [pending, expired] = await Promise.all([fetchPage('pending'), fetchPage('expired')]);
      if (ctx.stale()) return;
      body.replaceChildren(table.el, empty, moreWrap);
      addRows([...pending, ...expired]);
    } catch (e) {
      if (ctx.stale() || !(e instanceof ApiError)) return;
      body.replaceChildren(errorBlock(`Could not load the invites. ${e.message}`, load));
    }
  }
  load();
  return { el, reload: load };
}

// The Invite dialog: addresses one per line and a role; one POST per address, with the
// outcome of each shown in the dialog. Addresses that failed stay in the box to retry.
function inviteDialog({ onSent }) {
  const emails = h('textarea.input.textarea', { rows: '5', spellcheck: 'false', autocomplete: 'off', placeholder: 'ada@example.com\ngrace@example.com' });
  const emailsField = field(emails, { label: 'Email addresses, one per line', hint: `Up to ${MAX_INVITES} at a time.` });
  const role = h('select.input.select', ORG_ROLES.map((r) => h('option', { value: r.value }, r.label)));
  role.value = 'user';
  const roleField = field(role, { label: 'Role', hint: orgRoleText('user') });
  const roleHint = roleField.wrap.querySelector('.field-hint');
  role.addEventListener('change', () => { roleHint.textContent = orgRoleText(role.value); });
  const note = h('p.field-hint', 'Developers and users also need to be added to the workspaces they will work in; everyone can use the Default workspace.');

  const summary = h('p.invite-summary', { role: 'status', 'aria-live': 'polite' });
  const results = h('ul.invite-results', { 'aria-label': 'Invite results', hidden: true });
  const error = alertBox('error');
  const formId = 'invite-form';
  const form = h('form.form', { id: formId, novalidate: true }, emailsField.wrap, roleField.wrap, note, error.el, summary, results);
  const cancel = h('button.btn.btn-ghost', { type: 'button' }, 'Cancel');
  const submit = h('button.btn.btn-primary', { type: 'submit', form: formId }, 'Send Invites');
  submit.dataset.busyLabel = 'Sending…';

  const dlg = openDialog({
    title: 'Invite members',
    lead: 'Each person gets an email with a link to join. Invite links expire after 21 days.',
    body: [form],
    actions: [cancel, submit],
  });
  cancel.addEventListener('click', () => dlg.close());

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (submit.disabled) return;
    error.clear();
    // One address per line (commas and semicolons also separate); a line is never cut at its
    // spaces, so "not an email" is reported as the line it is.
    const list = [...new Set(emails.value.split(/[\r\n,;]+/).map((s) => s.trim()).filter(Boolean).map((s) => s.toLowerCase()))];
    const bad = list.filter((e) => !EMAIL_RE.test(e));
    if (!list.length) { emailsField.setError('Enter at least one email address.'); emails.focus(); return; }
    if (bad.length) {
      emailsField.setError(bad.length === 1 ? `“${bad[0]}” is not an email address.`
        : `These are not email addresses: ${bad.map((b) => `“${b}”`).join(', ')}.`);
      emails.focus();
      return;
    }
    if (list.length > MAX_INVITES) { emailsField.setError(`Invite at most ${MAX_INVITES} people at a time.`); emails.focus(); return; }
    emailsField.setError(null);

    dlg.setBusy(true);
    cancel.disabled = true;
    const failed = [];
    let sent = 0;
    results.replaceChildren();
    results.hidden = false;
    summary.textContent = '';
    try {
      await busy(submit, async () => {
        for (const email of list) {
          const item = h('li.invite-result', h('span.spinner.spinner-sm', { 'aria-hidden': 'true' }), h('span.break', email), h('span.invite-result-text', 'Sending…'));
          results.append(item);
          try {
            await post(INVITES, { email, role: role.value });
            sent++;
            item.className = 'invite-result invite-ok';
            item.replaceChildren(icon('check'), h('span.break.invite-email', email), h('span.invite-result-text', 'Invite sent'));
          } catch (e) {
            if (!(e instanceof ApiError)) throw e;
            failed.push(email);
            item.className = 'invite-result invite-failed';
            item.replaceChildren(icon('alert'), h('span.break.invite-email', email), h('span.invite-result-text', e.message));
          }
        }
      });
    } finally {
      dlg.setBusy(false);
      cancel.disabled = false;
    }
    // The pending invites behind the dialog show the new ones at once.
    if (sent) onSent();
    const parts = [];
    if (sent) parts.push(`Sent ${sent} invite${sent === 1 ? '' : 's'}.`);
    if (failed.length) parts.push(`${failed.length} could not be sent; ${failed.length === 1 ? 'it is' : 'they are'} left in the box to fix or retry.`);
    summary.textContent = parts.join(' ');
    emails.value = failed.join('\n');
    cancel.textContent = 'Done';
    if (!failed.length) {
      submit.hidden = true;
      cancel.className = 'btn btn-primary';
    }
    cancel.focus();
  });
}
