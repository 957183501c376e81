// The addon's frame crypto (native/crypto.cc): the construction of src/core/crypto.ts checked against
// independent implementations (OpenSSL's ChaCha20 and ChaCha20-Poly1305 through node:crypto, SipHash
// and BLAKE2b vectors), round trips, tamper detection, key separation, and argument checking.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import sodium from 'libsodium-wrappers';
import { FRAME_HEADER, KEY_BYTES, KEY_SLOT, MASK_BYTES, TAG_AEAD } from '../../src/core/crypto';
import { native } from './helpers';
import { cryptoMeta, FrameSpec, frameBytes, frameOf, layFrames, plainOf, randomKeys, randomNonce } from './crypto-frames';

const c = native.crypto;
before(async () => {
  await sodium.ready;
});

type KeyName = keyof typeof KEY_BYTES;
const keyOf = (keys: Buffer, slot: number, k: KeyName) =>
  keys.subarray(slot * KEY_SLOT.BYTES + KEY_SLOT[k], slot * KEY_SLOT.BYTES + KEY_SLOT[k] + KEY_BYTES[k]);

function nonce12(n: bigint): Buffer {
  const b = Buffer.alloc(12);
  b.writeBigUInt64LE(n, 0);
  return b;
}

/** The mask block by OpenSSL: its chacha20 IV is the block counter (u32le) followed by the 96-bit nonce. */
function maskBlock(maskKey: Buffer, n: bigint): Buffer {
  const iv = Buffer.concat([Buffer.from([1, 0, 0, 0]), nonce12(n)]);
  return crypto.createCipheriv('chacha20', maskKey, iv).update(Buffer.alloc(MASK_BYTES));
}

const xor = (a: Buffer, b: Buffer) => Buffer.from(a.map((v, i) => v ^ b[i]));

/** Seals, unmasks and opens in one batch each; returns ok. */
function roundTrip(keys: Buffer, data: Buffer, meta: Uint32Array, n: number, aead: boolean): Uint8Array {
  c.seal(keys, data, meta, n, aead);
  c.unmaskHeaders(keys, data, meta, n);
  const ok = new Uint8Array(n).fill(7);
  c.open(keys, data, meta, n, aead, ok);
  return ok;
}

test('crypto.seal (plain): SipHash-2-4 over header and payload, tag unmasked, first 64 bytes XORed with ChaCha20-IETF block 1', () => {
  const keys = randomKeys(2);
  // Slot 1's MAC key 00..0f over the 15 bytes 00..0e is SipHash-2-4's reference vector.
  keys.set([...Array(16).keys()], KEY_SLOT.BYTES + KEY_SLOT.MAC);
  const nonce = 0x0123456789abcdefn;
  const ks = maskBlock(keyOf(keys, 1, 'MASK'), nonce);
  const data = Buffer.alloc(15 + 8);
  for (let i = 0; i < 15; i++) data[i] = i;
  const plain = Buffer.from(data.subarray(0, 15));
  c.seal(keys, data, cryptoMeta([{ slot: 1, offset: 0, length: 8, nonce }]), 1, false);
  assert.equal(data.subarray(15).toString('hex'), 'e545be4961ca29a1', 'the tag, not masked');
  assert.deepEqual(data.subarray(0, 15), xor(plain, ks.subarray(0, 15)), 'header and payload masked');

  // A longer frame: 64 bytes masked, the rest of the payload in the clear, the tag over the plaintext.
  const long = layFrames([200], false, () => 0, () => nonce, () => 5);
  const f = long.frames[0];
  const before = Buffer.from(long.data);
  c.seal(keys, long.data, long.meta, 1, false);
  const sealed = frameOf(long.data, f, false);
  const orig = plainOf(before, f);
  assert.deepEqual(sealed.subarray(0, 64), xor(orig.subarray(0, 64), maskBlock(keyOf(keys, 0, 'MASK'), nonce)));
  assert.deepEqual(sealed.subarray(64, 207), orig.subarray(64));
  assert.deepEqual(sealed.subarray(207), Buffer.from(sodium.crypto_shorthash(orig, keyOf(keys, 0, 'MAC'))));
  assert.deepEqual(long.data.subarray(0, 5), before.subarray(0, 5), 'bytes before the frame untouched');
  assert.deepEqual(long.data.subarray(f.offset + 215), before.subarray(f.offset + 215), 'bytes after it untouched');
});

