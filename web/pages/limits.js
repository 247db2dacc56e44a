// /settings/limits: Limits. The organization's usage tier and its rate limits per model
// class, the monthly spend limit ("Change Limit" / "Remove Limit") with this month's spend
// against it, the next tier and how far purchases have come towards it, workspace limits,
// and requests for higher limits with their answers; for admins and billing members, the
// spend notifications (email when the month's spend or the credit balance crosses a line).
//
// API: GET/POST /v1/organizations/limits, GET/POST /v1/organizations/limit_requests,
// POST /v1/organizations/workspaces/{id}/limits, GET/POST/DELETE
// /v1/organizations/limits/notifications. Every member reads; only admins change limits (the
// buttons are not shown to others). Money stays in the API's decimal strings (money.js).
import { get, post, del, getPage, ApiError } from '../api.js';
import {
  h, icon, field, formDialog, openDialog, alertBox, busy, toast, dataTable, loadingBlock, errorBlock, statusBadge, nextId, confirmDialog,
} from '../dom.js';
import { timeEl, formatDate } from '../format.js';
import { isAdmin, myRole } from '../roles.js';
import { formatUsd, parseAmountInput, usdToCents, centsToUsd, ratio, compareUsd } from '../money.js';

const LIMITS = '/v1/organizations/limits';
const REQUESTS = '/v1/organizations/limit_requests';
const NOTIFICATIONS = '/v1/organizations/limits/notifications';

const number = (n) => (n === null || n === undefined ? 'No limit' : Number(n).toLocaleString('en-US'));
const REASON_MAX = 1000;

export function render(ctx) {
  const body = h('div.page-body', loadingBlock('Loading limits…'));
  const page = h('div.page.limits-page',
    h('header.page-header',
      h('div',
        h('h1.page-title', 'Limits'),
        h('p.page-lead', 'What your organization may spend each month and how fast it may call the API. Limits apply to the very next request when they change.'))),
    body);
  limitsPage(ctx, body);
  return page;
}

function limitsPage(ctx, body) {
  const admin = isAdmin(ctx.session);
  const notifies = admin || myRole(ctx.session) === 'billing';
  let data = null;
  let requests = [];
  let notifications = null; // {data, max_count} for admins and billing members

  async function load() {
    try {
      const [l, r, n] = await Promise.all([
        get(LIMITS, { signal: ctx.signal }),
        getPage(REQUESTS, { limit: 100 }, { signal: ctx.signal }),
        notifies ? get(NOTIFICATIONS, { signal: ctx.signal }) : null,
      ]);
      if (ctx.stale()) return;
      data = l;
      requests = r.data;
      notifications = n;
      draw();
    } catch (e) {
      if (ctx.stale() || !(e instanceof ApiError)) return;
      body.replaceChildren(h('section.card.card-padded', errorBlock(`Could not load the limits. ${e.message}`, load)));
    }
  }

  function draw() {
    body.replaceChildren(
      tierCard(data),
      spendCard(data, admin, changeLimit),
      notifications ? notificationsCard(data, notifications, addNotification, removeNotification) : null,
      nextTierCard(data, admin, requestIncrease, pending()),
      workspacesCard(data, admin, editWorkspace),
      requestsCard(requests, data.tiers, admin, requestIncrease, pending()));
  }

  const pending = () => requests.find((r) => r.status === 'pending');

  async function changeLimit() {
    const next = await limitDialog(data);
    if (!next) return;
    data = next;
    draw();
    toast(next.monthly_spend_limit_usd ? `Monthly limit set to ${formatUsd(next.monthly_spend_limit_usd)}` : 'Monthly limit removed');
  }

  async function requestIncrease() {
    const made = await requestDialog(data);
    if (!made) return;
    requests = [...requests, made];
    draw();
    toast('Your request was sent. You will get an email when it is reviewed.');
  }

  async function reloadNotifications() {
    try {
      notifications = await get(NOTIFICATIONS, { signal: ctx.signal });
      if (!ctx.stale()) draw();
    } catch (e) {
      if (!ctx.stale() && e instanceof ApiError) toast(`Could not reload the notifications. ${e.message}`, 'error');
    }
  }

  async function addNotification() {
    const made = await notificationDialog(data);
    if (!made) return;
    toast(`Notification added: ${describeNotification(made, data)}`);
    reloadNotifications();
  }

  async function removeNotification(n) {
    const ok = await confirmDialog({
      title: 'Remove this notification?',
      message: [`Nobody will be emailed when ${describeNotification(n, data, true)}.`],
      confirmLabel: 'Remove Notification',
      busyLabel: 'Removing…',
      onConfirm: () => del(`${NOTIFICATIONS}/${encodeURIComponent(n.id)}`),
    });
    if (!ok) return;
    toast('Notification removed');
    reloadNotifications();
  }

  async function editWorkspace(ws) {
    const saved = await workspaceDialog(data, ws);
    if (!saved) return;
    toast(`Limits of ${ws.name} saved`);
    load();
  }

  load();
}

