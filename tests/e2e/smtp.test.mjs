// Mail through a real SMTP conversation: with [email] smtp_url set, the sign-in link goes to
// an SMTP server (a small one this test runs on loopback) instead of the outbox, with
// authentication, and neither the link nor the password reaches the server log.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, parseMime } from './lib/server.mjs';
import { Client } from './lib/client.mjs';

// A minimal SMTP server: EHLO, AUTH PLAIN, MAIL, RCPT, DATA, QUIT. Resolves `received`
// messages as {from, to, auth, data}.
// With `hold`, the reply to the end of DATA waits until release() is called, and `onData`
// resolves when a message body has arrived (so a test can act while the sender waits).
function startSmtp({ hold = false, port = 0 } = {}) {
  const messages = [];
  const waiters = [];
  let release;
  const released = new Promise((r) => { release = r; });
  let dataArrived;
  const onData = new Promise((r) => { dataArrived = r; });
  const server = net.createServer((sock) => {
    let buf = '';
    let inData = false;
    let msg = { to: [] };
    sock.write('220 test.local ESMTP\r\n');
    sock.on('data', (chunk) => {
      buf += chunk.toString('utf8');
      for (;;) {
        if (inData) {
          const end = buf.indexOf('\r\n.\r\n');
          if (end < 0) return;
          msg.data = buf.slice(0, end);
          buf = buf.slice(end + 5);
          inData = false;
          messages.push(msg);
          waiters.splice(0).forEach((w) => w());
          msg = { to: [] };
          dataArrived();
          if (hold) released.then(() => sock.write('250 2.0.0 queued\r\n'));
          else sock.write('250 2.0.0 queued\r\n');
          continue;
        }
        const nl = buf.indexOf('\r\n');
        if (nl < 0) return;
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 2);
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === 'EHLO') sock.write('250-test.local\r\n250-AUTH PLAIN\r\n250 8BITMIME\r\n');
        else if (verb === 'HELO') sock.write('250 test.local\r\n');
        else if (verb === 'AUTH') {
          const parts = line.split(' ');
          if (parts[2]) { msg.auth = Buffer.from(parts[2], 'base64').toString('utf8'); sock.write('235 2.7.0 ok\r\n'); }
          else sock.write('334 \r\n');
        } else if (verb === 'MAIL') { msg.from = line; sock.write('250 ok\r\n'); }
        else if (verb === 'RCPT') { msg.to.push(line); sock.write('250 ok\r\n'); }
        else if (verb === 'DATA') { inData = true; sock.write('354 go ahead\r\n'); }
        else if (verb === 'QUIT') { sock.end('221 bye\r\n'); }
        else if (verb === 'RSET' || verb === 'NOOP') sock.write('250 ok\r\n');
        else if (!msg.auth && /^[A-Za-z0-9+/=]+$/.test(line)) { msg.auth = Buffer.from(line, 'base64').toString('utf8'); sock.write('235 2.7.0 ok\r\n'); }
        else sock.write('502 unknown\r\n');
      }
    });
  });
  return new Promise((res) => server.listen(port, '127.0.0.1', () => res({
    port: server.address().port,
    messages,
    onData,
    release,
    // Resolves once `n` messages have arrived.
    waitFor(n) { return n <= messages.length ? Promise.resolve() : new Promise((r) => waiters.push(r)).then(() => this.waitFor(n)); },
    close() { return new Promise((r) => server.close(r)); },
  })));
}

let smtp, server;

before(async () => {
  smtp = await startSmtp();
  server = await startServer({
    config: { email: { smtp_url: `smtp://127.0.0.1:${smtp.port}`, smtp_user: 'mailer', from: 'Acme Console <console@acme.test>' } },
    env: { GATEHOUSE_SMTP_PASSWORD: 'pw-Never-Logged-42' },
  });
});

after(async () => {
  await server?.stop();
  await smtp?.close();
});

