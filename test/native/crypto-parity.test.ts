// The in-memory tests run the frame crypto on libsodium's WebAssembly build (test/sim/crypto.ts); the
// programs run it on the addon. Both must produce the same bytes, accept the same frames and refuse
// the same records, or the in-memory tests prove nothing about the programs.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import type { Crypto } from '../../src/core/crypto';
import { FRAME_HEADER } from '../../src/core/crypto';
import { loadNative } from '../../src/io/native';
import { sodiumCrypto } from '../sim/crypto';
import { cryptoMeta, FrameSpec, frameBytes, layFrames, Layout, randomKeys, randomNonce } from './crypto-frames';

const addon = loadNative().crypto;
let wasm: Crypto;
before(async () => {
  wasm = await sodiumCrypto();
});

const SLOTS = 6;
// Nonces at the edges of both halves, then random ones.
const EDGE_NONCES = [0n, 1n, 0xffffffffn, 0x100000000n, 0xffffffff00000000n, 0xffffffffffffffffn];
const nonceOf = (i: number) => (i < EDGE_NONCES.length ? EDGE_NONCES[i] : randomNonce());

/** Every length 0..70 (the masked prefix ends at 64 bytes of the frame, 57 of the payload), 1500, and random ones. */
function lengths(): number[] {
  const out = Array.from({ length: 71 }, (_, i) => i);
  out.push(1500, 1499, 1201, 1200);
  for (let i = 0; i < 300; i++) out.push(crypto.randomInt(0, 1501));
  return out;
}

function batch(aead: boolean): Layout {
  return layFrames(lengths(), aead, () => crypto.randomInt(0, SLOTS), nonceOf, () => crypto.randomInt(0, 4));
}

function firstDifference(a: Buffer, b: Buffer, frames: FrameSpec[]): string {
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) {
      const f = frames.findIndex((x) => i >= x.offset && i < x.offset + frameBytes(x.length, true));
      return `byte ${i} (frame ${f}: ${JSON.stringify(frames[f], (_, v) => (typeof v === 'bigint' ? v.toString() : v))})`;
    }
  }
  return 'none';
}

function assertSame(a: Buffer, b: Buffer, frames: FrameSpec[], what: string): void {
  assert.ok(a.equals(b), `${what}: first difference at ${firstDifference(a, b, frames)}`);
}

for (const aead of [false, true]) {
  test(`crypto parity (aead=${aead}): seal, unmaskHeaders and open give the same bytes on addon and WASM; each opens the other's frames`, () => {
    const keys = randomKeys(SLOTS);
    const { data, meta, frames } = batch(aead);
    const n = frames.length;
    const plain = Buffer.from(data);
    const a = Buffer.from(data);
    const b = Buffer.from(data);
    addon.seal(keys, a, meta, n, aead);
    wasm.seal(keys, b, meta, n, aead);
    assertSame(a, b, frames, 'sealed');
    assert.ok(!a.equals(plain), 'sealing changed something');

    addon.unmaskHeaders(keys, a, meta, n);
    wasm.unmaskHeaders(keys, b, meta, n);
    assertSame(a, b, frames, 'unmasked headers');
    for (const f of frames) {
      assert.ok(a.subarray(f.offset, f.offset + FRAME_HEADER).equals(plain.subarray(f.offset, f.offset + FRAME_HEADER)));
    }

    // Cross over: the addon opens the copy the WASM build unmasked and the other way round.
    const okA = new Uint8Array(n);
    const okB = new Uint8Array(n);
    addon.open(keys, b, meta, n, aead, okA);
    wasm.open(keys, a, meta, n, aead, okB);
    assert.deepEqual([...okA], frames.map(() => 1), 'addon accepts every WASM-sealed frame');
    assert.deepEqual([...okB], frames.map(() => 1), 'WASM accepts every addon-sealed frame');
    assertSame(a, b, frames, 'opened');
    for (const f of frames) {
      const end = f.offset + FRAME_HEADER + f.length;
      assert.ok(a.subarray(f.offset, end).equals(plain.subarray(f.offset, end)), 'plaintext restored');
    }
  });

  test(`crypto parity (aead=${aead}): tampered, mis-keyed and mis-nonced frames are refused alike, leaving the same bytes`, () => {
    const keys = randomKeys(SLOTS);
    const { data, meta, frames } = batch(aead);
    const n = frames.length;
    addon.seal(keys, data, meta, n, aead);
    // A third of the frames get one random bit flipped (anywhere in the frame, tag included), a few
    // more are opened with the wrong slot or nonce.
    const flipped = new Set<number>();
    for (let i = 0; i < n; i += 3) {
      const f = frames[i];
      const bit = crypto.randomInt(0, frameBytes(f.length, aead) * 8);
      data[f.offset + (bit >> 3)] ^= 1 << (bit & 7);
      flipped.add(i);
    }
    const reopen = frames.map((f, i) => {
      if (i % 7 === 1) return { ...f, slot: (f.slot + 1) % SLOTS };
      if (i % 7 === 2) return { ...f, nonce: f.nonce ^ (1n << BigInt(crypto.randomInt(0, 64))) };
      return f;
    });
    const reMeta = cryptoMeta(reopen);
    const a = Buffer.from(data);
    const b = Buffer.from(data);
    addon.unmaskHeaders(keys, a, reMeta, n);
    wasm.unmaskHeaders(keys, b, reMeta, n);
    assertSame(a, b, frames, 'unmasked');
    const okA = new Uint8Array(n);
    const okB = new Uint8Array(n);
    addon.open(keys, a, reMeta, n, aead, okA);
    wasm.open(keys, b, reMeta, n, aead, okB);
    assert.deepEqual(okB, okA, 'same verdicts');
    assertSame(a, b, frames, 'opened (failed frames too)');
    const want = frames.map((_, i) => (flipped.has(i) || i % 7 === 1 || i % 7 === 2 ? 0 : 1));
    assert.deepEqual([...okA], want, 'exactly the untouched frames pass');
  });
}

