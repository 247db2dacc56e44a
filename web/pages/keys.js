// /settings/keys: API keys (GET/POST /v1/organizations/api_keys) of the workspaces the
// signed-in person may manage keys in, with workspace and status filters; a new key's secret
// is shown once. Admins also get an "Admin keys" tab (/v1/organizations/admin_keys): keys
// that authenticate the Organization API for scripts.
import { get, post, getPage, getAll, ApiError } from '../api.js';
import {
  h, setChildren, icon, field, toast, openDialog, formDialog, confirmDialog, actionMenu, dataTable, loadMore, colorDot,
  statusBadge, loadingBlock, errorBlock, alertBox, nextId,
} from '../dom.js';
import { timeEl } from '../format.js';
import { isAdmin, myRole } from '../roles.js';

const KEYS = '/v1/organizations/api_keys';
const ADMIN_KEYS = '/v1/organizations/admin_keys';
const WORKSPACES = '/v1/organizations/workspaces';
const USERS = '/v1/organizations/users';
const PAGE = 50;
const STATUSES = [
  { value: '', label: 'All statuses' },
  { value: 'active', label: 'Active' },
  { value: 'inactive', label: 'Inactive' },
  { value: 'archived', label: 'Archived' },
];
export const SAVE_WARNING = "Save this key now. You won't be able to see it again.";

export function render(ctx) {
  const { session, params } = ctx;
  const admin = isAdmin(session);
  // Names for ids: workspaces (archived ones too, for old keys), members, admin keys.
  // manageable: the workspaces where this person may create keys (null until known).
  const lookups = { workspaces: new Map(), users: new Map(), adminKeys: new Map(), manageable: null, loaded: null };
  lookups.loaded = loadLookups(ctx, lookups, admin);

  const createButton = h('button.btn.btn-primary', { type: 'button' }, icon('plus'), h('span', 'Create Key'));
  const keysPanel = apiKeysPanel(ctx, lookups, createButton);

  let tabsEl = null;
  let panels;
  if (admin) {
    const adminPanel = adminKeysPanel(ctx, lookups);
    const tabs = [
      { id: 'api', label: 'API keys', panel: keysPanel.el },
      { id: 'admin', label: 'Admin keys', panel: adminPanel.el },
    ];
    tabsEl = tabList(tabs, params.get('tab') === 'admin' ? 'admin' : 'api', (id) => {
      createButton.hidden = id !== 'api';
      const u = new URL(location.href);
      if (id === 'admin') u.searchParams.set('tab', 'admin'); else u.searchParams.delete('tab');
      history.replaceState(null, '', u.pathname + u.search);
    });
    createButton.hidden = params.get('tab') === 'admin';
    panels = tabs.map((t) => t.panel);
  } else {
    panels = [keysPanel.el];
  }

  return h('div.page',
    h('header.page-header',
      h('div',
        h('h1.page-title', 'API Keys'),
        h('p.page-lead', 'Keys authenticate your requests to the API. Each key belongs to a workspace; its secret is shown once, when it is created.')),
      createButton),
    tabsEl,
    panels);
}

async function loadLookups(ctx, lookups, admin) {
  const jobs = [
    getAll(WORKSPACES, { include_archived: true }, { signal: ctx.signal }).then((list) => { for (const w of list) lookups.workspaces.set(w.id, w); }),
    getAll(USERS, {}, { signal: ctx.signal }).then((list) => { for (const u of list) lookups.users.set(u.id, u); }),
  ];
  if (admin) jobs.push(getAll(ADMIN_KEYS, {}, { signal: ctx.signal }).then((list) => { for (const k of list) lookups.adminKeys.set(k.id, k); }));
  const results = await Promise.allSettled(jobs);
  // The workspaces are needed (filters, the create dialog); the rest only label rows.
  if (results[0].status === 'rejected') throw results[0].reason;
  lookups.manageable = await manageableWorkspaces(ctx, [...lookups.workspaces.values()].filter((w) => !w.archived_at));
}

