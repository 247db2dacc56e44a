// /settings/cost: what API usage cost, per day (GET /v1/organizations/cost_report), with the
// Usage page's filters and grouping, the month-to-date total, a stacked chart, a table and a
// CSV. Amounts arrive as exact cent strings and are added up as BigInt nano-dollars. Only
// admins and billing members may see costs.
import { h, icon, loadingBlock, errorBlock, dataTable, colorDot } from '../dom.js';
import { barChart } from '../chart.js';
import { myRole } from '../roles.js';
import {
  COST_REPORT, rangeFor, fetchReport, bucketLabel, bucketTitle, toCsv, download, loadLookups, readState, writeState,
  GROUPS, filterToolbar, groupLabel, groupColor, stat, emptyReport, OTHER_COLOR, isoDate, downloadIcon, centsToNusd,
  usdExact, formatUsd, nusdToNumber, fillTable,
} from '../reports.js';

const TYPES = [
  { type: 'uncached_input_tokens', name: 'Input', color: '#4E8FD4' },
  { type: 'cache_creation.ephemeral_5m_input_tokens', name: 'Cache writes', color: '#C48A2C' },
  { type: 'cache_read_input_tokens', name: 'Cache reads', color: '#3F9A6E' },
  { type: 'output_tokens', name: 'Output', color: '#C15F3C' },
];
const MAX_SERIES = 8;
const DAY = 86400e3;