// ---------------------------------------------------------------------------------------
// Sections

function tierCard(l) {
  const table = dataTable({
    label: 'Rate limits per model class',
    columns: [
      { label: 'Model class', className: 'col-primary' },
      { label: 'Requests per minute', className: 'col-number' },
      { label: 'Input tokens per minute', className: 'col-number' },
      { label: 'Output tokens per minute', className: 'col-number' },
    ],
  });
  for (const r of l.rate_limits) {
    table.addRow([h('span.cell-title', r.model_class), number(r.requests_per_minute),
      number(r.input_tokens_per_minute), number(r.output_tokens_per_minute)]);
  }
  return h('section.card.tier-card', { 'aria-labelledby': 'limits-tier-title' },
    h('div.card-header',
      h('h2.card-title#limits-tier-title', 'Usage tier ', h('span.badge.badge-tier#limits-tier-name', l.tier_name)),
      h('p.card-lead', l.tier_set_by === 'staff'
        ? 'Your tier was set by the platform team.'
        : 'Your tier follows the credits you have bought: it goes up on its own as your purchases reach the next tier.')),
    h('div.card-body',
      h('dl.details',
        detail('Monthly spend cap', l.tier_monthly_cap_usd ? formatUsd(l.tier_monthly_cap_usd) : 'No cap'),
        detail('Credits purchased', formatUsd(l.purchases_total_usd)))),
    h('div.card-body.card-body-flush', h('div.card-section', table.el)));
}

function detail(term, value) {
  return h('div.detail', h('dt', term), h('dd', value));
}

function spendCard(l, admin, changeLimit) {
  const effective = l.effective_monthly_limit_usd;
  const meter = h('span.meter.meter-wide', { 'aria-hidden': 'true' }, h('span.meter-fill'));
  const used = effective ? ratio(l.month_to_date_usd, effective) : 0;
  meter.firstChild.style.width = `${Math.round(used * 100)}%`;
  if (used >= 0.9) meter.firstChild.classList.add('meter-fill-warning');
  const own = l.monthly_spend_limit_usd;
  const button = admin
    ? h('button.btn.btn-secondary.btn-sm#change-limit', { type: 'button', onclick: changeLimit }, own ? 'Change Limit' : 'Set Limit')
    : null;
  return h('section.card.spend-card', { 'aria-labelledby': 'limits-spend-title' },
    h('div.card-header.card-header-split',
      h('div',
        h('h2.card-title#limits-spend-title', 'Monthly spend limit'),
        h('p.card-lead', 'Requests that would go past the limit are refused until the month ends or the limit is raised. The month starts at 00:00 UTC on the 1st.')),
      button),
    h('div.card-body',
      effective && compareUsd(l.month_to_date_usd, effective) >= 0
        ? h('div.alert.alert-warning#limits-org-over', { role: 'status' }, icon('alert'),
          h('span', `This month’s spend has reached the limit: requests are refused until ${formatDate(l.month_resets_at)} (00:00 UTC)${admin ? ' or until the limit is raised' : ''}.`))
        : null,
      h('p.spend-limit#limits-spend-limit', own
        ? [h('strong', formatUsd(own)), ' per month']
        : [h('strong', 'No limit set'), l.tier_monthly_cap_usd ? ` — your tier’s cap of ${formatUsd(l.tier_monthly_cap_usd)} applies` : '']),
      own && l.tier_monthly_cap_usd && compareUsd(own, l.tier_monthly_cap_usd) > 0
        ? h('p.small.text-warning', `Your tier’s cap of ${formatUsd(l.tier_monthly_cap_usd)} is lower, so it applies.`)
        : null,
      h('div.spend-progress',
        h('p.spend-text#limits-month-to-date', h('strong', formatUsd(l.month_to_date_usd)),
          effective ? ` of ${formatUsd(effective)} used this month` : ' used this month'),
        effective ? meter : null,
        h('p.small.muted', 'Resets on ', timeEl(l.month_resets_at), ' at 00:00 UTC.'))));
}

