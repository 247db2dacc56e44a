// What the Usage and Cost pages share: time ranges in UTC, reading every page of a report
// (docs/api.md "Usage and cost reports"), exact money from the API's cent strings (BigInt,
// never floats), number formats, the filter toolbar's multi-selects, and CSV files made here
// and downloaded through a Blob link.
import { get } from './api.js';
import { h, icon, nextId } from './dom.js';
import { formatNusd } from './money.js';

export const USAGE_REPORT = '/v1/organizations/usage_report/messages';
export const COST_REPORT = '/v1/organizations/cost_report';

export const WIDTH_S = { '1m': 60, '1h': 3600, '1d': 86400 };
export const WIDTH_LABELS = { '1m': 'Minute', '1h': 'Hour', '1d': 'Day' };
const LIMIT = { '1m': 1440, '1h': 168, '1d': 31 };
const DAY = 86400e3;
// Minute buckets are kept this long (docs/api.md); the pages never ask for older ones.
const MINUTE_RETENTION_MS = 14 * DAY;

export const PRESETS = [
  { value: 'today', label: 'Today' },
  { value: '7d', label: 'Last 7 days' },
  { value: '30d', label: 'Last 30 days' },
  { value: 'month', label: 'This month' },
  { value: 'custom', label: 'Custom range' },
];

const startOfUtcDay = (ms) => Math.floor(ms / DAY) * DAY;
export const isoDate = (ms) => new Date(ms).toISOString().slice(0, 10);
const iso = (ms) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

// The range of a preset, in UTC milliseconds [start, end): days start at 00:00 UTC and the
// range ends now. A custom range runs from the start of `from` to the end of `to`.
export function rangeFor(preset, from, to, now = Date.now()) {
  const today = startOfUtcDay(now);
  switch (preset) {
    case 'today': return { start: today, end: now };
    case '7d': return { start: today - 6 * DAY, end: now };
    case '30d': return { start: today - 29 * DAY, end: now };
    case 'month': {
      const d = new Date(now);
      return { start: Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1), end: now };
    }
    default: {
      const a = Date.parse(`${from}T00:00:00Z`);
      const b = Date.parse(`${to}T00:00:00Z`);
      if (Number.isNaN(a) || Number.isNaN(b) || b < a) return null;
      return { start: a, end: Math.min(b + DAY, Math.max(now, a + 1)) };
    }
  }
}

// The bucket widths that make sense for a range: minutes for a day at most (and only as far
// back as they are kept), hours for a month at most, days always.
export function allowedWidths(range, now = Date.now()) {
  const span = range.end - range.start;
  const out = [];
  if (span <= DAY && range.start >= now - MINUTE_RETENTION_MS + 60e3) out.push('1m');
  if (span <= 31 * DAY) out.push('1h');
  out.push('1d');
  return out;
}

export const defaultWidth = (range) => (range.end - range.start <= 2 * DAY ? '1h' : '1d');

// Every bucket of a report for `range`, following next_page.
export async function fetchReport(path, { range, width = '1d', groupBy = [], workspaces = [], models = [], keys = [] }, signal) {
  const data = [];
  let page = null;
  for (let i = 0; i < 200; i++) {
    const q = new URLSearchParams({ starting_at: iso(range.start), ending_at: iso(range.end), bucket_width: width, limit: String(LIMIT[width]) });
    for (const g of groupBy) q.append('group_by[]', g);
    for (const w of workspaces) q.append('workspace_ids[]', w);
    for (const m of models) q.append('models[]', m);
    for (const k of keys) q.append('api_key_ids[]', k);
    if (page) q.set('page', page);
    const r = await get(`${path}?${q}`, { signal });
    data.push(...r.data);
    if (!r.has_more) return data;
    page = r.next_page;
  }
  return data;
}

// ---- money: nano-USD as BigInt ----

// "123.456789" cents -> 1234567890n nano-USD (a cent is 10^7 nano-USD).
export function centsToNusd(amount) {
  const m = /^(-?)(\d+)(?:\.(\d{1,7}))?$/.exec(String(amount));
  if (!m) return 0n;
  const v = BigInt(m[2]) * 10_000_000n + BigInt((m[3] || '').padEnd(7, '0'));
  return m[1] ? -v : v;
}

