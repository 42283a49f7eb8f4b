#!/usr/bin/env node
// node sign-vectors.mjs VECTOR.json...: print, per vector, the canonical JSON and signature this
// producer computes, as one JSON document (the Python tests compare it with the vectors).

import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { canonicalJson, sign } from "./billing-producer.mjs";

const results = {};
for (const path of process.argv.slice(2)) {
  const vector = JSON.parse(readFileSync(path, "utf8"));
  results[basename(path, ".json")] = {
    canonical: canonicalJson(vector.envelope),
    signature: sign(vector.envelope, vector.secret),
  };
}
console.log(JSON.stringify(results));
