#!/usr/bin/env node
// node send.mjs TYPE BODY.json: sign the JSON body and enqueue it for the billing worker.
// Environment (the same names as `billing enqueue`): BILLING_REDIS_URL (redis://127.0.0.1:6379/0),
// BILLING_NAMESPACE (billing), BILLING_PRODUCER, BILLING_PRODUCER_KEY_ID, BILLING_PRODUCER_SECRET.

import { readFileSync } from "node:fs";
import { ROUTES, send } from "./billing-producer.mjs";

const [type, file] = process.argv.slice(2);
if (!type || !file || !(type in ROUTES)) {
  console.error(`usage: node send.mjs TYPE BODY.json (TYPE: ${Object.keys(ROUTES).join(", ")})`);
  process.exit(2);
}
const missing = ["BILLING_PRODUCER", "BILLING_PRODUCER_KEY_ID", "BILLING_PRODUCER_SECRET"].filter((name) => !process.env[name]);
if (missing.length) {
  console.error(`set ${missing.join(", ")}: a producer needs all three`);
  process.exit(2);
}
const body = JSON.parse(readFileSync(file === "-" ? 0 : file, "utf8"));
const id = await send({
  redisUrl: process.env.BILLING_REDIS_URL || "redis://127.0.0.1:6379/0",
  namespace: process.env.BILLING_NAMESPACE || "billing",
  type,
  body,
  producer: process.env.BILLING_PRODUCER,
  keyId: process.env.BILLING_PRODUCER_KEY_ID,
  secret: process.env.BILLING_PRODUCER_SECRET,
});
console.log(JSON.stringify({ id, type }));
