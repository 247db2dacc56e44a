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

// Replaces the children of `el`, skipping null/false entries (replaceChildren would print them).
export function setChildren(el, ...children) {
  el.replaceChildren();
  return append(el, children);
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
  // An error is about what was there when it was checked: editing the field clears it.
  const clearOnEdit = () => { if (!errorEl.hidden) setError(null); };
  control.addEventListener('input', clearOnEdit);
  control.addEventListener('change', clearOnEdit);
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

// A "Copy" button for `getText()` (a code sample, an id): says "Copied" for a moment, and when
// the clipboard is refused selects `selectTarget` (if given) so Ctrl+C works.
export function copyButton(getText, { label = 'Copy', selectTarget = null, cls = 'btn btn-secondary btn-sm copy-button' } = {}) {
  const b = h('button', { type: 'button', class: cls }, icon('copy'), h('span', label));
  const status = h('span.visually-hidden', { role: 'status', 'aria-live': 'polite' });
  b.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(getText());
      b.replaceChildren(icon('check'), h('span', 'Copied'));
      status.textContent = 'Copied to the clipboard.';
      setTimeout(() => { if (b.isConnected) b.replaceChildren(icon('copy'), h('span', label)); }, 2000);
    } catch {
      if (selectTarget) {
        const range = document.createRange();
        range.selectNodeContents(selectTarget);
        const sel = window.getSelection();
        sel.removeAllRanges();
        sel.addRange(range);
      }
      status.textContent = 'Could not copy automatically: the text is selected, press Ctrl+C (⌘C) to copy it.';
    }
  });
  return { button: b, status };
}

