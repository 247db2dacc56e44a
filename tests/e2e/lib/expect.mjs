// Shared assertions and helpers for the end-to-end tests.
import assert from 'node:assert/strict';

// The standard error shape: `status`, JSON body {"type":"error","error":{"type","message"},
// "request_id"} with nothing else, a non-empty message, and a request-id header equal to the
// body's request_id.
export function assertError(r, status, type) {
  assert.equal(r.status, status, `expected ${status}, got ${r.status}: ${JSON.stringify(r.body)}`);
  assert.match(r.headers.get('content-type') ?? '', /^application\/json/);
  assert.equal(r.body.type, 'error');
  assert.equal(r.body.error.type, type);
  assert.equal(typeof r.body.error.message, 'string');
  assert.ok(r.body.error.message.trim().length > 0, 'the error message is empty');
  assert.match(r.body.request_id, /^req_01[0-9A-Za-z]{22}$/);
  assert.equal(r.headers.get('request-id'), r.body.request_id);
  assert.deepEqual(Object.keys(r.body).sort(), ['error', 'request_id', 'type']);
  assert.deepEqual(Object.keys(r.body.error).sort(), ['message', 'type']);
}

// A fresh address for each sign-up, so tests sharing a server never collide.
export const uniq = (name) => `${name}.${Date.now()}.${Math.random().toString(36).slice(2, 8)}@example.com`;
