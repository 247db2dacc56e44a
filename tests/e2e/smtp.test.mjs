// Mail through a real SMTP conversation: with [email] smtp_url set, the sign-in link goes to
// an SMTP server (a small one this test runs on loopback) instead of the outbox, with
// authentication, and neither the link nor the password reaches the server log.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { startServer } from './lib/server.mjs';
import { Client } from './lib/client.mjs';
import { assertError } from './lib/expect.mjs';

// A minimal SMTP server: EHLO, AUTH PLAIN, MAIL, RCPT, DATA, QUIT. Resolves `received`
// messages as {from, to, auth, data}.
// With `hold`, the reply to the end of DATA waits until release() is called, and `onData`
// resolves when a message body has arrived (so a test can act while the sender waits).
function startSmtp({ hold = false } = {}) {
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
  return new Promise((res) => server.listen(0, '127.0.0.1', () => res({
    port: server.address().port,
    messages,
    onData,
    release,
    // Resolves once `n` messages have arrived.
    waitFor(n) { return n <= messages.length ? Promise.resolve() : new Promise((r) => waiters.push(() => n <= messages.length && r())).then(() => this.waitFor(n)); },
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
  const link = m.data.match(/http:\/\/\S+\/auth\/verify\?token=[A-Za-z0-9]+/)[0];
  assert.ok(link.startsWith(server.consoleUrl + '/auth/verify?token='));

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

test('an SMTP server that is down gives a clear 500 and no session', async () => {
  const dead = await startServer({ config: { email: { smtp_url: 'smtp://127.0.0.1:1', smtp_timeout_ms: 2000 } } });
  try {
    const c = new Client(dead.consoleUrl);
    const r = await c.post('/auth/email', { email: 'nobody@example.com' });
    assertError(r, 500, 'api_error');
    assert.match(r.body.error.message, /could not send the sign-in email/i);
    await dead.waitForLog(/SMTP delivery to nobody@example\.com failed/);
  } finally {
    await dead.stop();
  }
});

test('SIGTERM lets a request in progress finish, then the server exits cleanly', async () => {
  const slow = await startSmtp({ hold: true });
  const srv = await startServer({ config: { email: { smtp_url: `smtp://127.0.0.1:${slow.port}` } } });
  try {
    const c = new Client(srv.consoleUrl);
    const pending = c.post('/auth/email', { email: 'inflight@example.com' });
    await slow.onData; // the request is now inside its handler, waiting on SMTP
    srv.child.kill('SIGTERM');
    await srv.waitForLog(/SIGTERM|Terminated/);
    // New connections are refused while the request in progress is still running.
    await assert.rejects(fetch(srv.consoleUrl + '/healthz'));
    slow.release();
    const r = await pending;
    assert.equal(r.status, 202);
    assert.equal(r.body.type, 'email_sent');
    const { code } = await srv.waitExit();
    assert.equal(code, 0);
    assert.match(srv.log, /stopped cleanly/);
  } finally {
    await srv.stop();
    await slow.close();
  }
});