// Where the signed-in person may create keys (docs/api.md "Roles and who may do what"):
// admins and developers in every workspace they reach; users and billing members only where
// their workspace role is workspace_developer or workspace_admin.
export async function manageableWorkspaces(ctx, workspaces) {
  const role = myRole(ctx.session);
  if (role === 'admin' || role === 'developer') return workspaces;
  const me = encodeURIComponent(ctx.session.account.id);
  const candidates = workspaces.filter((w) => !w.is_default);
  if (candidates.length > 50) return workspaces; // too many to ask about; the server decides
  const checks = await Promise.all(candidates.map((w) => get(`${WORKSPACES}/${encodeURIComponent(w.id)}/members/${me}`, { signal: ctx.signal })
    .then((m) => (m.workspace_role === 'workspace_developer' || m.workspace_role === 'workspace_admin' ? w : null))
    .catch((e) => { if (e instanceof ApiError) return null; throw e; })));
  return checks.filter(Boolean);
}

// Accessible tabs: arrow keys move between tabs, each tab shows its panel.
function tabList(tabs, initial, onChange) {
  const buttons = tabs.map((t) => {
    const id = nextId('tab');
    const panelId = nextId('panel');
    t.panel.id = panelId;
    t.panel.setAttribute('role', 'tabpanel');
    t.panel.setAttribute('aria-labelledby', id);
    const b = h('button.tab', { type: 'button', role: 'tab', id, 'aria-controls': panelId }, t.label);
    b.addEventListener('click', () => select(t.id, true));
    return b;
  });
  function select(id, focus) {
    tabs.forEach((t, i) => {
      const on = t.id === id;
      buttons[i].setAttribute('aria-selected', String(on));
      buttons[i].tabIndex = on ? 0 : -1;
      t.panel.hidden = !on;
      if (on && focus) buttons[i].focus();
    });
    onChange(id);
  }
  const list = h('div.tabs', { role: 'tablist', 'aria-label': 'Key types' }, buttons);
  list.addEventListener('keydown', (ev) => {
    const i = buttons.indexOf(document.activeElement);
    if (i < 0) return;
    let j = null;
    if (ev.key === 'ArrowRight') j = (i + 1) % buttons.length;
    else if (ev.key === 'ArrowLeft') j = (i - 1 + buttons.length) % buttons.length;
    else if (ev.key === 'Home') j = 0;
    else if (ev.key === 'End') j = buttons.length - 1;
    if (j === null) return;
    ev.preventDefault();
    select(tabs[j].id, true);
  });
  select(initial, false);
  return list;
}

// Who created a key: a member's name (or email), or an admin key's name.
function creator(lookups, by) {
  if (!by) return h('span.muted', '—');
  if (by.type === 'admin_key') {
    const k = lookups.adminKeys.get(by.id);
    return h('span.cell-stack', h('span', k ? k.name : 'An admin key'), h('span.cell-sub', 'Admin key'));
  }
  const u = lookups.users.get(by.id);
  return u ? h('span.break', { title: u.email }, u.name || u.email) : h('span.muted', 'Former member');
}

function workspaceLabel(lookups, id) {
  const w = lookups.workspaces.get(id);
  if (!w) return h('span.muted', 'Unknown workspace');
  return h('span.workspace-label', colorDot(w.display_color), h('span', w.name));
}