test('crypto.seal (aead): ChaCha20-Poly1305-IETF over the whole payload with the plain header as AD; only the header masked', () => {
  const keys = randomKeys(3);
  for (const length of [0, 1, 56, 57, 58, 1200]) {
    const nonce = randomNonce();
    const { data, meta, frames } = layFrames([length], true, () => 2, () => nonce, () => 3);
    const f = frames[0];
    const orig = Buffer.from(plainOf(data, f));
    c.seal(keys, data, meta, 1, true);
    const sealed = frameOf(data, f, true);
    const ref = crypto.createCipheriv('chacha20-poly1305', keyOf(keys, 2, 'AEAD'), nonce12(nonce), { authTagLength: TAG_AEAD });
    ref.setAAD(orig.subarray(0, FRAME_HEADER), { plaintextLength: length });
    const ct = Buffer.concat([ref.update(orig.subarray(FRAME_HEADER)), ref.final()]);
    assert.deepEqual(sealed.subarray(FRAME_HEADER, FRAME_HEADER + length), ct, `payload of ${length} encrypted`);
    assert.deepEqual(sealed.subarray(FRAME_HEADER + length), ref.getAuthTag(), 'tag, not masked');
    const ks = maskBlock(keyOf(keys, 2, 'MASK'), nonce);
    assert.deepEqual(sealed.subarray(0, FRAME_HEADER), xor(orig.subarray(0, FRAME_HEADER), ks), 'header masked');
    if (length === 1200) {
      let same = 0;
      for (let i = FRAME_HEADER; i < FRAME_HEADER + length; i++) if (sealed[i] === orig[i]) same++;
      assert.ok(same < 20, `ciphertext differs from plaintext everywhere, not only in the first bytes (${same} equal)`);
    }
  }
});

test('crypto: seal -> unmaskHeaders -> open restores every frame of a batch, both modes, many slots', () => {
  for (const aead of [false, true]) {
    const keys = randomKeys(5);
    const lengths = Array.from({ length: 300 }, (_, i) => (i < 70 ? i : crypto.randomInt(0, 1501)));
    const { data, meta, frames } = layFrames(lengths, aead, (i) => i % 5, () => randomNonce(), (i) => i % 3);
    const before = Buffer.from(data);
    c.seal(keys, data, meta, frames.length, aead);
    let maskedDiffer = 0;
    for (const f of frames) {
      if (!frameOf(data, f, aead).subarray(0, FRAME_HEADER).equals(plainOf(before, f).subarray(0, FRAME_HEADER))) maskedDiffer++;
    }
    assert.equal(maskedDiffer, frames.length, 'every header changed on sealing');
    c.unmaskHeaders(keys, data, meta, frames.length);
    for (const f of frames) {
      assert.deepEqual(data.subarray(f.offset, f.offset + FRAME_HEADER), before.subarray(f.offset, f.offset + FRAME_HEADER));
    }
    const ok = new Uint8Array(frames.length + 3).fill(7);
    c.open(keys, data, meta, frames.length, aead, ok);
    assert.deepEqual([...ok.subarray(0, frames.length)], frames.map(() => 1), `aead=${aead}: all valid`);
    assert.deepEqual([...ok.subarray(frames.length)], [7, 7, 7], 'ok past count untouched');
    for (const f of frames) assert.deepEqual(plainOf(data, f), plainOf(before, f));
    // Only tags changed: the gaps between frames are as they were.
    let gapChanges = 0;
    const inFrame = new Uint8Array(data.length);
    for (const f of frames) inFrame.fill(1, f.offset, f.offset + frameBytes(f.length, aead));
    for (let i = 0; i < data.length; i++) if (!inFrame[i] && data[i] !== before[i]) gapChanges++;
    assert.equal(gapChanges, 0);
  }
});

