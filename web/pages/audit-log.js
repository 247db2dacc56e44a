// /settings/audit-log (admins): every change to members, invites, workspaces, workspace
// members, keys and settings, newest first (GET /v1/organizations/audit_log), filtered by
// actor and action, a page at a time.
import { get, getPage, getAll, ApiError } from '../api.js';
import { h, setChildren, icon, dataTable, loadMore, loadingBlock, errorBlock, colorDot } from '../dom.js';
import { timeEl } from '../format.js';
import { isAdmin, orgRoleLabel, workspaceRoleLabel } from '../roles.js';

const AUDIT = '/v1/organizations/audit_log';
const PAGE = 50;

// The actions come from the server's one list (GET /v1/organizations/audit_log/actions), so
// the filter offers every action that can be recorded, billing ones included.
const ACTIONS_URL = '/v1/organizations/audit_log/actions';

const TARGETS = {
  organization: 'Organization', invite: 'Invite', user: 'Member', workspace: 'Workspace',
  workspace_member: 'Workspace member', api_key: 'API key', admin_key: 'Admin key',
  limit_request: 'Limit request', payment_method: 'Payment method', purchase: 'Purchase',
};

export function render(ctx) {
  const { session, params } = ctx;
  const header = h('header.page-header',
    h('div',
      h('h1.page-title', 'Audit log'),
      h('p.page-lead', 'Every change to members, invites, workspaces, keys and settings, newest first. Secrets are never recorded.')));
  if (!isAdmin(session)) {
    return h('div.page', header,
      h('p.readonly-note', icon('lock'), h('span', 'Only admins can read the audit log.')));
  }

  const filters = { actor_id: params.get('actor_id') || '', action: params.get('action') || '' };
  const lookups = { users: new Map(), adminKeys: new Map(), workspaces: new Map(), apiKeys: new Map() };

  const actor = h('select.input.select.select-sm', { id: 'filter-actor' }, h('option', { value: '' }, 'All actors'));
  const action = h('select.input.select.select-sm', { id: 'filter-action' },
    h('option', { value: '' }, 'All actions'),
    filters.action ? h('option', { value: filters.action }, filters.action) : null);
  action.value = filters.action;
  get(ACTIONS_URL, { signal: ctx.signal }).then((r) => {
    setChildren(action, h('option', { value: '' }, 'All actions'), r.data.map((a) => h('option', { value: a }, a)));
    action.value = r.data.includes(filters.action) ? filters.action : '';
  }).catch(() => { /* the filter keeps what the address asked for */ });
  const toolbar = h('div.toolbar.filters', { role: 'group', 'aria-label': 'Filters' },
    h('div.filter', h('label.filter-label', { for: 'filter-actor' }, 'Actor'), actor),
    h('div.filter', h('label.filter-label', { for: 'filter-action' }, 'Action'), action));
  const body = h('div.card-section', loadingBlock('Loading the audit log…'));

  const table = dataTable({
    label: 'Audit log events',
    columns: [
      { label: 'Time', className: 'col-date' },
      { label: 'Actor', className: 'col-actor' },
      { label: 'Action', className: 'col-primary' },
      { label: 'Target' },
      { label: 'IP', className: 'col-ip' },
    ],
  });
  const more = loadMore(async (after) => {
    const page = await getPage(AUDIT, { ...filters, limit: PAGE, after_id: after }, { signal: ctx.signal });
    addRows(page.data);
    return page;
  });
  const addRows = (events) => { for (const ev of events) table.addRow(row(ev, lookups), { dataset: { eventId: ev.id } }); };

  // Names for the actor filter and the targets; the log works without them.
  const lookupsLoaded = Promise.allSettled([
    getAll('/v1/organizations/users', {}, { signal: ctx.signal }).then((l) => l.forEach((u) => lookups.users.set(u.id, u))),
    getAll('/v1/organizations/admin_keys', {}, { signal: ctx.signal }).then((l) => l.forEach((k) => lookups.adminKeys.set(k.id, k))),
    getAll('/v1/organizations/workspaces', { include_archived: true }, { signal: ctx.signal }).then((l) => l.forEach((w) => lookups.workspaces.set(w.id, w))),
    getAll('/v1/organizations/api_keys', {}, { signal: ctx.signal }).then((l) => l.forEach((k) => lookups.apiKeys.set(k.id, k))),
  ]).then(() => {
    const members = [...lookups.users.values()];
    const keys = [...lookups.adminKeys.values()];
    setChildren(actor, h('option', { value: '' }, 'All actors'),
      members.length ? h('optgroup', { label: 'Members' }, members.map((u) => h('option', { value: u.id }, u.name ? `${u.name} (${u.email})` : u.email))) : null,
      keys.length ? h('optgroup', { label: 'Admin keys' }, keys.map((k) => h('option', { value: k.id }, k.name))) : null);
    if (filters.actor_id && !lookups.users.has(filters.actor_id) && !lookups.adminKeys.has(filters.actor_id)) {
      actor.append(h('option', { value: filters.actor_id }, filters.actor_id));
    }
    actor.value = filters.actor_id;
  });

  let loadSeq = 0; // a newer load (filters changed again) wins over an older one
  async function load() {
    const seq = ++loadSeq;
    body.replaceChildren(loadingBlock('Loading the audit log…'));
    table.clear();
    try {
      const [page] = await Promise.all([getPage(AUDIT, { ...filters, limit: PAGE }, { signal: ctx.signal }), lookupsLoaded]);
      if (ctx.stale() || seq !== loadSeq) return;
      more.set(page);
      if (!page.data.length) {
        body.replaceChildren(h('p.empty-inline', filters.actor_id || filters.action ? 'No events match these filters.' : 'Nothing has been recorded yet.'));
        return;
      }
      addRows(page.data);
      body.replaceChildren(table.el, more.el);
    } catch (e) {
      if (ctx.stale() || seq !== loadSeq || !(e instanceof ApiError)) return;
      body.replaceChildren(errorBlock(`Could not load the audit log. ${e.message}`, load));
    }
  }
  const apply = () => {
    filters.actor_id = actor.value;
    filters.action = action.value;
    const u = new URL(location.href);
    for (const k of ['actor_id', 'action']) { if (filters[k]) u.searchParams.set(k, filters[k]); else u.searchParams.delete(k); }
    history.replaceState(null, '', u.pathname + u.search);
    load();
  };
  actor.addEventListener('change', apply);
  action.addEventListener('change', apply);
  load();

  return h('div.page', header, h('section.card', { 'aria-label': 'Audit log' }, toolbar, body));
}