function nextTierCard(l, admin, requestIncrease, pending) {
  const n = l.next_tier;
  const ask = admin && !pending
    ? h('button.btn.btn-secondary.btn-sm#request-increase', { type: 'button', onclick: requestIncrease }, 'Request increase')
    : null;
  let content;
  if (!n) {
    content = h('p.muted', l.tier_custom ? 'Your organization has custom limits.' : 'Your organization is in the highest tier purchases reach.',
      ' For more, send a request and the platform team will review it.');
  } else {
    const meter = h('span.meter.meter-wide', {
      role: 'progressbar', 'aria-valuemin': '0', 'aria-valuemax': '100', 'aria-valuenow': String(Math.round(n.progress_bp / 100)),
      'aria-label': `Progress towards ${n.name}`,
    }, h('span.meter-fill'));
    meter.firstChild.style.width = `${Math.min(100, n.progress_bp / 100)}%`;
    content = [
      h('p#limits-next-tier', h('strong', n.name), ': ', compareUsd(n.purchases_needed_usd, '0') > 0
        ? `buy ${formatUsd(n.purchases_needed_usd)} more in credits (${formatUsd(n.purchases_required_usd)} in total) to get there.`
        : 'your purchases qualify.'),
      meter,
      h('dl.details',
        detail('Monthly spend cap', n.monthly_cap_usd ? formatUsd(n.monthly_cap_usd) : 'No cap'),
        detail('Requests per minute', number(n.rate_limits.requests_per_minute)),
        detail('Input tokens per minute', number(n.rate_limits.input_tokens_per_minute)),
        detail('Output tokens per minute', number(n.rate_limits.output_tokens_per_minute))),
    ];
  }
  return h('section.card', { 'aria-labelledby': 'limits-next-title' },
    h('div.card-header.card-header-split',
      h('div',
        h('h2.card-title#limits-next-title', 'Next tier'),
        h('p.card-lead', 'Tiers go up with cumulative credit purchases. Need more sooner? Ask for a higher tier or custom limits.')),
      ask),
    h('div.card-body', content,
      pending ? h('div.alert.alert-info', { role: 'status' }, icon('clock'), h('span', 'Your request for higher limits is waiting for review.')) : null));
}

// "Spend reaches $50.00": what a notification watches. `clause` gives the words after
// "when" ("the month's spend reaches $50.00").
function describeNotification(n, l, clause = false) {
  const limit = l.effective_monthly_limit_usd;
  if (n.kind === 'spend_percent') {
    const of = limit ? ` (${formatUsd(limit)})` : '';
    return clause ? `the month’s spend reaches ${n.percent}% of the monthly limit${of}` : `Spend reaches ${n.percent}% of the monthly limit${of}`;
  }
  if (n.kind === 'spend_amount')
    return clause ? `the month’s spend reaches ${formatUsd(n.amount_usd)}` : `Spend reaches ${formatUsd(n.amount_usd)}`;
  return clause ? `the credit balance falls below ${formatUsd(n.amount_usd)}` : `Credit balance falls below ${formatUsd(n.amount_usd)}`;
}

