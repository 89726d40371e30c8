// Every case of sdk/testvectors/signatures.json, signed and verified by the JS SDK.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { inspect } from 'node:util';
import { CommandSigner, signCommand, verifyWebhook, WebhookVerificationError } from '../mercato.mjs';

const vectors = JSON.parse(readFileSync(new URL('../../testvectors/signatures.json', import.meta.url), 'utf8'));

for (const c of vectors.sign) {
  test(`sign: ${c.name}`, () => {
    const signer = c.scheme === 'v1' ? new CommandSigner({ secret: c.secret }) : new CommandSigner({ signingKey: Buffer.from(c.seed, 'base64') });
    if (c.scheme === 'v1a') {
      assert.equal(signer.publicKey, c.public_key);
      assert.equal(new CommandSigner({ signingKey: c.seed }).signature(c.id, c.timestamp, c.body), c.signature);
    }
    assert.equal(signer.signature(c.id, c.timestamp, c.body), c.signature);
    assert.equal(signer.signature(c.id, c.timestamp, Buffer.from(c.body, 'utf8')), c.signature);
    const headers = { 'webhook-id': c.id, 'webhook-timestamp': c.timestamp, 'webhook-signature': c.signature };
    const credentials = c.scheme === 'v1' ? { secrets: [c.secret] } : { publicKeys: [c.public_key] };
    const ok = verifyWebhook(headers, c.body, { now: Number(c.timestamp), ...credentials });
    assert.equal(ok.id, c.id);
    assert.equal(ok.body.toString('utf8'), c.body);
  });
}

for (const c of vectors.verify) {
  test(`verify: ${c.name}`, () => {
    const headers = new Headers({ 'Webhook-Id': c.id, 'Webhook-Timestamp': c.timestamp, 'Webhook-Signature': c.header });
    const run = () => verifyWebhook(headers, Buffer.from(c.body, 'utf8'),
      { secrets: c.secrets, publicKeys: c.public_keys, now: c.now, tolerance: c.tolerance });
    if (c.valid) {
      assert.equal(run().timestamp, Number(c.timestamp));
    } else {
      assert.throws(run, (error) => {
        assert.ok(error instanceof WebhookVerificationError && error.reason);
        for (const s of c.secrets) assert.ok(!error.message.includes(s.slice(6)));
        return true;
      });
    }
  });
}

test('headers as a plain object, as pairs, in any case', () => {
  const secret = vectors.sign[0].secret;
  const signed = signCommand('{}', { secret, webhookId: 'msg_x', timestamp: 1000 });
  assert.equal(verifyWebhook(signed, '{}', { secrets: secret, now: 1000 }).id, 'msg_x');
  const upper = Object.entries(signed).map(([k, v]) => [k.toUpperCase(), v]);
  assert.equal(verifyWebhook(upper, '{}', { secrets: [secret], now: 1000 }).json().constructor, Object);
});

test('reasons', () => {
  const secret = vectors.sign[0].secret;
  const now = 1_800_000_000;
  const good = signCommand('{}', { secret, webhookId: 'msg_1', timestamp: now });
  const reason = (headers, options) => {
    try {
      verifyWebhook(headers, '{}', { now, ...options });
    } catch (error) {
      return error.reason;
    }
    return 'valid';
  };
  assert.equal(reason({ ...good, 'webhook-id': '' }, { secrets: [secret] }), 'missing_header');
  assert.equal(reason({ ...good, 'webhook-timestamp': '1e9' }, { secrets: [secret] }), 'invalid_timestamp');
  assert.equal(reason(signCommand('{}', { secret, timestamp: now - 400 }), { secrets: [secret] }), 'timestamp_too_old');
  assert.equal(reason(signCommand('{}', { secret, timestamp: now + 400 }), { secrets: [secret] }), 'timestamp_too_new');
  assert.equal(reason(good, {}), 'no_credentials');
  assert.equal(reason(good, { secrets: ['whsec_' + 'A'.repeat(32)] }), 'invalid_signature');
  assert.equal(reason(good, { secrets: [secret], now: now + 1000, tolerance: 1000 }), 'valid');
});

test('refusals', () => {
  const secret = vectors.sign[0].secret;
  for (const bad of ['', 'has space', 'x'.repeat(129), 'ünïcode', 'a/b']) {
    assert.throws(() => signCommand('{}', { secret, webhookId: bad }));
  }
  assert.throws(() => new CommandSigner({}));
  assert.throws(() => new CommandSigner({ secret, signingKey: Buffer.alloc(32) }));
  assert.throws(() => new CommandSigner({ secret: 'whsec_not*base64' }), (e) => !e.message.includes('not*base64'));
  assert.throws(() => new CommandSigner({ signingKey: Buffer.alloc(31) }));
  assert.throws(() => signCommand({ a: 1 }, { secret }), TypeError);
});

test('the secret stays out of inspect and JSON', () => {
  const secret = vectors.sign[0].secret;
  const signer = new CommandSigner({ secret });
  const hex = Buffer.from(secret.slice(6), 'base64').toString('hex');
  const shown = inspect(signer, { showHidden: true, depth: 5 }) + JSON.stringify(signer);
  assert.ok(!shown.includes(secret.slice(6, 20)) && !shown.replaceAll(' ', '').includes(hex.slice(0, 16)));
});
