// A small stacked bar chart in SVG, drawn here (no chart library): y axis with round ticks
// and grid lines, x axis labels spaced to fit, a legend, and a tooltip for the bucket under
// the pointer or under keyboard focus (arrow keys, Home, End), announced to screen readers.
// The numbers themselves are in the table each page shows under its chart.
//
// barChart({label, buckets, series, format, formatAxis, bucketLabel}):
//   buckets: [{label, sub, values: [n per series]}]  (values are numbers, already in display
//            units; stacking order is the series order, first at the bottom)
//   series:  [{name, color}]
//   format(v):      the tooltip's text for a value
//   formatAxis(v):  the y axis' text for a tick
// Returns {el, destroy()}. It redraws itself when its width changes.
import { h } from './dom.js';

const NS = 'http://www.w3.org/2000/svg';
const HEIGHT = 260;
const PAD = { top: 12, right: 12, bottom: 28, left: 56 };

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) el.setAttribute(k, String(v));
  for (const c of children.flat()) if (c) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

// Round tick values from 0 to at least `max`: steps of 1, 2 or 5 × 10^n.
export function niceTicks(max, count = 4) {
  if (!(max > 0)) return [0, 1];
  const raw = max / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) || 10 * mag;
  const ticks = [];
  for (let v = 0; v < max + step * 0.999; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks.length > 1 ? ticks : [0, step];
}