export function render(ctx) {
  const role = myRole(ctx.session);
  if (role !== 'admin' && role !== 'billing') return noAccess(role);

  const state = readState(ctx.params, { range: 'month' });
  const exportButton = h('button.btn.btn-secondary', { type: 'button', disabled: true }, downloadIcon(), h('span', 'Export CSV'));
  const toolbarSlot = h('div', loadingBlock('Loading filters…'));
  const summary = h('div.stats', { 'aria-live': 'polite' });
  const mtd = { el: h('span', '…'), sub: h('span', 'All workspaces, since the 1st (UTC)') };
  const chartSlot = h('div.card-section.chart-section');
  const tableSlot = h('div.card-section');
  const page = h('div.page.page-wide',
    h('header.page-header',
      h('div',
        h('h1.page-title', 'Cost'),
        h('p.page-lead', 'What your API usage cost, per day, in US dollars. Days are UTC days.')),
      exportButton),
    h('section.card', { 'aria-label': 'Filters' }, toolbarSlot),
    summary,
    h('section.card', { 'aria-labelledby': 'cost-chart-title' },
      h('div.card-header', h('h2.card-title#cost-chart-title', 'Cost per day')),
      chartSlot),
    h('section.card', { 'aria-labelledby': 'cost-table-title' },
      h('div.card-header', h('h2.card-title#cost-table-title', 'Breakdown')),
      tableSlot));

  let lookups = null;
  let toolbar = null;
  let chart = null;
  let seq = 0;
  let csv = null;
  let monthToDate = null; // BigInt, once known
  exportButton.addEventListener('click', () => { if (csv) download(csv.name, csv.text); });

  // The month-to-date total: every workspace, from the 1st of this month (UTC) until now.
  async function loadMonthToDate() {
    try {
      const data = await fetchReport(COST_REPORT, { range: rangeFor('month') }, ctx.signal);
      monthToDate = data.flatMap((b) => b.results).reduce((a, r) => a + centsToNusd(r.amount), 0n);
      mtd.el.textContent = formatUsd(monthToDate);
      mtd.el.title = `$${usdExact(monthToDate)}`;
    } catch (e) {
      if (e && e.name === 'AbortError') return;
      mtd.el.textContent = '—';
      mtd.sub.textContent = e.message;
    }
  }

  async function refresh() {
    const my = ++seq;
    const range = rangeFor(state.range, state.from, state.to);
    if (!range) {
      chartSlot.replaceChildren(errorBlock('Choose a start date on or before the end date.'));
      return;
    }
    state.width = '';
    writeState(state);
    exportButton.disabled = true;
    chartSlot.replaceChildren(loadingBlock('Loading costs…'));
    const g = GROUPS.find((x) => x.value === state.group);
    let data;
    try {
      data = await fetchReport(COST_REPORT, {
        range, groupBy: g.api ? ['description', g.api] : ['description'], workspaces: state.workspaces, models: state.models, keys: state.keys,
      }, ctx.signal);
    } catch (e) {
      if (my !== seq || (e && e.name === 'AbortError')) return;
      chartSlot.replaceChildren(errorBlock(e.message, () => refresh()));
      tableSlot.replaceChildren();
      return;
    }
    if (my !== seq || ctx.stale()) return;
    toolbar.learn(data.flatMap((b) => b.results.map((r) => r.model)), data.flatMap((b) => b.results.map((r) => r.api_key_id)));
    show(data, g, range);
  }

  function show(data, g, range) {
    // Rows: per day and group, the cost of each token type (BigInt nano-USD).
    const rows = [];
    const groupTotals = new Map();
    for (const b of data) {
      const byGroup = new Map();
      for (const r of b.results) {
        const value = g.field ? r[g.field] : null;
        if (!byGroup.has(value)) byGroup.set(value, TYPES.map(() => 0n));
        const i = TYPES.findIndex((t) => t.type === r.token_type);
        byGroup.get(value)[i >= 0 ? i : 0] += centsToNusd(r.amount);
      }
      const sorted = [...byGroup.entries()].sort((x, y) => String(groupLabel(state.group, x[0], lookups)).localeCompare(groupLabel(state.group, y[0], lookups)));
      for (const [value, values] of sorted) {
        rows.push({ bucket: b, group: value, values });
        groupTotals.set(value, (groupTotals.get(value) || 0n) + values.reduce((a, v) => a + v, 0n));
      }
    }
    const totals = TYPES.map((_, i) => rows.reduce((a, r) => a + r.values[i], 0n));
    const all = totals.reduce((a, v) => a + v, 0n);
    const days = Math.max(1, Math.ceil((range.end - range.start) / DAY));

    summary.replaceChildren(
      h('div.stat.stat-accent', h('div.stat-label', 'Month to date'), h('div.stat-value', mtd.el), h('div.stat-sub', mtd.sub)),
      statUsd('Selected period', all, rangeText(range)),
      statUsd('Average per day', all / BigInt(days), `${days} day${days === 1 ? '' : 's'}`),
      ...TYPES.filter((_, i) => totals[i] > 0n || i === 0 || i === 3).map((t) => statUsd(t.name, totals[TYPES.indexOf(t)], null)));

    if (chart) chart.destroy();
    chart = null;
    if (!rows.length) {
      chartSlot.replaceChildren(emptyReport('Costs of calls made with your API keys will show here. Try a longer date range or fewer filters.'));
    } else {
      let series;
      let valuesOf;
      if (!g.field) {
        series = TYPES.map((t) => ({ name: t.name, color: t.color }));
        valuesOf = (dayRows) => TYPES.map((_, i) => nusdToNumber(dayRows.reduce((a, r) => a + r.values[i], 0n)));
      } else {
        const ranked = [...groupTotals.entries()].sort((a, b) => (b[1] > a[1] ? 1 : b[1] < a[1] ? -1 : 0)).map(([v]) => v);
        const shown = ranked.slice(0, ranked.length > MAX_SERIES ? MAX_SERIES - 1 : MAX_SERIES);
        series = shown.map((v, i) => ({ name: groupLabel(state.group, v, lookups), color: groupColor(state.group, v, i, lookups) }));
        if (ranked.length > shown.length) series.push({ name: `Other (${ranked.length - shown.length})`, color: OTHER_COLOR });
        valuesOf = (dayRows) => {
          const out = new Array(series.length).fill(0n);
          for (const r of dayRows) {
            const i = shown.indexOf(r.group);
            out[i >= 0 ? i : series.length - 1] += r.values.reduce((a, v) => a + v, 0n);
          }
          return out.map(nusdToNumber);
        };
      }
      chart = barChart({
        label: `Cost per day${g.field ? ` by ${g.label.toLowerCase()}` : ' by token type'}`,
        buckets: data.map((b) => ({
          label: bucketLabel(b.starting_at, '1d'), sub: bucketTitle(b.starting_at, '1d'),
          values: valuesOf(rows.filter((r) => r.bucket === b)),
        })),
        series,
        format: (v) => formatUsd(BigInt(Math.round(v * 1e9))),
        formatAxis: axisUsd,
      });
      chartSlot.replaceChildren(chart.el);
    }

    const columns = [{ label: 'Day', className: 'col-primary' }];
    if (g.field) columns.push({ label: g.label });
    for (const t of TYPES) columns.push({ label: t.name, className: 'col-num-right' });
    columns.push({ label: 'Total', className: 'col-num-right' });
    const table = dataTable({ label: 'Cost by day', columns });
    if (rows.length) {
      table.table.append(h('tfoot', h('tr',
        h('th', { scope: 'row', colspan: g.field ? '2' : '1' }, 'Total'),
        totals.map((v) => h('td.col-num-right', money(v))),
        h('td.col-num-right', h('strong', money(all))))));
      tableSlot.replaceChildren(fillTable(table, rows, (r) => {
        const cells = [h('time', { datetime: r.bucket.starting_at }, bucketTitle(r.bucket.starting_at, '1d'))];
        if (g.field) cells.push(groupCell(state.group, r.group));
        for (const v of r.values) cells.push(money(v));
        cells.push(h('strong', money(r.values.reduce((a, v) => a + v, 0n))));
        return cells;
      }));
    } else {
      tableSlot.replaceChildren(h('p.empty-inline', 'No costs in this period.'));
    }

    // The CSV holds exact amounts in dollars (nine decimals at most).
    const head = ['date'];
    if (g.field) head.push(g.api, `${g.value}_name`);
    head.push('input_usd', 'cache_write_usd', 'cache_read_usd', 'output_usd', 'total_usd');
    const lines = [head];
    for (const r of rows) {
      const line = [r.bucket.starting_at.slice(0, 10)];
      if (g.field) line.push(r.group ?? '', groupLabel(state.group, r.group, lookups));
      line.push(...r.values.map(usdExact), usdExact(r.values.reduce((a, v) => a + v, 0n)));
      lines.push(line);
    }
    csv = { name: `cost-${isoDate(range.start)}-to-${isoDate(range.end - 1)}${g.value ? `-by-${g.value}` : ''}.csv`, text: toCsv(lines) };
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
    toolbar = filterToolbar(state, lookups, refresh);
    toolbarSlot.replaceChildren(toolbar.el);
    loadMonthToDate();
    refresh();
  })();
  return page;
}