function notificationsCard(l, list, add, remove) {
  const full = list.data.length >= list.max_count;
  const addButton = h('button.btn.btn-secondary.btn-sm#add-notification', { type: 'button', onclick: add, disabled: full }, 'Add Notification');
  const lead = h('p.card-lead', 'Admins and billing members get an email when this month’s spend reaches an amount or a share of the monthly limit (once a month each), or when the credit balance falls below an amount while auto-reload is off (once each time it falls).');
  let content;
  if (!list.data.length) {
    content = h('div.card-body.empty-state#notifications-empty',
      h('p', h('strong', 'No spend notifications yet.')),
      h('p.muted', 'Add one to hear about spend before the monthly limit or the credits run out.'));
  } else {
    const table = dataTable({
      label: 'Spend notifications',
      columns: [
        { label: 'Notify when', className: 'col-primary' },
        { label: 'This month', className: 'col-status' },
        { label: 'Actions', hideLabel: true, className: 'col-actions' },
      ],
    });
    for (const n of list.data) {
      const note = n.kind === 'spend_percent' && !l.effective_monthly_limit_usd
        ? h('span.small.text-warning', 'No monthly limit applies, so this cannot be reached.')
        : n.kind === 'balance_below' ? h('span.small.muted', 'Only while auto-reload is off.') : null;
      table.addRow([
        h('span.cell-stack', h('span.cell-title', describeNotification(n, l)), note,
          h('span.small.muted.cell-wrap', 'Added by ', n.created_by, ' on ', timeEl(n.created_at))),
        n.notified_at ? h('span.cell-stack', h('span', statusBadge('succeeded', 'Sent')), h('span.small.muted', timeEl(n.notified_at))) : h('span.muted', 'Not yet'),
        h('button.btn.btn-ghost-danger.btn-sm', { type: 'button', 'aria-label': `Remove: ${describeNotification(n, l)}`, onclick: () => remove(n) }, 'Remove'),
      ], { dataset: { notificationId: n.id } });
    }
    content = h('div.card-body.card-body-flush', h('div.card-section', table.el));
  }
  return h('section.card#notifications-card', { 'aria-labelledby': 'limits-notify-title' },
    h('div.card-header.card-header-split',
      h('div', h('h2.card-title#limits-notify-title', 'Spend notifications'), lead),
      addButton),
    content,
    full ? h('div.card-body', h('p.small.muted', `You have the most notifications an organization can have (${list.max_count}). Remove one to add another.`)) : null);
}

function workspacesCard(l, admin, edit) {
  const table = dataTable({
    label: 'Workspace limits',
    columns: [
      { label: 'Workspace', className: 'col-primary' },
      { label: 'Monthly limit', className: 'col-money' },
      { label: 'This month', className: 'col-money' },
      { label: 'Requests / min', className: 'col-number' },
      { label: 'Input tokens / min', className: 'col-number' },
      { label: 'Output tokens / min', className: 'col-number' },
      { label: 'Actions', hideLabel: true, className: 'col-actions' },
    ],
  });
  const over = l.workspaces.filter((w) => w.monthly_spend_limit_usd && compareUsd(w.month_to_date_usd, w.monthly_spend_limit_usd) >= 0);
  for (const w of l.workspaces) {
    const isOver = over.includes(w);
    const b = admin ? h('button.btn.btn-secondary.btn-sm', { type: 'button', 'aria-label': `Edit limits of ${w.name}`, onclick: () => edit(w) }, 'Edit') : null;
    table.addRow([
      h('span.cell-title', w.name),
      w.monthly_spend_limit_usd ? formatUsd(w.monthly_spend_limit_usd) : h('span.muted', 'None'),
      isOver ? h('span.cell-stack', h('span.text-warning', formatUsd(w.month_to_date_usd)), h('span.badge.badge-over', 'Limit reached')) : formatUsd(w.month_to_date_usd),
      w.requests_per_minute ? number(w.requests_per_minute) : h('span.muted', 'None'),
      w.input_tokens_per_minute ? number(w.input_tokens_per_minute) : h('span.muted', 'None'),
      w.output_tokens_per_minute ? number(w.output_tokens_per_minute) : h('span.muted', 'None'),
      b,
    ], { dataset: { workspaceId: w.workspace_id } });
  }
  return h('section.card', { 'aria-labelledby': 'limits-ws-title' },
    h('div.card-header',
      h('h2.card-title#limits-ws-title', 'Workspace limits'),
      h('p.card-lead', 'A workspace can have its own lower limits, on top of the organization’s.')),
    over.length
      ? h('div.card-body', h('div.alert.alert-warning#limits-ws-over', { role: 'status' }, icon('alert'),
        h('span', `${over.map((w) => w.name).join(', ')} ${over.length === 1 ? 'has' : 'have'} reached ${over.length === 1 ? 'its' : 'their'} monthly spend limit: ${over.length === 1 ? 'its' : 'their'} requests are refused until ${formatDate(l.month_resets_at)} (00:00 UTC)${admin ? ' or until the limit is raised' : ''}.`)))
      : null,
    h('div.card-body.card-body-flush', h('div.card-section', table.el)));
}

