// MercatoClient against a real local node:http server that answers from a script and records
// every request as it arrived.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, test } from 'node:test';
import { inspect } from 'node:util';
import { MercatoClient, MercatoConnectionError, MercatoError, verifyWebhook } from '../mercato.mjs';

const SECRET = 'whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD';
const INSTALL = 'ins_01jdclienttest000000000000';
const DROP = 'drop'; // close the connection without an answer

const ok = (headers = {}, result = { pong: true }) =>
  [200, { 'Content-Type': 'application/json', 'X-Request-Id': 'req-ok', ...headers }, { id: 'cmd_01jd', command: 'ping', status: 'succeeded', result }];
const problem = (status, code, detail = '', headers = {}) =>
  [status, { 'Content-Type': 'application/problem+json', ...headers },
    { type: 'about:blank', title: code, status, detail, code, request_id: `req-${status}` }];

const servers = [];
after(() => servers.forEach((s) => s.close()));

async function serve(...script) {
  const seen = [];
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      seen.push({ method: req.method, path: req.url, headers: req.headers, body: Buffer.concat(chunks) });
      const step = script.length ? script.shift() : ok();
      if (step === DROP) return req.socket.destroy();
      const [status, headers, document] = step;
      const raw = Buffer.isBuffer(document) ? document : Buffer.from(JSON.stringify(document));
      res.writeHead(status, { ...headers, 'Content-Length': raw.length }).end(raw);
    });
  });
  server.keepAliveTimeout = 100;
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  return { url: `http://127.0.0.1:${server.address().port}`, seen, close: () => server.close() };
}

function clientFor(server, options = {}) {
  const sleeps = [];
  const client = new MercatoClient(server.url, INSTALL, { secret: SECRET, sleep: async (ms) => { sleeps.push(ms); }, ...options });
  return { client, sleeps };
}

function assertSameCommand(seen) {
  assert.equal(new Set(seen.map((r) => r.headers['webhook-id'])).size, 1);
  assert.equal(new Set(seen.map((r) => r.body.toString('hex'))).size, 1);
  for (const r of seen) verifyWebhook(r.headers, r.body, { secrets: [SECRET] }); // every attempt is signed anew
}

test('ping builds, signs and parses', async () => {
  const server = await serve(ok({ 'RateLimit-Limit': '20', 'RateLimit-Remaining': '19', 'RateLimit-Reset': '1' }));
  const { client, sleeps } = clientFor(server);
  const result = await client.command('ping');
  assert.equal(result.status, 200);
  assert.deepEqual(result.result, { pong: true });
  assert.equal(result.replayed, false);
  assert.deepEqual(result.rateLimit, { limit: 20, remaining: 19, reset: 1 });
  assert.equal(result.requestId, 'req-ok');
  assert.equal(result.attempts, 1);
  assert.deepEqual(sleeps, []);
  const [seen] = server.seen;
  assert.equal(seen.method, 'POST');
  assert.equal(seen.path, '/api/v1/apps/commands');
  assert.equal(seen.headers['content-type'], 'application/json');
  assert.deepEqual(JSON.parse(seen.body), { install_id: INSTALL, command: 'ping', args: {} });
  assert.equal(verifyWebhook(seen.headers, seen.body, { secrets: [SECRET] }).id, result.webhookId);
});

test('503 then 200 reuses the webhook-id and the body', async () => {
  const server = await serve(problem(503, 'unavailable', 'Storage is unavailable; retry with the same webhook-id.'), ok());
  const { client, sleeps } = clientFor(server);
  const result = await client.command('kv.set', { key: 'k', value: 'Grüße 🚀' });
  assert.equal(result.attempts, 2);
  assert.equal(server.seen.length, 2);
  assert.equal(sleeps.length, 1);
  assertSameCommand(server.seen);
  assert.equal(server.seen[0].headers['webhook-id'], result.webhookId);
  assert.ok(server.seen[0].body.toString('utf8').includes('Grüße 🚀'));
});

test('a given webhook id is used', async () => {
  const server = await serve(problem(502, 'bad_gateway'), ok({ 'Idempotent-Replayed': 'true' }));
  const { client } = clientFor(server);
  const result = await client.command('ping', {}, { webhookId: 'order-1234.retry' });
  assert.equal(result.replayed, true);
  assert.equal(result.webhookId, 'order-1234.retry');
  assertSameCommand(server.seen);
  assert.equal(server.seen[0].headers['webhook-id'], 'order-1234.retry');
});

test('Retry-After is honoured', async () => {
  const server = await serve(problem(503, 'unavailable', '', { 'Retry-After': '2' }), problem(429, 'rate_limited', '', { 'Retry-After': '1' }), ok());
  const { client, sleeps } = clientFor(server);
  assert.equal((await client.command('ping')).attempts, 3);
  assert.deepEqual(sleeps, [2000, 1000]);
  assertSameCommand(server.seen);
});