const money = (nusd) => h('span', { title: `$${usdExact(nusd)}` }, formatUsd(nusd));

function statUsd(label, nusd, sub) {
  const s = stat(label, formatUsd(nusd), sub);
  s.querySelector('.stat-value').title = `$${usdExact(nusd)}`;
  return s;
}

function axisUsd(v) {
  if (v === 0) return '$0';
  if (v >= 1000) return `$${+(v / 1000).toFixed(1)}K`;
  if (v >= 1) return `$${+v.toFixed(2)}`;
  return `$${+v.toPrecision(2)}`;
}

function rangeText(range) {
  const fmt = new Intl.DateTimeFormat('en-US', { timeZone: 'UTC', month: 'short', day: 'numeric' });
  const a = fmt.format(new Date(range.start));
  const b = fmt.format(new Date(range.end - 1));
  return a === b ? a : `${a} – ${b}`;
}

function noAccess(role) {
  return h('div.page',
    h('header.page-header', h('div', h('h1.page-title', 'Cost'))),
    h('section.card.empty-state', { 'aria-labelledby': 'cost-denied' },
      h('div.empty-icon', icon('lock', 'icon icon-lg')),
      h('h2.empty-title#cost-denied', 'Costs are visible to admins and billing members'),
      h('p.empty-text', `Your role is ${role === 'developer' ? 'Developer' : 'User'}. You can still see how many tokens your workspaces use on the Usage page.`),
      h('a.btn.btn-secondary', { href: '/settings/usage' }, 'Go to Usage')));
}