function apiKeysPanel(ctx, lookups, createButton) {
  const { params } = ctx;
  const filters = { workspace_id: params.get('workspace_id') || '', status: params.get('status') || '' };
  if (!STATUSES.some((s) => s.value === filters.status)) filters.status = '';

  const wsSelect = h('select.input.select.select-sm', { id: 'filter-workspace' }, h('option', { value: '' }, 'All workspaces'));
  const statusSelect = h('select.input.select.select-sm', { id: 'filter-status' }, STATUSES.map((s) => h('option', { value: s.value }, s.label)));
  statusSelect.value = filters.status;
  const toolbar = h('div.toolbar.filters', { role: 'group', 'aria-label': 'Filters' },
    h('div.filter', h('label.filter-label', { for: 'filter-workspace' }, 'Workspace'), wsSelect),
    h('div.filter', h('label.filter-label', { for: 'filter-status' }, 'Status'), statusSelect));
  const status = alertBox('error');
  const body = h('div.card-section', loadingBlock('Loading API keys…'));
  const card = h('section.card', { 'aria-label': 'API keys' }, toolbar, status.el, body);
  const note = h('p.readonly-note', { hidden: true }, icon('lock'),
    h('span', 'Only admins and developers manage API keys. A workspace admin can make you a Workspace Developer of a workspace so that you can create keys there.'));

  const table = dataTable({
    label: 'API keys',
    columns: [
      { label: 'Name', className: 'col-primary' },
      { label: 'Workspace' },
      { label: 'Key', className: 'col-key' },
      { label: 'Created by' },
      { label: 'Created', className: 'col-date' },
      { label: 'Last used', className: 'col-date' },
      { label: 'Status' },
      { label: 'Actions', hideLabel: true, className: 'col-actions' },
    ],
  });
  const more = loadMore(async (after) => {
    const page = await getPage(KEYS, { ...filters, limit: PAGE, after_id: after }, { signal: ctx.signal });
    addRows(page.data);
    return page;
  });

  function addRows(list) {
    for (const k of list) table.addRow(row(k), { dataset: { keyId: k.id }, class: k.status === 'archived' ? 'row-muted' : null });
  }
  function replaceRow(k) {
    const tr = table.body.querySelector(`tr[data-key-id="${CSS.escape(k.id)}"]`);
    if (!tr) return;
    if (filters.status && k.status !== filters.status) { tr.remove(); if (!table.body.children.length) load(); return; }
    tr.replaceWith(table.addRow(row(k), { dataset: { keyId: k.id }, class: k.status === 'archived' ? 'row-muted' : null }));
  }

  const update = async (k, change, message) => {
    status.clear();
    try {
      const u = await post(`${KEYS}/${encodeURIComponent(k.id)}`, change);
      toast(message(u));
      replaceRow(u);
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      status.show(`Could not change ${k.name}. ${e.message}`);
    }
  };

  function row(k) {
    const items = k.status === 'archived' ? [] : [
      { label: 'Rename', onSelect: () => rename(k) },
      k.status === 'active'
        ? { label: 'Deactivate', onSelect: () => update(k, { status: 'inactive' }, (u) => `Deactivated ${u.name}`) }
        : { label: 'Reactivate', onSelect: () => update(k, { status: 'active' }, (u) => `Reactivated ${u.name}`) },
      { label: 'Archive', danger: true, onSelect: () => archive(k) },
    ];
    return [
      h('span.cell-title.break', k.name),
      workspaceLabel(lookups, k.workspace_id),
      h('code.key-hint', k.partial_key_hint),
      creator(lookups, k.created_by),
      timeEl(k.created_at),
      timeEl(k.last_used_at, { withTime: true, fallback: 'Never' }),
      statusBadge(k.status),
      items.length ? actionMenu({ label: `Actions for ${k.name}`, items }) : null,
    ];
  }

  async function rename(k) {
    const name = h('input.input', { type: 'text', maxlength: '100', autocomplete: 'off', value: k.name });
    const f = field(name, { label: 'Key name' });
    const u = await formDialog({
      title: 'Rename API key',
      fields: [f.wrap],
      submitLabel: 'Rename',
      busyLabel: 'Saving…',
      onSubmit: async () => {
        const v = name.value.trim();
        if (!v) { f.setError('Enter a name for the key.'); name.focus(); return false; }
        f.setError(null);
        return post(`${KEYS}/${encodeURIComponent(k.id)}`, { name: v });
      },
    });
    if (!u) return;
    toast(`Renamed to ${u.name}`);
    replaceRow(u);
  }

  async function archive(k) {
    let u = null;
    const done = await confirmDialog({
      title: `Archive ${k.name}?`,
      message: [h('p.dialog-text', 'Requests with this key will be refused at once.'),
        h('p.dialog-text', h('strong', 'Archiving is final:'), ' an archived key cannot be reactivated. Deactivate it instead if you may need it again.')],
      confirmLabel: 'Archive key',
      busyLabel: 'Archiving…',
      onConfirm: async () => { u = await post(`${KEYS}/${encodeURIComponent(k.id)}`, { status: 'archived' }); },
    });
    if (!done) return;
    toast(`Archived ${k.name}`);
    replaceRow(u && u.id ? u : { ...k, status: 'archived' });
  }

  function emptyState() {
    const filtered = filters.workspace_id || filters.status;
    if (filtered) {
      const clear = h('button.btn.btn-secondary', { type: 'button' }, 'Clear filters');
      clear.addEventListener('click', () => { wsSelect.value = ''; statusSelect.value = ''; applyFilters(); });
      return h('div.empty-state.empty-state-inline',
        h('h2.empty-title', 'No keys match these filters'),
        h('p.empty-text', 'Try another workspace or status.'),
        clear);
    }
    const canCreate = !lookups.manageable || lookups.manageable.length > 0;
    const cta = canCreate ? h('button.btn.btn-primary', { type: 'button' }, icon('plus'), h('span', 'Create Key')) : null;
    if (cta) cta.addEventListener('click', () => createButton.click());
    return h('div.empty-state.empty-state-inline',
      h('div.empty-icon', icon('key', 'icon icon-lg')),
      h('h2.empty-title', canCreate ? 'No API keys yet' : 'No API keys to show'),
      h('p.empty-text', canCreate
        ? 'Create a key to call the API from your code. Keys belong to a workspace, and you see the secret only once.'
        : 'You see the keys of the workspaces where you may manage keys.'),
      cta);
  }

  let loadSeq = 0; // a newer load (filters changed again) wins over an older one
  async function load() {
    const seq = ++loadSeq;
    body.replaceChildren(loadingBlock('Loading API keys…'));
    status.clear();
    table.clear();
    try {
      const [page] = await Promise.all([
        getPage(KEYS, { ...filters, limit: PAGE }, { signal: ctx.signal }),
        lookups.loaded.catch(() => {}),
      ]);
      if (ctx.stale() || seq !== loadSeq) return;
      fillWorkspaces();
      const canCreate = !lookups.manageable || lookups.manageable.length > 0;
      createButton.disabled = !canCreate;
      createButton.hidden = !canCreate || createButton.hidden;
      note.hidden = canCreate;
      more.set(page);
      if (!page.data.length) { body.replaceChildren(emptyState()); return; }
      addRows(page.data);
      body.replaceChildren(table.el, more.el);
    } catch (e) {
      if (ctx.stale() || seq !== loadSeq || !(e instanceof ApiError)) return;
      body.replaceChildren(errorBlock(`Could not load the API keys. ${e.message}`, load));
    }
  }

  function fillWorkspaces() {
    const keep = filters.workspace_id;
    setChildren(wsSelect, h('option', { value: '' }, 'All workspaces'),
      [...lookups.workspaces.values()].map((w) => h('option', { value: w.id }, w.archived_at ? `${w.name} (archived)` : w.name)));
    if (keep && !lookups.workspaces.has(keep)) wsSelect.append(h('option', { value: keep }, 'Unknown workspace'));
    wsSelect.value = keep;
  }

  function applyFilters() {
    filters.workspace_id = wsSelect.value;
    filters.status = statusSelect.value;
    const u = new URL(location.href);
    for (const k of ['workspace_id', 'status']) { if (filters[k]) u.searchParams.set(k, filters[k]); else u.searchParams.delete(k); }
    history.replaceState(null, '', u.pathname + u.search);
    load();
  }
  wsSelect.addEventListener('change', applyFilters);
  statusSelect.addEventListener('change', applyFilters);

  createButton.addEventListener('click', async () => {
    status.clear();
    try {
      await lookups.loaded;
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      status.show(`Could not load your workspaces. ${e.message}`);
      return;
    }
    const created = await createKeyDialog(lookups.manageable || [...lookups.workspaces.values()].filter((w) => !w.archived_at), filters.workspace_id);
    if (!created) return;
    // The list behind the secret shows the new key at once.
    load();
    await showSecretDialog({ title: 'Save your API key', name: created.name, secret: created.key });
  });

  load();
  return { el: h('div.tab-panel', note, card), reload: load };
}