test('crypto.open: every single-bit flip of a sealed frame (header, payload or tag) gives ok 0', () => {
  const keys = randomKeys(1);
  for (const aead of [false, true]) {
    for (const length of [0, 70]) {
      const nonce = randomNonce();
      const bits = frameBytes(length, aead) * 8;
      // One pristine copy and one copy per bit, all in one batch.
      const one = layFrames([length], aead, () => 0, () => nonce);
      c.seal(keys, one.data, one.meta, 1, aead);
      const frames: FrameSpec[] = [];
      const data = Buffer.concat(Array.from({ length: bits + 1 }, () => one.data));
      for (let k = 0; k <= bits; k++) frames.push({ slot: 0, offset: k * one.data.length, length, nonce });
      for (let k = 0; k < bits; k++) data[k * one.data.length + (k >> 3)] ^= 1 << (k & 7);
      const meta = cryptoMeta(frames);
      c.unmaskHeaders(keys, data, meta, frames.length);
      const ok = new Uint8Array(frames.length);
      c.open(keys, data, meta, frames.length, aead, ok);
      const accepted = [...ok.keys()].filter((k) => ok[k] === 1);
      assert.deepEqual(accepted, [bits], `aead=${aead} length ${length}: only the unflipped copy passes`);
      if (aead && length > 0) {
        // libsodium zeroes what it refused to decrypt: no unauthenticated plaintext is left behind.
        const zeroed = frames.slice(0, bits).filter((f) => data.subarray(f.offset + FRAME_HEADER, f.offset + FRAME_HEADER + length).every((v) => v === 0));
        assert.equal(zeroed.length, bits, 'every refused payload zeroed');
      }
    }
  }
});

test('crypto.open: another slot, another nonce, or any one key of the slot changed gives ok 0', () => {
  for (const aead of [false, true]) {
    const keys = randomKeys(6);
    // Slots 2..5 copy slot 1 but for one key each: MASK, MAC, AEAD, and (5) none.
    for (const s of [2, 3, 4, 5]) keys.copy(keys, s * KEY_SLOT.BYTES, KEY_SLOT.BYTES, 2 * KEY_SLOT.BYTES);
    keyOf(keys, 2, 'MASK')[0] ^= 1;
    keyOf(keys, 3, 'MAC')[0] ^= 1;
    keyOf(keys, 4, 'AEAD')[0] ^= 1;
    const nonce = (1n << 40n) + 12345n;
    const opens: Array<[string, number, bigint, number]> = [
      ['right slot and nonce', 1, nonce, 1],
      ['identical keys in another slot', 5, nonce, 1],
      ['other slot', 0, nonce, 0],
      ['nonce + 1', 1, nonce + 1n, 0],
      ['nonce high half changed', 1, nonce ^ (1n << 40n), 0],
      ['MASK key changed', 2, nonce, 0],
      ['MAC key changed', 3, nonce, aead ? 1 : 0], // aead frames do not use the MAC key
      ['AEAD key changed', 4, nonce, aead ? 0 : 1], // nor plain frames the AEAD key
    ];
    const one = layFrames([100], aead, () => 1, () => nonce);
    c.seal(keys, one.data, one.meta, 1, aead);
    const data = Buffer.concat(opens.map(() => one.data));
    const meta = cryptoMeta(opens.map(([, slot, n], i) => ({ slot, offset: i * one.data.length, length: 100, nonce: n })));
    c.unmaskHeaders(keys, data, meta, opens.length);
    const ok = new Uint8Array(opens.length);
    c.open(keys, data, meta, opens.length, aead, ok);
    assert.deepEqual(opens.map(([what], i) => `${what}: ${ok[i]}`), opens.map(([what, , , want]) => `${what}: ${want}`), `aead=${aead}`);
  }
});

test('crypto.seal: the first 64 bytes of sealed all-zero frames look random across nonces; the tag is not masked', () => {
  const keys = randomKeys(1);
  const n = 1000;
  const length = 100;
  const { data, meta, frames } = layFrames(Array(n).fill(length), false, () => 0, (i) => BigInt(i));
  data.fill(0);
  c.seal(keys, data, meta, n, false);
  let ones = 0;
  for (let pos = 0; pos < MASK_BYTES; pos++) {
    const seen = new Set<number>();
    for (const f of frames) {
      const v = data[f.offset + pos];
      seen.add(v);
      for (let b = v; b; b >>= 1) ones += b & 1;
    }
    // 1000 draws of a uniform byte show ~251 of the 256 values; a constant mask would show 1.
    assert.ok(seen.size > 200, `byte ${pos} takes ${seen.size} values across ${n} frames`);
  }
  const bits = n * MASK_BYTES * 8;
  assert.ok(Math.abs(ones / bits - 0.5) < 0.01, `ones: ${ones} of ${bits} bits`);
  const zeros = Buffer.alloc(FRAME_HEADER + length);
  const tag = Buffer.from(sodium.crypto_shorthash(zeros, keyOf(keys, 0, 'MAC')));
  for (const f of frames) {
    const sealed = frameOf(data, f, false);
    assert.ok(sealed.subarray(MASK_BYTES, FRAME_HEADER + length).every((b) => b === 0), 'payload past 64 bytes in the clear');
    assert.deepEqual(sealed.subarray(FRAME_HEADER + length), tag, 'the tag over the zeros, unmasked');
  }
});

