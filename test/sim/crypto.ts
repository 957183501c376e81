// The Crypto interface (src/core/crypto.ts) on libsodium's WebAssembly build, so the in-memory tests run
// the real frame crypto without root or the addon. It must give the addon's bytes exactly
// (test/native/crypto-parity.test.ts), including which records it refuses.
//
// libsodium-wrappers has no crypto_stream_chacha20*: the mask block is computed as the ciphertext of
// 64 zero bytes under ChaCha20-Poly1305-IETF with the MASK key, which is ChaCha20-IETF's keystream
// from block counter 1, the block the contract names.
import sodium from 'libsodium-wrappers';
import type { Crypto } from '../../src/core/crypto';
import { CRYPTO, CRYPTO_STRIDE, FRAME_HEADER, KEY_BYTES, KEY_SLOT, MASK_BYTES, TAG_AEAD, TAG_PLAIN } from '../../src/core/crypto';

const ZERO_BLOCK = new Uint8Array(MASK_BYTES);
const MAX_RANDOM_BYTES = 1 << 20;

interface Batch {
  keys: Uint8Array;
  data: Uint8Array;
  meta: Uint32Array;
  count: number;
}

function isUint8(v: unknown): v is Uint8Array {
  return v instanceof Uint8Array;
}

function overlap(a: ArrayBufferView, b: ArrayBufferView): boolean {
  return a.buffer === b.buffer && a.byteLength > 0 && b.byteLength > 0 &&
    a.byteOffset < b.byteOffset + b.byteLength && b.byteOffset < a.byteOffset + a.byteLength;
}

function uint(v: unknown, what: string, min: number, max: number): number {
  if (typeof v !== 'number') throw new TypeError(`${what} must be a number`);
  if (!Number.isInteger(v)) throw new TypeError(`${what} must be an integer`);
  if (v < min || v > max) throw new RangeError(`${what} must be between ${min} and ${max} (got ${v})`);
  return v;
}

/** The checks of native/crypto.cc's ParseBatch, in the same order, with the same messages. */
function parseBatch(name: string, keys: unknown, data: unknown, meta: unknown, count: unknown, tail: number | null): Batch {
  if (!isUint8(keys)) throw new TypeError(`${name}: keys must be a Buffer or Uint8Array`);
  if (keys.length % KEY_SLOT.BYTES !== 0) {
    throw new RangeError(`${name}: keys must hold whole ${KEY_SLOT.BYTES}-byte slots (got ${keys.length} bytes)`);
  }
  const slots = keys.length / KEY_SLOT.BYTES;
  if (!isUint8(data)) throw new TypeError(`${name}: data must be a Buffer or Uint8Array`);
  if (!(meta instanceof Uint32Array)) throw new TypeError(`${name}: meta must be a Uint32Array`);
  const n = uint(count, `${name}: count`, 0, Math.floor(meta.length / CRYPTO_STRIDE));
  if (overlap(data, meta) || overlap(data, keys)) throw new RangeError(`${name}: data must not share memory with keys or meta`);
  for (let i = 0; i < n; i++) {
    const m = i * CRYPTO_STRIDE;
    if (meta[m + CRYPTO.KEY] >= slots) {
      throw new RangeError(`${name}: record ${i} names key slot ${meta[m + CRYPTO.KEY]} of a table of ${slots}`);
    }
    const bytes = FRAME_HEADER + (tail === null ? 0 : meta[m + CRYPTO.LENGTH] + tail);
    if (meta[m + CRYPTO.OFFSET] + bytes > data.length) {
      throw new RangeError(`${name}: frame ${i} (${bytes} bytes at ${meta[m + CRYPTO.OFFSET]}) lies outside data (${data.length} bytes)`);
    }
  }
  return { keys, data, meta, count: n };
}

function bool(v: unknown, what: string): boolean {
  if (typeof v !== 'boolean') throw new TypeError(`${what} must be a boolean`);
  return v;
}

function nonce12(meta: Uint32Array, m: number): Uint8Array {
  const n = new Uint8Array(12);
  const v = new DataView(n.buffer);
  v.setUint32(0, meta[m + CRYPTO.NONCE_LO], true);
  v.setUint32(4, meta[m + CRYPTO.NONCE_HI], true);
  return n;
}

function key(b: Batch, m: number, at: number, bytes: number): Uint8Array {
  const base = b.meta[m + CRYPTO.KEY] * KEY_SLOT.BYTES + at;
  return b.keys.subarray(base, base + bytes);
}

/** frame[from, to) ^= the record's mask block [from, to). */
function mask(b: Batch, m: number, nonce: Uint8Array, from: number, to: number): void {
  const ks = sodium.crypto_aead_chacha20poly1305_ietf_encrypt_detached(ZERO_BLOCK, null, null, nonce, key(b, m, KEY_SLOT.MASK, KEY_BYTES.MASK)).ciphertext;
  const f = b.meta[m + CRYPTO.OFFSET];
  for (let i = from; i < to; i++) b.data[f + i] ^= ks[i];
}

