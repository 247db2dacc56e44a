// /settings/usage: token consumption over a date range, in buckets of a minute, an hour or a
// day, filtered by workspace, model and API key and grouped by one of them
// (GET /v1/organizations/usage_report/messages). A stacked bar chart, totals, a table of the
// numbers and a CSV of them. Users and developers see the workspaces they reach; the server
// enforces it.
import { h, setChildren, loadingBlock, errorBlock, dataTable, colorDot } from '../dom.js';
import { barChart } from '../chart.js';
import {
  USAGE_REPORT, WIDTH_LABELS, rangeFor, allowedWidths, defaultWidth, fetchReport, formatInt, compact, bucketLabel,
  bucketTitle, toCsv, download, filter, loadLookups, readState, writeState, GROUPS, filterToolbar, groupLabel,
  groupColor, stat, emptyReport, OTHER_COLOR, isoDate, downloadIcon, fillTable,
} from '../reports.js';

const TYPES = [
  { key: 'input', name: 'Input', color: '#4E8FD4', read: (r) => r.uncached_input_tokens },
  { key: 'cache_write', name: 'Cache writes', color: '#C48A2C', read: (r) => r.cache_creation.ephemeral_5m_input_tokens + r.cache_creation.ephemeral_1h_input_tokens },
  { key: 'cache_read', name: 'Cache reads', color: '#3F9A6E', read: (r) => r.cache_read_input_tokens },
  { key: 'output', name: 'Output', color: '#C15F3C', read: (r) => r.output_tokens },
];
const MAX_SERIES = 8; // groups drawn one by one; the rest are summed as "Other"

