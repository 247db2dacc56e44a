// /workbench: the playground. Pick a workspace and a model, write a system prompt and the
// messages, set max tokens and temperature, and watch the answer stream in, with its tokens
// and cost when it ends; "Get code" shows the same request as curl, Python and TypeScript.
//
// Calls go to POST /v1/organizations/workbench/messages, which relays them to the model API
// under the workspace's console-managed "Workbench" key (docs/architecture.md, "The
// Workbench"): admitted, rate-limited, metered and charged like any other call. The key's
// secret never reaches this page; the code samples read the key from an environment variable.
import { get, getAll, getSession, humanizeMessage, ApiError } from '../api.js';
import { h, icon, field, alertBox, openDialog, codeSample, loadingBlock, errorBlock } from '../dom.js';
import { toNano, formatNusd } from '../money.js';
import { manageableWorkspaces } from './keys.js';

const RELAY = '/v1/organizations/workbench/messages';
const MAX_TOKENS_LIMIT = 64000;

export function render(ctx) {
  const body = h('div.page-body', loadingBlock('Loading the Workbench…'));
  const page = h('div.page.workbench-page',
    h('header.page-header',
      h('div',
        h('h1.page-title', 'Workbench'),
        h('p.page-lead', 'Try prompts against the API. Calls use the workspace’s Workbench key and are metered and charged like any other call.'))),
    body);
  load(ctx, body).catch((e) => {
    if (ctx.stale() || !(e instanceof ApiError)) return;
    body.replaceChildren(h('section.card.card-padded', errorBlock(`Could not load the Workbench. ${e.message}`, () => load(ctx, body))));
  });
  return page;
}

async function load(ctx, body) {
  const [cfg, all] = await Promise.all([
    get('/auth/config', { signal: ctx.signal }),
    getAll('/v1/organizations/workspaces', {}, { signal: ctx.signal }),
  ]);
  const workspaces = await manageableWorkspaces(ctx, all.filter((w) => !w.archived_at));
  if (ctx.stale()) return;
  if (!workspaces.length) {
    body.replaceChildren(h('section.card.card-padded',
      h('p.readonly-note', icon('lock'), h('span', 'The Workbench calls the API with a key of a workspace, so it needs the Developer role in the organization, or the Workspace Developer role in a workspace. Ask an admin.'))));
    return;
  }
  body.replaceChildren(workbench(ctx, cfg, workspaces));
}

// The cost of `usage` at the model's prices, exactly as the model API meters it: each token
// kind priced separately, rounded half up to the nano-USD (src/lib/money.c, gh_price_cost).
export function costNusd(usage, model) {
  const p = model && model.price_per_mtok_usd;
  if (!p) return null;
  const part = (tokens, price) => {
    const t = BigInt(tokens || 0);
    const n = toNano(price) || 0n;
    return t > 0n && n > 0n ? (t * n + 500000n) / 1000000n : 0n;
  };
  return part(usage.input_tokens, p.input) + part(usage.output_tokens, p.output)
    + part(usage.cache_creation_input_tokens, p.cache_write) + part(usage.cache_read_input_tokens, p.cache_read);
}