test('a Retry-After beyond the limit is not waited for', async () => {
  const server = await serve(problem(429, 'rate_limited', '', { 'Retry-After': '3600' }));
  const { client, sleeps } = clientFor(server, { maxRetryAfterMs: 60_000 });
  await assert.rejects(client.command('ping'), (e) => e.code === 'rate_limited' && e.retryAfter === 3600);
  assert.deepEqual(sleeps, []);
});

test('network error then 200', async () => {
  const server = await serve(DROP, ok());
  const { client, sleeps } = clientFor(server);
  assert.equal((await client.command('ping')).attempts, 2);
  assert.equal(sleeps.length, 1);
  assertSameCommand(server.seen);
});

test('idempotency_in_progress is retried', async () => {
  const server = await serve(problem(409, 'idempotency_in_progress'), ok({ 'Idempotent-Replayed': 'true' }));
  const { client } = clientFor(server);
  assert.equal((await client.command('ping')).replayed, true);
  assertSameCommand(server.seen);
});

test('retries are bounded and back off', async () => {
  const server = await serve(...Array(10).fill(problem(503, 'unavailable')));
  const { client, sleeps } = clientFor(server, { maxRetries: 3, backoffMs: 500, maxBackoffMs: 1500 });
  await assert.rejects(client.command('ping'), (e) => e instanceof MercatoError && e.status === 503 && e.code === 'unavailable' && e.requestId === 'req-503');
  assert.equal(server.seen.length, 4);
  assert.equal(sleeps.length, 3);
  assert.ok(sleeps[0] >= 250 && sleeps[0] <= 500 && sleeps[1] >= 500 && sleeps[1] <= 1000 && sleeps[2] >= 750 && sleeps[2] <= 1500, String(sleeps));
  assertSameCommand(server.seen);
});

test('no answer at all', async () => {
  const server = await serve(DROP, DROP, DROP);
  const { client } = clientFor(server, { maxRetries: 2 });
  await assert.rejects(client.command('ping', {}, { webhookId: 'msg_lost' }),
    (e) => e instanceof MercatoConnectionError && e.code === 'connection_failed' && e.webhookId === 'msg_lost');
  assert.equal(server.seen.length, 3);
  assertSameCommand(server.seen);
});

for (const [status, code] of [[400, 'malformed_json'], [401, 'invalid_signature'], [403, 'scope_missing'], [404, 'unknown_command'],
  [409, 'idempotency_conflict'], [422, 'invalid_args']]) {
  test(`${status} ${code} is not retried`, async () => {
    const server = await serve(problem(status, code, 'details here'));
    const { client, sleeps } = clientFor(server);
    await assert.rejects(client.command('ping'), (e) => {
      assert.ok(e instanceof MercatoError);
      assert.deepEqual([e.status, e.code, e.detail, e.requestId], [status, code, 'details here', `req-${status}`]);
      assert.equal(e.problem.code, code);
      assert.ok(e.message.includes(code));
      assert.ok(!inspect(e).includes(SECRET.slice(6)));
      return true;
    });
    assert.equal(server.seen.length, 1);
    assert.deepEqual(sleeps, []);
  });
}

test('a replayed server error is final', async () => {
  const server = await serve(problem(500, 'handler_failed', '', { 'Idempotent-Replayed': 'true' }));
  const { client } = clientFor(server);
  await assert.rejects(client.command('ping'), (e) => e.replayed === true);
  assert.equal(server.seen.length, 1);
});

for (const [status, code] of [[500, 'handler_failed'], [504, 'handler_timeout']]) {
  test(`${code} is final: the handler ran and its outcome is kept`, async () => {
    const server = await serve(problem(status, code));
    const { client, sleeps } = clientFor(server);
    await assert.rejects(client.command('ping'), (e) => e.code === code);
    assert.equal(server.seen.length, 1);
    assert.deepEqual(sleeps, []);
  });
}

test('a proxy 504 is retried', async () => {
  const server = await serve([504, { 'Content-Type': 'text/html' }, Buffer.from('<html>gateway timeout</html>')], ok());
  const { client } = clientFor(server);
  assert.equal((await client.command('ping')).attempts, 2);
  assertSameCommand(server.seen);
});

test('an answer that is not JSON', async () => {
  const server = await serve([502, { 'Content-Type': 'text/html' }, Buffer.from('<html>bad gateway</html>')],
    [404, { 'Content-Type': 'text/html' }, Buffer.from('nope')]);
  const { client } = clientFor(server);
  await assert.rejects(client.command('ping'), (e) => e.status === 404 && e.code === 'http_404');
});

test('an Ed25519 client', async () => {
  const seed = Buffer.alloc(32, 7);
  const server = await serve(ok());
  const client = new MercatoClient(server.url + '/', INSTALL, { signingKey: seed });
  await client.command('ping');
  const [seen] = server.seen;
  assert.ok(seen.headers['webhook-signature'].startsWith('v1a,'));
  const { CommandSigner } = await import('../mercato.mjs');
  verifyWebhook(seen.headers, seen.body, { publicKeys: [new CommandSigner({ signingKey: seed }).publicKey] });
});