export function render(ctx) {
  const state = readState(ctx.params, { range: '7d' });
  const exportButton = h('button.btn.btn-secondary', { type: 'button', disabled: true }, downloadIcon(), h('span', 'Export CSV'));
  const toolbarSlot = h('div', loadingBlock('Loading filters…'));
  const summary = h('div.stats', { 'aria-live': 'polite' });
  const chartSlot = h('div.card-section.chart-section');
  const tableSlot = h('div.card-section');
  const page = h('div.page.page-wide',
    h('header.page-header',
      h('div',
        h('h1.page-title', 'Usage'),
        h('p.page-lead', 'Tokens your API keys consumed, by period. Times are in UTC.')),
      exportButton),
    h('section.card', { 'aria-label': 'Filters' }, toolbarSlot),
    summary,
    h('section.card', { 'aria-labelledby': 'usage-chart-title' },
      h('div.card-header', h('h2.card-title#usage-chart-title', 'Tokens over time')),
      chartSlot),
    h('section.card', { 'aria-labelledby': 'usage-table-title' },
      h('div.card-header', h('h2.card-title#usage-table-title', 'Breakdown')),
      tableSlot));

  let lookups = null;
  let toolbar = null;
  let chart = null;
  let seq = 0;
  let csv = null;
  const widthSelect = h('select.input.select.select-sm#filter-width');

  exportButton.addEventListener('click', () => { if (csv) download(csv.name, csv.text); });

  // The bucket widths offered follow the range; a width that no longer fits is replaced.
  function syncWidths(range) {
    const allowed = allowedWidths(range);
    if (!allowed.includes(state.width)) state.width = allowed.includes(defaultWidth(range)) ? defaultWidth(range) : allowed[allowed.length - 1];
    setChildren(widthSelect, ['1m', '1h', '1d'].map((w) => h('option', { value: w, disabled: !allowed.includes(w) }, WIDTH_LABELS[w])));
    widthSelect.value = state.width;
  }
  widthSelect.addEventListener('change', () => { state.width = widthSelect.value; refresh('width'); });

  // A new date range gets the granularity that suits it (hours for a day, days otherwise).
  async function refresh(reason) {
    const my = ++seq;
    if (reason === 'range') state.width = '';
    const range = rangeFor(state.range, state.from, state.to);
    if (!range) {
      setChildren(chartSlot, errorBlock('Choose a start date on or before the end date.'));
      return;
    }
    syncWidths(range);
    writeState(state);
    exportButton.disabled = true;
    chartSlot.replaceChildren(loadingBlock('Loading usage…'));
    const g = GROUPS.find((x) => x.value === state.group);
    let data;
    try {
      data = await fetchReport(USAGE_REPORT, {
        range, width: state.width, groupBy: g.api ? [g.api] : [], workspaces: state.workspaces, models: state.models, keys: state.keys,
      }, ctx.signal);
    } catch (e) {
      if (my !== seq || (e && e.name === 'AbortError')) return;
      setChildren(chartSlot, errorBlock(e.message, () => refresh()));
      tableSlot.replaceChildren();
      summary.replaceChildren();
      return;
    }
    if (my !== seq || ctx.stale()) return;
    toolbar.learn(data.flatMap((b) => b.results.map((r) => r.model)), data.flatMap((b) => b.results.map((r) => r.api_key_id)));
    show(data, g, range);
  }

  function show(data, g, range) {
    const rows = []; // {bucket, group, values[4]}
    const groupTotals = new Map();
    const byLabel = (x, y) => String(groupLabel(state.group, x.group, lookups)).localeCompare(groupLabel(state.group, y.group, lookups));
    for (const b of data) {
      const inBucket = b.results.map((r) => ({ bucket: b, group: g.field ? r[g.field] : null, values: TYPES.map((t) => t.read(r)) }));
      for (const r of inBucket.sort(byLabel)) {
        rows.push(r);
        groupTotals.set(r.group, (groupTotals.get(r.group) || 0) + r.values.reduce((a, v) => a + v, 0));
      }
    }
    const totals = TYPES.map((_, i) => rows.reduce((a, r) => a + r.values[i], 0));
    const all = totals.reduce((a, v) => a + v, 0);

    summary.replaceChildren(
      stat('Total tokens', formatInt(all), `${rangeText(range)}`),
      ...TYPES.map((t, i) => stat(t.name, formatInt(totals[i]), all ? `${((totals[i] / all) * 100).toFixed(1)}%` : '—')));

    if (chart) chart.destroy();
    chart = null;
    if (!rows.length) {
      chartSlot.replaceChildren(emptyReport('Calls made with your API keys in this period will show here. Try a longer date range or fewer filters.'));
    } else {
      // Series: token types, or the biggest groups (and "Other").
      let series;
      let valuesOf;
      if (!g.field) {
        series = TYPES.map((t) => ({ name: t.name, color: t.color }));
        valuesOf = (b) => TYPES.map((_, i) => b.results.reduce((a, r) => a + TYPES[i].read(r), 0));
      } else {
        const ranked = [...groupTotals.entries()].sort((a, b) => b[1] - a[1]).map(([v]) => v);
        const shown = ranked.slice(0, ranked.length > MAX_SERIES ? MAX_SERIES - 1 : MAX_SERIES);
        series = shown.map((v, i) => ({ name: groupLabel(state.group, v, lookups), color: groupColor(state.group, v, i, lookups) }));
        if (ranked.length > shown.length) series.push({ name: `Other (${ranked.length - shown.length})`, color: OTHER_COLOR });
        valuesOf = (b) => {
          const out = new Array(series.length).fill(0);
          for (const r of b.results) {
            const i = shown.indexOf(r[g.field]);
            out[i >= 0 ? i : series.length - 1] += TYPES.reduce((a, t) => a + t.read(r), 0);
          }
          return out;
        };
      }
      chart = barChart({
        label: `Tokens per ${WIDTH_LABELS[state.width].toLowerCase()}${g.field ? ` by ${g.label.toLowerCase()}` : ' by token type'}`,
        buckets: data.map((b) => ({ label: bucketLabel(b.starting_at, state.width), sub: bucketTitle(b.starting_at, state.width), values: valuesOf(b) })),
        series,
        format: (v) => `${formatInt(v)} tokens`,
        formatAxis: compact,
      });
      chartSlot.replaceChildren(chart.el);
    }

    // The table: one row per period (and group) with usage, newest first, and the totals.
    const columns = [{ label: 'Period', className: 'col-primary' }];
    if (g.field) columns.push({ label: g.label });
    for (const t of TYPES) columns.push({ label: t.name, className: 'col-num-right' });
    columns.push({ label: 'Total', className: 'col-num-right' });
    const table = dataTable({ label: 'Usage by period', columns });
    if (rows.length) {
      table.table.append(h('tfoot', h('tr',
        h('th', { scope: 'row', colspan: g.field ? '2' : '1' }, 'Total'),
        totals.map((v) => h('td.col-num-right', formatInt(v))),
        h('td.col-num-right', h('strong', formatInt(all))))));
      tableSlot.replaceChildren(fillTable(table, rows, (r) => {
        const cells = [h('time', { datetime: r.bucket.starting_at }, bucketTitle(r.bucket.starting_at, state.width))];
        if (g.field) cells.push(groupCell(state.group, r.group));
        for (const v of r.values) cells.push(formatInt(v));
        cells.push(h('strong', formatInt(r.values.reduce((a, v) => a + v, 0))));
        return cells;
      }));
    } else {
      tableSlot.replaceChildren(h('p.empty-inline', 'No usage in this period.'));
    }

    // The CSV: the table's rows, with ids next to names.
    const head = ['period_start', 'period_end'];
    if (g.field) head.push(g.api, `${g.value}_name`);
    head.push('uncached_input_tokens', 'cache_creation_input_tokens', 'cache_read_input_tokens', 'output_tokens', 'total_tokens');
    const lines = [head];
    for (const r of rows) {
      const line = [r.bucket.starting_at, r.bucket.ending_at];
      if (g.field) line.push(r.group ?? '', groupLabel(state.group, r.group, lookups));
      line.push(...r.values, r.values.reduce((a, v) => a + v, 0));
      lines.push(line);
    }
    csv = { name: `usage-${isoDate(range.start)}-to-${isoDate(range.end - 1)}-${state.width}${g.value ? `-by-${g.value}` : ''}.csv`, text: toCsv(lines) };
    exportButton.disabled = false;
  }

  function groupCell(group, value) {
    if (group === 'workspace') {
      const w = lookups.workspaces.get(value);
      return h('span.workspace-label', colorDot(w && w.display_color), h('span', groupLabel(group, value, lookups)));
    }
    if (group === 'model') return h('code.model-name', value);
    return h('span', { title: value }, groupLabel(group, value, lookups));
  }

  (async () => {
    try {
      lookups = await loadLookups(ctx.signal);
    } catch (e) {
      if (e && e.name === 'AbortError') return;
      toolbarSlot.replaceChildren(errorBlock(e.message, () => location.reload()));
      return;
    }
    if (ctx.stale()) return;
    toolbar = filterToolbar(state, lookups, refresh, [filter('Granularity', widthSelect, 'filter-width')]);
    toolbarSlot.replaceChildren(toolbar.el);
    refresh();
  })();
  return page;
}

function rangeText(range) {
  const fmt = new Intl.DateTimeFormat('en-US', { timeZone: 'UTC', month: 'short', day: 'numeric' });
  const a = fmt.format(new Date(range.start));
  const b = fmt.format(new Date(range.end - 1));
  return a === b ? a : `${a} – ${b}`;
}
