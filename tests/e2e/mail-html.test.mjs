// Mail people want to open (issue 16, point 11): every mail is multipart/alternative, the
// text part and an HTML part with a button whose link is the text's link, the product name
// and a plain footer; non-ASCII parts are quoted-printable; a hostile organization name is
// escaped in the HTML; invitations name the inviter by name, or by email when there is none.
// The HTML of an invitation is rendered in chromium and screenshotted (mail-invite*.png in
// tests/e2e/artifacts/).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { startServer } from './lib/server.mjs';
import { Client } from './lib/client.mjs';
import { uniq, sql, sqlQuote } from './lib/expect.mjs';

const ARTIFACTS = join(import.meta.dirname, 'artifacts');
const HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)> & Ünïcode “Co”';

let server;
before(async () => { server = await startServer(); });
after(async () => { await server?.stop(); });

const mailTo = (email) => {
  const m = server.outbox().filter((x) => x.to === email);
  assert.ok(m.length, `a mail to ${email}`);
  return m[m.length - 1];
};
const button = (html) => {
  const b = html.match(/<a class="button" href="([^"]+)"[^>]*>([^<]+)<\/a>/);
  assert.ok(b, 'the HTML part has a button');
  return { href: b[1].replaceAll('&amp;', '&'), label: b[2] };
};

// The MIME structure every mail shares.
function assertMultipart(mail) {
  const { mime, raw } = mail;
  const ctype = mime.header('Content-Type');
  assert.match(ctype, /^multipart\/alternative; boundary="(=_gh[A-Za-z0-9]{24})"$/);
  assert.equal(mime.header('MIME-Version'), '1.0');
  assert.deepEqual(mime.parts.map((p) => p.type), ['text/plain', 'text/html']);
  for (const p of mime.parts) {
    assert.equal(p.charset, 'utf-8');
    assert.match(p.encoding, /^(7bit|quoted-printable)$/);
    if (/[^\x00-\x7F]/.test(p.text)) assert.equal(p.encoding, 'quoted-printable', `${p.type} with non-ASCII text`);
    for (const line of p.raw.split('\r\n'))
      assert.ok(line.length <= 76 || p.encoding === '7bit', `a ${p.type} line of ${line.length} characters`);
    assert.doesNotMatch(p.raw, /[^\x00-\x7F]/, `${p.type} is 7-bit on the wire`);
    assert.ok(!p.raw.includes(mime.boundary), 'no part contains the boundary');
  }
  // The whole message: header block, a preamble, both parts, the closing delimiter.
  assert.ok(raw.endsWith(`--${mime.boundary}--\r\n`));
  assert.equal(raw.split(`\r\n--${mime.boundary}\r\n`).length, 3);
  const html = mime.parts[1].text;
  assert.match(html, /^<!DOCTYPE html>/);
  assert.match(html, /<p class="product"[^>]*>Gatehouse<\/p>/);
  assert.match(html, /<td class="footer"[^>]*>Sent by Gatehouse\.<\/td>/);
}

test('sign-in mail: multipart with a "Sign in to Gatehouse" button to the text\'s link', async () => {
  const c = new Client(server.consoleUrl);
  const email = uniq('html-signin');
  assert.equal((await c.post('/auth/email', { email })).status, 202);
  const mail = mailTo(email);
  assertMultipart(mail);
  const link = mail.body.match(/http:\/\/\S+\/auth\/verify\?token=[A-Za-z0-9]+/)[0];
  assert.deepEqual(button(mail.html), { href: link, label: 'Sign in to Gatehouse' });
  // The text part is the text as before, the non-ASCII signature intact.
  assert.match(mail.body, /^Hello,\r\n\r\nUse the link below to sign in to Gatehouse\./);
  assert.match(mail.body, /— Gatehouse\r\n?$/);
  // The link works.
  assert.equal((await c.openLink(link)).status, 200);
});

test('invitation: "Ada Lovelace invited you", an "Accept invitation" button, a hostile name escaped', async () => {
  const admin = new Client(server.consoleUrl);
  const adminEmail = uniq('ada');
  await admin.signUpWithOrg(server, adminEmail, HOSTILE, 'Ada Lovelace');
  const email = uniq('invitee');
  const r = await admin.post('/v1/organizations/invites', { email, role: 'developer' });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  const mail = mailTo(email);
  assertMultipart(mail);
  assert.match(mail.body, new RegExp(`Ada Lovelace invited you to join the organization "${HOSTILE.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}" on Gatehouse as a developer\\.`));
  const link = mail.body.match(/http:\/\/\S+\/auth\/invite\?token=[A-Za-z0-9]+/)[0];
  assert.deepEqual(button(mail.html), { href: link, label: 'Accept invitation' });
  // The organization's name is text in the HTML, never markup.
  assert.ok(!mail.html.includes('<script'), 'no script element');
  assert.ok(!mail.html.includes('<img'), 'no img element');
  assert.ok(mail.html.includes('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt; &amp; Ünïcode “Co”'));
  assert.match(mail.html, /Ada Lovelace invited you/);

  // Rendered in chromium: nothing runs, the name shows as text, the button is there.
  mkdirSync(ARTIFACTS, { recursive: true });
  const file = join(ARTIFACTS, 'mail-invite.html');
  writeFileSync(file, mail.html);
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  try {
    for (const [name, viewport] of [['mail-invite.png', { width: 1280, height: 800 }], ['mail-invite-mobile.png', { width: 390, height: 844 }]]) {
      const p = await browser.newPage({ viewport });
      const dialogs = [];
      p.on('dialog', (d) => { dialogs.push(d.message()); d.dismiss(); });
      await p.goto(`file://${file}`);
      const a = p.getByRole('link', { name: 'Accept invitation' });
      assert.equal(await a.getAttribute('href'), link);
      assert.ok(await a.isVisible());
      assert.match(await p.locator('body').innerText(), /<script>alert\("x"\)<\/script>/);
      // Nothing is wider than the screen.
      assert.ok(await p.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), `${name}: no sideways scrolling`);
      assert.deepEqual(dialogs, []);
      await p.screenshot({ path: join(ARTIFACTS, name), fullPage: true });
      await p.close();
    }
  } finally {
    await browser.close();
  }

  // Without a name (a blank one, from before names were trimmed), the inviter is named by
  // email.
  const acct = (await admin.get('/auth/session')).body.account;
  sql(server, `UPDATE accounts SET full_name = '   ' WHERE id = ${sqlQuote(acct.id)};`);
  const email2 = uniq('invitee2');
  assert.equal((await admin.post('/v1/organizations/invites', { email: email2, role: 'user' })).status, 201);
  const mail2 = mailTo(email2);
  assert.ok(mail2.body.includes(`${adminEmail} invited you to join`), mail2.body);
  assert.ok(mail2.html.includes(`${adminEmail} invited you to join`));
});
