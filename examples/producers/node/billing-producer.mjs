// A dependency-free billing producer for Node.js 20: canonical JSON, HMAC-SHA256 envelopes, and the
// dramatiq message pushed to Redis the way dramatiq's RedisBroker enqueues it (docs/protocol.md).

import { createHmac, randomUUID } from "node:crypto";
import net from "node:net";

export const ENVELOPE_VERSION = 1;

/** Message type -> dramatiq queue and actor (jobs/routes.py). */
export const ROUTES = Object.freeze({
  "account.onboard": { queue: "onboarding", actor: "onboarding.onboard_account" },
  "balance_line.create": { queue: "balances", actor: "balances.create_balance_line" },
  "balance_line.reverse": { queue: "balances", actor: "balances.reverse_balance_line" },
  "bill_run.trigger": { queue: "invoicing", actor: "invoicing.trigger_bill_run" },
});

const LONE_SURROGATE = /[\uD800-\uDFFF]/u; // with the u flag, a well-formed pair is one code point
const MESSAGE_ID = /^[A-Za-z0-9._:-]{1,64}$/;

/** Compare two strings by Unicode code point, as Python sorts str (not by UTF-16 unit, as Array#sort does). */
export function compareCodePoints(a, b) {
  const left = Array.from(a, (c) => c.codePointAt(0));
  const right = Array.from(b, (c) => c.codePointAt(0));
  for (let i = 0; i < Math.min(left.length, right.length); i += 1) {
    if (left[i] !== right[i]) return left[i] < right[i] ? -1 : 1;
  }
  return left.length - right.length;
}

function text(value, path) {
  if (LONE_SURROGATE.test(value)) {
    throw new TypeError(`${path || "value"}: text with a lone surrogate has no UTF-8 form`);
  }
  return JSON.stringify(value); // the same escapes as Python's json.dumps(ensure_ascii=False)
}

/**
 * The canonical JSON text of a value: keys sorted by code point at every depth, no whitespace,
 * non-ASCII as is, whole numbers only. Its UTF-8 bytes are what the signature covers.
 */
export function canonicalJson(value, path = "") {
  if (value === null) return "null";
  switch (typeof value) {
    case "boolean":
      return value ? "true" : "false";
    case "bigint":
      return value.toString();
    case "number":
      if (!Number.isInteger(value)) {
        throw new TypeError(`${path || "value"}: ${value} is not a whole number; send amounts as decimal strings such as "30.00"`);
      }
      if (!Number.isSafeInteger(value)) {
        throw new TypeError(`${path || "value"}: ${value} is beyond 2^53 - 1; pass it as a BigInt`);
      }
      return String(value); // -0 prints as 0, as Python reads it
    case "string":
      return text(value, path);
    case "object":
      if (Array.isArray(value)) {
        return `[${value.map((item, index) => canonicalJson(item, path ? `${path}.${index}` : String(index))).join(",")}]`;
      }
      if (Object.getPrototypeOf(value) !== Object.prototype && Object.getPrototypeOf(value) !== null) {
        throw new TypeError(`${path || "value"}: only plain objects, arrays, strings, whole numbers, booleans and null`);
      }
      return `{${Object.keys(value)
        .sort(compareCodePoints)
        .map((key) => `${text(key, path)}:${canonicalJson(value[key], path ? `${path}.${key}` : key)}`)
        .join(",")}}`;
    default:
      throw new TypeError(`${path || "value"}: a ${typeof value} has no JSON form`);
  }
}

/** Lower-case hex HMAC-SHA256 of the canonical JSON of the envelope without its signature. */
export function sign(fields, secret) {
  const { signature: _ignored, ...unsigned } = fields;
  return createHmac("sha256", Buffer.from(secret, "utf8"))
    .update(Buffer.from(canonicalJson(unsigned), "utf8"))
    .digest("hex");
}

/** A signed envelope; sent_at is UTC with milliseconds and a Z, like the Python client writes it. */
export function makeEnvelope({ type, body, producer, keyId, secret, now = new Date(), id = randomUUID().replaceAll("-", "") }) {
  if (!(type in ROUTES)) throw new TypeError(`unknown message type ${type}; expected one of ${Object.keys(ROUTES).join(", ")}`);
  if (!MESSAGE_ID.test(id)) throw new TypeError(`message id ${id} must be 1 to 64 of A-Z a-z 0-9 . _ : -`);
  const fields = { type, version: ENVELOPE_VERSION, id, producer, key_id: keyId, sent_at: now.toISOString(), body };
  return { ...fields, signature: sign(fields, secret) };
}

/** The dramatiq message carrying an envelope, and the Redis entry id it is stored under. */
export function dramatiqMessage(envelope, now = Date.now()) {
  const route = ROUTES[envelope.type];
  const redisMessageId = randomUUID();
  const message = {
    queue_name: route.queue,
    actor_name: route.actor,
    args: [envelope],
    kwargs: {},
    options: { redis_message_id: redisMessageId },
    message_id: randomUUID(),
    message_timestamp: now,
  };
  return { redisMessageId, queue: route.queue, payload: JSON.stringify(message), message };
}

