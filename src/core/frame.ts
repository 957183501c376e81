// The tunnel's own wire format inside the TCP payload. docs/PROTOCOL.md is the prose version of this file.
//
//   0        8      10     11        15
//   | tag(8) | len(2) | type(1) | arg(4) | payload(len) |
//
// tag = SipHash-2-4(direction key, bytes 8 .. 15+len): it covers the header fields and the payload.
// Frames never straddle segments, and a segment may hold several frames back to back (GRO merges
// segments on real NICs), so the length field is all a receiver needs to split them.

export const HEADER = 15;
export const TAG_LEN = 8;

export const enum FrameType {
  /** arg = flow id; payload = one UDP datagram. */
  Data = 1,
  /** Client to server, first frame on every connection. arg = client session id; payload = Hello. */
  Hello = 2,
  /** Server to client. arg = client session id echoed. */
  HelloAck = 3,
  /** arg = nonce. Either side may send it; the other answers Pong with the same nonce. */
  Ping = 4,
  Pong = 5,
  /** This connection is going away; arg = CloseReason. */
  Close = 6,
  /** The client is shutting down: the server may forget its session and flows. arg = client session id. */
  Bye = 7,
}

export const enum CloseReason {
  Shutdown = 1,
  Dead = 2,
  Replaced = 3,
}

export const PROTOCOL_VERSION = 1;

/** Writes a frame header at buf[off]; the payload must already sit at buf[off+HEADER]. The tag is left for the batch signer. */
export function writeHeader(buf: Buffer, off: number, type: FrameType, arg: number, payloadLen: number): void {
  buf.writeUInt16BE(payloadLen, off + 8);
  buf[off + 10] = type;
  buf.writeUInt32BE(arg >>> 0, off + 11);
}

export interface FrameRef {
  /** Offset of the frame (its tag) in the buffer. */
  off: number;
  type: number;
  arg: number;
  payloadOff: number;
  payloadLen: number;
}

/**
 * Splits the segment payload buf[off, off+len) into frames, calling `each` for every whole frame.
 * Returns the number of frames, or -1 if the bytes do not split exactly (a truncated or garbage segment);
 * the caller then drops the whole segment, since a bad length means nothing after it can be trusted.
 */
export function splitFrames(buf: Buffer, off: number, len: number, each: (f: FrameRef) => void, ref: FrameRef): number {
  const end = off + len;
  let p = off;
  let n = 0;
  while (p < end) {
    if (end - p < HEADER) return -1;
    const plen = buf.readUInt16BE(p + 8);
    if (p + HEADER + plen > end) return -1;
    ref.off = p;
    ref.type = buf[p + 10];
    ref.arg = buf.readUInt32BE(p + 11);
    ref.payloadOff = p + HEADER;
    ref.payloadLen = plen;
    each(ref);
    n++;
    p += HEADER + plen;
  }
  return n;
}

/**
 * Hello payload: version(1) keepaliveMs(4) slot(2). The slot number lets the server retire the
 * connection a new one replaces, even when a reset reached only the client.
 */
export const HELLO_LEN = 7;
export interface Hello {
  version: number;
  keepaliveMs: number;
  slot: number;
}
export function writeHello(buf: Buffer, off: number, h: Hello): void {
  buf[off] = h.version;
  buf.writeUInt32BE(h.keepaliveMs >>> 0, off + 1);
  buf.writeUInt16BE(h.slot, off + 5);
}
export function readHello(buf: Buffer, off: number, len: number): Hello | null {
  if (len < HELLO_LEN) return null;
  return { version: buf[off], keepaliveMs: buf.readUInt32BE(off + 1), slot: buf.readUInt16BE(off + 5) };
}
