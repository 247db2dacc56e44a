// /staff: the platform team's page (accounts made staff with `gatehouse staff add`). The
// queue of limit increase requests of every organization, approved (optionally with custom
// limits) or declined with a note, recent decisions, and organizations moved between tiers by
// hand, and each model's deployments (upstream servers) with their health. Everyone else is
// told the page is not for them.
//
// API: GET /staff/api/limit_requests, POST …/{id}/approve and …/{id}/decline,
// GET /staff/api/organizations, GET …/{id}/limits, POST …/{id}/tier, GET /staff/api/deployments.
import { get, post, getPage, ApiError } from '../api.js';
import { h, icon, field, formDialog, toast, dataTable, loadingBlock, errorBlock, statusBadge } from '../dom.js';
import { timeEl } from '../format.js';
import { parseAmountInput } from '../money.js';
import { askedFor } from './limits.js';

const API = '/staff/api';

export function render(ctx) {
  const page = h('div.page.staff-page',
    h('header.page-header',
      h('div',
        h('h1.page-title', 'Staff'),
        h('p.page-lead', 'Review requests for higher limits, set organizations’ tiers and watch each model’s upstream servers. Every decision is mailed to the organization’s admins and written to its audit log.'))));
  if (!ctx.session.account.is_staff) {
    page.append(h('section.card.empty-state', { 'aria-labelledby': 'staff-no-access' },
      h('div.empty-icon', icon('lock', 'icon icon-lg')),
      h('h2.empty-title#staff-no-access', 'This page is for the platform team'),
      h('p.empty-text', 'An operator makes an account staff with the command gatehouse staff add EMAIL.')));
    return page;
  }
  const queue = h('div', loadingBlock('Loading requests…'));
  const decided = h('div', loadingBlock('Loading decisions…'));
  const deployments = h('div', loadingBlock('Loading deployments…'));
  const orgList = h('div', loadingBlock('Loading organizations…'));
  const search = h('input.input#staff-org-search', { type: 'search', placeholder: 'Name or id', 'aria-label': 'Search organizations' });
  let tiers = [];

  page.append(
    h('section.card', { 'aria-labelledby': 'staff-queue-title' },
      h('div.card-header', h('h2.card-title#staff-queue-title', 'Pending requests'),
        h('p.card-lead', 'Oldest first.')),
      h('div.card-body.card-body-flush', h('div.card-section', queue))),
    orgsCard(),
    h('section.card', { 'aria-labelledby': 'staff-decided-title' },
      h('div.card-header', h('h2.card-title#staff-decided-title', 'Recent decisions')),
      h('div.card-body.card-body-flush', h('div.card-section', decided))),
    h('section.card', { 'aria-labelledby': 'staff-deploy-title' },
      h('div.card-header', h('h2.card-title#staff-deploy-title', 'Model deployments'),
        h('p.card-lead', 'Upstream servers of each model. A failing deployment is taken out of rotation for a while, then one request tries it again.')),
      h('div.card-body.card-body-flush', h('div.card-section', deployments))));

  async function loadDeployments() {
    try {
      const r = await get(`${API}/deployments`, { signal: ctx.signal });
      if (ctx.stale()) return;
      deployments.replaceChildren(deploymentsTable(r.data));
    } catch (e) {
      if (ctx.stale() || !(e instanceof ApiError)) return;
      deployments.replaceChildren(errorBlock(`Could not load the deployments. ${e.message}`, loadDeployments));
    }
  }

  async function loadQueue() {
    try {
      const [p, a, d] = await Promise.all([
        getPage(`${API}/limit_requests`, { status: 'pending', limit: 200 }, { signal: ctx.signal }),
        getPage(`${API}/limit_requests`, { status: 'approved', limit: 200 }, { signal: ctx.signal }),
        getPage(`${API}/limit_requests`, { status: 'declined', limit: 200 }, { signal: ctx.signal }),
      ]);
      if (ctx.stale()) return;
      queue.replaceChildren(requestsTable(p.data, true));
      const recent = [...a.data, ...d.data].sort((x, y) => (y.decided_at || '').localeCompare(x.decided_at || '')).slice(0, 20);
      decided.replaceChildren(requestsTable(recent, false));
    } catch (e) {
      if (ctx.stale() || !(e instanceof ApiError)) return;
      queue.replaceChildren(errorBlock(`Could not load the requests. ${e.message}`, loadQueue));
    }
  }

  function deploymentsTable(models) {
    if (!models.length) return h('p.muted.card-padded', 'No model is served by an upstream server.');
    const table = dataTable({
      label: 'Model deployments',
      columns: [
        { label: 'Model', className: 'col-primary' },
        { label: 'Deployment', className: 'col-text' },
        { label: 'Weight' },
        { label: 'Health' },
        { label: 'In flight' },
        { label: 'Requests' },
        { label: 'Errors' },
      ],
    });
    const healthText = { up: 'Healthy', ejected: 'Ejected', trial: 'On trial' };
    for (const m of models) {
      m.deployments.forEach((d, i) => {
        table.addRow([
          i === 0 ? h('span.cell-stack', h('span.cell-title', m.display_name), h('span.cell-sub', m.model),
            m.fallbacks.length ? h('span.cell-sub', `Falls back to ${m.fallbacks.join(', ')}`) : null) : '',
          h('span.break', d.url),
          String(d.weight),
          statusBadge(`deploy-${d.health}`, healthText[d.health] || d.health),
          String(d.in_flight),
          String(d.requests),
          h('span.cell-stack', h('span', String(d.errors)),
            d.ejections ? h('span.cell-sub', `${d.ejections} ejection${d.ejections === 1 ? '' : 's'}`) : null),
        ], { dataset: { model: m.model, deployment: String(i) } });
      });
    }
    return table.el;
  }

  function requestsTable(list, actions) {
    if (!list.length) return h('p.muted.card-padded', actions ? 'No requests are waiting.' : 'Nothing decided yet.');
    const table = dataTable({
      label: actions ? 'Pending requests' : 'Recent decisions',
      columns: [
        { label: 'Organization', className: 'col-primary' },
        { label: 'Asked for' },
        { label: 'Reason', className: 'col-text' },
        actions ? { label: 'Actions', hideLabel: true, className: 'col-actions' } : { label: 'Decision', className: 'col-text' },
      ],
    });
    for (const r of list) {
      const buttons = actions ? h('div.row-actions',
        h('button.btn.btn-primary.btn-sm', { type: 'button', 'aria-label': `Approve the request of ${r.organization_name}`, onclick: () => approve(r) }, 'Approve'),
        h('button.btn.btn-secondary.btn-sm', { type: 'button', 'aria-label': `Decline the request of ${r.organization_name}`, onclick: () => decline(r) }, 'Decline')) : null;
      table.addRow([
        h('span.cell-stack', h('span.cell-title', r.organization_name), h('span.cell-sub', r.organization_id),
          h('span.cell-sub.break', `by ${r.requested_by.label}`)),
        h('span.cell-stack', h('span', askedFor(r, tiers)), h('span.cell-sub', 'Sent ', timeEl(r.created_at))),
        h('span.pre-wrap', r.reason),
        actions ? buttons : h('span.cell-stack',
          h('span', statusBadge(r.status), r.granted_tier ? ` ${tierName(r.granted_tier)}` : ''),
          h('span.cell-sub', timeEl(r.decided_at), r.decided_by ? ` by ${r.decided_by}` : ''),
          r.staff_note ? h('span.pre-wrap', r.staff_note) : null),
      ], { dataset: { requestId: r.id } });
    }
    return table.el;
  }

  const tierName = (id) => (tiers.find((t) => t.id === id) || { name: id }).name;

  async function loadTiers() {
    if (tiers.length) return tiers;
    const l = await get(`${API}/tiers`, { signal: ctx.signal });
    tiers = l.tiers;
    return tiers;
  }

  async function approve(r) {
    let list;
    try { list = await loadTiers(); } catch (e) { toast(e.message, 'error'); return; }
    const wanted = r.kind === 'tier' ? r.tier : (list.find((t) => t.custom) || {}).id;
    const form = tierFields(list, wanted, r.custom);
    const note = field(h('textarea.input.textarea', { name: 'note', rows: '3', maxlength: '1000' }),
      { label: 'Note to the organization', optional: true });
    const done = await formDialog({
      title: `Approve the request of ${r.organization_name}`,
      lead: `Asked for ${askedFor(r, list)}. The new limits apply to the organization’s next request.`,
      submitLabel: 'Approve',
      busyLabel: 'Approving…',
      fields: [...form.fields, note.wrap],
      async onSubmit() {
        const chosen = form.read();
        if (!chosen) return false;
        return post(`${API}/limit_requests/${encodeURIComponent(r.id)}/approve`,
          { tier: chosen.tier, custom: chosen.custom, note: note.control.value.trim() || null });
      },
    });
    if (done) { toast(`Approved: ${r.organization_name} is now in ${tierName(done.granted_tier)}`); loadQueue(); loadOrgs(); }
  }

  async function decline(r) {
    const note = field(h('textarea.input.textarea', { name: 'note', rows: '3', maxlength: '1000' }),
      { label: 'Why is it declined?', hint: 'The organization’s admins read this in an email.' });
    const done = await formDialog({
      title: `Decline the request of ${r.organization_name}`,
      submitLabel: 'Decline',
      busyLabel: 'Declining…',
      danger: true,
      fields: [note.wrap],
      async onSubmit() {
        const text = note.control.value.trim();
        note.setError(text ? '' : 'Write a note: the organization needs to know why.');
        if (!text) return false;
        return post(`${API}/limit_requests/${encodeURIComponent(r.id)}/decline`, { note: text });
      },
    });
    if (done) { toast(`Declined the request of ${r.organization_name}`); loadQueue(); }
  }

  // Organizations, searchable, each with its tier and "Set tier".
  function orgsCard() {
    let timer = null;
    search.addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(loadOrgs, 250); });
    return h('section.card', { 'aria-labelledby': 'staff-orgs-title' },
      h('div.card-header.card-header-split',
        h('div', h('h2.card-title#staff-orgs-title', 'Organizations'),
          h('p.card-lead', 'Move an organization to another tier by hand, or back to the tier its purchases reach.')),
        search),
      h('div.card-body.card-body-flush', h('div.card-section', orgList)));
  }
  async function loadOrgs() {
    try {
      const q = search.value.trim();
      const p = await getPage(`${API}/organizations`, q ? { query: q } : {}, { signal: ctx.signal });
      if (ctx.stale()) return;
      if (!p.data.length) { orgList.replaceChildren(h('p.muted.card-padded', 'No organizations match.')); return; }
      const table = dataTable({
        label: 'Organizations',
        columns: [
          { label: 'Organization', className: 'col-primary' },
          { label: 'Tier' },
          { label: 'Created', className: 'col-date' },
          { label: 'Actions', hideLabel: true, className: 'col-actions' },
        ],
      });
      for (const o of p.data) {
        table.addRow([
          h('span.cell-stack', h('span.cell-title', o.name), h('span.cell-sub', o.id)),
          h('span', o.tier_name || o.tier, o.tier_set_by === 'staff' ? h('span.small.muted', ' (set by staff)') : null),
          timeEl(o.created_at),
          h('button.btn.btn-secondary.btn-sm', { type: 'button', 'aria-label': `Set the tier of ${o.name}`, onclick: () => setTier(o) }, 'Set tier'),
        ], { dataset: { orgId: o.id } });
      }
      orgList.replaceChildren(table.el);
    } catch (e) {
      if (ctx.stale() || !(e instanceof ApiError)) return;
      orgList.replaceChildren(errorBlock(`Could not load the organizations. ${e.message}`, loadOrgs));
    }
  }

  async function setTier(o) {
    let list, current;
    try {
      list = await loadTiers();
      current = await get(`${API}/organizations/${encodeURIComponent(o.id)}/limits`, { signal: ctx.signal });
    } catch (e) { toast(e.message, 'error'); return; }
    const customNow = current.tier_custom ? {
      monthly_cap_usd: current.tier_monthly_cap_usd,
      ...current.rate_limits[0],
    } : null;
    const form = tierFields(list, current.tier_set_by === 'staff' ? current.tier : '', customNow, true);
    const note = field(h('textarea.input.textarea', { name: 'note', rows: '2', maxlength: '1000' }), { label: 'Note to the organization', optional: true });
    const done = await formDialog({
      title: `Set the tier of ${o.name}`,
      lead: `Now in ${current.tier_name}${current.tier_set_by === 'staff' ? ', set by staff' : ', by purchases'}.`,
      submitLabel: 'Set tier',
      busyLabel: 'Saving…',
      fields: [...form.fields, note.wrap],
      async onSubmit() {
        const chosen = form.read();
        if (!chosen) return false;
        return post(`${API}/organizations/${encodeURIComponent(o.id)}/tier`,
          { tier: chosen.tier || null, custom: chosen.custom, note: note.control.value.trim() || null });
      },
    });
    if (done) { toast(`${o.name} is now in ${done.tier_name}`); loadOrgs(); }
  }

  loadTiers().catch(() => []).then(() => { if (!ctx.stale()) loadQueue(); });
  loadOrgs();
  loadDeployments();
  return page;
}