// A code sample: the code in a scrolling <pre> with a Copy button over its corner.
export function codeSample(codeEl, { label = 'Example code' } = {}) {
  const pre = h('pre.code-pre', { tabindex: '0', 'aria-label': label }, codeEl);
  const copy = copyButton(() => codeEl.textContent, { selectTarget: codeEl, label: 'Copy' });
  copy.button.setAttribute('aria-label', `Copy ${label.toLowerCase()}`);
  return h('div.code-sample', pre, h('div.code-sample-actions', copy.button), copy.status);
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
  more: 'M5 12h.01M12 12h.01M19 12h.01',
  copy: 'M9 9h10.5a.5.5 0 0 1 .5.5V20a1 1 0 0 1-1 1H10a1 1 0 0 1-1-1zM5 15H4.5a.5.5 0 0 1-.5-.5V4a1 1 0 0 1 1-1h9.5a.5.5 0 0 1 .5.5V5',
  list: 'M8 6h12M8 12h12M8 18h12M4 6h.01M4 12h.01M4 18h.01',
  shield: 'M12 3 4.5 6v5.5c0 4.6 3.2 8.3 7.5 9.5 4.3-1.2 7.5-4.9 7.5-9.5V6zM9 12l2 2 4-4',
  back: 'M19 12H5M11 18l-6-6 6-6',
  download: 'M12 4v11M7 10.5l5 5 5-5M5 20h14',
  refresh: 'M20 11a8 8 0 0 0-14.6-4.5L4 8M4 4v4h4M4 13a8 8 0 0 0 14.6 4.5L20 16M20 20v-4h-4',
  clock: 'M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18M12 7.5V12l3 2',
  help: 'M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18M9.5 9.5a2.5 2.5 0 1 1 3.5 2.3c-.6.3-1 .9-1 1.6v.6M12 17h.01',
  terminal: 'M4 5h16a1 1 0 0 1 1 1v12a1 1 0 0 1-1 1H4a1 1 0 0 1-1-1V6a1 1 0 0 1 1-1M7 10l3 2.5L7 15M12.5 15H17',
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

// ---------------------------------------------------------------------------------------
// Dialogs. A modal <dialog> (the rest of the page is inert while it is open) with a title,
// a body and a row of actions. Tab and Shift+Tab stay inside; Escape and the close button
// close it unless it is busy; focus goes back where it was. The element is removed from
// the document when it closes, so nothing shown in it (a secret) stays in the page.

const FOCUSABLE = 'a[href], button:not([disabled]), input:not([disabled]):not([type="hidden"]), select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex="-1"])';

const openDialogs = []; // the stack of open dialogs; only the top one handles keys
const closers = new Map(); // dialog element -> its close function

// Closes every open dialog, busy or not, newest first: the console calls this on every route
// change and when the session ends, so no dialog outlives the page (or the person) it was
// opened for, and nothing can be submitted from it afterwards.
export function closeAllDialogs() {
  for (const el of [...openDialogs].reverse()) {
    const close = closers.get(el);
    if (close) close(undefined, { restoreFocus: false });
  }
}

const focusables = (root) => [...root.querySelectorAll(FOCUSABLE)].filter((el) => !el.closest('[hidden]') && el.getClientRects().length);

// options: {title, lead, body (nodes), actions (nodes), size: 'sm'|'md'|'lg', onClose(result),
// initialFocus (element)}. Returns {el, body, footer, close(result), setBusy(bool), closed}.
// onDismiss(): asked before Escape, the close button or the backdrop close the dialog; it
// returns false to keep it open (the one-time secret warns first).
export function openDialog({ title, lead, body = [], actions = [], size = 'md', onClose, initialFocus, className, onDismiss } = {}) {
  const titleId = nextId('dialog-title');
  const leadId = lead ? nextId('dialog-lead') : null;
  const closeButton = h('button.icon-button.dialog-close', { type: 'button', 'aria-label': 'Close' }, icon('close'));
  const bodyEl = h('div.dialog-body', body);
  const footer = h('div.dialog-footer', actions);
  const el = h(`dialog.dialog.dialog-${size}`, { 'aria-labelledby': titleId, 'aria-describedby': leadId, class: className },
    h('div.dialog-header',
      h('div.dialog-heading',
        h('h2.dialog-title', { id: titleId }, title),
        lead ? h('p.dialog-lead', { id: leadId }, lead) : null),
      closeButton),
    bodyEl,
    actions.length ? footer : null);

  const opener = document.activeElement;
  let busyNow = false;
  let done = false;
  let resolveClosed;
  const closed = new Promise((res) => { resolveClosed = res; });

  function close(result, { restoreFocus = true } = {}) {
    if (done) return;
    done = true;
    document.removeEventListener('keydown', onKey, true);
    openDialogs.splice(openDialogs.indexOf(el), 1);
    closers.delete(el);
    if (el.open) el.close();
    el.remove();
    if (!openDialogs.length) document.body.classList.remove('dialog-open');
    if (!restoreFocus) { /* the page under it is being replaced */ } else if (opener && opener.isConnected && typeof opener.focus === 'function') opener.focus({ preventScroll: true });
    else {
      const h1 = document.querySelector('main h1');
      if (h1) { h1.setAttribute('tabindex', '-1'); h1.focus({ preventScroll: true }); }
    }
    if (onClose) onClose(result);
    resolveClosed(result);
  }
  const dismiss = () => {
    if (busyNow) return;
    if (onDismiss && onDismiss() === false) return;
    close();
  };
  function onKey(ev) {
    if (!el.isConnected || openDialogs[openDialogs.length - 1] !== el) return;
    if (ev.key === 'Escape') {
      ev.preventDefault();
      dismiss();
      return;
    }
    if (ev.key !== 'Tab') return;
    const items = focusables(el);
    if (!items.length) { ev.preventDefault(); return; }
    const first = items[0];
    const last = items[items.length - 1];
    if (ev.shiftKey && (document.activeElement === first || !el.contains(document.activeElement))) {
      ev.preventDefault();
      last.focus();
    } else if (!ev.shiftKey && (document.activeElement === last || !el.contains(document.activeElement))) {
      ev.preventDefault();
      first.focus();
    }
  }
  // The native Escape handling ("cancel") is replaced by ours, which respects `busy`.
  el.addEventListener('cancel', (ev) => ev.preventDefault());
  closeButton.addEventListener('click', dismiss);
  el.addEventListener('mousedown', (ev) => {
    // A press on the backdrop (the dialog element itself, outside its box) closes it.
    if (ev.target !== el || busyNow) return;
    const r = el.getBoundingClientRect();
    const inside = ev.clientX >= r.left && ev.clientX <= r.right && ev.clientY >= r.top && ev.clientY <= r.bottom;
    if (!inside) dismiss();
  });
  document.addEventListener('keydown', onKey, true);

  document.body.append(el);
  openDialogs.push(el);
  closers.set(el, close);
  document.body.classList.add('dialog-open');
  el.showModal();
  const target = initialFocus || el.querySelector('[autofocus]') || focusables(bodyEl)[0] || focusables(footer)[0] || closeButton;
  target.focus();

  return {
    el,
    body: bodyEl,
    footer,
    close,
    closed,
    get isOpen() { return !done; },
    setBusy(b) {
      busyNow = b;
      closeButton.disabled = b;
    },
  };
}

// A dialog holding a form: fields, an error box and Cancel + submit buttons. `onSubmit(ctx)`
// runs with the submit button busy; it may throw ApiError (shown in the dialog, which stays
// open) or return false to stay open. Resolves with onSubmit's result once closed, or
// undefined when cancelled.
export function formDialog({ title, lead, fields = [], submitLabel = 'Save', busyLabel, danger = false, size = 'md', onSubmit }) {
  const formId = nextId('dialog-form');
  const error = alertBox('error');
  const form = h('form.form.dialog-form', { id: formId, novalidate: true }, fields, error.el);
  form.addEventListener('input', () => error.clear());
  const cancel = h('button.btn.btn-ghost', { type: 'button' }, 'Cancel');
  const submit = h(`button.btn.${danger ? 'btn-danger' : 'btn-primary'}`, { type: 'submit', form: formId }, submitLabel);
  if (busyLabel) submit.dataset.busyLabel = busyLabel;
  let result;
  const dlg = openDialog({ title, lead, size, body: [form], actions: [cancel, submit] });
  cancel.addEventListener('click', () => dlg.close());
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (submit.disabled) return;
    error.clear();
    dlg.setBusy(true);
    cancel.disabled = true;
    let ok = false;
    try {
      await busy(submit, async () => {
        try {
          result = await onSubmit({ form, error, dialog: dlg });
          ok = result !== false;
        } catch (e) {
          if (!e || e.name !== 'ApiError') throw e;
          error.show(e.message);
        }
      });
    } finally {
      dlg.setBusy(false);
      cancel.disabled = false;
    }
    if (ok) dlg.close(result);
  });
  return dlg.closed.then(() => result);
}

