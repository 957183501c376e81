// Batched SipHash (mac) and the version strings. Shared helpers: helpers.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import {
  native, macMeta,
} from './helpers';

test('mac: SipHash-2-4 reference vectors', () => {
  const key = Buffer.from([...Array(16).keys()]);
  const data = Buffer.alloc(15 + 8 + 8);
  for (let i = 0; i < 15; i++) data[i] = i;
  // Range 0: 15 bytes 00..0e, tag at 15. Range 1: empty message, tag at 23.
  native.mac.sign(key, data, macMeta([[0, 15, 15], [0, 0, 23]]), 2);
  assert.equal(data.subarray(15, 23).toString('hex'), 'e545be4961ca29a1');
  assert.equal(data.subarray(23, 31).toString('hex'), '310e0edd47db6f72');
});

test('mac: sign/verify round trip and tamper detection', () => {
  const key = crypto.randomBytes(16);
  const n = 5;
  const frame = 100;
  const data = crypto.randomBytes(n * frame);
  // Tag first, authenticated bytes after it, as the frame format lays it out.
  const meta = macMeta(Array.from({ length: n }, (_, i) => [i * frame + 8, frame - 8, i * frame]));
  native.mac.sign(key, data, meta, n);
  const ok = new Uint8Array(n).fill(7);
  native.mac.verify(key, data, meta, n, ok);
  assert.deepEqual([...ok], [1, 1, 1, 1, 1]);

  data[1 * frame + 50] ^= 0x01; // body of frame 1
  data[3 * frame + 2] ^= 0x80; // tag of frame 3
  native.mac.verify(key, data, meta, n, ok);
  assert.deepEqual([...ok], [1, 0, 1, 0, 1]);

  const otherKey = Buffer.from(key);
  otherKey[0] ^= 1;
  native.mac.verify(otherKey, data, meta, n, ok);
  assert.deepEqual([...ok], [0, 0, 0, 0, 0]);

  // count limits the work: entries past it are untouched.
  ok.fill(9);
  native.mac.verify(key, data, meta, 2, ok);
  assert.deepEqual([...ok], [1, 0, 9, 9, 9]);
});

test('mac: rejects bad arguments without touching memory', () => {
  const key = Buffer.alloc(16, 1);
  const data = Buffer.alloc(64);
  const before = Buffer.from(data);
  const ok = new Uint8Array(4);
  const sign = (k: unknown, d: unknown, m: unknown, c: unknown) =>
    (native.mac.sign as (...a: unknown[]) => void)(k, d, m, c);

  assert.throws(() => sign(Buffer.alloc(15), data, macMeta([[0, 8, 8]]), 1), RangeError);
  assert.throws(() => sign('0123456789abcdef', data, macMeta([[0, 8, 8]]), 1), TypeError);
  assert.throws(() => sign(key, 'data', macMeta([[0, 8, 8]]), 1), TypeError);
  assert.throws(() => sign(key, data, [0, 8, 8], 1), TypeError);
  assert.throws(() => sign(key, data, macMeta([[0, 8, 8]]), 2), RangeError); // count > meta
  assert.throws(() => sign(key, data, macMeta([[0, 8, 8]]), 1.5), TypeError);
  assert.throws(() => sign(key, data, macMeta([[0, 8, 8]]), -1), RangeError);
  // A good first record must not be signed when a later one is out of bounds.
  assert.throws(() => sign(key, data, macMeta([[0, 8, 8], [60, 8, 0]]), 2), /range 1 lies outside/);
  assert.throws(() => sign(key, data, macMeta([[0, 8, 57]]), 1), /tag 0 lies outside/);
  assert.throws(() => sign(key, data, macMeta([[0xffffffff, 2, 0]]), 1), RangeError); // no wrap-around
  assert.deepEqual(data, before, 'nothing was written');
  assert.throws(() => native.mac.verify(key, data, macMeta([[0, 8, 8], [0, 8, 8]]), 2, new Uint8Array(1)), RangeError);
  native.mac.verify(key, data, new Uint32Array(0), 0, ok); // empty batch is fine
});

test('versions() names both libraries', () => {
  const v = native.versions();
  assert.deepEqual(Object.keys(v).sort(), ['pcap', 'sodium']);
  assert.match(v.pcap, /libpcap/);
  assert.match(v.sodium, /^\d+\.\d+\.\d+/);
});