function requestsCard(list, tiers, admin, requestIncrease, pending) {
  if (!list.length) {
    return h('section.card', { 'aria-labelledby': 'limits-req-title' },
      h('div.card-header', h('h2.card-title#limits-req-title', 'Limit increase requests')),
      h('div.card-body', h('p.muted', 'No requests yet.'),
        admin && !pending ? h('div', h('button.btn.btn-secondary.btn-sm', { type: 'button', onclick: requestIncrease }, 'Request increase')) : null));
  }
  const table = dataTable({
    label: 'Limit increase requests',
    columns: [
      { label: 'Asked for', className: 'col-primary' },
      { label: 'Reason' },
      { label: 'Status' },
      { label: 'Answer' },
      { label: 'Sent', className: 'col-date' },
    ],
  });
  for (const r of [...list].reverse()) {
    table.addRow([
      h('span.cell-title', askedFor(r, tiers)),
      h('span.cell-sub.pre-wrap', r.reason),
      statusBadge(r.status),
      r.staff_note ? h('span.pre-wrap', r.staff_note) : h('span.muted', r.status === 'pending' ? 'Waiting for review' : '—'),
      timeEl(r.created_at),
    ], { dataset: { requestId: r.id } });
  }
  return h('section.card', { 'aria-labelledby': 'limits-req-title' },
    h('div.card-header', h('h2.card-title#limits-req-title', 'Limit increase requests')),
    h('div.card-body.card-body-flush', h('div.card-section', table.el)));
}

// What a request asks for, in words ("Tier 2", "Custom: $2,000.00/month, 500 RPM").
export function askedFor(r, tiers = []) {
  if (r.kind === 'tier') return (tiers.find((t) => t.id === r.tier) || { name: r.tier }).name;
  const c = r.custom || {};
  const parts = [];
  if (c.monthly_cap_usd) parts.push(`${formatUsd(c.monthly_cap_usd)}/month`);
  if (c.requests_per_minute) parts.push(`${number(c.requests_per_minute)} RPM`);
  if (c.input_tokens_per_minute) parts.push(`${number(c.input_tokens_per_minute)} ITPM`);
  if (c.output_tokens_per_minute) parts.push(`${number(c.output_tokens_per_minute)} OTPM`);
  return `Custom: ${parts.join(', ')}`;
}

// ---------------------------------------------------------------------------------------
// Dialogs

function moneyField(name, label, { value = '', hint, optional = false } = {}) {
  const input = h('input.input.input-money', { type: 'text', inputmode: 'decimal', autocomplete: 'off', spellcheck: 'false', placeholder: '0.00', name, value });
  const f = field(input, { label, hint, optional });
  f.label.after(h('div.money-wrap', h('span.money-prefix', { 'aria-hidden': 'true' }, '$'), input));
  return f;
}

