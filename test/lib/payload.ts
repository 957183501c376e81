// Datagram format shared by udp-probe (sender) and udp-echo (target).
// Header: magic (4) | seq u32 BE | length u32 BE | sender's pid u32 BE; then body bytes taken from a
// fixed pseudo-random pool at an offset derived from seq, so every echo can be checked byte for byte.
import * as crypto from 'crypto';

export const HEADER = 16;
/** Echo me. */
export const MAGIC_ECHO = 0x52534b45; // "RSKE"
/** Count me, do not answer (one-direction traffic). */
export const MAGIC_SINK = 0x52534b53; // "RSKS"

const POOL = (() => {
  // Deterministic pool: the same in every process.
  const out = Buffer.alloc(1 << 16);
  let block = crypto.createHash('sha256').update('rsock-test-pool').digest();
  for (let off = 0; off < out.length; off += block.length) {
    block.copy(out, off);
    block = crypto.createHash('sha256').update(block).digest();
  }
  return out;
})();

/** Size of datagram `seq` in a run of mixed sizes between min and max (both ends included). */
export function mixedSize(seq: number, min: number, max: number): number {
  if (seq % 10 === 0) return max;
  if (seq % 10 === 1) return min;
  return min + ((seq * 7919) % (max - min + 1));
}

export function makeDatagram(magic: number, seq: number, len: number, tag: number): Buffer {
  if (len < HEADER) throw new Error(`datagram length ${len} < ${HEADER}`);
  const b = Buffer.allocUnsafe(len);
  b.writeUInt32BE(magic, 0);
  b.writeUInt32BE(seq >>> 0, 4);
  b.writeUInt32BE(len, 8);
  b.writeUInt32BE(tag >>> 0, 12);
  const bodyLen = len - HEADER;
  const off = (seq * 4099) % (POOL.length - bodyLen + 1);
  POOL.copy(b, HEADER, off, off + bodyLen);
  return b;
}

/** Returns the seq if `b` is exactly the datagram makeDatagram would build, else -1. */
export function checkDatagram(b: Buffer, magic: number, tag: number): number {
  if (b.length < HEADER || b.readUInt32BE(0) !== magic || b.readUInt32BE(8) !== b.length || b.readUInt32BE(12) !== tag >>> 0) return -1;
  const seq = b.readUInt32BE(4);
  return makeDatagram(magic, seq, b.length, tag).equals(b) ? seq : -1;
}