function row(ev, lookups) {
  const a = ev.actor || {};
  const u = a.type === 'user' ? lookups.users.get(a.id) : null;
  // A member shows by name (the address is in the tooltip); otherwise the server's label.
  const actorCell = h('span.cell-stack', { title: u ? u.email : a.id },
    h('span.break', u && u.name ? u.name : (a.label || a.id || '—')),
    a.type === 'admin_key' ? h('span.cell-sub', 'Admin key') : null);
  const detail = summarize(ev.details);
  return [
    timeEl(ev.created_at, { withTime: true }),
    actorCell,
    h('span.cell-stack', h('code.action-name', ev.action), detail ? h('span.cell-sub.break', detail) : null),
    target(ev.target, lookups, ev.details),
    ev.ip ? h('code.ip', ev.ip) : h('span.muted', '—'),
  ];
}

function target(t, lookups, details) {
  if (!t || !t.type) return h('span.muted', '—');
  const type = TARGETS[t.type] || t.type;
  let name = null;
  if (t.type === 'workspace' && lookups.workspaces.has(t.id)) {
    const w = lookups.workspaces.get(t.id);
    name = h('span.workspace-label', colorDot(w.display_color), h('span', w.name));
  } else if (t.type === 'user' && lookups.users.has(t.id)) {
    const u = lookups.users.get(t.id);
    name = h('span.break', u.name || u.email);
  } else if (t.type === 'api_key' && lookups.apiKeys.has(t.id)) {
    name = h('span.break', lookups.apiKeys.get(t.id).name);
  } else if (t.type === 'admin_key' && lookups.adminKeys.has(t.id)) {
    name = h('span.break', lookups.adminKeys.get(t.id).name);
  } else if (t.type === 'invite' && details && typeof details.email === 'string') {
    name = h('span.break', details.email);
  }
  // A known target shows its name (the id is in the tooltip); otherwise its id.
  return h('span.cell-stack', { title: t.id || null },
    h('span.target-type', type),
    name || (t.id ? h('code.cell-sub.break', t.id) : null));
}

// A one-line summary of what changed: "role: User → Developer; name: "A" → "B"".
function summarize(details) {
  if (!details || typeof details !== 'object') return '';
  const show = (k, v) => {
    if (v === null || v === undefined) return 'none';
    if (typeof v === 'string') {
      if (k === 'role') return orgRoleLabel(v);
      if (k === 'workspace_role') return workspaceRoleLabel(v);
      return v;
    }
    if (typeof v === 'number' || typeof v === 'boolean') return String(v);
    return JSON.stringify(v);
  };
  // Ids and key hints are left out: the target column names what was changed.
  const parts = Object.entries(details).filter(([k]) => !/(^|_)id$/.test(k) && k !== 'hint').slice(0, 5).map(([k, v]) => {
    const label = k.replace(/_/g, ' ');
    if (v && typeof v === 'object' && !Array.isArray(v) && 'from' in v && 'to' in v) return `${label}: ${show(k, v.from)} → ${show(k, v.to)}`;
    return `${label}: ${show(k, v)}`;
  });
  const s = parts.join('; ');
  return s.length > 160 ? `${s.slice(0, 157)}…` : s;
}