// Exact decimal USD: 1234567890n -> "1.23456789".
export function usdExact(nusd) {
  const neg = nusd < 0n;
  const a = neg ? -nusd : nusd;
  const frac = (a % 1_000_000_000n).toString().padStart(9, '0').replace(/0+$/, '');
  return `${neg ? '-' : ''}${a / 1_000_000_000n}${frac ? `.${frac.padEnd(2, '0')}` : '.00'}`;
}

// USD for people: the console's one rule (money.js), "<$0.01" for a little but not nothing.
// Exact amounts are in the titles and the CSV.
export const formatUsd = formatNusd;

// nano-USD as a float of dollars, for drawing only.
export const nusdToNumber = (nusd) => Number(nusd) / 1e9;

// ---- numbers and times ----

export const formatInt = (n) => Math.round(n).toLocaleString('en-US');

export function compact(n) {
  const a = Math.abs(n);
  if (a >= 1e9) return `${+(n / 1e9).toFixed(1)}B`;
  if (a >= 1e6) return `${+(n / 1e6).toFixed(1)}M`;
  if (a >= 1e3) return `${+(n / 1e3).toFixed(1)}K`;
  return `${+n.toFixed(2)}`;
}

const fmt = (opts) => new Intl.DateTimeFormat('en-US', { timeZone: 'UTC', ...opts });
const dayFmt = fmt({ month: 'short', day: 'numeric' });
const dayLongFmt = fmt({ weekday: 'short', month: 'short', day: 'numeric', year: 'numeric' });
const timeFmt = fmt({ hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });

// The axis label and the full title of a bucket.
export function bucketLabel(startIso, width) {
  const d = new Date(startIso);
  return width === '1d' ? dayFmt.format(d) : timeFmt.format(d);
}
export function bucketTitle(startIso, width) {
  const d = new Date(startIso);
  if (width === '1d') return dayLongFmt.format(d);
  return `${dayFmt.format(d)}, ${timeFmt.format(d)} UTC`;
}

// ---- CSV ----