function workbench(ctx, cfg, workspaces) {
  const session = getSession();
  const wsSelect = h('select.input.select#wb-workspace', workspaces.map((w) => h('option', { value: w.id }, w.is_default ? `${w.name} (default)` : w.name)));
  const remembered = sessionStorage.getItem(`gatehouse.workbench.${session.current_organization.id}`);
  if (remembered && workspaces.some((w) => w.id === remembered)) wsSelect.value = remembered;
  wsSelect.addEventListener('change', () => sessionStorage.setItem(`gatehouse.workbench.${session.current_organization.id}`, wsSelect.value));
  const modelSelect = h('select.input.select#wb-model', cfg.models.map((m) => h('option', { value: m.id }, m.display_name && m.display_name !== m.id ? `${m.id} — ${m.display_name}` : m.id)));
  const system = h('textarea.input.textarea#wb-system', { rows: '3', placeholder: 'You are a helpful assistant.' });
  const maxTokens = h('input.input#wb-max-tokens', { type: 'text', inputmode: 'numeric', value: '1024', autocomplete: 'off' });
  const temperature = h('input.input#wb-temperature', { type: 'text', inputmode: 'decimal', value: '1', autocomplete: 'off' });
  const f = {
    ws: field(wsSelect, { label: 'Workspace', hint: 'Calls are charged to this workspace, under its Workbench key.' }),
    model: field(modelSelect, { label: 'Model' }),
    system: field(system, { label: 'System prompt', optional: true }),
    maxTokens: field(maxTokens, { label: 'Max tokens', hint: `1 to ${MAX_TOKENS_LIMIT.toLocaleString('en-US')}.` }),
    temperature: field(temperature, { label: 'Temperature', hint: 'From 0 (focused) to 1 (creative).' }),
  };

  // The conversation: one or more messages, alternating roles, the last one from the user.
  const list = h('ol.wb-messages', { 'aria-label': 'Messages' });
  const messages = [];
  function addMessage(role = 'user', text = '') {
    const roleSelect = h('select.input.select.select-sm', { 'aria-label': `Role of message ${messages.length + 1}` },
      h('option', { value: 'user' }, 'User'), h('option', { value: 'assistant' }, 'Assistant'));
    roleSelect.value = role;
    const content = h('textarea.input.textarea.wb-message-text', { rows: '3', 'aria-label': `Message ${messages.length + 1}`, placeholder: role === 'user' ? 'Write a message…' : 'What the assistant said…' });
    content.value = text;
    const error = h('p.field-error', { hidden: true });
    content.addEventListener('input', () => { error.hidden = true; });
    const remove = h('button.icon-button', { type: 'button', 'aria-label': `Remove message ${messages.length + 1}` }, icon('close'));
    const m = { roleSelect, content, error, el: null };
    m.el = h('li.wb-message', h('div.wb-message-head', roleSelect, remove), content, error);
    remove.addEventListener('click', () => {
      if (messages.length === 1) { content.value = ''; return; }
      messages.splice(messages.indexOf(m), 1);
      m.el.remove();
    });
    messages.push(m);
    list.append(m.el);
    return m;
  }
  addMessage('user');
  const addButton = h('button.btn.btn-secondary.btn-sm', { type: 'button' }, icon('plus'), h('span', 'Add message'));
  addButton.addEventListener('click', () => {
    const last = messages[messages.length - 1];
    addMessage(last && last.roleSelect.value === 'user' ? 'assistant' : 'user').content.focus();
  });

  const formError = alertBox('error');
  const run = h('button.btn.btn-primary#wb-run', { type: 'submit' }, icon('arrow'), h('span', 'Run'));
  const stop = h('button.btn.btn-secondary#wb-stop', { type: 'button', hidden: true }, 'Stop');
  const getCode = h('button.btn.btn-secondary#wb-get-code', { type: 'button' }, h('span', 'Get code'));
  const form = h('form.form.wb-form', { novalidate: true, 'aria-label': 'Request' },
    h('div.field-row', f.ws.wrap, f.model.wrap),
    f.system.wrap,
    h('div.field', h('span.field-label', 'Messages'), list, h('div', addButton)),
    h('div.field-row', f.maxTokens.wrap, f.temperature.wrap),
    formError.el,
    h('div.form-actions.wb-actions', getCode, stop, run));

  const output = h('div.wb-output#wb-output', { 'aria-live': 'polite', 'aria-busy': 'false' },
    h('p.muted', 'The answer appears here as it is written.'));
  const stats = h('dl.wb-stats#wb-stats', { hidden: true });
  const resultError = alertBox('error');
  const result = h('section.card.wb-result', { 'aria-labelledby': 'wb-result-title' },
    h('div.card-header', h('h2.card-title#wb-result-title', 'Answer')),
    h('div.card-body', resultError.el, output, stats));

  // The request as the Messages API takes it; null (errors shown) when something is off.
  function build() {
    formError.clear();
    let ok = true;
    const mt = maxTokens.value.trim();
    if (!/^\d{1,6}$/.test(mt) || Number(mt) < 1 || Number(mt) > MAX_TOKENS_LIMIT) {
      f.maxTokens.setError(`Enter max tokens as a whole number from 1 to ${MAX_TOKENS_LIMIT.toLocaleString('en-US')}.`);
      ok = false;
    }
    const tt = temperature.value.trim();
    if (!/^(0(\.\d+)?|1(\.0+)?|\.\d+)$/.test(tt)) {
      f.temperature.setError('Enter a temperature from 0 to 1, like 0.7.');
      ok = false;
    }
    for (const m of messages) {
      const empty = !m.content.value.trim();
      m.error.textContent = empty ? 'Write the message, or remove it.' : '';
      m.error.hidden = !empty;
      if (empty) ok = false;
    }
    const last = messages[messages.length - 1];
    if (ok && last.roleSelect.value !== 'user') {
      formError.show('The last message must be from the user: the model answers it.');
      ok = false;
    }
    if (!ok) return null;
    const req = { model: modelSelect.value, max_tokens: Number(mt) };
    if (system.value.trim()) req.system = system.value;
    req.temperature = Number(tt);
    req.messages = messages.map((m) => ({ role: m.roleSelect.value, content: m.content.value }));
    return req;
  }

  let running = null; // the AbortController of the call in progress
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (running) return;
    const req = build();
    if (!req) return;
    resultError.clear();
    stats.hidden = true;
    const text = h('div.wb-text');
    output.replaceChildren(text);
    output.setAttribute('aria-busy', 'true');
    run.disabled = true;
    stop.hidden = false;
    running = new AbortController();
    // Where the answer sits below the form (narrow windows), bring it into view.
    if (result.getBoundingClientRect().top > window.innerHeight) result.scrollIntoView({ block: 'start', behavior: 'smooth' });
    const stopCall = () => running && running.abort();
    ctx.signal.addEventListener('abort', stopCall);
    const usage = {};
    let stopReason = null;
    try {
      const res = await fetch(RELAY, {
        method: 'POST',
        credentials: 'same-origin',
        signal: running.signal,
        headers: { 'content-type': 'application/json', accept: 'text/event-stream', 'x-csrf-token': session.csrf_token },
        body: JSON.stringify({ workspace_id: wsSelect.value, request: req }),
      });
      if (!res.ok) {
        let message = `The call failed (HTTP ${res.status}).`;
        try {
          const data = await res.json();
          if (data && data.error && data.error.message) message = humanizeMessage(data.error.message);
        } catch { /* not JSON */ }
        if (res.status === 401) { location.assign('/login'); return; }
        throw Object.assign(new Error(message), { shown: true, status: res.status });
      }
      await readEvents(res.body, (event, data) => {
        if (event === 'message_start' && data.message && data.message.usage) Object.assign(usage, data.message.usage);
        else if (event === 'content_block_delta' && data.delta && data.delta.type === 'text_delta') text.append(data.delta.text);
        else if (event === 'message_delta') {
          if (data.usage) Object.assign(usage, data.usage);
          if (data.delta && data.delta.stop_reason) stopReason = data.delta.stop_reason;
        } else if (event === 'error') {
          throw Object.assign(new Error((data.error && data.error.message) || 'The answer broke off.'), { shown: true });
        }
      });
      const model = cfg.models.find((m) => m.id === req.model);
      const cost = costNusd(usage, model);
      stats.replaceChildren(
        stat('Input tokens', (usage.input_tokens || 0).toLocaleString('en-US'), 'input'),
        stat('Output tokens', (usage.output_tokens || 0).toLocaleString('en-US'), 'output'),
        stat('Cost', cost === null ? '—' : formatNusd(cost), 'cost'),
        stopReason ? stat('Stop reason', stopReason.replace(/_/g, ' '), 'stop') : null);
      stats.hidden = false;
    } catch (e) {
      if (e && e.name === 'AbortError') {
        if (!ctx.stale()) resultError.show('Stopped. The tokens already produced are still charged.', 'info');
      } else {
        resultError.show(e && e.shown ? e.message : 'The answer could not be read. Try again.');
      }
    } finally {
      ctx.signal.removeEventListener('abort', stopCall);
      running = null;
      run.disabled = false;
      stop.hidden = true;
      output.setAttribute('aria-busy', 'false');
    }
  });
  stop.addEventListener('click', () => { if (running) running.abort(); });
  getCode.addEventListener('click', () => {
    const req = build();
    if (req) codeDialog(cfg.api_base_url, req);
  });

  return h('div.wb-grid', h('section.card.card-padded.wb-request', form), result);
}

