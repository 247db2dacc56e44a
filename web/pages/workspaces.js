// /settings/workspaces: the workspaces the signed-in person reaches (GET
// /v1/organizations/workspaces), the Default one first; archived ones behind "Show archived".
// Admins add workspaces and, from each row's "…" menu, rename, recolour or archive them.
// The dialogs are shared with the workspace page (workspace.js).
import { post, getPage, ApiError } from '../api.js';
import {
  h, icon, field, toast, formDialog, confirmDialog, actionMenu, dataTable, loadMore, colorDot, statusBadge,
  loadingBlock, errorBlock, nextId,
} from '../dom.js';
import { timeEl } from '../format.js';
import { PALETTE, colorName, isAdmin } from '../roles.js';

export const WORKSPACES = '/v1/organizations/workspaces';
const PAGE = 50;
const NAME_MAX = 40;

export function render(ctx) {
  const { session, params } = ctx;
  const admin = isAdmin(session);
  let showArchived = params.get('archived') === '1';

  const addButton = admin ? h('button.btn.btn-primary', { type: 'button' }, icon('plus'), h('span', 'Add Workspace')) : null;
  const toggle = h('input.checkbox', { type: 'checkbox', id: 'show-archived', checked: showArchived });
  const toolbar = h('div.toolbar',
    h('div.check-row.toolbar-check', toggle, h('label', { for: 'show-archived' }, 'Show archived')));
  const body = h('div.card-section', loadingBlock('Loading workspaces…'));

  const table = dataTable({
    label: 'Workspaces',
    columns: [
      { label: 'Name', className: 'col-primary' },
      { label: 'Members', className: 'col-num' },
      { label: 'Created', className: 'col-date' },
      { label: 'Actions', hideLabel: true, className: 'col-actions' },
    ],
  });
  const more = loadMore(async (after) => {
    const page = await getPage(WORKSPACES, { limit: PAGE, after_id: after, include_archived: showArchived }, { signal: ctx.signal });
    addRows(page.data);
    return page;
  });
  const all = [];

  function addRows(list) {
    for (const w of list) {
      all.push(w);
      table.addRow(row(w), { dataset: { workspaceId: w.id }, class: w.archived_at ? 'row-muted' : null });
    }
  }

  function refreshRow(w) {
    const i = all.findIndex((x) => x.id === w.id);
    if (i >= 0) all[i] = w;
    const tr = table.body.querySelector(`tr[data-workspace-id="${CSS.escape(w.id)}"]`);
    if (!tr) return;
    if (w.archived_at && !showArchived) { tr.remove(); return; }
    const fresh = table.addRow(row(w), { dataset: { workspaceId: w.id }, class: w.archived_at ? 'row-muted' : null });
    tr.replaceWith(fresh);
  }

  function row(w) {
    const href = `/settings/workspaces/${encodeURIComponent(w.id)}`;
    return [
      h('div.cell-stack',
        h('span.cell-title',
          h('a.workspace-link', { href }, colorDot(w.display_color), h('span', w.name)),
          w.is_default ? h('span.badge', 'Default') : null,
          w.archived_at ? statusBadge('archived') : null)),
      w.is_default ? h('span.muted', 'Everyone') : String(w.member_count ?? 0),
      timeEl(w.created_at),
      admin ? workspaceMenu(w, { onChange: refreshRow }) : null,
    ];
  }

  let loadSeq = 0; // a newer load (filters changed again) wins over an older one
  async function load() {
    const seq = ++loadSeq;
    body.replaceChildren(loadingBlock('Loading workspaces…'));
    table.clear();
    all.length = 0;
    try {
      const page = await getPage(WORKSPACES, { limit: PAGE, include_archived: showArchived }, { signal: ctx.signal });
      if (ctx.stale() || seq !== loadSeq) return;
      more.set(page);
      addRows(page.data);
      body.replaceChildren(table.el, more.el);
    } catch (e) {
      if (ctx.stale() || seq !== loadSeq || !(e instanceof ApiError)) return;
      body.replaceChildren(errorBlock(`Could not load the workspaces. ${e.message}`, load));
    }
  }

  toggle.addEventListener('change', () => {
    showArchived = toggle.checked;
    const u = new URL(location.href);
    if (showArchived) u.searchParams.set('archived', '1'); else u.searchParams.delete('archived');
    history.replaceState(null, '', u.pathname + u.search);
    load();
  });
  if (addButton) {
    addButton.addEventListener('click', async () => {
      const created = await createWorkspaceDialog(all);
      if (!created) return;
      toast(`Created workspace ${created.name}`);
      addRows([created]);
    });
  }
  load();

  return h('div.page',
    h('header.page-header',
      h('div',
        h('h1.page-title', 'Workspaces'),
        h('p.page-lead', 'Separate API keys, members and spend by project, team or environment. Every organization has a Default workspace that everyone can use.')),
      addButton),
    admin ? null : h('p.readonly-note', icon('lock'), h('span', 'Only admins can add, rename or archive workspaces. You see the workspaces you can use.')),
    h('section.card', { 'aria-label': 'Workspaces' },
      toolbar,
      body));
}

