// Small DOM helpers: build elements without innerHTML (so nothing from the server is ever
// parsed as markup), form fields with their labels and hints wired up, icons, and toasts.

// h('div.card#x', {attrs}, children...): tag with optional .classes and #id. Attributes:
// `class`, `on<event>` functions, booleans (true sets, false/null omits), `dataset`.
export function h(spec, attrs, ...children) {
  if (attrs === null || typeof attrs !== 'object' || attrs instanceof Node || Array.isArray(attrs)) {
    if (attrs !== undefined && attrs !== null) children.unshift(attrs);
    attrs = {};
  }
  const m = /^([a-z0-9-]+)?((?:[.#][\w-]+)*)$/i.exec(spec);
  const el = document.createElement((m && m[1]) || 'div');
  if (m && m[2]) {
    for (const part of m[2].match(/[.#][\w-]+/g)) {
      if (part[0] === '.') el.classList.add(part.slice(1)); else el.id = part.slice(1);
    }
  }
  let value;
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'value') { value = v; continue; }
    if (k === 'class') {
      for (const c of String(v).split(/\s+/)) if (c) el.classList.add(c);
    } else if (k === 'dataset') {
      Object.assign(el.dataset, v);
    } else if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2).toLowerCase(), v);
    } else if (k === 'checked' || k === 'disabled' || k === 'selected') {
      el[k] = true;
      el.setAttribute(k, '');
    } else {
      el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  if (value !== undefined) el.value = value; // after children, so a <select> finds its option
  return el;
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

let uid = 0;
export const nextId = (prefix = 'f') => `${prefix}-${++uid}`;

// A labelled field: returns {wrap, control, error, setError(msg)}. `control` is an element
// built by the caller (input/select); its id, aria-describedby and aria-invalid are managed
// here. options: {label, hint, optional, note}.
export function field(control, { label, hint, optional = false, note } = {}) {
  const id = control.id || nextId('field');
  control.id = id;
  const hintEl = hint ? h('p.field-hint', { id: `${id}-hint` }, hint) : null;
  const noteEl = note ? h('p.field-note', { id: `${id}-note` }, note) : null;
  const errorEl = h('p.field-error', { id: `${id}-error`, hidden: true });
  const described = [hintEl && hintEl.id, noteEl && noteEl.id].filter(Boolean);
  if (described.length) control.setAttribute('aria-describedby', described.join(' '));
  const labelEl = h('label.field-label', { for: id }, label, optional ? h('span.optional', ' (optional)') : null);
  const wrap = h('div.field', labelEl, control, hintEl, noteEl, errorEl);
  const setError = (msg) => {
    errorEl.textContent = msg || '';
    errorEl.hidden = !msg;
    if (msg) {
      control.setAttribute('aria-invalid', 'true');
      control.setAttribute('aria-describedby', [...described, errorEl.id].join(' '));
    } else {
      control.removeAttribute('aria-invalid');
      if (described.length) control.setAttribute('aria-describedby', described.join(' '));
      else control.removeAttribute('aria-describedby');
    }
  };
  return { wrap, control, label: labelEl, error: errorEl, setError };
}

// A message box for a form: role=alert for errors, polite status otherwise.
export function alertBox(kind = 'error') {
  const el = h(`div.alert.alert-${kind}`, { role: kind === 'error' ? 'alert' : 'status', hidden: true });
  return {
    el,
    show(msg, k = kind) {
      el.className = `alert alert-${k}`;
      el.textContent = msg;
      el.hidden = false;
    },
    clear() {
      el.textContent = '';
      el.hidden = true;
    },
  };
}

// Disables a submit button and shows a spinner while `fn` runs.
export async function busy(button, fn) {
  const label = button.dataset.label || button.textContent;
  button.dataset.label = label;
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  button.replaceChildren(h('span.spinner.spinner-sm', { 'aria-hidden': 'true' }), ` ${button.dataset.busyLabel || label}`);
  try {
    return await fn();
  } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
    button.textContent = label;
  }
}

export function toast(message, kind = 'success') {
  const region = document.getElementById('toasts');
  if (!region) return;
  const el = h(`div.toast.toast-${kind}`, icon(kind === 'success' ? 'check' : 'alert'), h('span', message));
  region.append(el);
  setTimeout(() => {
    el.classList.add('toast-leaving');
    setTimeout(() => el.remove(), 300);
  }, 5000);
}

// Stroke icons, 24×24 viewBox, drawn for this console.
const ICONS = {
  home: 'M3 10.5 12 3l9 7.5V20a1 1 0 0 1-1 1h-5v-6h-6v6H4a1 1 0 0 1-1-1z',
  building: 'M4 21V5a1 1 0 0 1 1-1h9a1 1 0 0 1 1 1v16M15 9h4a1 1 0 0 1 1 1v11M2 21h20M8 8h3M8 12h3M8 16h3',
  users: 'M16 20v-1.5a3.5 3.5 0 0 0-3.5-3.5h-5A3.5 3.5 0 0 0 4 18.5V20M10 11a3.5 3.5 0 1 0 0-7 3.5 3.5 0 0 0 0 7M20 20v-1.5a3.5 3.5 0 0 0-2.5-3.35M15.5 4.15a3.5 3.5 0 0 1 0 6.7',
  grid: 'M4 4h6.5v6.5H4zM13.5 4H20v6.5h-6.5zM4 13.5h6.5V20H4zM13.5 13.5H20V20h-6.5z',
  key: 'M8 20a4.5 4.5 0 1 0 0-9 4.5 4.5 0 0 0 0 9M11.2 12.3 20 3.5M16.5 7l2.5 2.5M14 9.5l2 2',
  card: 'M3 6.5A1.5 1.5 0 0 1 4.5 5h15A1.5 1.5 0 0 1 21 6.5v11a1.5 1.5 0 0 1-1.5 1.5h-15A1.5 1.5 0 0 1 3 17.5zM3 10h18M7 15h4',
  gauge: 'M4.5 18a8.5 8.5 0 1 1 15 0M12 13.5l4-4M12 15a1.5 1.5 0 1 0 0-3 1.5 1.5 0 0 0 0 3',
  chart: 'M4 4v16h16M8 16v-4M12 16V8M16 16v-6',
  coins: 'M12 3v18M16.5 7.5A3.5 3 0 0 0 12 6c-2.2 0-4 1.1-4 2.8 0 3.9 8.5 2.4 8.5 6.4 0 1.7-1.9 2.8-4.5 2.8a4.6 4.6 0 0 1-4.5-1.8',
  menu: 'M4 6h16M4 12h16M4 18h16',
  close: 'M6 6l12 12M18 6 6 18',
  chevron: 'M6 9l6 6 6-6',
  check: 'M5 12.5 10 17l9-10',
  plus: 'M12 5v14M5 12h14',
  alert: 'M12 8v5M12 16.5h.01M10.3 3.9 2.4 18a2 2 0 0 0 1.7 3h15.8a2 2 0 0 0 1.7-3L13.7 3.9a2 2 0 0 0-3.4 0',
  mail: 'M3 6.5A1.5 1.5 0 0 1 4.5 5h15A1.5 1.5 0 0 1 21 6.5v11a1.5 1.5 0 0 1-1.5 1.5h-15A1.5 1.5 0 0 1 3 17.5zM3.5 6l8.5 7 8.5-7',
  signout: 'M15 4h3a2 2 0 0 1 2 2v12a2 2 0 0 1-2 2h-3M10 16l-4-4 4-4M6 12h10',
  arrow: 'M5 12h14M13 6l6 6-6 6',
  lock: 'M6 11h12v9H6zM8.5 11V8a3.5 3.5 0 0 1 7 0v3',
};

export function icon(name, cls = 'icon') {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('class', cls);
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  const path = document.createElementNS(ns, 'path');
  path.setAttribute('d', ICONS[name] || ICONS.alert);
  svg.append(path);
  return svg;
}

// The product mark: the first letter of the operator's product name in a rounded square.
export function brandMark(name) {
  return h('span.brand-mark', { 'aria-hidden': 'true' }, (name || 'G').trim().charAt(0).toUpperCase() || 'G');
}
