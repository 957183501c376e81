// Frames and key tables for the crypto tests and the crypto micro-benchmark, built through the layout
// constants of src/core/crypto.ts only.
import * as crypto from 'node:crypto';
import { CRYPTO, CRYPTO_STRIDE, FRAME_HEADER, KEY_SLOT, TAG_AEAD, TAG_PLAIN } from '../../src/core/crypto';

export interface FrameSpec {
  slot: number;
  offset: number;
  length: number;
  nonce: bigint;
}

export const tagBytes = (aead: boolean) => (aead ? TAG_AEAD : TAG_PLAIN);
export const frameBytes = (length: number, aead: boolean) => FRAME_HEADER + length + tagBytes(aead);

export function cryptoMeta(frames: FrameSpec[]): Uint32Array {
  const meta = new Uint32Array(frames.length * CRYPTO_STRIDE);
  frames.forEach((f, i) => {
    const m = i * CRYPTO_STRIDE;
    meta[m + CRYPTO.KEY] = f.slot;
    meta[m + CRYPTO.OFFSET] = f.offset;
    meta[m + CRYPTO.LENGTH] = f.length;
    meta[m + CRYPTO.NONCE_LO] = Number(f.nonce & 0xffffffffn);
    meta[m + CRYPTO.NONCE_HI] = Number((f.nonce >> 32n) & 0xffffffffn);
  });
  return meta;
}

/** A key table of `slots` slots of random keys. */
export function randomKeys(slots: number): Buffer {
  return crypto.randomBytes(slots * KEY_SLOT.BYTES);
}

export const randomNonce = () => crypto.randomBytes(8).readBigUInt64LE(0);

export interface Layout {
  data: Buffer;
  meta: Uint32Array;
  frames: FrameSpec[];
}

/**
 * Frames of the given payload lengths in one buffer, each `gap` bytes after the previous one's tag
 * (gap bytes are random and must survive every call), filled with random bytes. slot(i) and nonce(i)
 * choose each frame's key slot and nonce.
 */
export function layFrames(lengths: number[], aead: boolean, slot: (i: number) => number, nonce: (i: number) => bigint,
  gap: (i: number) => number = () => 0): Layout {
  let offset = 0;
  const frames = lengths.map((length, i) => {
    offset += gap(i);
    const f = { slot: slot(i), offset, length, nonce: nonce(i) };
    offset += frameBytes(length, aead);
    return f;
  });
  return { data: crypto.randomBytes(offset + gap(lengths.length)), meta: cryptoMeta(frames), frames };
}

/** Header and payload of a frame (the bytes seal() takes as plaintext). */
export function plainOf(data: Buffer, f: FrameSpec): Buffer {
  return data.subarray(f.offset, f.offset + FRAME_HEADER + f.length);
}

/** The whole frame, tag included. */
export function frameOf(data: Buffer, f: FrameSpec, aead: boolean): Buffer {
  return data.subarray(f.offset, f.offset + frameBytes(f.length, aead));
}