test('crypto: bad arguments and records throw before any byte changes', () => {
  const keys = randomKeys(2);
  const data = crypto.randomBytes(100);
  const snapshot = Buffer.from(data);
  const good: FrameSpec = { slot: 1, offset: 0, length: 10, nonce: 1n };
  const rec = (o: Partial<FrameSpec>): FrameSpec => ({ ...good, ...o });
  const call = (fn: string, ...args: unknown[]) => () => (c as unknown as Record<string, (...a: unknown[]) => void>)[fn](...args);
  const ok = new Uint8Array(4).fill(9);
  const bad: Array<[() => void, RegExp | (new (...a: never[]) => Error)]> = [];
  for (const fn of ['seal', 'open'] as const) {
    const go = (k: unknown, d: unknown, m: unknown, n: unknown) => bad.push([call(fn, k, d, m, n, false, ok), RangeError]);
    const meta2 = (r: Partial<FrameSpec>) => cryptoMeta([good, rec(r)]);
    bad.push([call(fn, keys, data, meta2({ slot: 2 }), 2, false, ok), /record 1 names key slot 2 of a table of 2/]);
    bad.push([call(fn, keys, data, meta2({ offset: 81, length: 5 }), 2, false, ok), /frame 1 \(20 bytes at 81\) lies outside data \(100 bytes\)/]);
    bad.push([call(fn, keys, data, meta2({ length: 86 }), 2, false, ok), /frame 1 \(101 bytes at 0\)/]); // only the tag sticks out
    bad.push([call(fn, keys, data, meta2({ length: 80 }), 2, true, ok), /frame 1 \(103 bytes/]); // fits with 8, not with 16
    go(keys, data, meta2({ offset: 0xffffffff, length: 0 }), 2);
    go(keys, data, meta2({ length: 0xffffffff }), 2);
    go(keys, data, meta2({}), 3); // count beyond meta
    go(keys, data, meta2({}), -1);
    go(Buffer.alloc(81), data, meta2({}), 1);
    bad.push([call(fn, keys, data, meta2({}), 1.5, false, ok), TypeError]);
    bad.push([call(fn, keys, data, meta2({}), 1, 'yes', ok), /aead must be a boolean/]);
    bad.push([call(fn, keys, data, meta2({}), 1), TypeError]);
    bad.push([call(fn, keys, 'data', meta2({}), 1, false, ok), /data must be a Buffer or Uint8Array/]);
    bad.push([call(fn, 'keys', data, meta2({}), 1, false, ok), TypeError]);
    bad.push([call(fn, keys, data, [...meta2({})], 1, false, ok), /meta must be a Uint32Array/]);
    // Records or keys inside the bytes being rewritten could change under the checks made up front.
    const shared = Buffer.alloc(200);
    const sharedData = shared.subarray(0, 100);
    sharedData.set(data);
    const alias = new Uint32Array(shared.buffer, shared.byteOffset + 96, 10);
    alias.set(cryptoMeta([good, good]));
    bad.push([call(fn, keys, sharedData, alias, 2, false, ok), /data must not share memory with keys or meta/]);
    bad.push([call(fn, shared.subarray(0, 160), shared.subarray(150), cryptoMeta([good]), 1, false, ok), /must not share memory/]);
  }
  bad.push([call('open', keys, data, cryptoMeta([good, good]), 2, false, new Uint8Array(1)), /ok must hold at least count \(2\)/]);
  bad.push([call('open', keys, data, cryptoMeta([good]), 1, false, data.subarray(99)), /ok must not share memory/]);
  bad.push([call('open', keys, data, cryptoMeta([good]), 1, false, [0]), /ok must be a Buffer or Uint8Array/]);
  bad.push([call('unmaskHeaders', keys, data, cryptoMeta([good, rec({ offset: 94, length: 0 })]), 2), /frame 1 \(7 bytes at 94\)/]);
  bad.push([call('unmaskHeaders', keys, data, cryptoMeta([good, rec({ slot: 9 })]), 2), /names key slot 9/]);
  for (const [fn, want] of bad) {
    assert.throws(fn, want as RegExp);
    assert.deepEqual(data, snapshot, `nothing written: ${fn.toString()}`);
    assert.deepEqual([...ok], [9, 9, 9, 9], 'ok untouched');
  }
  // unmaskHeaders ignores LENGTH: only the header must lie inside data.
  c.unmaskHeaders(keys, data, cryptoMeta([rec({ offset: 93, length: 0xffffffff })]), 1);
  assert.notDeepEqual(data.subarray(93), snapshot.subarray(93));
  // Empty batches are fine, even on an empty table.
  c.seal(Buffer.alloc(0), data, new Uint32Array(0), 0, true);
  c.open(Buffer.alloc(0), data, new Uint32Array(0), 0, false, new Uint8Array(0));
});

test('crypto.hash: BLAKE2b reference vectors, node:crypto and libsodium-wrappers agree; bad lengths refused', () => {
  assert.equal(c.hash(null, Buffer.from('abc'), 64).toString('hex'),
    'ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d17d87c5392aab792dc252d5de4533cc9518d38aa8dbf1925ab92386edd4009923');
  // BLAKE2 KAT: key 00..3f, empty message.
  const kat = Buffer.from([...Array(64).keys()]);
  assert.equal(c.hash(kat, Buffer.alloc(0), 64).toString('hex'),
    '10ebb67700b1868efb4417987acf4690ae9d972fb7a590c2f02871799aaa4786b5e996e8f0f4eb981fc214b005f42d2ff4233499391653df7aefcbc13fc51568');
  for (let i = 0; i < 50; i++) {
    const msg = crypto.randomBytes(crypto.randomInt(0, 300));
    assert.deepEqual(c.hash(null, msg, 64), crypto.createHash('blake2b512').update(msg).digest());
    const key = i % 3 === 0 ? null : crypto.randomBytes(crypto.randomInt(16, 65));
    const outLen = crypto.randomInt(16, 65);
    const h = c.hash(key, msg, outLen);
    assert.equal(h.length, outLen);
    assert.deepEqual(h, Buffer.from(sodium.crypto_generichash(outLen, msg, key)));
  }
  assert.throws(() => c.hash(null, Buffer.alloc(1), 15), RangeError);
  assert.throws(() => c.hash(null, Buffer.alloc(1), 65), RangeError);
  assert.throws(() => c.hash(Buffer.alloc(15), Buffer.alloc(1), 32), /key must be null or 16\.\.64 bytes \(got 15\)/);
  assert.throws(() => c.hash(Buffer.alloc(65), Buffer.alloc(1), 32), RangeError);
  assert.throws(() => c.hash(Buffer.alloc(0), Buffer.alloc(1), 32), RangeError);
  assert.throws(() => (c.hash as (...a: unknown[]) => Buffer)(undefined, Buffer.alloc(1), 32), TypeError);
  assert.throws(() => (c.hash as (...a: unknown[]) => Buffer)(null, 'msg', 32), TypeError);
});

test('crypto.randomBytes and randomU32: the lengths asked for, not repeating', () => {
  for (const n of [0, 1, 7, 64, 1000, 1 << 20]) {
    const b = c.randomBytes(n);
    assert.ok(Buffer.isBuffer(b));
    assert.equal(b.length, n);
  }
  const seen = new Set(Array.from({ length: 100 }, () => c.randomBytes(16).toString('hex')));
  assert.equal(seen.size, 100);
  assert.ok(c.randomBytes(4096).some((v) => v !== 0));
  assert.throws(() => c.randomBytes((1 << 20) + 1), RangeError);
  assert.throws(() => c.randomBytes(-1), RangeError);
  assert.throws(() => c.randomBytes(1.5), TypeError);
  const u = Array.from({ length: 100 }, () => c.randomU32());
  assert.ok(u.every((v) => Number.isInteger(v) && v >= 0 && v <= 0xffffffff));
  assert.ok(new Set(u).size > 95);
  assert.ok(u.some((v) => v > 0x7fffffff), 'the top bit is used (unsigned, not int32)');
});

test('versions() names both libraries', () => {
  const v = native.versions();
  assert.deepEqual(Object.keys(v).sort(), ['pcap', 'sodium']);
  assert.match(v.pcap, /libpcap/);
  assert.match(v.sodium, /^\d+\.\d+\.\d+/);
});
