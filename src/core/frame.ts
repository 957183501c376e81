// The tunnel's frames inside the TCP payload (docs/PROTOCOL.md §2 is the prose version of this file).
//
//   --obfs=none:  | hdr(7) | payload(len) | tag(8 or 16) |
//   --obfs=tls:   | 17 03 03 LL LL | hdr(7) | payload(len) | tag | padding |   (one TLS record per frame)
//
//   hdr = len u16 | type u8 | arg u32, always masked (src/core/crypto.ts), so nothing in it is visible.
// Frames never straddle segments; a segment merged by GRO splits back into frames by the TLS record
// lengths (tls) or by the unmasked header lengths one after another (none).
import { put16, put32, u16 } from './bytes';
import { FRAME_HEADER, TAG_AEAD, TAG_PLAIN } from './crypto';
import { ContentType, MAX_CIPHERTEXT, MIN_APP_DATA, RECORD_HEADER } from './tls-record';
import { decodeForwardTable, ForwardTarget } from './forwards';

export const enum FrameType {
  /** arg = flow id; payload = one UDP datagram. */
  Data = 1,
  /** Client to server, first frame under the connection's keys. arg = client session id; payload = Join. */
  Join = 2,
  /** Server to client: the connection is attached to the session. arg = client session id echoed; payload = the forward answers (forwards.ts) if Join had a table. */
  Joined = 3,
  /** arg = nonce. Either side may send it; the other answers Pong with the same nonce. */
  Ping = 4,
  Pong = 5,
  /** This connection is going away; arg = CloseReason. */
  Close = 6,
  /** The client is shutting down: the server may forget its session and flows. arg = client session id. */
  Bye = 7,
  /** Carries nothing; makes a flight as long as the handshake it imitates. */
  Padding = 8,
  /** arg = flow id; payload = fragment header (src/core/fragment.ts) + a piece of a datagram too big for one segment. */
  Fragment = 9,
}

export const enum CloseReason {
  Shutdown = 1,
  Dead = 2,
  Replaced = 3,
}

export const PROTOCOL_VERSION = 2;

export type Obfs = 'tls' | 'none';

/** How frames look on the wire; both ends must agree (it is bound into the handshake keys). */
export interface WireMode {
  obfs: Obfs;
  /** Payloads encrypted with ChaCha20-Poly1305 (--crypt=aead) instead of authenticated with SipHash. */
  aead: boolean;
}

const TLS_APP_DATA = ContentType.AppData;
/** The smallest application-data record a TLS 1.3 stack sends: content type + 16-byte AEAD tag. */
export const MIN_RECORD = MIN_APP_DATA;
/** TLS 1.3's limit on a record's length (RFC 8446 §5.2). */
export const MAX_RECORD = MAX_CIPHERTEXT;

export function tagLen(mode: WireMode): number {
  return mode.aead ? TAG_AEAD : TAG_PLAIN;
}

/** Bytes a frame adds to its payload on the wire (before padding). */
export function frameOverhead(mode: WireMode): number {
  return (mode.obfs === 'tls' ? RECORD_HEADER : 0) + FRAME_HEADER + tagLen(mode);
}

/** Padding a tls-mode record needs so that it is no shorter than any real TLS 1.3 record. */
export function recordPadding(mode: WireMode, payloadLen: number): number {
  if (mode.obfs !== 'tls') return 0;
  const inner = FRAME_HEADER + payloadLen + tagLen(mode);
  return inner < MIN_RECORD ? MIN_RECORD - inner : 0;
}

/** No two frames of a stream start closer than this: the replay window's unit. */
export const MIN_FRAME_BYTES = FRAME_HEADER + TAG_PLAIN;

/** Writes the plain header at buf[off]; it is masked when the batch is sealed. A length that does not fit its 16 bits throws. */
export function writeHeader(buf: Buffer, off: number, type: FrameType, arg: number, payloadLen: number): void {
  if (!(payloadLen >= 0 && payloadLen <= 0xffff)) throw new RangeError(`frame payload length ${payloadLen} does not fit in 16 bits`);
  put16(buf, off, payloadLen);
  buf[off + 2] = type;
  put32(buf, off + 3, arg);
}

export function writeRecordHeader(buf: Buffer, off: number, innerLen: number): void {
  if (!(innerLen >= 0 && innerLen <= 0xffff)) throw new RangeError(`record length ${innerLen} does not fit in 16 bits`);
  buf[off] = TLS_APP_DATA;
  buf[off + 1] = 3;
  buf[off + 2] = 3;
  put16(buf, off + 3, innerLen);
}

/** The inner length of an application-data record at buf[off], or -1 if it is not one (tls-record.ts's check, without an object per frame). */
export function readRecordHeader(buf: Buffer, off: number): number {
  if (buf[off] !== TLS_APP_DATA || buf[off + 1] !== 3 || buf[off + 2] !== 3) return -1;
  const len = u16(buf, off + 3);
  return len > MAX_RECORD ? -1 : len;
}

/**
 * Join payload: version(1) keepaliveMs(4) slot(2) [forward table (forwards.ts)]. The slot number lets
 * the server retire the connection a new one replaces, even when a reset reached only the client. A
 * client without --forward sends no table, so its Join is the same as before forwards existed.
 */
export const JOIN_LEN = 7;
export interface Join {
  version: number;
  keepaliveMs: number;
  slot: number;
  /** Null: the client has no forwards (or sent a table that does not parse). */
  forwards?: ForwardTarget[] | null;
}
export function writeJoin(buf: Buffer, off: number, j: Join): void {
  buf[off] = j.version;
  buf.writeUInt32BE(j.keepaliveMs >>> 0, off + 1);
  buf.writeUInt16BE(j.slot, off + 5);
}
export function readJoin(buf: Buffer, off: number, len: number): Join | null {
  if (len < JOIN_LEN) return null;
  const forwards = len > JOIN_LEN ? decodeForwardTable(buf, off + JOIN_LEN, len - JOIN_LEN) : null;
  return { version: buf[off], keepaliveMs: buf.readUInt32BE(off + 1), slot: buf.readUInt16BE(off + 5), forwards };
}