export function barChart({ label, buckets, series, format, formatAxis }) {
  const svgHost = h('div.chart-plot');
  const tooltip = h('div.chart-tooltip', { hidden: true, 'aria-hidden': 'true' });
  const live = h('div.visually-hidden', { 'aria-live': 'polite' });
  const legend = h('ul.chart-legend', { 'aria-label': 'Legend' },
    series.map((s) => h('li.chart-legend-item', swatch(s.color), h('span', s.name))));
  const frame = h('div.chart-frame', {
    tabindex: '0', role: 'group',
    'aria-label': `${label}. Use the left and right arrow keys to read each period.`,
  }, svgHost, tooltip);
  const el = h('figure.chart', frame, legend, live);

  let active = -1;
  let geometry = null;

  function draw() {
    const width = Math.max(320, svgHost.clientWidth || 640);
    const plotW = width - PAD.left - PAD.right;
    const plotH = HEIGHT - PAD.top - PAD.bottom;
    const totals = buckets.map((b) => b.values.reduce((a, v) => a + v, 0));
    const ticks = niceTicks(Math.max(0, ...totals));
    const top = ticks[ticks.length - 1] || 1;
    const y = (v) => PAD.top + plotH - (v / top) * plotH;
    const slot = plotW / Math.max(1, buckets.length);
    const barW = Math.max(1, Math.min(48, slot * (slot > 6 ? 0.72 : 0.9)));

    const root = svg('svg', { width, height: HEIGHT, viewBox: `0 0 ${width} ${HEIGHT}`, class: 'chart-svg', 'aria-hidden': 'true', focusable: 'false' });
    // Grid and y axis.
    for (const t of ticks) {
      root.append(svg('line', { x1: PAD.left, x2: width - PAD.right, y1: y(t), y2: y(t), class: t === 0 ? 'chart-axis' : 'chart-grid' }));
      root.append(svg('text', { x: PAD.left - 8, y: y(t) + 4, 'text-anchor': 'end', class: 'chart-tick' }, formatAxis(t)));
    }
    // Bars, stacked in series order.
    const hl = svg('rect', { class: 'chart-hover', x: 0, y: PAD.top, width: slot, height: plotH, visibility: 'hidden' });
    root.append(hl);
    buckets.forEach((b, i) => {
      let acc = 0;
      const x = PAD.left + i * slot + (slot - barW) / 2;
      b.values.forEach((v, si) => {
        if (!(v > 0)) return;
        const y0 = y(acc);
        acc += v;
        const y1 = y(acc);
        root.append(svg('rect', { x, y: y1, width: barW, height: Math.max(0.5, y0 - y1), fill: series[si].color, class: 'chart-bar' }));
      });
    });
    // X labels: as many as fit without overlapping, evenly spaced.
    const every = Math.max(1, Math.ceil(buckets.length / Math.max(1, Math.floor(plotW / 84))));
    buckets.forEach((b, i) => {
      if (i % every !== 0) return;
      root.append(svg('text', { x: PAD.left + i * slot + slot / 2, y: HEIGHT - 8, 'text-anchor': 'middle', class: 'chart-tick' }, b.label));
    });
    svgHost.replaceChildren(root);
    geometry = { width, slot, hl };
    if (active >= 0) show(active, false);
  }

  function show(i, announce) {
    if (!geometry || i < 0 || i >= buckets.length) return;
    active = i;
    const b = buckets[i];
    const { slot, hl, width } = geometry;
    hl.setAttribute('x', String(PAD.left + i * slot));
    hl.setAttribute('width', String(slot));
    hl.setAttribute('visibility', 'visible');
    const total = b.values.reduce((a, v) => a + v, 0);
    const rows = series.map((s, si) => [s, b.values[si]]).filter(([, v]) => v > 0).reverse();
    tooltip.replaceChildren(
      h('div.chart-tooltip-title', b.sub || b.label),
      rows.length
        ? h('ul.chart-tooltip-rows', rows.map(([s, v]) => h('li', swatch(s.color), h('span.chart-tooltip-name', s.name), h('span.chart-tooltip-value', format(v)))))
        : h('div.chart-tooltip-empty', 'No usage'),
      rows.length > 1 ? h('div.chart-tooltip-total', h('span', 'Total'), h('span', format(total))) : null);
    tooltip.hidden = false;
    const cx = PAD.left + i * slot + slot / 2;
    // Beside the bar, on the right unless that runs out of room.
    const tw = tooltip.offsetWidth;
    let left = cx + 14;
    if (left + tw > width - 4) left = Math.max(4, cx - tw - 14);
    tooltip.style.left = `${left}px`;
    tooltip.style.top = `${PAD.top}px`;
    if (announce) live.textContent = `${b.sub || b.label}: ${rows.length ? rows.map(([s, v]) => `${s.name} ${format(v)}`).join(', ') : 'no usage'}.`;
  }

  function hide() {
    active = -1;
    tooltip.hidden = true;
    if (geometry) geometry.hl.setAttribute('visibility', 'hidden');
  }

  frame.addEventListener('pointermove', (ev) => {
    if (!geometry) return;
    const r = svgHost.getBoundingClientRect();
    const i = Math.floor((ev.clientX - r.left - PAD.left) / geometry.slot);
    if (i >= 0 && i < buckets.length) show(i, false); else hide();
  });
  frame.addEventListener('pointerleave', () => { if (document.activeElement !== frame) hide(); });
  frame.addEventListener('focus', () => show(active >= 0 ? active : buckets.length - 1, true));
  frame.addEventListener('blur', hide);
  frame.addEventListener('keydown', (ev) => {
    const moves = { ArrowRight: 1, ArrowLeft: -1 };
    let i = null;
    if (ev.key in moves) i = Math.min(buckets.length - 1, Math.max(0, (active < 0 ? buckets.length - 1 : active) + moves[ev.key]));
    else if (ev.key === 'Home') i = 0;
    else if (ev.key === 'End') i = buckets.length - 1;
    if (i === null) return;
    ev.preventDefault();
    show(i, true);
  });

  const ro = new ResizeObserver(() => {
    if (!geometry || Math.abs((svgHost.clientWidth || 0) - geometry.width) > 2) draw();
  });
  ro.observe(svgHost);
  requestAnimationFrame(draw);
  return { el, destroy: () => ro.disconnect() };
}

function swatch(color) {
  const s = h('span.chart-swatch', { 'aria-hidden': 'true' });
  s.style.backgroundColor = color;
  return s;
}
