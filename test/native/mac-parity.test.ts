// The in-memory tests run the MAC on libsodium's WebAssembly build (test/sim/mac.ts); the programs run
// it on the addon's libsodium. Both must give the same tags and keys, or the in-memory tests prove nothing.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'crypto';
import { MAC, MAC_STRIDE } from '../../src/core/mac';
import type { Mac } from '../../src/core/mac';
import { loadNative } from '../../src/io/native';
import { sodiumMac } from '../sim/mac';

const native = loadNative().mac;
let wasm: Mac;
before(async () => {
  wasm = await sodiumMac();
});

test('addon and WASM libsodium agree on derived keys and on every tag, and each verifies the other', () => {
  for (const secret of ['', 'k', 'x'.repeat(5000)]) {
    const label = Buffer.from(`label ${secret.length}`);
    assert.ok(native.deriveKey(Buffer.from(secret), label).equals(wasm.deriveKey(Buffer.from(secret), label)));
  }
  const key = crypto.randomBytes(16);
  const count = 200;
  const data = crypto.randomBytes(count * 80);
  const meta = new Uint32Array(count * MAC_STRIDE);
  for (let i = 0; i < count; i++) {
    meta[i * MAC_STRIDE + MAC.OFFSET] = i * 80 + 8;
    meta[i * MAC_STRIDE + MAC.LENGTH] = i % 72; // lengths 0..71, the tag in front of each range
    meta[i * MAC_STRIDE + MAC.TAG] = i * 80;
  }
  const a = Buffer.from(data);
  const b = Buffer.from(data);
  native.sign(key, a, meta, count);
  wasm.sign(key, b, meta, count);
  assert.ok(a.equals(b), 'same tags');
  const ok = new Uint8Array(count);
  wasm.verify(key, a, meta, count, ok);
  assert.equal(ok.reduce((n, v) => n + v, 0), count);
  a[5 * 80] ^= 1;
  native.verify(key, a, meta, count, ok);
  assert.equal(ok[5], 0);
  assert.equal(ok.reduce((n, v) => n + v, 0), count - 1);
});