// One CSV line. Cells that a spreadsheet would run as a formula are prefixed with '.
function csvCell(v) {
  let s = v === null || v === undefined ? '' : String(v);
  if (/^[=+\-@\t\r]/.test(s) && !/^-?\d+(\.\d+)?$/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}
export const toCsv = (rows) => rows.map((r) => r.map(csvCell).join(',')).join('\r\n') + '\r\n';

// Offers `text` as a file download (a Blob link; nothing leaves the browser).
export function download(filename, text, type = 'text/csv;charset=utf-8') {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = h('a', { href: url, download: filename, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

// ---- filter controls ----

// A multi-select: a disclosure button listing checkboxes. options: [{value, label, color}];
// an empty selection means "all". onChange(values) after each change.
export function multiSelect({ id, label, allLabel, options, selected = [], onChange }) {
  let chosen = new Set(selected);
  // The button is named by the filter's label and what is selected ("Workspaces All
  // workspaces"), so both are read out.
  const summary = h('span.ms-summary', { id: `${id}-summary` });
  const button = h('button.input.select.select-sm.ms-button', {
    type: 'button', id, 'aria-haspopup': 'true', 'aria-expanded': 'false', 'aria-labelledby': `${id}-label ${id}-summary`,
  }, summary);
  const list = h('div.ms-list');
  const clear = h('button.btn.btn-ghost.btn-sm', { type: 'button' }, 'Clear');
  const panelId = nextId('ms');
  const panel = h('div.ms-panel', { id: panelId, hidden: true, role: 'group', 'aria-label': label }, list, h('div.ms-footer', clear));
  button.setAttribute('aria-controls', panelId);
  const wrap = h('div.ms', button, panel);

  function paint() {
    const names = options.filter((o) => chosen.has(o.value)).map((o) => o.label);
    summary.textContent = !names.length ? allLabel : names.length === 1 ? names[0] : `${names.length} selected`;
    button.title = names.length ? names.join(', ') : allLabel;
  }
  function render() {
    list.replaceChildren(...(options.length ? options.map((o) => {
      const cid = nextId('ms-opt');
      const box = h('input.checkbox', { type: 'checkbox', id: cid, value: o.value, checked: chosen.has(o.value) });
      box.addEventListener('change', () => {
        if (box.checked) chosen.add(o.value); else chosen.delete(o.value);
        box.focus();
        paint();
        onChange([...chosen]);
      });
      const dot = o.color ? h('span.color-dot', { 'aria-hidden': 'true' }) : null;
      if (dot) dot.style.backgroundColor = o.color;
      // The whole row is the checkbox's label: a click anywhere on it selects.
      return h('label.ms-option', { for: cid }, box, h('span.ms-option-text', dot, h('span', o.label), o.sub ? h('span.ms-sub', o.sub) : null));
    }) : [h('p.ms-empty', 'Nothing to choose from yet.')]));
    paint();
  }
  function open() {
    panel.hidden = false;
    button.setAttribute('aria-expanded', 'true');
    const first = panel.querySelector('input');
    if (first) first.focus();
    document.addEventListener('pointerdown', outside, true);
  }
  function close(refocus) {
    if (panel.hidden) return;
    panel.hidden = true;
    button.setAttribute('aria-expanded', 'false');
    document.removeEventListener('pointerdown', outside, true);
    if (refocus) button.focus();
  }
  function outside(ev) { if (!wrap.contains(ev.target)) close(false); }
  button.addEventListener('click', () => (panel.hidden ? open() : close(true)));
  panel.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape') { ev.preventDefault(); close(true); }
    const boxes = [...panel.querySelectorAll('input')];
    const i = boxes.indexOf(document.activeElement);
    if (ev.key === 'ArrowDown' && i >= 0) { ev.preventDefault(); boxes[Math.min(boxes.length - 1, i + 1)].focus(); }
    if (ev.key === 'ArrowUp' && i >= 0) { ev.preventDefault(); boxes[Math.max(0, i - 1)].focus(); }
  });
  // A press on a row's text would move focus to the page's <main> (focusable, tabindex -1)
  // and close the menu before the click selects: keep focus in the menu instead.
  panel.addEventListener('mousedown', (ev) => { if (ev.target instanceof Element && !ev.target.closest('input, button')) ev.preventDefault(); });
  wrap.addEventListener('focusout', (ev) => { if (!wrap.contains(ev.relatedTarget) && ev.relatedTarget) close(false); });
  clear.addEventListener('click', () => {
    chosen = new Set();
    render();
    onChange([]);
    close(true);
  });
  render();
  return {
    el: wrap,
    button,
    setOptions(next) {
      options = next;
      render();
    },
    get values() { return [...chosen]; },
  };
}

// A labelled filter in the toolbar.
export function filter(labelText, control, forId) {
  return h('div.filter', h(forId ? 'label.filter-label' : 'span.filter-label', forId ? { for: forId, id: `${forId}-label` } : {}, labelText), control);
}

// The select of range presets and the two date inputs of a custom range; onChange('range')
// after a change.
export function rangeControls(state, onChange) {
  const preset = h('select.input.select.select-sm#filter-range', PRESETS.map((p) => h('option', { value: p.value }, p.label)));
  preset.value = state.range;
  const from = h('input.input.input-sm.date-input#filter-from', { type: 'date', value: state.from, 'aria-label': 'From (UTC)' });
  const to = h('input.input.input-sm.date-input#filter-to', { type: 'date', value: state.to, 'aria-label': 'To (UTC)' });
  const custom = h('div.filter.filter-dates', { hidden: state.range !== 'custom' },
    h('span.filter-label', { 'aria-hidden': 'true' }, 'From – to (UTC)'),
    h('div.date-range', from, h('span.date-sep', { 'aria-hidden': 'true' }, '–'), to));
  preset.addEventListener('change', () => {
    state.range = preset.value;
    custom.hidden = state.range !== 'custom';
    if (state.range === 'custom' && (!state.from || !state.to)) {
      const r = rangeFor('7d');
      state.from = isoDate(r.start);
      state.to = isoDate(r.end);
      from.value = state.from;
      to.value = state.to;
    }
    onChange('range');
  });
  for (const [input, key] of [[from, 'from'], [to, 'to']]) {
    input.addEventListener('change', () => {
      state[key] = input.value;
      onChange('range');
    });
  }
  return [filter('Date range', preset, 'filter-range'), custom];
}

// The lookups both pages label things with: workspaces (with colours), API keys (names, when
// the person may list them) and the configured models.
export async function loadLookups(signal) {
  const [ws, keys, config] = await Promise.all([
    getAllQuiet('/v1/organizations/workspaces', { include_archived: 'true' }, signal),
    getAllQuiet('/v1/organizations/api_keys', {}, signal),
    get('/auth/config', { signal }).catch(() => ({ models: [] })),
  ]);
  return {
    workspaces: new Map(ws.map((w) => [w.id, w])),
    keys: new Map(keys.map((k) => [k.id, k])),
    models: (config.models || []).map((m) => m.id),
  };
}

async function getAllQuiet(path, params, signal) {
  const out = [];
  let after = null;
  try {
    for (let i = 0; i < 20; i++) {
      const q = new URLSearchParams({ ...params, limit: '1000' });
      if (after) q.set('after_id', after);
      const page = await get(`${path}?${q}`, { signal });
      out.push(...page.data);
      if (!page.has_more) break;
      after = page.last_id;
    }
  } catch (e) {
    if (e && e.name === 'AbortError') throw e;
  }
  return out;
}

// A short label for an API key id the person cannot list: "apikey_…wXyz".
export const shortKey = (id) => (id && id.length > 12 ? `${id.slice(0, 7)}…${id.slice(-4)}` : id || 'Unknown key');

// Colours for series that have none of their own.
export const SERIES_COLORS = ['#4E8FD4', '#C15F3C', '#3F9A6E', '#C48A2C', '#6C5BB9', '#2F8F8F', '#B5548C', '#8A6B4E', '#5E7386'];
export const OTHER_COLOR = '#B9B4AA';

// The page's state in the URL, so a reload or a shared link shows the same report.
export function readState(params, extra = {}) {
  const list = (k) => (params.get(k) || '').split(',').filter(Boolean);
  const range = PRESETS.some((p) => p.value === params.get('range')) ? params.get('range') : (extra.range || '30d');
  return {
    range,
    from: params.get('from') || '',
    to: params.get('to') || '',
    width: params.get('width') || '',
    workspaces: list('workspaces'),
    models: list('models'),
    keys: list('keys'),
    group: ['workspace', 'model', 'key'].includes(params.get('group')) ? params.get('group') : '',
  };
}

export function writeState(state) {
  const u = new URL(location.href);
  const set = (k, v) => { if (v && v.length) u.searchParams.set(k, Array.isArray(v) ? v.join(',') : v); else u.searchParams.delete(k); };
  set('range', state.range);
  set('from', state.range === 'custom' ? state.from : '');
  set('to', state.range === 'custom' ? state.to : '');
  set('width', state.width);
  set('workspaces', state.workspaces);
  set('models', state.models);
  set('keys', state.keys);
  set('group', state.group);
  history.replaceState(null, '', u.pathname + u.search);
}

export const GROUPS = [
  { value: '', label: 'None' },
  { value: 'workspace', label: 'Workspace', api: 'workspace_id', field: 'workspace_id' },
  { value: 'model', label: 'Model', api: 'model', field: 'model' },
  { value: 'key', label: 'API key', api: 'api_key_id', field: 'api_key_id' },
];

// The filter toolbar both pages show; `extra` controls go after the date range.
export function filterToolbar(state, lookups, onChange, extra = []) {
  const wsOptions = [...lookups.workspaces.values()].map((w) => ({ value: w.id, label: w.name, color: w.display_color, sub: w.archived_at ? 'Archived' : null }));
  const keyOptions = () => [...lookups.keys.values()].map((k) => ({ value: k.id, label: k.name, sub: k.partial_key_hint }));
  const modelOptions = () => lookups.models.map((m) => ({ value: m, label: m }));
  const ws = multiSelect({ id: 'filter-workspaces', label: 'Workspaces', allLabel: 'All workspaces', options: wsOptions, selected: state.workspaces,
    onChange: (v) => { state.workspaces = v; onChange(); } });
  const models = multiSelect({ id: 'filter-models', label: 'Models', allLabel: 'All models', options: modelOptions(), selected: state.models,
    onChange: (v) => { state.models = v; onChange(); } });
  const keys = multiSelect({ id: 'filter-keys', label: 'API keys', allLabel: 'All API keys', options: keyOptions(), selected: state.keys,
    onChange: (v) => { state.keys = v; onChange(); } });
  const group = h('select.input.select.select-sm#filter-group', GROUPS.map((g) => h('option', { value: g.value }, g.label)));
  group.value = state.group;
  group.addEventListener('change', () => { state.group = group.value; onChange(); });
  const el = h('div.toolbar.filters.report-filters', { role: 'group', 'aria-label': 'Report filters' },
    rangeControls(state, onChange),
    extra,
    filter('Workspaces', ws.el, 'filter-workspaces'),
    filter('Models', models.el, 'filter-models'),
    filter('API keys', keys.el, 'filter-keys'),
    filter('Group by', group, 'filter-group'));
  return {
    el,
    // Models and keys seen in a report join the lists (keys the person cannot list by name).
    learn(models2, keys2) {
      let changed = false;
      for (const m of models2) if (m && !lookups.models.includes(m)) { lookups.models.push(m); changed = true; }
      for (const k of keys2) if (k && !lookups.keys.has(k)) { lookups.keys.set(k, { id: k, name: shortKey(k) }); changed = true; }
      if (changed) { models.setOptions(modelOptions()); keys.setOptions(keyOptions()); }
    },
  };
}

// What a group value is called on the page: a workspace's name, a key's name, a model.
export function groupLabel(group, value, lookups) {
  if (value === null || value === undefined) return 'All';
  if (group === 'workspace') { const w = lookups.workspaces.get(value); return w ? w.name : value; }
  if (group === 'key') { const k = lookups.keys.get(value); return k ? k.name : shortKey(value); }
  return value;
}

export function groupColor(group, value, index, lookups) {
  if (group === 'workspace') { const w = lookups.workspaces.get(value); if (w && w.display_color) return w.display_color; }
  return SERIES_COLORS[index % SERIES_COLORS.length];
}

// Fills a report table newest first: the first `cap` rows, then a button that shows the
// rest. Returns the table's element with the button under it.
export function fillTable(table, rows, cells, cap = 40) {
  // Rows come in period order, groups in order within a period: reverse the periods only.
  const periods = [];
  for (const r of rows) {
    if (!periods.length || periods[periods.length - 1][0].bucket !== r.bucket) periods.push([]);
    periods[periods.length - 1].push(r);
  }
  const newest = periods.reverse().flat();
  const add = (list) => { for (const r of list) table.addRow(cells(r)); };
  add(newest.slice(0, cap));
  if (newest.length <= cap) return table.el;
  const more = h('button.btn.btn-secondary.btn-sm', { type: 'button' }, `Show all ${newest.length} rows`);
  const wrap = h('div.load-more', more);
  more.addEventListener('click', () => {
    add(newest.slice(cap));
    wrap.remove();
  });
  return h('div', table.el, wrap);
}

// A stat tile of the summary row.
export function stat(label, value, sub) {
  return h('div.stat', h('div.stat-label', label), h('div.stat-value', value), sub ? h('div.stat-sub', sub) : null);
}

// A download arrow, in the icon style of dom.js.
export function downloadIcon() {
  const ns = 'http://www.w3.org/2000/svg';
  const svgEl = document.createElementNS(ns, 'svg');
  svgEl.setAttribute('viewBox', '0 0 24 24');
  svgEl.setAttribute('class', 'icon');
  svgEl.setAttribute('aria-hidden', 'true');
  svgEl.setAttribute('focusable', 'false');
  const path = document.createElementNS(ns, 'path');
  path.setAttribute('d', 'M12 4v11M7.5 10.5 12 15l4.5-4.5M5 19.5h14');
  svgEl.append(path);
  return svgEl;
}

export function emptyReport(text) {
  return h('div.report-empty', icon('chart', 'icon icon-lg'), h('p.report-empty-title', 'No usage in this period'), h('p.report-empty-text', text));
}