function stat(label, value, id) {
  return h('div.wb-stat', h('dt', label), h('dd', { dataset: { stat: id } }, value));
}

// Calls `on(event, data)` for each server-sent event of `stream` (data parsed as JSON).
async function readEvents(stream, on) {
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (value) buf += decoder.decode(value, { stream: true });
    let i;
    while ((i = buf.search(/\r?\n\r?\n/)) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i).replace(/^\r?\n\r?\n/, '');
      let event = 'message';
      const data = [];
      for (const line of block.split(/\r?\n/)) {
        if (line.startsWith('event:')) event = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
      }
      if (!data.length) continue;
      let parsed;
      try { parsed = JSON.parse(data.join('\n')); } catch { continue; }
      on(event, parsed);
    }
    if (done) return;
  }
}

// The request as code: the key comes from GATEHOUSE_API_KEY, never from the page.
const json = (v, indent) => JSON.stringify(v, null, indent);
const pyValue = (v, pad) => json(v, 4).replace(/\n/g, `\n${pad}`).replace(/\btrue\b/g, 'True').replace(/\bfalse\b/g, 'False').replace(/\bnull\b/g, 'None');
export const CODE = {
  curl: (base, req) => `curl ${base}/v1/messages \\
  -H "x-api-key: $GATEHOUSE_API_KEY" \\
  -H "anthropic-version: 2023-06-01" \\
  -H "content-type: application/json" \\
  -d '${json({ ...req, stream: true }, 2).replace(/'/g, "'\\''")}'`,
  python: (base, req) => `import os
from anthropic import Anthropic

client = Anthropic(base_url="${base}", api_key=os.environ["GATEHOUSE_API_KEY"])
with client.messages.stream(
${Object.entries(req).map(([k, v]) => `    ${k}=${pyValue(v, '    ')},`).join('\n')}
) as stream:
    for text in stream.text_stream:
        print(text, end="", flush=True)
print()`,
  typescript: (base, req) => `import Anthropic from '@anthropic-ai/sdk';

const client = new Anthropic({ baseURL: '${base}', apiKey: process.env.GATEHOUSE_API_KEY });
const stream = client.messages.stream(${json(req, 2).replace(/\n/g, '\n')});
stream.on('text', (text) => process.stdout.write(text));
await stream.finalMessage();`,
};
const LANGS = [['curl', 'curl'], ['python', 'Python'], ['typescript', 'TypeScript']];

function codeDialog(base, req) {
  const code = h('code');
  const tabs = h('div.tabs.wb-code-tabs', { role: 'tablist', 'aria-label': 'Language' });
  const show = (lang) => {
    code.textContent = CODE[lang](base, req);
    for (const b of tabs.children) b.setAttribute('aria-selected', String(b.dataset.lang === lang));
  };
  tabs.replaceChildren(...LANGS.map(([lang, label]) => h('button.tab', { type: 'button', role: 'tab', dataset: { lang }, onclick: () => show(lang) }, label)));
  show('curl');
  const done = h('button.btn.btn-primary', { type: 'button' }, 'Done');
  const dlg = openDialog({
    title: 'Get code',
    lead: 'The same request, made with your own API key from the GATEHOUSE_API_KEY environment variable.',
    size: 'lg',
    body: [tabs, codeSample(code, { label: 'Request code' })],
    actions: [done],
  });
  done.addEventListener('click', () => dlg.close());
}