// --- a minimal RESP2 client over node:net -------------------------------------------------------

function encodeCommand(args) {
  const parts = [Buffer.from(`*${args.length}\r\n`)];
  for (const arg of args) {
    const bytes = Buffer.isBuffer(arg) ? arg : Buffer.from(String(arg), "utf8");
    parts.push(Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from("\r\n"));
  }
  return Buffer.concat(parts);
}

class RedisError extends Error {}

/** One reply parsed from buffer at offset: [value, next offset], or null when more bytes are needed. */
function parseReply(buffer, offset) {
  const end = buffer.indexOf("\r\n", offset);
  if (end < 0) return null;
  const kind = String.fromCharCode(buffer[offset]);
  const line = buffer.toString("utf8", offset + 1, end);
  const next = end + 2;
  if (kind === "+") return [line, next];
  if (kind === "-") return [new RedisError(line), next];
  if (kind === ":") return [Number(line), next];
  if (kind === "$") {
    const length = Number(line);
    if (length < 0) return [null, next];
    if (buffer.length < next + length + 2) return null;
    return [buffer.toString("utf8", next, next + length), next + length + 2];
  }
  if (kind === "*") {
    const count = Number(line);
    if (count < 0) return [null, next];
    const items = [];
    let position = next;
    for (let i = 0; i < count; i += 1) {
      const parsed = parseReply(buffer, position);
      if (parsed === null) return null;
      items.push(parsed[0]);
      position = parsed[1];
    }
    return [items, position];
  }
  throw new RedisError(`unexpected reply type ${JSON.stringify(kind)}`);
}

export class RedisClient {
  static async connect(url) {
    const parsed = new URL(url);
    if (parsed.protocol !== "redis:") throw new TypeError(`only redis:// URLs are supported, not ${parsed.protocol}`);
    const socket = net.createConnection({ host: parsed.hostname || "127.0.0.1", port: Number(parsed.port || 6379) });
    await new Promise((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
    const client = new RedisClient(socket);
    const password = decodeURIComponent(parsed.password || "");
    if (password) {
      const user = decodeURIComponent(parsed.username || "");
      await client.command(...(user ? ["AUTH", user, password] : ["AUTH", password]));
    }
    const db = parsed.pathname.replace(/^\//, "");
    if (db && db !== "0") await client.command("SELECT", db);
    return client;
  }

  constructor(socket) {
    this.socket = socket;
    this.buffer = Buffer.alloc(0);
    this.waiting = [];
    socket.on("data", (chunk) => this.#receive(chunk));
    socket.on("error", (error) => this.#failAll(error));
    socket.on("close", () => this.#failAll(new RedisError("connection closed")));
  }

  #receive(chunk) {
    this.buffer = Buffer.concat([this.buffer, chunk]);
    let offset = 0;
    while (this.waiting.length) {
      const parsed = parseReply(this.buffer, offset);
      if (parsed === null) break;
      offset = parsed[1];
      const { resolve, reject } = this.waiting.shift();
      if (parsed[0] instanceof RedisError) reject(parsed[0]);
      else resolve(parsed[0]);
    }
    this.buffer = this.buffer.subarray(offset);
  }

  #failAll(error) {
    for (const { reject } of this.waiting.splice(0)) reject(error);
  }

  /** Send commands in one write; resolve with their replies in order (a Redis error rejects). */
  pipeline(commands) {
    const replies = commands.map(
      () => new Promise((resolve, reject) => this.waiting.push({ resolve, reject })),
    );
    this.socket.write(Buffer.concat(commands.map(encodeCommand)));
    return Promise.all(replies);
  }

  async command(...args) {
    const [reply] = await this.pipeline([args]);
    return reply;
  }

  close() {
    this.socket.end();
  }
}

/**
 * Enqueue like dramatiq's dispatch script "enqueue" command: the payload in the queue's message hash
 * under its Redis entry id, then the id at the tail of the queue's list; MULTI/EXEC makes it atomic.
 * ``namespace`` is the broker's, i.e. BILLING_NAMESPACE + ":dramatiq".
 */
export async function enqueue(client, namespace, { queue, redisMessageId, payload }) {
  const list = `${namespace}:${queue}`;
  const replies = await client.pipeline([
    ["MULTI"],
    ["HSET", `${list}.msgs`, redisMessageId, payload],
    ["RPUSH", list, redisMessageId],
    ["EXEC"],
  ]);
  const executed = replies[3];
  if (!Array.isArray(executed)) throw new RedisError("the enqueue transaction was aborted");
  for (const reply of executed) if (reply instanceof RedisError) throw reply;
  return executed;
}

/** Sign a body and enqueue it; resolve with the envelope id. */
export async function send({ redisUrl, namespace, type, body, producer, keyId, secret, now = new Date() }) {
  const envelope = makeEnvelope({ type, body, producer, keyId, secret, now });
  const message = dramatiqMessage(envelope, now.getTime());
  const client = await RedisClient.connect(redisUrl);
  try {
    await enqueue(client, `${namespace}:dramatiq`, message);
  } finally {
    client.close();
  }
  return envelope.id;
}