function rateField(name, label, value) {
  const input = h('input.input', { type: 'text', inputmode: 'numeric', autocomplete: 'off', name, value: value ? String(value) : '', placeholder: 'No limit' });
  return field(input, { label, optional: true });
}

const inputValue = (usd) => {
  const c = usdToCents(usd);
  return c === null ? '' : centsToUsd(c);
};

// A whole number from a rate field: {value} (null when blank) or {error}.
function readRate(f, label) {
  const t = f.control.value.trim().replace(/[,\s_]/g, '');
  if (t === '') return { value: null };
  if (!/^\d{1,11}$/.test(t) || Number(t) < 1) return { error: `Enter ${label} as a whole number, or leave it blank for no limit.` };
  return { value: Number(t) };
}

// "Change Limit": the amount, "Update Limit" to save it, or "Remove Limit". Resolves with the
// new limits object, or undefined when cancelled.
function limitDialog(l) {
  const amount = moneyField('monthly_limit', 'Monthly limit (USD)', {
    value: inputValue(l.monthly_spend_limit_usd),
    hint: l.tier_monthly_cap_usd ? `At most your tier’s cap of ${formatUsd(l.tier_monthly_cap_usd)}.` : null,
  });
  amount.control.setAttribute('autofocus', '');
  const error = alertBox('error');
  const formId = nextId('limit-form');
  const form = h('form.form.dialog-form', { id: formId, novalidate: true }, amount.wrap, error.el);
  const cancel = h('button.btn.btn-ghost', { type: 'button' }, 'Cancel');
  const remove = l.monthly_spend_limit_usd ? h('button.btn.btn-ghost-danger#remove-limit', { type: 'button' }, 'Remove Limit') : null;
  const submit = h('button.btn.btn-primary#update-limit', { type: 'submit', form: formId }, 'Update Limit');
  submit.dataset.busyLabel = 'Saving…';
  let result;
  const dlg = openDialog({
    title: l.monthly_spend_limit_usd ? 'Change monthly limit' : 'Set a monthly limit',
    lead: 'Requests that would take this month’s spend past the limit are refused until the 1st of next month (00:00 UTC), or until the limit is raised.',
    body: [form],
    actions: [remove, h('span.dialog-spacer'), cancel, submit].filter(Boolean),
  });
  cancel.addEventListener('click', () => dlg.close());
  async function save(value, button) {
    error.clear();
    dlg.setBusy(true);
    try {
      await busy(button, async () => {
        try {
          result = await post(LIMITS, { monthly_spend_limit_usd: value });
        } catch (e) {
          if (!(e instanceof ApiError)) throw e;
          error.show(e.message);
        }
      });
    } finally {
      dlg.setBusy(false);
    }
    if (result) dlg.close(result);
  }
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const a = parseAmountInput(amount.control.value, { label: 'a monthly limit' });
    amount.setError(a.error || (a.cents === 0n ? 'Enter a limit above $0, or remove the limit.' : ''));
    if (a.error || a.cents === 0n) { amount.control.focus(); return; }
    save(a.usd, submit);
  });
  // Removing a limit lets spend grow without it from the very next request: ask first.
  if (remove) {
    remove.addEventListener('click', async () => {
      const cap = l.tier_monthly_cap_usd;
      const ok = await confirmDialog({
        title: 'Remove the monthly limit?',
        message: [`The limit of ${formatUsd(l.monthly_spend_limit_usd)} per month stops applying at once.`,
          cap ? `Only your tier’s cap of ${formatUsd(cap)} will still stop requests this month.`
            : 'Nothing but your credits will stop requests this month.'],
        confirmLabel: 'Remove Limit',
        busyLabel: 'Removing…',
        onConfirm: async () => { result = await post(LIMITS, { monthly_spend_limit_usd: null }); },
      });
      if (ok && result) dlg.close(result);
    });
  }
  return dlg.closed.then(() => result);
}