// Asks before doing something (usually destructive). `onConfirm` runs with the button busy;
// an ApiError keeps the dialog open with the server's message. Resolves true when done.
export function confirmDialog({ title, message, confirmLabel, busyLabel, danger = true, onConfirm }) {
  const error = alertBox('error');
  const cancel = h('button.btn.btn-ghost', { type: 'button' }, 'Cancel');
  const ok = h(`button.btn.${danger ? 'btn-danger' : 'btn-primary'}`, { type: 'button' }, confirmLabel);
  if (busyLabel) ok.dataset.busyLabel = busyLabel;
  const paragraphs = (Array.isArray(message) ? message : [message]).map((m) => (m instanceof Node ? m : h('p.dialog-text', m)));
  const dlg = openDialog({ title, size: 'sm', body: [paragraphs, error.el], actions: [cancel, ok], initialFocus: cancel });
  dlg.el.setAttribute('role', 'alertdialog');
  let confirmed = false;
  cancel.addEventListener('click', () => dlg.close());
  ok.addEventListener('click', async () => {
    error.clear();
    dlg.setBusy(true);
    cancel.disabled = true;
    try {
      await busy(ok, async () => {
        try {
          if (onConfirm) await onConfirm();
          confirmed = true;
        } catch (e) {
          if (!e || e.name !== 'ApiError') throw e;
          error.show(e.message);
        }
      });
    } finally {
      dlg.setBusy(false);
      cancel.disabled = false;
    }
    if (confirmed) dlg.close(true);
  });
  return dlg.closed.then(() => confirmed);
}

// ---------------------------------------------------------------------------------------
// A "…" actions menu: a button (aria-haspopup) and a role=menu list of items, opened below
// the button (above it near the bottom of the window). Arrow keys, Home and End move,
// Escape closes and returns focus, Tab or a click elsewhere closes.
// items: [{label, onSelect, danger}] (falsy entries are skipped).
export function actionMenu({ label, items }) {
  items = items.filter(Boolean);
  const menuId = nextId('menu');
  const button = h('button.icon-button.menu-trigger', {
    type: 'button', 'aria-haspopup': 'menu', 'aria-expanded': 'false', 'aria-controls': menuId, 'aria-label': label, title: label,
  }, icon('more', 'icon icon-more'));
  const entries = items.map((it) => {
    const b = h(`button.menu-item${it.danger ? '.menu-item-danger' : ''}`, { type: 'button', role: 'menuitem', tabindex: '-1' }, h('span', it.label));
    b.addEventListener('click', () => {
      close(false);
      button.focus({ preventScroll: true });
      it.onSelect();
    });
    return b;
  });
  const menu = h('div.menu.action-menu', { id: menuId, role: 'menu', 'aria-label': label, hidden: true }, entries);
  const wrap = h('div.action-menu-wrap', button, menu);

  function place() {
    const r = button.getBoundingClientRect();
    menu.style.minWidth = '180px';
    const mw = menu.offsetWidth;
    const mh = menu.offsetHeight;
    let left = Math.min(r.right - mw, window.innerWidth - mw - 8);
    left = Math.max(8, left);
    let top = r.bottom + 4;
    if (top + mh > window.innerHeight - 8 && r.top - mh - 4 > 8) top = r.top - mh - 4;
    menu.style.left = `${left}px`;
    menu.style.top = `${top}px`;
  }
  function open(index = 0) {
    menu.hidden = false;
    place();
    button.setAttribute('aria-expanded', 'true');
    entries[(index + entries.length) % entries.length].focus();
    document.addEventListener('pointerdown', outside, true);
    window.addEventListener('resize', onMove, true);
    window.addEventListener('scroll', onMove, true);
  }
  function close(refocus) {
    if (menu.hidden) return;
    menu.hidden = true;
    button.setAttribute('aria-expanded', 'false');
    document.removeEventListener('pointerdown', outside, true);
    window.removeEventListener('resize', onMove, true);
    window.removeEventListener('scroll', onMove, true);
    if (refocus) button.focus();
  }
  function outside(ev) { if (!wrap.contains(ev.target)) close(false); }
  function onMove(ev) { if (!(ev && ev.type === 'scroll' && menu.contains(ev.target))) close(false); }
  button.addEventListener('click', () => (menu.hidden ? open() : close(true)));
  button.addEventListener('keydown', (ev) => {
    if (ev.key === 'ArrowDown') { ev.preventDefault(); open(0); }
    if (ev.key === 'ArrowUp') { ev.preventDefault(); open(-1); }
  });
  menu.addEventListener('keydown', (ev) => {
    const i = entries.indexOf(document.activeElement);
    if (ev.key === 'ArrowDown') { ev.preventDefault(); entries[(i + 1) % entries.length].focus(); }
    else if (ev.key === 'ArrowUp') { ev.preventDefault(); entries[(i - 1 + entries.length) % entries.length].focus(); }
    else if (ev.key === 'Home') { ev.preventDefault(); entries[0].focus(); }
    else if (ev.key === 'End') { ev.preventDefault(); entries[entries.length - 1].focus(); }
    else if (ev.key === 'Escape') { ev.preventDefault(); ev.stopPropagation(); close(true); }
    else if (ev.key === 'Tab') close(false);
  });
  return items.length ? wrap : null;
}

