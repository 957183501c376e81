// What the core needs from a MAC: batch signing and checking of frames, key derivation and random
// numbers. The addon implements it with libsodium; the in-memory tests with libsodium's WASM build.

export interface Mac {
  /**
   * SipHash-2-4 over many ranges in one call. For each record i < count (MAC_STRIDE words, see MAC):
   * computes the 8-byte tag of data[OFFSET .. OFFSET+LENGTH) with the 16-byte key, and writes it at
   * data[TAG].
   */
  sign(key: Buffer, data: Buffer, meta: Uint32Array, count: number): void;
  /**
   * Same ranges as sign(); compares with the tag stored at data[TAG] in constant time and writes
   * 1 (valid) or 0 into ok[i].
   */
  verify(key: Buffer, data: Buffer, meta: Uint32Array, count: number, ok: Uint8Array): void;
  /** 16-byte SipHash key for `label`: BLAKE2b-128(label), keyed with BLAKE2b-256(secret). */
  deriveKey(secret: Buffer, label: Buffer): Buffer;
  /** A uniformly random unsigned 32-bit number from a CSPRNG. */
  randomU32(): number;
}

/** Stride (in u32 words) of one range's record in sign() and verify(). */
export const MAC_STRIDE = 3;
/** Word offsets inside one record: the authenticated bytes (offset, length) and where their tag lies. */
export const MAC = { OFFSET: 0, LENGTH: 1, TAG: 2 } as const;
