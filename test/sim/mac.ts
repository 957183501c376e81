// The Mac interface on libsodium's WebAssembly build: the same SipHash-2-4 and BLAKE2b as the addon's
// libsodium, so the in-memory tests run the real MAC without root or the addon.
import sodium from 'libsodium-wrappers';
import type { Mac } from '../../src/core/mac';
import { MAC, MAC_STRIDE } from '../../src/core/mac';

const TAG = 8;

export async function sodiumMac(): Promise<Mac> {
  await sodium.ready;
  const tag = (key: Buffer, data: Buffer, off: number, len: number) => sodium.crypto_shorthash(data.subarray(off, off + len), key);
  return {
    sign(key, data, meta, count) {
      for (let i = 0; i < count; i++) {
        const m = i * MAC_STRIDE;
        data.set(tag(key, data, meta[m + MAC.OFFSET], meta[m + MAC.LENGTH]), meta[m + MAC.TAG]);
      }
    },
    verify(key, data, meta, count, ok) {
      for (let i = 0; i < count; i++) {
        const m = i * MAC_STRIDE;
        const want = tag(key, data, meta[m + MAC.OFFSET], meta[m + MAC.LENGTH]);
        const at = meta[m + MAC.TAG];
        ok[i] = at + TAG <= data.length && sodium.memcmp(want, data.subarray(at, at + TAG)) ? 1 : 0;
      }
    },
    deriveKey(secret, label) {
      return Buffer.from(sodium.crypto_generichash(16, label, sodium.crypto_generichash(32, secret, null)));
    },
    randomU32() {
      return sodium.randombytes_random() >>> 0;
    },
  };
}