test('crypto parity: the same records and arguments are refused, with the same error type and message', () => {
  const keys = randomKeys(2);
  const good: FrameSpec = { slot: 0, offset: 0, length: 10, nonce: 5n };
  const data = crypto.randomBytes(100);
  const shared = Buffer.alloc(200);
  const cases: Array<[string, unknown[]]> = [
    ['seal', [keys, data, cryptoMeta([good, { ...good, slot: 2 }]), 2, false]],
    ['seal', [keys, data, cryptoMeta([good, { ...good, offset: 90 }]), 2, true]],
    ['seal', [keys, data, cryptoMeta([{ ...good, length: 86 }]), 1, false]], // only the tag sticks out
    ['seal', [keys, data, cryptoMeta([{ ...good, offset: 0xffffffff }]), 1, false]],
    ['seal', [keys, data, cryptoMeta([good]), 2, false]],
    ['seal', [keys, data, cryptoMeta([good]), 0.5, false]],
    ['seal', [keys, data, cryptoMeta([good]), 1, 1]],
    ['seal', [Buffer.alloc(79), data, cryptoMeta([good]), 1, false]],
    ['seal', [keys, 'data', cryptoMeta([good]), 1, false]],
    ['seal', [keys, data, [0, 0, 10, 5, 0], 1, false]],
    ['seal', [shared.subarray(0, 160), shared.subarray(100), cryptoMeta([good]), 1, false]],
    ['unmaskHeaders', [keys, data, cryptoMeta([{ ...good, offset: 94 }]), 1]],
    ['unmaskHeaders', [keys, data, cryptoMeta([{ ...good, slot: 7 }]), 1]],
    ['open', [keys, data, cryptoMeta([good, good]), 2, false, new Uint8Array(1)]],
    ['open', [keys, data, cryptoMeta([good]), 1, true, data.subarray(50, 51)]],
    ['open', [keys, data, cryptoMeta([good]), 1, false, 'ok']],
    ['open', [keys, data, cryptoMeta([{ ...good, length: 80 }]), 1, true, new Uint8Array(1)]],
    ['hash', [Buffer.alloc(10), data, 32]],
    ['hash', [null, data, 65]],
    ['hash', [null, data, 16.5]],
    ['hash', [undefined, data, 32]],
    ['randomBytes', [(1 << 20) + 1]],
    ['randomBytes', ['1']],
  ];
  const outcome = (impl: Crypto, fn: string, args: unknown[]) => {
    try {
      (impl as unknown as Record<string, (...a: unknown[]) => unknown>)[fn](...args);
      return 'no error';
    } catch (e) {
      return `${(e as Error).constructor.name}: ${(e as Error).message}`;
    }
  };
  for (const [fn, args] of cases) {
    const fromAddon = outcome(addon, fn, args);
    assert.notEqual(fromAddon, 'no error', `${fn}(${args.map(String).join(', ')}) refused`);
    assert.equal(outcome(wasm, fn, args), fromAddon, fn);
  }
});

test('crypto parity: hash and randomBytes agree on addon and WASM', () => {
  for (let i = 0; i < 200; i++) {
    const key = i % 4 === 0 ? null : crypto.randomBytes(crypto.randomInt(16, 65));
    const msg = crypto.randomBytes(crypto.randomInt(0, 2000));
    const outLen = crypto.randomInt(16, 65);
    assert.ok(addon.hash(key, msg, outLen).equals(wasm.hash(key, msg, outLen)), `hash ${i}`);
  }
  for (const n of [0, 1, 32, 4096]) {
    assert.equal(addon.randomBytes(n).length, n);
    assert.equal(wasm.randomBytes(n).length, n);
  }
  for (let i = 0; i < 20; i++) {
    const v = wasm.randomU32();
    assert.ok(Number.isInteger(v) && v >= 0 && v <= 0xffffffff);
  }
});