// The "…" menu of a workspace (admins). The Default workspace can only change colour (it
// cannot be renamed or archived); an archived workspace cannot change at all.
export function workspaceMenu(w, { onChange, label }) {
  if (w.archived_at) return null;
  return actionMenu({
    label: label || `Actions for ${w.name}`,
    items: [
      !w.is_default && { label: 'Rename', onSelect: async () => { const u = await renameWorkspaceDialog(w); if (u) { toast(`Renamed to ${u.name}`); onChange(u); } } },
      { label: 'Change colour', onSelect: async () => { const u = await colorWorkspaceDialog(w); if (u) { toast(`Changed the colour of ${u.name}`); onChange(u); } } },
      !w.is_default && { label: 'Archive', danger: true, onSelect: async () => { const u = await archiveWorkspaceDialog(w); if (u) { toast(`Archived ${w.name}`); onChange(u); } } },
    ],
  });
}

// A radio group of the palette's swatches. Returns {wrap, value()}.
export function colorPicker(selected) {
  const name = nextId('color');
  const legendId = nextId('color-legend');
  const current = PALETTE.some((p) => p.color.toLowerCase() === String(selected || '').toLowerCase()) ? selected.toUpperCase() : PALETTE[0].color;
  const swatches = PALETTE.map((p) => {
    const input = h('input.swatch-input', { type: 'radio', name, value: p.color, 'aria-label': p.name, checked: p.color === current });
    const dot = colorDot(p.color, 'swatch-dot');
    return h('label.swatch', { title: p.name }, input, dot);
  });
  const wrap = h('fieldset.fieldset.swatch-field', { 'aria-labelledby': legendId },
    h('legend.field-label', { id: legendId }, 'Colour'),
    h('div.swatches', swatches));
  return {
    wrap,
    value: () => (wrap.querySelector('input:checked') || {}).value || current,
  };
}

function nameInput(value = '') {
  const input = h('input.input', { type: 'text', maxlength: String(NAME_MAX), autocomplete: 'off', spellcheck: 'false', value, required: true });
  const counter = h('span.char-count', { 'aria-hidden': 'true' });
  const f = field(input, { label: 'Workspace name', hint: `Up to ${NAME_MAX} characters, unique in the organization.` });
  f.label.append(counter);
  const sync = () => { counter.textContent = `${[...input.value].length}/${NAME_MAX}`; };
  input.addEventListener('input', sync);
  sync();
  return { ...f, input };
}

function checkName(f) {
  const v = f.input.value.trim();
  if (!v) { f.setError('Enter a name for the workspace.'); f.input.focus(); return null; }
  if ([...v].length > NAME_MAX) { f.setError(`Use at most ${NAME_MAX} characters.`); f.input.focus(); return null; }
  f.setError(null);
  return v;
}

// Shows a 400/409 about the name next to the name field; others in the dialog's alert.
function nameError(f, e) {
  if (e instanceof ApiError && (e.status === 400 || e.status === 409) && /name/i.test(e.message)) {
    f.setError(e.message);
    f.input.focus();
    return false;
  }
  throw e;
}

export function createWorkspaceDialog(existing = []) {
  const name = nameInput();
  const used = new Set(existing.map((w) => String(w.display_color).toUpperCase()));
  const next = (PALETTE.find((p) => !used.has(p.color)) || PALETTE[existing.length % PALETTE.length]).color;
  const color = colorPicker(next);
  return formDialog({
    title: 'Create workspace',
    lead: 'Workspaces separate API keys, members and spend. You can add members after creating it.',
    fields: [name.wrap, color.wrap],
    submitLabel: 'Create',
    busyLabel: 'Creating…',
    onSubmit: async () => {
      const v = checkName(name);
      if (!v) return false;
      try {
        return await post(WORKSPACES, { name: v, display_color: color.value() });
      } catch (e) {
        return nameError(name, e);
      }
    },
  });
}

export function renameWorkspaceDialog(w) {
  const name = nameInput(w.name);
  return formDialog({
    title: `Rename ${w.name}`,
    fields: [name.wrap],
    submitLabel: 'Rename',
    busyLabel: 'Saving…',
    onSubmit: async () => {
      const v = checkName(name);
      if (!v) return false;
      if (v === w.name) return w;
      try {
        return await post(`${WORKSPACES}/${encodeURIComponent(w.id)}`, { name: v });
      } catch (e) {
        return nameError(name, e);
      }
    },
  });
}

export function colorWorkspaceDialog(w) {
  const color = colorPicker(w.display_color);
  return formDialog({
    title: `Change the colour of ${w.name}`,
    lead: 'The colour marks the workspace in lists and filters.',
    fields: [color.wrap],
    submitLabel: 'Save colour',
    busyLabel: 'Saving…',
    onSubmit: () => post(`${WORKSPACES}/${encodeURIComponent(w.id)}`, { display_color: color.value() }),
  });
}

export async function archiveWorkspaceDialog(w) {
  let updated = null;
  const done = await confirmDialog({
    title: `Archive ${w.name}?`,
    message: [
      h('p.dialog-text', 'Archiving is final: the workspace can no longer be changed or used.'),
      h('p.dialog-text', h('strong', 'Its API keys will be archived too'), ' and stop working at once.'),
    ],
    confirmLabel: 'Archive workspace',
    busyLabel: 'Archiving…',
    onConfirm: async () => {
      updated = await post(`${WORKSPACES}/${encodeURIComponent(w.id)}/archive`, {});
    },
  });
  if (!done) return null;
  return updated && updated.id ? updated : { ...w, archived_at: new Date().toISOString() };
}

export { colorName };