test('sign-in mail goes through SMTP with authentication and opens a session', async () => {
  const c = new Client(server.consoleUrl);
  const r = await c.post('/auth/email', { email: 'Smtp.User@Example.com' });
  assert.equal(r.status, 202);
  await smtp.waitFor(1);
  const m = smtp.messages[0];
  assert.match(m.from, /MAIL FROM:<console@acme\.test>/i);
  assert.deepEqual(m.to.map((t) => t.replace(/^RCPT TO:/i, '')), ['<smtp.user@example.com>']);
  assert.equal(m.auth, '\0mailer\0pw-Never-Logged-42');
  assert.match(m.data, /^From: Acme Console <console@acme\.test>\r\n/m);
  assert.match(m.data, /^To: smtp\.user@example\.com\r$/m);
  assert.match(m.data, /^Subject: Sign in to Gatehouse\r$/m);
  // multipart/alternative: the text part and the HTML part with the same link as its button.
  // (The SMTP wire doubles a leading dot; the message is the data with that undone.)
  const mime = parseMime(m.data.replace(/\r\n\.\./g, '\r\n.'));
  assert.match(mime.header('Content-Type'), /^multipart\/alternative; boundary="[^"]+"$/);
  assert.deepEqual(mime.parts.map((p) => p.type), ['text/plain', 'text/html']);
  const text = mime.parts[0].text, html = mime.parts[1].text;
  const link = text.match(/http:\/\/\S+\/auth\/verify\?token=[A-Za-z0-9]+/)[0];
  assert.ok(link.startsWith(server.consoleUrl + '/auth/verify?token='));
  const button = html.match(/<a class="button" href="([^"]+)"[^>]*>([^<]+)<\/a>/);
  assert.ok(button, 'the HTML part has a button');
  assert.equal(button[1], link);
  assert.equal(button[2], 'Sign in to Gatehouse');

  // Nothing went to the outbox, and neither the link nor the password is in the log (read
  // once the line about this very delivery has arrived).
  await server.waitForLog(/sent through SMTP/);
  const outbox = join(server.dataDir, 'outbox');
  assert.equal(existsSync(outbox) ? readdirSync(outbox).length : 0, 0);
  assert.ok(!server.log.includes(new URL(link).searchParams.get('token')), 'token must not be logged with SMTP on');
  assert.ok(!server.log.includes('pw-Never-Logged-42'), 'SMTP password must not be logged');

  const v = await c.openLink(link);
  assert.equal(v.status, 200);
  const s = await c.refreshSession();
  assert.equal(s.status, 200);
  assert.equal(s.body.account.email, 'smtp.user@example.com');
});

test('an SMTP server that is down: the request is accepted and the mail goes out once it is up', async () => {
  // A port with nothing listening on it, for now.
  const probe = await startSmtp();
  const port = probe.port;
  await probe.close();
  const dead = await startServer({ config: { email: { smtp_url: `smtp://127.0.0.1:${port}`, smtp_timeout_ms: 2000 } } });
  let up;
  try {
    const c = new Client(dead.consoleUrl);
    const r = await c.post('/auth/email', { email: 'nobody@example.com' });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    await dead.waitForLog(/SMTP delivery to nobody@example\.com failed/);
    await dead.waitForLog(/sending mail \d+ to nobody@example\.com failed \(attempt 1, .*\); retrying in 1 s/);
    // The mail server comes up on that port: the mailer's retry delivers the mail, once.
    up = await startSmtp({ port });
    await up.waitFor(1);
    assert.match(up.messages[0].data, /\/auth\/verify\?token=/);
    await dead.waitForLog(/to nobody@example\.com sent through SMTP/, 10000);
    assert.equal(up.messages.length, 1);
  } finally {
    await dead.stop();
    await up?.close();
  }
});

test('a slow SMTP server holds up no request and no database writer; a crash before the send is mailed after the restart', async () => {
  const slow = await startSmtp({ hold: true });
  const srv = await startServer({ config: { email: { smtp_url: `smtp://127.0.0.1:${slow.port}` } } });
  let again, fast;
  try {
    const c = new Client(srv.consoleUrl);
    // Answered while the mail server still holds the mail (before the outbox, the request
    // waited for SMTP inside the link's transaction).
    const r = await c.post('/auth/email', { email: 'inflight@example.com' });
    assert.equal(r.status, 202);
    await slow.onData; // the mailer is now waiting on the mail server
    // Another write goes through at once: no SMTP conversation holds the write lock.
    const other = await c.post('/auth/email', { email: 'other@example.com' });
    assert.equal(other.status, 202);
    // The server dies between its commit and a completed send: the mail is still queued.
    srv.child.kill('SIGKILL');
    await srv.waitExit();
    fast = await startSmtp();
    again = await startServer({
      dataDir: srv.dataDir,
      config: { email: { smtp_url: `smtp://127.0.0.1:${fast.port}` } },
    });
    await fast.waitFor(2);
    const to = fast.messages.map((m) => m.to.join(' ')).join('\n');
    assert.match(to, /inflight@example\.com/);
    assert.match(to, /other@example\.com/);
  } finally {
    await again?.stop();
    await srv.stop({ expectFailure: true });
    await fast?.close();
    slow.release();
    await slow.close();
  }
});
