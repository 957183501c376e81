// The UDP transport's datagrams (docs/PROTOCOL.md §7): after the greetings, one frame per datagram, the
// frame exactly as on fake TCP, followed by the sender's datagram counter:
//
//   --obfs=none:  | hdr(7) | payload | tag | ctr(8) |
//   --obfs=tls:   | 17 03 03 LL LL | hdr(7) | payload | tag | ctr(8) |      (LL covers all that follows)
//
// UDP has no stream offset, so the counter is the frame's nonce: 0, 1, 2, ... per path and direction.
// It is masked like a QUIC packet number: XORed with BLAKE2b(K_counter, the frame's first 15 bytes),
// which are the masked header and the start of the payload or tag, pseudo-random for every counter.
// A datagram never needs record padding: its record is at least 7 + 8 + 8 bytes long.
import type { Crypto } from './crypto';
import { FRAME_HEADER, TAG_PLAIN } from './crypto';
import { frameOverhead, readRecordHeader, tagLen, WireMode } from './frame';
import { MIN_FRAME_BYTES } from './frame';
import { RECORD_HEADER } from './tls-record';

export const COUNTER_BYTES = 8;
/** Bytes of the frame the counter's mask is computed over: the shortest frame has this many. */
export const COUNTER_SAMPLE = FRAME_HEADER + TAG_PLAIN;
/**
 * Largest UDP payload we send: a 1500-byte MTU minus IPv4 and UDP headers, less 20 bytes of slack
 * for tunnels and PPPoE on the way. Larger datagrams are split into Fragment frames.
 */
export const UDP_PAYLOAD_MAX = 1452;
/** Counters stay below 2^48, so that counter × 15 (the replay window's unit) is an exact double. */
export const COUNTER_LIMIT = 2 ** 48;
/** A UDP path's Join names slot UDP_SLOT_BASE + its index, so it never replaces a fake TCP connection's slot. */
export const UDP_SLOT_BASE = 0x8000;

/** Bytes a datagram adds to the app's datagram on a UDP path. */
export function udpOverhead(mode: WireMode): number {
  return frameOverhead(mode) + COUNTER_BYTES;
}

/** Largest app datagram one UDP datagram carries in one Data frame. */
export function udpMaxDatagram(mode: WireMode): number {
  return UDP_PAYLOAD_MAX - udpOverhead(mode);
}

/** Where a frame's header starts in a datagram: after the record header under tls. */
export function udpFrameStart(mode: WireMode): number {
  return mode.obfs === 'tls' ? RECORD_HEADER : 0;
}

/**
 * Checks a received datagram's outer shape: long enough, and under tls one record that spans it.
 * Returns the payload length the frame must have (its unmasked header must say the same), or -1.
 */
export function udpPayloadLength(mode: WireMode, buf: Buffer, off: number, len: number): number {
  const start = udpFrameStart(mode);
  const payload = len - start - FRAME_HEADER - tagLen(mode) - COUNTER_BYTES;
  if (payload < 0) return -1;
  if (start > 0 && readRecordHeader(buf, off) !== len - RECORD_HEADER) return -1;
  return payload;
}

/** The counter's mask for the frame at buf[frameOff]: 8 bytes of BLAKE2b-128 keyed with K_counter. */
function counterMask(crypto: Crypto, key: Buffer, buf: Buffer, frameOff: number): Buffer {
  return crypto.hash(key, buf.subarray(frameOff, frameOff + COUNTER_SAMPLE), 16);
}

/** Writes the masked counter at buf[at], the frame (already sealed) being at buf[frameOff]. */
export function writeCounter(crypto: Crypto, key: Buffer, buf: Buffer, frameOff: number, at: number, counter: number): void {
  const mask = counterMask(crypto, key, buf, frameOff);
  buf.writeUInt32BE(Math.floor(counter / 4294967296), at);
  buf.writeUInt32BE(counter >>> 0, at + 4);
  for (let i = 0; i < COUNTER_BYTES; i++) buf[at + i] ^= mask[i];
}

/** The counter at buf[at], unmasked; -1 when it is beyond COUNTER_LIMIT (never sent, so forged). */
export function readCounter(crypto: Crypto, key: Buffer, buf: Buffer, frameOff: number, at: number): number {
  const mask = counterMask(crypto, key, buf, frameOff);
  const hi = (buf.readUInt32BE(at) ^ mask.readUInt32BE(0)) >>> 0;
  const lo = (buf.readUInt32BE(at + 4) ^ mask.readUInt32BE(4)) >>> 0;
  const n = hi * 4294967296 + lo;
  return n < COUNTER_LIMIT ? n : -1;
}

/** The replay window counts in stream offsets (one frame per MIN_FRAME_BYTES); a counter is one frame. */
export function counterOffset(counter: number): number {
  return counter * MIN_FRAME_BYTES;
}