// "Add Notification": what to watch (a spend amount, a percentage of the monthly limit, or a
// low balance) and its amount or percentage. Resolves with the new notification, or
// undefined when cancelled.
function notificationDialog(l) {
  const kind = h('select.input.select', { name: 'kind' },
    h('option', { value: 'spend_amount' }, 'Spend reaches an amount'),
    h('option', { value: 'spend_percent' }, 'Spend reaches a % of the limit'),
    h('option', { value: 'balance_below' }, 'Credit balance falls below an amount'));
  const kindField = field(kind, { label: 'Notify when' });
  const amount = moneyField('amount', 'Amount (USD)');
  const percentInput = h('input.input', { type: 'text', inputmode: 'numeric', autocomplete: 'off', name: 'percent', placeholder: '80' });
  const limit = l.effective_monthly_limit_usd;
  const percent = field(percentInput, {
    label: 'Percentage of the monthly limit',
    hint: limit ? `A whole number from 1 to 100. The monthly limit is ${formatUsd(limit)} now.` : 'A whole number from 1 to 100. No monthly limit applies now, so this is not reached until one is set.',
  });
  const sync = () => {
    const pct = kind.value === 'spend_percent';
    amount.wrap.hidden = pct;
    percent.wrap.hidden = !pct;
    amount.setError(null);
    percent.setError(null);
  };
  kind.addEventListener('change', sync);
  sync();
  return formDialog({
    title: 'Add a spend notification',
    lead: 'Admins and billing members of the organization will get the email.',
    fields: [kindField.wrap, amount.wrap, percent.wrap],
    submitLabel: 'Add Notification',
    busyLabel: 'Adding…',
    onSubmit: async () => {
      const body = { kind: kind.value };
      if (kind.value === 'spend_percent') {
        const t = percentInput.value.trim().replace(/%$/, '').trim();
        if (!/^\d{1,3}$/.test(t) || Number(t) < 1 || Number(t) > 100) {
          percent.setError('Enter the percentage as a whole number from 1 to 100.');
          percentInput.focus();
          return false;
        }
        body.percent = Number(t);
      } else {
        const a = parseAmountInput(amount.control.value, { label: 'an amount' });
        const error = a.error || (a.cents === 0n ? 'Enter an amount above $0.' : '');
        amount.setError(error);
        if (error) { amount.control.focus(); return false; }
        body.amount_usd = a.usd;
      }
      return post(NOTIFICATIONS, body);
    },
  });
}

