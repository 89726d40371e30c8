// Mercato for app developers: sign and send commands, verify event webhooks.
// One ES module for Node 18+, no dependencies: node:crypto and the global fetch.
import { createHmac, createPrivateKey, createPublicKey, KeyObject, randomUUID, sign as ed25519Sign, timingSafeEqual, verify as ed25519Verify } from 'node:crypto';

export const COMMANDS_PATH = '/api/v1/apps/commands';
export const DEFAULT_TOLERANCE = 300;
export const VERSION = '0.1.0';
// More entries than a rotation needs are ignored: each v1a entry costs a signature check.
const MAX_SIGNATURES = 16;
const WEBHOOK_ID = /^[A-Za-z0-9_.-]{1,128}$/;
// The handler ran and its outcome is kept for this webhook-id: a retry would only replay it.
const FINAL_CODES = new Set(['handler_failed', 'handler_timeout']);
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
// DER headers that turn 32 raw bytes into a PKCS#8 private key or an SPKI public key (RFC 8410).
const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_ED25519 = Buffer.from('302a300506032b6570032100', 'hex');

/** A fresh id for one command; reuse it on every retry of that command. */
export function newWebhookId() {
  return 'msg_' + randomUUID().replaceAll('-', '');
}

// Padded standard base64 only, or null (Buffer.from skips stray characters).
function strictBase64(text) {
  return typeof text === 'string' && BASE64.test(text) ? Buffer.from(text, 'base64') : null;
}

function bodyBytes(body) {
  if (typeof body === 'string') return Buffer.from(body, 'utf8');
  if (body instanceof Uint8Array) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  throw new TypeError('the body must be the exact bytes (or text) sent, not a parsed object');
}

function signedContent(webhookId, timestamp, body) {
  return Buffer.concat([Buffer.from(`${webhookId}.${timestamp}.`, 'utf8'), bodyBytes(body)]);
}

/** The key bytes of a `whsec_<base64>` secret (raw bytes are taken as they are). */
export function decodeSecret(secret) {
  let key;
  if (secret instanceof Uint8Array) {
    key = Buffer.from(secret);
  } else if (typeof secret === 'string') {
    const text = secret.startsWith('whsec_') ? secret.slice(6) : secret;
    // Unpadded secrets are common in the wild; padding is added rather than refused.
    key = strictBase64(text + '='.repeat((4 - (text.length % 4)) % 4));
    if (key === null) throw new Error("the secret is not 'whsec_' followed by base64");
  } else {
    throw new TypeError("the secret must be a 'whsec_...' string or bytes");
  }
  if (key.length === 0) throw new Error('the secret is empty');
  return key;
}

/** A public KeyObject from `whpk_<base64>`, 32 raw bytes, or a KeyObject. */
export function decodePublicKey(key) {
  if (key instanceof KeyObject) return key.type === 'public' ? key : createPublicKey(key);
  const raw = typeof key === 'string' ? strictBase64(key.startsWith('whpk_') ? key.slice(5) : key)
    : key instanceof Uint8Array ? Buffer.from(key) : null;
  if (raw === null || raw.length !== 32) throw new Error("the public key is not 'whpk_' followed by the base64 of 32 bytes");
  return createPublicKey({ key: Buffer.concat([SPKI_ED25519, raw]), format: 'der', type: 'spki' });
}

function privateKey(key) {
  if (key instanceof KeyObject && key.type === 'private') return key;
  const seed = typeof key === 'string' ? strictBase64(key) : key instanceof Uint8Array ? Buffer.from(key) : null;
  if (seed === null || seed.length !== 32) throw new Error('the signing key must be a 32-byte Ed25519 seed (bytes or base64)');
  return createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, seed]), format: 'der', type: 'pkcs8' });
}

/** Signs commands for one app: with its command secret (`v1`) or its Ed25519 key (`v1a`). */
export class CommandSigner {
  #hmacKey = null;
  #privateKey = null;

  constructor({ secret, signingKey } = {}) {
    if ((secret == null) === (signingKey == null)) {
      throw new Error('give exactly one of secret (whsec_...) or signingKey (Ed25519 seed)');
    }
    if (secret != null) this.#hmacKey = decodeSecret(secret);
    else this.#privateKey = privateKey(signingKey);
  }

