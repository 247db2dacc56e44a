// Dates as people read them, in their own locale and time zone, inside <time> elements that
// keep the exact instant (datetime attribute, and the full timestamp as a tooltip).
import { h } from './dom.js';

const valid = (iso) => {
  const d = iso ? new Date(iso) : null;
  return d && !Number.isNaN(d.getTime()) ? d : null;
};

export function formatDate(iso) {
  const d = valid(iso);
  return d ? d.toLocaleDateString(undefined, { dateStyle: 'medium' }) : '—';
}

export function formatDateTime(iso) {
  const d = valid(iso);
  return d ? d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' }) : '—';
}

// <time> for `iso`; `fallback` when it is null (e.g. "Never").
export function timeEl(iso, { withTime = false, fallback = '—' } = {}) {
  const d = valid(iso);
  if (!d) return h('span.muted', fallback);
  return h('time', { datetime: iso, title: d.toLocaleString(undefined, { dateStyle: 'full', timeStyle: 'long' }) },
    withTime ? formatDateTime(iso) : formatDate(iso));
}
