// What the core needs from a MAC: batch signing and checking of frames, key derivation and random
// numbers. The addon implements it with libsodium; the in-memory tests with libsodium's WASM build.

export interface Mac {
  /**
   * SipHash-2-4 over many ranges in one call. For each i < count: computes the 8-byte tag of
   * data[meta[3i] .. meta[3i]+meta[3i+1]) with the 16-byte key, and writes it at data[meta[3i+2]].
   */
  sign(key: Buffer, data: Buffer, meta: Uint32Array, count: number): void;
  /**
   * Same ranges as sign(); compares with the tag stored at data[meta[3i+2]] in constant time and writes
   * 1 (valid) or 0 into ok[i].
   */
  verify(key: Buffer, data: Buffer, meta: Uint32Array, count: number, ok: Uint8Array): void;
  /** 16-byte SipHash key for `label`: BLAKE2b-128(label), keyed with BLAKE2b-256(secret). */
  deriveKey(secret: Buffer, label: Buffer): Buffer;
  /** A uniformly random unsigned 32-bit number from a CSPRNG. */
  randomU32(): number;
}

/** Words per range in a sign()/verify() meta array: data offset, data length, tag offset. */
export const MAC_STRIDE = 3;