// ---------------------------------------------------------------------------------------
// A data table. columns: [{label, className, hideLabel}]; addRow(cells, attrs) takes one entry
// per column (nodes, strings or arrays). On narrow screens each row becomes a card and each
// cell shows its column's label (data-label).
export function dataTable({ label, columns }) {
  const head = h('thead', h('tr', columns.map((c) => h('th', { scope: 'col', class: c.className },
    c.hideLabel ? h('span.visually-hidden', c.label) : c.label))));
  const body = h('tbody');
  const table = h('table.table', { 'aria-label': label }, head, body);
  const wrap = h('div.table-wrap', table);
  return {
    el: wrap,
    table,
    body,
    clear() { body.replaceChildren(); },
    addRow(cells, attrs = {}) {
      const tr = h('tr', attrs, cells.map((content, i) => {
        const c = columns[i] || {};
        return h('td', { class: c.className, dataset: c.hideLabel ? undefined : { label: c.label } }, content);
      }));
      body.append(tr);
      return tr;
    },
  };
}

// A "Load more" button for a paged list. `load(afterId)` fetches one page and shows it,
// returning the page ({has_more, last_id}); errors are shown next to the button.
export function loadMore(load, { label = 'Load more' } = {}) {
  const button = h('button.btn.btn-secondary', { type: 'button' }, label);
  button.dataset.busyLabel = 'Loading…';
  const error = h('p.field-error', { role: 'alert', hidden: true });
  const el = h('div.load-more', { hidden: true }, button, error);
  let cursor = null;
  const set = (page) => {
    cursor = page && page.has_more ? page.last_id : null;
    button.hidden = !cursor;
    el.hidden = !cursor && error.hidden;
  };
  button.addEventListener('click', () => busy(button, async () => {
    error.hidden = true;
    try {
      set(await load(cursor));
    } catch (e) {
      if (!e || e.name !== 'ApiError') throw e;
      error.textContent = `Could not load more. ${e.message}`;
      error.hidden = false;
      el.hidden = false;
    }
  }));
  return { el, set, button };
}

// A workspace colour: a small round swatch (colours go through the CSSOM, which the CSP allows).
export function colorDot(color, cls = 'color-dot') {
  const el = h('span', { class: cls, 'aria-hidden': 'true' });
  if (/^#[0-9a-f]{6}$/i.test(color || '')) el.style.backgroundColor = color;
  return el;
}

// A status pill: active, inactive, archived, revoked, pending, expired, accepted…
export function statusBadge(status, text) {
  const label = text || (status ? status.charAt(0).toUpperCase() + status.slice(1) : '');
  return h(`span.badge.badge-status.status-${status}`, label);
}

// The loading and failure states of a page section.
export function loadingBlock(text) {
  return h('div.loading-block', { role: 'status', 'aria-live': 'polite' }, h('span.spinner', { 'aria-hidden': 'true' }), h('span', text));
}

export function errorBlock(message, retry) {
  const b = retry ? h('button.btn.btn-secondary', { type: 'button', onclick: retry }, 'Try again') : null;
  return h('div.error-block',
    h('div.alert.alert-error', { role: 'alert' }, icon('alert'), h('span', message)),
    b ? h('div.form-actions', b) : null);
}
