// /settings/workspaces/{id}: one workspace's details and its members (GET …/members).
// Admins and the workspace's own workspace_admins add members, change their workspace role
// and remove them. The Default workspace has no member list: everyone can use it.
import { get, post, del, getPage, getAll, ApiError } from '../api.js';
import { helpLink } from './help.js';
import {
  h, setChildren, icon, field, alertBox, toast, formDialog, confirmDialog, actionMenu, dataTable, loadMore, colorDot,
  statusBadge, loadingBlock, errorBlock,
} from '../dom.js';
import { timeEl } from '../format.js';
import { WORKSPACE_ROLES, workspaceRoleLabel, workspaceRoleText, orgRoleLabel, isAdmin, colorName } from '../roles.js';
import { WORKSPACES, workspaceMenu } from './workspaces.js';

const USERS = '/v1/organizations/users';
const PAGE = 50;
// The workspace role a new member most likely needs, from their organization role.
const SUGGESTED = { admin: 'workspace_admin', developer: 'workspace_developer', billing: 'workspace_billing', user: 'workspace_user' };

export function render(ctx) {
  const id = ctx.routeParams.id;
  const body = h('div.page-body', h('section.card.card-padded', loadingBlock('Loading workspace…')));
  const page = h('div.page', body);

  async function load() {
    try {
      const w = await get(`${WORKSPACES}/${encodeURIComponent(id)}`, { signal: ctx.signal });
      if (ctx.stale()) return;
      ctx.setTitle(w.name);
      setChildren(page, workspacePage(ctx, w));
    } catch (e) {
      if (ctx.stale() || !(e instanceof ApiError)) return;
      if (e.status === 404) {
        ctx.setTitle('Workspace not found');
        page.replaceChildren(
          backLink(),
          h('section.card.empty-state',
            h('h1.page-title', 'Workspace not found'),
            h('p.empty-text', 'There is no such workspace in this organization, or you are not one of its members.'),
            h('a.btn.btn-secondary', { href: '/settings/workspaces' }, 'All workspaces')));
        return;
      }
      body.replaceChildren(errorBlock(`Could not load the workspace. ${e.message}`, load));
    }
  }
  load();
  return page;
}

const backLink = () => h('nav.breadcrumb', { 'aria-label': 'Breadcrumb' },
  h('a', { href: '/settings/workspaces' }, icon('back'), h('span', 'Workspaces')));

function workspacePage(ctx, w) {
  const admin = isAdmin(ctx.session);
  const title = h('h1.page-title.title-with-dot', colorDot(w.display_color, 'color-dot color-dot-lg'), h('span', w.name));
  const badges = h('span.title-badges', w.is_default ? h('span.badge', 'Default') : null, w.archived_at ? statusBadge('archived') : null);
  const menuSlot = h('div.page-actions');
  const details = h('dl.details');

  function fillDetails() {
    title.replaceChildren(colorDot(w.display_color, 'color-dot color-dot-lg'), h('span', w.name));
    setChildren(badges, w.is_default ? h('span.badge', 'Default') : null, w.archived_at ? statusBadge('archived') : null);
    ctx.setTitle(w.name);
    details.replaceChildren(
      h('div.detail', h('dt', 'Workspace ID'), h('dd', h('code.id-value', w.id))),
      h('div.detail', h('dt', 'Colour'), h('dd.detail-color', colorDot(w.display_color), h('span', colorName(w.display_color)))),
      h('div.detail', h('dt', 'Created'), h('dd', timeEl(w.created_at))),
      h('div.detail', h('dt', 'Status'), h('dd', w.archived_at ? h('span', 'Archived on ', timeEl(w.archived_at)) : 'Active')),
      h('div.detail', h('dt', 'API keys'), h('dd', h('a', { href: `/settings/keys?workspace_id=${encodeURIComponent(w.id)}` }, 'View this workspace’s keys'))));
    setChildren(menuSlot, admin ? workspaceMenu(w, { label: `Workspace actions for ${w.name}`, onChange: update }) : null);
  }
  function update(next) {
    const archivedNow = next.archived_at && !w.archived_at;
    Object.assign(w, next);
    fillDetails();
    if (archivedNow) members.reload();
  }

  const members = membersCard(ctx, w);
  fillDetails();
  return [
    backLink(),
    h('header.page-header',
      h('div', h('div.title-row', title, badges),
        h('p.page-lead', w.is_default
          ? 'Every organization has a Default workspace. It cannot be renamed or archived.'
          : 'Members of a workspace can use it; its workspace role says what else they may do there.')),
      menuSlot, helpLink(location.pathname)),
    h('section.card', { 'aria-labelledby': 'ws-details' },
      h('div.card-header', h('h2.card-title#ws-details', 'Details')),
      h('div.card-body', details)),
    members.el,
  ];
}

