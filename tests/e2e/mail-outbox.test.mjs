// Mail through the outbox table (issue 12, point 5, and the RFC 2047 subjects of point 10): an
// invitation and its mail are one transaction, the mail row is marked sent once and its body
// (which holds the link) emptied; a subject that is not plain ASCII is encoded per RFC 2047 in
// words of at most 75 characters that decode to the original.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, decodeHeader } from './lib/server.mjs';
import { Client } from './lib/client.mjs';
import { uniq, sql } from './lib/expect.mjs';

test('an invitation is mailed from the outbox table once, with an RFC 2047 subject', async (t) => {
  const server = await startServer();
  t.after(() => server.stop());
  const admin = new Client(server.consoleUrl);
  const org = 'Zürich Café ✓ – ünïcödé «Ω» Gesellschaft für Sprachmodelle';
  await admin.signUpWithOrg(server, uniq('outbox'), org);
  const email = uniq('invitee');
  const r = await admin.post('/v1/organizations/invites', { email, role: 'developer' });
  assert.equal(r.status, 201, JSON.stringify(r.body));

  // The .eml is there when the request is answered (the mailer writes it before the kick
  // returns, in the default setup without SMTP).
  const mail = server.outbox().find((m) => m.to === email);
  assert.ok(mail, 'the invitation mail is in the outbox folder');
  assert.equal(mail.subject, `You are invited to join ${org} on Gatehouse`);
  const raw = mail.raw.split('\r\n\r\n')[0];
  const folded = raw.match(/^Subject: .*(\r\n[ \t].*)*/m)[0];
  const words = folded.replace(/^Subject: /, '').split(/\r\n[ \t]/);
  assert.ok(words.length > 1, 'a long subject is folded');
  for (const w of words) {
    assert.match(w, /^=\?UTF-8\?B\?[A-Za-z0-9+/=]+\?=$/);
    assert.ok(w.length <= 75, `encoded-word of ${w.length} characters`);
    assert.ok(!decodeHeader(w).includes('\uFFFD'), 'no character split between two words');
  }
  assert.doesNotMatch(raw, /[^\x00-\x7F]/, 'the header block is plain ASCII');

  // One row, sent once, its body (the link) emptied.
  const row = sql(server, {
    sqlite: `SELECT attempts, sent_at_ms IS NOT NULL, length(body) FROM mail_outbox WHERE recipient = '${email}'`,
    postgres: `SELECT attempts, (sent_at IS NOT NULL)::int, length(body) FROM mail_outbox WHERE recipient = '${email}'`,
  }).trim();
  assert.equal(row, '1|1|0');
  // A plain subject is left as it is.
  const signIn = server.outbox().filter((m) => /^Sign in to/.test(m.subject ?? ''));
  assert.ok(signIn.length > 0);
  assert.match(signIn[0].raw, /^Subject: Sign in to Gatehouse\r$/m);
  // An empty outbox (at the start, and once these mails were sent) is not a database failure.
  assert.doesNotMatch(server.log, /cannot read the outbox/);
});