function createKeyDialog(workspaces, preferred) {
  const ws = h('select.input.select', workspaces.map((w) => h('option', { value: w.id }, w.is_default ? `${w.name} (default)` : w.name)));
  const def = workspaces.find((w) => w.is_default);
  ws.value = (preferred && workspaces.some((w) => w.id === preferred)) ? preferred : (def ? def.id : (workspaces[0] || {}).id || '');
  const wsField = field(ws, { label: 'Workspace', hint: 'If you have not created other workspaces, leave Default selected.' });
  const name = h('input.input', { type: 'text', maxlength: '100', autocomplete: 'off', placeholder: 'e.g. Production' });
  const nameField = field(name, { label: 'Key name', hint: 'Something that tells you later where the key is used.' });
  return formDialog({
    title: 'Create API key',
    fields: [wsField.wrap, nameField.wrap],
    submitLabel: 'Create Key',
    busyLabel: 'Creating…',
    onSubmit: async () => {
      const v = name.value.trim();
      if (!v) { nameField.setError('Enter a name for the key.'); name.focus(); return false; }
      nameField.setError(null);
      return post(KEYS, { name: v, workspace_id: ws.value || undefined });
    },
  });
}

// Shows a new secret once: a read-only field, Copy, the warning and Done. Closing removes
// the dialog (and the secret) from the page. Resolves when closed.
export function showSecretDialog({ title, name, secret, usage }) {
  const input = h('input.input.secret-input', { type: 'text', readonly: true, spellcheck: 'false', autocomplete: 'off', value: secret, 'aria-label': `Secret of ${name}` });
  input.addEventListener('focus', () => input.select());
  const copied = h('span.copy-status', { role: 'status', 'aria-live': 'polite' });
  const copy = h('button.btn.btn-secondary.copy-button', { type: 'button' }, icon('copy'), h('span', 'Copy'));
  copy.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(input.value);
      copy.replaceChildren(icon('check'), h('span', 'Copied'));
      copied.textContent = 'Copied to the clipboard.';
    } catch {
      input.focus();
      input.select();
      copied.textContent = 'Could not copy automatically: the key is selected, press Ctrl+C (⌘C) to copy it.';
    }
  });
  const done = h('button.btn.btn-primary', { type: 'button' }, 'Done');
  // Escape, the close button or a click beside the dialog would lose an uncopied secret for
  // good: the first time, they only warn.
  let copiedOnce = false;
  let warned = false;
  copy.addEventListener('click', () => { copiedOnce = true; });
  input.addEventListener('copy', () => { copiedOnce = true; });
  const warning = h('div.alert.alert-error.secret-unsaved', { role: 'alert', hidden: true }, icon('alert'),
    h('span', 'You have not copied this key. It cannot be shown again: copy it now, or press Done to close without it.'));
  const dlg = openDialog({
    title,
    lead: name ? h('span', 'Key ', h('strong', name), ' was created.') : null,
    size: 'md',
    className: 'secret-dialog',
    body: [
      h('div.alert.alert-warning', icon('alert'), h('span', SAVE_WARNING)),
      h('div.secret-row', input, copy),
      copied,
      warning,
      usage ? h('p.field-hint', usage) : null,
    ],
    actions: [done],
    initialFocus: copy,
    onDismiss: () => {
      if (copiedOnce || warned) return true;
      warned = true;
      warning.hidden = false;
      copy.focus();
      return false;
    },
    onClose: () => { input.value = ''; },
  });
  done.addEventListener('click', () => dlg.close());
  return dlg.closed;
}