// A tier select (with "By purchases" when `automatic`) and, for a custom tier, its limits.
// read() returns {tier, custom} or null when a field is wrong (its error is shown).
function tierFields(tiers, selected, custom, automatic = false) {
  const select = h('select.input.select', { name: 'tier' },
    automatic ? h('option', { value: '' }, 'By purchases (automatic)') : null,
    tiers.map((t) => h('option', { value: t.id }, t.custom ? `${t.name} (custom limits)` : t.name)));
  select.value = selected || '';
  const tierField = field(select, { label: 'Tier' });
  const c = custom || {};
  const capInput = h('input.input.input-money', { type: 'text', inputmode: 'decimal', name: 'cap', placeholder: 'No cap',
    value: c.monthly_cap_usd ? c.monthly_cap_usd : '' });
  const cap = field(capInput, { label: 'Monthly spend cap (USD)', optional: true });
  cap.label.after(h('div.money-wrap', h('span.money-prefix', { 'aria-hidden': 'true' }, '$'), capInput));
  const rate = (name, label, v) => field(h('input.input', { type: 'text', inputmode: 'numeric', name, placeholder: 'No limit', value: v ? String(v) : '' }), { label, optional: true });
  const rpm = rate('rpm', 'Requests per minute', c.requests_per_minute);
  const itpm = rate('itpm', 'Input tokens per minute', c.input_tokens_per_minute);
  const otpm = rate('otpm', 'Output tokens per minute', c.output_tokens_per_minute);
  const customSet = h('fieldset.fieldset.subfieldset', h('legend.fieldset-legend.fieldset-legend-sm', 'Custom limits (per model class)'),
    cap.wrap, rpm.wrap, itpm.wrap, otpm.wrap);
  const isCustom = () => (tiers.find((t) => t.id === select.value) || {}).custom;
  const sync = () => { customSet.hidden = !isCustom(); };
  select.addEventListener('change', sync);
  sync();
  return {
    fields: [tierField.wrap, customSet],
    read() {
      if (!isCustom()) return { tier: select.value, custom: null };
      const out = {};
      let bad = false;
      if (capInput.value.trim()) {
        const a = parseAmountInput(capInput.value, { label: 'a monthly cap' });
        cap.setError(a.error || '');
        if (a.error) bad = true; else out.monthly_cap_usd = a.usd;
      } else cap.setError('');
      for (const [f, key] of [[rpm, 'requests_per_minute'], [itpm, 'input_tokens_per_minute'], [otpm, 'output_tokens_per_minute']]) {
        const t = f.control.value.trim().replace(/[,\s_]/g, '');
        const ok = t === '' || (/^\d{1,11}$/.test(t) && Number(t) >= 1);
        f.setError(ok ? '' : 'A whole number, or blank for no limit.');
        if (!ok) bad = true; else if (t) out[key] = Number(t);
      }
      return bad ? null : { tier: select.value, custom: out };
    },
  };
}