// "Request increase": a higher tier or custom limits, with a reason.
function requestDialog(l) {
  const higher = l.tiers.filter((t) => !t.custom && compareUsd(t.purchases_required_usd, l.tiers.find((x) => x.id === l.tier)?.purchases_required_usd ?? '0') > 0);
  const groupName = nextId('kind');
  const radio = (value, label, checked) => {
    const id = nextId('radio');
    const input = h('input.radio', { type: 'radio', name: groupName, id, value, checked });
    return { input, el: h('div.check-row', input, h('label', { for: id }, label)) };
  };
  const tierChoice = radio('tier', 'A higher tier', higher.length > 0);
  const customChoice = radio('custom', 'Custom limits', higher.length === 0);
  if (!higher.length) tierChoice.input.disabled = true;
  const tierSelect = field(h('select.input.select', { name: 'tier' },
    higher.map((t) => h('option', { value: t.id }, `${t.name} — ${t.monthly_cap_usd ? `${formatUsd(t.monthly_cap_usd)}/month` : 'no cap'}, ${number(t.rate_limits.requests_per_minute)} RPM`))),
  { label: 'Tier' });
  const cap = moneyField('cap', 'Monthly spend cap (USD)', { optional: true });
  const rpm = rateField('rpm', 'Requests per minute');
  const itpm = rateField('itpm', 'Input tokens per minute');
  const otpm = rateField('otpm', 'Output tokens per minute');
  const customSet = h('fieldset.fieldset.subfieldset', h('legend.fieldset-legend.fieldset-legend-sm', 'The limits you need (per model class)'),
    cap.wrap, rpm.wrap, itpm.wrap, otpm.wrap);
  const reason = field(h('textarea.input.textarea', { name: 'reason', rows: '4', maxlength: String(REASON_MAX) }),
    { label: 'Why do you need more?', hint: 'Tell the platform team about your use: expected traffic, launch dates, models.' });
  const sync = () => {
    const custom = customChoice.input.checked;
    tierSelect.wrap.hidden = custom;
    customSet.hidden = !custom;
  };
  tierChoice.input.addEventListener('change', sync);
  customChoice.input.addEventListener('change', sync);
  sync();
  return formDialog({
    title: 'Request a limit increase',
    lead: 'The platform team reviews every request and answers by email.',
    submitLabel: 'Send request',
    busyLabel: 'Sending…',
    fields: [h('fieldset.fieldset', h('legend.fieldset-legend', 'What do you need?'), h('div.radio-row', tierChoice.el, customChoice.el)),
      tierSelect.wrap, customSet, reason.wrap],
    async onSubmit() {
      const text = reason.control.value.trim();
      reason.setError(text ? '' : 'Say why you need higher limits.');
      if (!text) { reason.control.focus(); return false; }
      const body = { reason: text };
      if (customChoice.input.checked) {
        const c = {};
        let bad = false;
        if (cap.control.value.trim()) {
          const a = parseAmountInput(cap.control.value, { label: 'a monthly cap' });
          cap.setError(a.error || '');
          if (a.error) bad = true; else c.monthly_cap_usd = a.usd;
        } else cap.setError('');
        for (const [f, key, label] of [[rpm, 'requests_per_minute', 'requests per minute'],
          [itpm, 'input_tokens_per_minute', 'input tokens per minute'], [otpm, 'output_tokens_per_minute', 'output tokens per minute']]) {
          const r = readRate(f, label);
          f.setError(r.error || '');
          if (r.error) bad = true; else if (r.value) c[key] = r.value;
        }
        if (bad) return false;
        body.custom = c;
      } else {
        body.tier = tierSelect.control.value;
      }
      return post(REQUESTS, body);
    },
  });
}

// A workspace's own limits: blank fields mean none.
function workspaceDialog(l, w) {
  const limit = moneyField('monthly_limit', 'Monthly spend limit (USD)', {
    value: inputValue(w.monthly_spend_limit_usd), optional: true,
    hint: l.effective_monthly_limit_usd ? `At most the organization’s ${formatUsd(l.effective_monthly_limit_usd)}.` : null,
  });
  const rpm = rateField('rpm', 'Requests per minute', w.requests_per_minute);
  const itpm = rateField('itpm', 'Input tokens per minute', w.input_tokens_per_minute);
  const otpm = rateField('otpm', 'Output tokens per minute', w.output_tokens_per_minute);
  return formDialog({
    title: `Limits of ${w.name}`,
    lead: 'Each limit applies on top of the organization’s, so only a lower one makes a difference. Leave a field blank for no limit.',
    submitLabel: 'Save limits',
    busyLabel: 'Saving…',
    fields: [limit.wrap, rpm.wrap, itpm.wrap, otpm.wrap],
    async onSubmit() {
      const body = {};
      let bad = false;
      if (limit.control.value.trim()) {
        const a = parseAmountInput(limit.control.value, { label: 'a monthly limit' });
        const err = a.error || (a.cents === 0n ? 'Enter a limit above $0, or leave it blank.' : '');
        limit.setError(err);
        if (err) bad = true; else body.monthly_spend_limit_usd = a.usd;
      } else {
        limit.setError('');
        body.monthly_spend_limit_usd = null;
      }
      for (const [f, key, label] of [[rpm, 'requests_per_minute', 'requests per minute'],
        [itpm, 'input_tokens_per_minute', 'input tokens per minute'], [otpm, 'output_tokens_per_minute', 'output tokens per minute']]) {
        const r = readRate(f, label);
        f.setError(r.error || '');
        if (r.error) bad = true; else body[key] = r.value;
      }
      if (bad) return false;
      return post(`/v1/organizations/workspaces/${encodeURIComponent(w.workspace_id)}/limits`, body);
    },
  });
}