function adminKeysPanel(ctx, lookups) {
  const status = alertBox('error');
  const createButton = h('button.btn.btn-secondary', { type: 'button' }, icon('plus'), h('span', 'Create admin key'));
  const body = h('div.card-section', loadingBlock('Loading admin keys…'));
  const card = h('section.card', { 'aria-labelledby': 'admin-keys-title' },
    h('div.card-header.card-header-row',
      h('div',
        h('h2.card-title#admin-keys-title', 'Admin keys'),
        h('p.card-lead', 'Admin keys authenticate the Organization API (/v1/organizations/…) for scripts: send one in the ',
          h('code', 'x-api-key'), ' header. A key acts as an admin of this organization, so store it like a password. It does not work with the model API.')),
      h('div.card-header-actions', createButton)),
    h('div.card-body.card-body-flush', status.el, body));

  const table = dataTable({
    label: 'Admin keys',
    columns: [
      { label: 'Name', className: 'col-primary' },
      { label: 'Key', className: 'col-key' },
      { label: 'Created by' },
      { label: 'Created', className: 'col-date' },
      { label: 'Last used', className: 'col-date' },
      { label: 'Status' },
      { label: 'Actions', hideLabel: true, className: 'col-actions' },
    ],
  });
  const empty = h('p.empty-inline', 'No admin keys. Create one to manage this organization from a script.');
  const more = loadMore(async (after) => {
    const page = await getPage(ADMIN_KEYS, { limit: PAGE, after_id: after }, { signal: ctx.signal });
    addRows(page.data);
    return page;
  });
  const syncEmpty = () => {
    const n = table.body.children.length;
    empty.hidden = n > 0;
    table.el.hidden = n === 0;
  };
  function addRows(list) {
    for (const k of list) {
      lookups.adminKeys.set(k.id, k);
      table.addRow(row(k), { dataset: { adminKeyId: k.id }, class: k.status === 'revoked' ? 'row-muted' : null });
    }
    syncEmpty();
  }
  function row(k) {
    let action = null;
    if (k.status === 'active') {
      action = h('button.btn.btn-ghost.btn-sm.btn-ghost-danger', { type: 'button', 'aria-label': `Revoke ${k.name}` }, 'Revoke');
      action.addEventListener('click', () => revoke(k));
    }
    return [
      h('span.cell-title.break', k.name),
      h('code.key-hint', k.partial_key_hint),
      creator(lookups, k.created_by),
      timeEl(k.created_at),
      timeEl(k.last_used_at, { withTime: true, fallback: 'Never' }),
      statusBadge(k.status),
      action,
    ];
  }
  async function revoke(k) {
    status.clear();
    let u = null;
    const done = await confirmDialog({
      title: `Revoke ${k.name}?`,
      message: [h('p.dialog-text', 'Scripts using this admin key will be refused at once.'),
        h('p.dialog-text', h('strong', 'Revoking is final.'), ' Create a new key if you need one again.')],
      confirmLabel: 'Revoke key',
      busyLabel: 'Revoking…',
      onConfirm: async () => { u = await post(`${ADMIN_KEYS}/${encodeURIComponent(k.id)}/revoke`, {}); },
    });
    if (!done) return;
    toast(`Revoked ${k.name}`);
    const next = u && u.id ? u : { ...k, status: 'revoked' };
    const tr = table.body.querySelector(`tr[data-admin-key-id="${CSS.escape(k.id)}"]`);
    if (tr) tr.replaceWith(table.addRow(row(next), { dataset: { adminKeyId: k.id }, class: 'row-muted' }));
  }
  async function load() {
    body.replaceChildren(loadingBlock('Loading admin keys…'));
    table.clear();
    try {
      const page = await getPage(ADMIN_KEYS, { limit: PAGE }, { signal: ctx.signal });
      if (ctx.stale()) return;
      more.set(page);
      body.replaceChildren(table.el, empty, more.el);
      addRows(page.data);
    } catch (e) {
      if (ctx.stale() || !(e instanceof ApiError)) return;
      body.replaceChildren(errorBlock(`Could not load the admin keys. ${e.message}`, load));
    }
  }
  createButton.addEventListener('click', async () => {
    const name = h('input.input', { type: 'text', maxlength: '100', autocomplete: 'off', placeholder: 'e.g. Provisioning script' });
    const f = field(name, { label: 'Key name' });
    const created = await formDialog({
      title: 'Create admin key',
      lead: 'The key can do anything an admin of this organization can do through the Organization API.',
      fields: [f.wrap],
      submitLabel: 'Create admin key',
      busyLabel: 'Creating…',
      onSubmit: async () => {
        const v = name.value.trim();
        if (!v) { f.setError('Enter a name for the key.'); name.focus(); return false; }
        f.setError(null);
        return post(ADMIN_KEYS, { name: v });
      },
    });
    if (!created) return;
    load();
    await showSecretDialog({
      title: 'Save your admin key',
      name: created.name,
      secret: created.key,
      usage: 'Send it in the x-api-key header of your requests to /v1/organizations/….',
    });
  });
  load();
  return { el: h('div.tab-panel', card), reload: load };
}