const maskedEnd = (length: number) => Math.min(MASK_BYTES, FRAME_HEADER + length);

export async function sodiumCrypto(): Promise<Crypto> {
  await sodium.ready;
  return {
    seal(keys, data, meta, count, aead) {
      const isAead = bool(aead, 'crypto.seal: aead');
      const b = parseBatch('crypto.seal', keys, data, meta, count, isAead ? TAG_AEAD : TAG_PLAIN);
      for (let i = 0; i < b.count; i++) {
        const m = i * CRYPTO_STRIDE;
        const f = b.meta[m + CRYPTO.OFFSET];
        const len = b.meta[m + CRYPTO.LENGTH];
        const hdr = b.data.subarray(f, f + FRAME_HEADER);
        const payload = b.data.subarray(f + FRAME_HEADER, f + FRAME_HEADER + len);
        const nonce = nonce12(b.meta, m);
        if (isAead) {
          const out = sodium.crypto_aead_chacha20poly1305_ietf_encrypt_detached(payload, hdr, null, nonce, key(b, m, KEY_SLOT.AEAD, KEY_BYTES.AEAD));
          b.data.set(out.ciphertext, f + FRAME_HEADER);
          b.data.set(out.mac, f + FRAME_HEADER + len);
          mask(b, m, nonce, 0, FRAME_HEADER);
        } else {
          const tag = sodium.crypto_shorthash(b.data.subarray(f, f + FRAME_HEADER + len), key(b, m, KEY_SLOT.MAC, KEY_BYTES.MAC));
          b.data.set(tag, f + FRAME_HEADER + len);
          mask(b, m, nonce, 0, maskedEnd(len));
        }
      }
    },

    unmaskHeaders(keys, data, meta, count) {
      const b = parseBatch('crypto.unmaskHeaders', keys, data, meta, count, null);
      for (let i = 0; i < b.count; i++) {
        const m = i * CRYPTO_STRIDE;
        mask(b, m, nonce12(b.meta, m), 0, FRAME_HEADER);
      }
    },

    open(keys, data, meta, count, aead, ok) {
      const isAead = bool(aead, 'crypto.open: aead');
      const b = parseBatch('crypto.open', keys, data, meta, count, isAead ? TAG_AEAD : TAG_PLAIN);
      if (!isUint8(ok)) throw new TypeError('crypto.open: ok must be a Buffer or Uint8Array');
      if (ok.length < b.count) throw new RangeError(`crypto.open: ok must hold at least count (${b.count}) entries`);
      if (overlap(ok, b.meta) || overlap(ok, b.keys) || overlap(ok, b.data)) {
        throw new RangeError('crypto.open: ok must not share memory with keys, data or meta');
      }
      for (let i = 0; i < b.count; i++) {
        const m = i * CRYPTO_STRIDE;
        const f = b.meta[m + CRYPTO.OFFSET];
        const len = b.meta[m + CRYPTO.LENGTH];
        const nonce = nonce12(b.meta, m);
        const tagAt = f + FRAME_HEADER + len;
        if (isAead) {
          try {
            const plain = sodium.crypto_aead_chacha20poly1305_ietf_decrypt_detached(
              null, b.data.subarray(f + FRAME_HEADER, tagAt), b.data.subarray(tagAt, tagAt + TAG_AEAD),
              b.data.subarray(f, f + FRAME_HEADER), nonce, key(b, m, KEY_SLOT.AEAD, KEY_BYTES.AEAD));
            b.data.set(plain, f + FRAME_HEADER);
            ok[i] = 1;
          } catch {
            // A wrong tag: native libsodium zeroes the payload it would have decrypted in place.
            b.data.fill(0, f + FRAME_HEADER, tagAt);
            ok[i] = 0;
          }
        } else {
          mask(b, m, nonce, FRAME_HEADER, maskedEnd(len));
          const tag = sodium.crypto_shorthash(b.data.subarray(f, tagAt), key(b, m, KEY_SLOT.MAC, KEY_BYTES.MAC));
          ok[i] = sodium.memcmp(tag, b.data.subarray(tagAt, tagAt + TAG_PLAIN)) ? 1 : 0;
        }
      }
    },

    hash(k, msg, outLen) {
      if (k !== null) {
        if (!isUint8(k)) throw new TypeError('crypto.hash: key (or null) must be a Buffer or Uint8Array');
        if (k.length < 16 || k.length > 64) {
          throw new RangeError(`crypto.hash: key must be null or 16..64 bytes (got ${k.length})`);
        }
      }
      if (!isUint8(msg)) throw new TypeError('crypto.hash: msg must be a Buffer or Uint8Array');
      const n = uint(outLen, 'crypto.hash: outLen', 16, 64);
      return Buffer.from(sodium.crypto_generichash(n, msg, k));
    },

    randomBytes(n) {
      return Buffer.from(sodium.randombytes_buf(uint(n, 'crypto.randomBytes: n', 0, MAX_RANDOM_BYTES)));
    },

    randomU32() {
      return sodium.randombytes_random() >>> 0;
    },
  };
}