function membersCard(ctx, w) {
  const { session } = ctx;
  const me = session.account.id;
  const base = `${WORKSPACES}/${encodeURIComponent(w.id)}/members`;
  const status = alertBox('error');
  const addSlot = h('div.card-header-actions');
  const body = h('div.card-section');
  const lead = h('p.card-lead');
  const el = h('section.card', { 'aria-labelledby': 'ws-members' },
    h('div.card-header.card-header-row',
      h('div', h('h2.card-title#ws-members', 'Members'), lead),
      addSlot),
    h('div.card-body.card-body-flush', status.el, body));

  let canManage = false;
  const table = dataTable({
    label: `Members of ${w.name}`,
    columns: [
      { label: 'Name', className: 'col-primary' },
      { label: 'Email' },
      { label: 'Workspace role', className: 'col-role' },
      { label: 'Actions', hideLabel: true, className: 'col-actions' },
    ],
  });
  const empty = h('p.empty-inline', 'No members yet. Admins and billing members reach every workspace without being added.');
  const more = loadMore(async (after) => {
    const page = await getPage(base, { limit: PAGE, after_id: after }, { signal: ctx.signal });
    addRows(page.data);
    return page;
  });

  const syncEmpty = () => {
    const n = table.body.children.length;
    empty.hidden = n > 0;
    table.el.hidden = n === 0;
  };
  function addRows(list) {
    for (const m of list) table.addRow(row(m), { dataset: { userId: m.user_id } });
    syncEmpty();
  }

  function row(m) {
    const display = m.name || m.email;
    let roleCell = workspaceRoleLabel(m.workspace_role);
    if (canManage) {
      const select = h('select.input.select.select-sm', { 'aria-label': `Workspace role for ${display}` },
        WORKSPACE_ROLES.map((r) => h('option', { value: r.value }, r.label)));
      select.value = m.workspace_role;
      select.addEventListener('change', async () => {
        status.clear();
        const from = m.workspace_role;
        select.disabled = true;
        try {
          const u = await post(`${base}/${encodeURIComponent(m.user_id)}`, { workspace_role: select.value });
          m.workspace_role = (u && u.workspace_role) || select.value;
          select.value = m.workspace_role;
          toast(`${display} is now ${workspaceRoleLabel(m.workspace_role)} in ${w.name}`);
        } catch (e) {
          if (!(e instanceof ApiError)) throw e;
          select.value = from;
          status.show(`Could not change the workspace role of ${display}. ${e.message}`);
        } finally {
          select.disabled = false;
        }
      });
      roleCell = select;
    }
    const menu = canManage ? actionMenu({
      label: `Actions for ${display}`,
      items: [{ label: 'Remove from workspace', danger: true, onSelect: () => remove(m) }],
    }) : null;
    return [
      h('div.cell-stack', h('span.cell-title', m.name || h('span.muted', 'No name yet'), m.user_id === me ? h('span.badge', 'You') : null)),
      h('span.break', m.email),
      roleCell,
      menu,
    ];
  }

  async function remove(m) {
    const display = m.name || m.email;
    const done = await confirmDialog({
      title: `Remove ${display} from ${w.name}?`,
      message: [h('p.dialog-text', h('strong.break', m.email), ` will no longer reach ${w.name} or its API keys, unless their organization role reaches every workspace.`),
        h('p.dialog-text', 'They stay a member of the organization.')],
      confirmLabel: 'Remove from workspace',
      busyLabel: 'Removing…',
      onConfirm: () => del(`${base}/${encodeURIComponent(m.user_id)}`),
    });
    if (!done) return;
    toast(`Removed ${display} from ${w.name}`);
    const tr = table.body.querySelector(`tr[data-user-id="${CSS.escape(m.user_id)}"]`);
    if (tr) tr.remove();
    syncEmpty();
  }

  async function addMember() {
    status.clear();
    let users;
    let current;
    try {
      [users, current] = await Promise.all([getAll(USERS, {}, { signal: ctx.signal }), getAll(base, {}, { signal: ctx.signal })]);
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      status.show(`Could not load the organization’s members. ${e.message}`);
      return;
    }
    const inWs = new Set(current.map((m) => m.user_id));
    const candidates = users.filter((u) => !inWs.has(u.id));
    if (!candidates.length) {
      status.show('Everyone in the organization is already a member of this workspace. Invite more people from the Members page.', 'info');
      return;
    }
    const user = h('select.input.select',
      h('option', { value: '' }, 'Choose a member'),
      candidates.map((u) => h('option', { value: u.id }, u.name ? `${u.name} (${u.email})` : u.email)));
    const userField = field(user, { label: 'Member', hint: 'People in the organization who are not in this workspace yet.' });
    const role = h('select.input.select', WORKSPACE_ROLES.map((r) => h('option', { value: r.value }, r.label)));
    role.value = 'workspace_user';
    const roleField = field(role, { label: 'Workspace role', hint: workspaceRoleText('workspace_user') });
    const roleHint = roleField.wrap.querySelector('.field-hint');
    const orgNote = h('p.field-hint.field-org-role');
    role.addEventListener('change', () => { roleHint.textContent = workspaceRoleText(role.value); });
    user.addEventListener('change', () => {
      const u = candidates.find((c) => c.id === user.value);
      orgNote.textContent = u ? `Organization role: ${orgRoleLabel(u.role)}` : '';
      if (u && SUGGESTED[u.role]) { role.value = SUGGESTED[u.role]; roleHint.textContent = workspaceRoleText(role.value); }
    });
    userField.wrap.append(orgNote);
    const added = await formDialog({
      title: `Add a member to ${w.name}`,
      fields: [userField.wrap, roleField.wrap],
      submitLabel: 'Add member',
      busyLabel: 'Adding…',
      onSubmit: async () => {
        if (!user.value) { userField.setError('Choose who to add.'); user.focus(); return false; }
        userField.setError(null);
        const m = await post(base, { user_id: user.value, workspace_role: role.value });
        const u = candidates.find((c) => c.id === user.value);
        return { email: u.email, name: u.name, ...m };
      },
    });
    if (!added) return;
    toast(`Added ${added.name || added.email} to ${w.name}`);
    addRows([added]);
  }

  async function load() {
    status.clear();
    if (w.is_default) {
      lead.textContent = '';
      addSlot.replaceChildren();
      body.replaceChildren(h('p.empty-inline.empty-everyone', icon('users'), h('span', 'Everyone in the organization can use the Default workspace.')));
      return;
    }
    body.replaceChildren(loadingBlock('Loading members…'));
    table.clear();
    try {
      canManage = false;
      if (!w.archived_at) {
        if (isAdmin(session)) canManage = true;
        else {
          try {
            const mine = await get(`${base}/${encodeURIComponent(me)}`, { signal: ctx.signal });
            canManage = mine.workspace_role === 'workspace_admin';
          } catch (e) {
            if (!(e instanceof ApiError) || (e.status !== 404 && e.status !== 403)) throw e;
          }
        }
      }
      const page = await getPage(base, { limit: PAGE }, { signal: ctx.signal });
      if (ctx.stale()) return;
      lead.textContent = w.archived_at
        ? 'This workspace is archived; its members can no longer change.'
        : canManage
          ? 'Admins and billing members reach every workspace; add developers and users who need this one.'
          : 'Only admins and this workspace’s admins can change its members.';
      if (canManage) {
        const add = h('button.btn.btn-secondary', { type: 'button' }, icon('plus'), h('span', 'Add member'));
        add.dataset.busyLabel = 'Loading…';
        add.addEventListener('click', addMember);
        addSlot.replaceChildren(add);
      } else addSlot.replaceChildren();
      more.set(page);
      body.replaceChildren(table.el, empty, more.el);
      addRows(page.data);
    } catch (e) {
      if (ctx.stale() || !(e instanceof ApiError)) return;
      body.replaceChildren(errorBlock(`Could not load the members. ${e.message}`, load));
    }
  }
  load();
  return { el, reload: load };
}