  get scheme() {
    return this.#hmacKey ? 'v1' : 'v1a';
  }

  /** `whpk_...` to register in the manifest's `command_signing` (v1a only). */
  get publicKey() {
    if (!this.#privateKey) return null;
    const der = createPublicKey(this.#privateKey).export({ format: 'der', type: 'spki' });
    return 'whpk_' + der.subarray(der.length - 32).toString('base64');
  }

  /** The `webhook-signature` value (`v1,...` or `v1a,...`) for these exact inputs. */
  signature(webhookId, timestamp, body) {
    const content = signedContent(webhookId, timestamp, body);
    const raw = this.#hmacKey
      ? createHmac('sha256', this.#hmacKey).update(content).digest()
      : ed25519Sign(null, content, this.#privateKey);
    return `${this.scheme},${raw.toString('base64')}`;
  }

  /** The three `webhook-*` headers for `body`; a new id unless one is given. */
  headers(body, { webhookId = newWebhookId(), timestamp } = {}) {
    if (typeof webhookId !== 'string' || !WEBHOOK_ID.test(webhookId)) {
      throw new Error('webhook-id must be 1-128 characters of A-Z a-z 0-9 _ . -');
    }
    const ts = String(timestamp == null ? Math.floor(Date.now() / 1000) : Math.floor(Number(timestamp)));
    return { 'webhook-id': webhookId, 'webhook-timestamp': ts, 'webhook-signature': this.signature(webhookId, ts, body) };
  }

  toJSON() {
    return { scheme: this.scheme };
  }
}

/** The `webhook-*` headers for one command body (bytes or text, sent exactly as signed). */
export function signCommand(body, { secret, signingKey, webhookId, timestamp } = {}) {
  return new CommandSigner({ secret, signingKey }).headers(body, { webhookId, timestamp });
}

/**
 * A webhook that must not be trusted. `reason` is one of `missing_header`, `invalid_timestamp`,
 * `timestamp_too_old`, `timestamp_too_new`, `no_credentials`, `invalid_signature`.
 */
export class WebhookVerificationError extends Error {
  constructor(reason, message) {
    super(message);
    this.name = 'WebhookVerificationError';
    this.reason = reason;
  }
}

function headerValue(headers, name) {
  let value;
  if (typeof headers?.get === 'function') {
    value = headers.get(name);
  } else {
    const pairs = Array.isArray(headers) ? headers : Object.entries(headers ?? {});
    value = pairs.find(([key]) => String(key).toLowerCase() === name)?.[1];
  }
  return Array.isArray(value) ? value[0] : value;
}

function asList(values) {
  if (values == null) return [];
  return typeof values === 'string' || values instanceof Uint8Array ? [values] : [...values];
}

/**
 * Checks the `webhook-*` headers of a delivery against its raw `body`. Any one signature that
 * verifies under one of `secrets` (`v1`) or `publicKeys` (`v1a`) suffices, so during a rotation
 * either secret works alone. The timestamp must be whole unix seconds within `tolerance` of
 * `now` (unix seconds; default: this machine's clock). Dedupe on the returned `id`: deliveries
 * are at least once. Throws `WebhookVerificationError`.
 */
export function verifyWebhook(headers, body, { secrets = [], publicKeys = [], now, tolerance = DEFAULT_TOLERANCE } = {}) {
  const values = {};
  for (const name of ['webhook-id', 'webhook-timestamp', 'webhook-signature']) {
    const value = headerValue(headers, name);
    if (!value) throw new WebhookVerificationError('missing_header', `the ${name} header is missing or empty`);
    values[name] = String(value);
  }
  const text = values['webhook-timestamp'];
  if (!/^[0-9]{1,15}$/.test(text)) throw new WebhookVerificationError('invalid_timestamp', 'webhook-timestamp is not unix seconds');
  const timestamp = Number(text);
  const clock = Math.floor(now ?? Date.now() / 1000);
  if (timestamp < clock - tolerance) {
    throw new WebhookVerificationError('timestamp_too_old', `webhook-timestamp is more than ${tolerance} s in the past`);
  }
  if (timestamp > clock + tolerance) {
    throw new WebhookVerificationError('timestamp_too_new', `webhook-timestamp is more than ${tolerance} s in the future`);
  }
  const keys = asList(secrets).map(decodeSecret);
  const publics = asList(publicKeys).map(decodePublicKey);
  if (keys.length === 0 && publics.length === 0) {
    throw new WebhookVerificationError('no_credentials', 'no secret or public key to verify with');
  }

  const raw = bodyBytes(body);
  const content = signedContent(values['webhook-id'], text, raw);
  const expected = keys.map((key) => createHmac('sha256', key).update(content).digest());
  const entries = values['webhook-signature'].split(' ').filter(Boolean).slice(0, MAX_SIGNATURES);
  for (const entry of entries) {
    const comma = entry.indexOf(',');
    const signature = comma < 0 ? null : strictBase64(entry.slice(comma + 1));
    if (signature === null) continue;
    const version = entry.slice(0, comma);
    if (version === 'v1') {
      // Every secret is compared, so timing does not tell which one matched.
      let matched = false;
      for (const mac of expected) matched = (mac.length === signature.length && timingSafeEqual(mac, signature)) || matched;
      if (matched) return verified(values['webhook-id'], timestamp, raw);
    } else if (version === 'v1a' && signature.length === 64) {
      if (publics.some((key) => ed25519Verify(null, content, key, signature))) return verified(values['webhook-id'], timestamp, raw);
    }
  }
  throw new WebhookVerificationError('invalid_signature', 'no signature in webhook-signature matches');
}

function verified(id, timestamp, body) {
  return { id, timestamp, body, json: () => JSON.parse(body.toString('utf8')) };
}

/** A refused command: the Problem+JSON answer's fields (`code` is the stable part). */
export class MercatoError extends Error {
  constructor({ status = null, code, detail = '', title = '', requestId = null, webhookId = null, replayed = false,
    retryAfter = null, rateLimit = null, problem = {} }) {
    super(`${status ?? '-'} ${code}: ${detail || title}${requestId ? ` (request ${requestId})` : ''}`);
    this.name = 'MercatoError';
    Object.assign(this, { status, code, detail, title, requestId, webhookId, replayed, retryAfter, rateLimit, problem });
  }
}

/** No answer after every attempt; retrying later with the same `webhookId` is safe. */
export class MercatoConnectionError extends MercatoError {
  constructor(fields) {
    super(fields);
    this.name = 'MercatoConnectionError';
  }
}

function intHeader(headers, name) {
  const value = headers.get(name);
  return value !== null && /^-?[0-9]+$/.test(value.trim()) ? Number(value.trim()) : null;
}

function rateLimitOf(headers) {
  return { limit: intHeader(headers, 'RateLimit-Limit'), remaining: intHeader(headers, 'RateLimit-Remaining'),
    reset: intHeader(headers, 'RateLimit-Reset') };
}

// Retry-After in seconds (delta or HTTP date), or null.
function retryAfterOf(headers, nowMs) {
  const value = headers.get('Retry-After')?.trim();
  if (!value) return null;
  if (/^[0-9]+$/.test(value)) return Number(value);
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, (date - nowMs) / 1000);
}

/**
 * Sends one install's commands, signed with the app's command secret or Ed25519 key.
 *
 * A command is retried (at most `maxRetries` times, with exponential backoff or the server's
 * `Retry-After`) on network errors, 5xx, 429 and `idempotency_in_progress`. Every attempt
 * carries the same `webhook-id` and the same body bytes, so the server runs it at most once.
 */
export class MercatoClient {
  #signer;
  #fetch;
  #sleep;
  #clock;

  constructor(baseUrl, installId, { secret, signingKey, timeoutMs = 30_000, maxRetries = 3, backoffMs = 500,
    maxBackoffMs = 30_000, maxRetryAfterMs = 60_000, fetch = globalThis.fetch, sleep, clock = Date.now } = {}) {
    this.baseUrl = String(baseUrl).replace(/\/+$/, '');
    this.installId = installId;
    Object.assign(this, { timeoutMs, maxRetries, backoffMs, maxBackoffMs, maxRetryAfterMs });
    this.#signer = new CommandSigner({ secret, signingKey });
    this.#fetch = fetch;
    this.#sleep = sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.#clock = clock;
  }

  /** The exact bytes `command` sends for `name` and `args`. */
  body(name, args = {}) {
    return Buffer.from(JSON.stringify({ install_id: this.installId, command: name, args: args ?? {} }), 'utf8');
  }

  /**
   * Runs `name` with `args`; resolves to `{status, json, result, replayed, rateLimit, requestId,
   * webhookId, attempts}` or rejects with `MercatoError`. Pass your own `webhookId` to make a
   * command idempotent across restarts: the same id and body get the stored answer (`replayed`).
   */
  async command(name, args = {}, { webhookId = newWebhookId() } = {}) {
    if (typeof webhookId !== 'string' || !WEBHOOK_ID.test(webhookId)) {
      throw new Error('webhookId must be 1-128 characters of A-Z a-z 0-9 _ . -');
    }
    const body = this.body(name, args);
    for (let attempt = 1; ; attempt++) {
      // A fresh timestamp per attempt keeps a late retry inside the server's window;
      // the id and body, which the idempotency key covers, never change.
      const headers = this.#signer.headers(body, { webhookId, timestamp: Math.floor(this.#clock() / 1000) });
      let response;
      try {
        response = await this.#fetch(this.baseUrl + COMMANDS_PATH, {
          method: 'POST', body, redirect: 'manual', signal: AbortSignal.timeout(this.timeoutMs),
          headers: { ...headers, 'Content-Type': 'application/json', Accept: 'application/json', 'User-Agent': `mercato-sdk-js/${VERSION}` },
        });
      } catch (error) {
        if (attempt > this.maxRetries) {
          throw new MercatoConnectionError({ code: 'connection_failed', detail: `no answer from the server: ${error?.name ?? 'Error'}`, webhookId });
        }
        await this.#sleep(this.#backoff(attempt));
        continue;
      }
      const text = await response.text().catch(() => '');
      let document = null;
      try {
        document = JSON.parse(text);
      } catch {
        // not JSON: a proxy's page, say
      }
      const replayed = (response.headers.get('Idempotent-Replayed') ?? '').toLowerCase() === 'true';
      const rateLimit = rateLimitOf(response.headers);
      if (response.status >= 200 && response.status < 300) {
        const result = document && typeof document === 'object' && !Array.isArray(document) ? document.result : undefined;
        return { status: response.status, json: document, result, replayed, rateLimit,
          requestId: response.headers.get('X-Request-Id'), webhookId, attempts: attempt };
      }
      const problem = document && typeof document === 'object' && !Array.isArray(document) ? document : {};
      const error = new MercatoError({
        status: response.status, code: String(problem.code || `http_${response.status}`), detail: String(problem.detail ?? ''),
        title: String(problem.title ?? response.statusText ?? ''), requestId: problem.request_id ?? response.headers.get('X-Request-Id'),
        webhookId, replayed, retryAfter: retryAfterOf(response.headers, this.#clock()), rateLimit, problem,
      });
      const wait = this.#retryWait(error, attempt);
      if (wait === null) throw error;
      await this.#sleep(wait);
    }
  }

  // Milliseconds before the next attempt, or null when `error` is final.
  #retryWait(error, attempt) {
    // A replayed answer is the stored outcome of the first run: asking again changes nothing.
    const retryable = !error.replayed && !FINAL_CODES.has(error.code) && (error.status >= 500 || error.status === 429 || error.code === 'idempotency_in_progress');
    if (!retryable || attempt > this.maxRetries) return null;
    if (error.retryAfter !== null) {
      const ms = error.retryAfter * 1000;
      return ms <= this.maxRetryAfterMs ? ms : null;
    }
    return this.#backoff(attempt);
  }

  #backoff(attempt) {
    const ceiling = Math.min(this.maxBackoffMs, this.backoffMs * 2 ** (attempt - 1));
    return ceiling / 2 + Math.random() * (ceiling / 2);
  }
}
