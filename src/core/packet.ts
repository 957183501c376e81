// Reads the IPv4 and TCP headers of a captured packet into a reused record, so the receive path allocates nothing.

export const FIN = 0x01;
export const SYN = 0x02;
export const RST = 0x04;
export const PSH = 0x08;
export const ACK = 0x10;

export interface Segment {
  srcIp: number;
  dstIp: number;
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  flags: number;
  window: number;
  /** Absolute offset of the TCP payload in the buffer given to parseSegment. */
  payloadOff: number;
  /** Payload bytes present in the buffer. */
  payloadLen: number;
  /** Payload bytes the segment had on the wire; more than payloadLen when the capture cut it short. */
  wireLen: number;
  /** The TCP timestamp option (RFC 7323), when the segment carries one. */
  hasTs: boolean;
  tsVal: number;
  tsEcr: number;
  /** IP header fields, for observers and the handshake's TTL. */
  ttl: number;
  ipId: number;
}

export function emptySegment(): Segment {
  return { srcIp: 0, dstIp: 0, srcPort: 0, dstPort: 0, seq: 0, ack: 0, flags: 0, window: 0, payloadOff: 0, payloadLen: 0, wireLen: 0, hasTs: false, tsVal: 0, tsEcr: 0, ttl: 0, ipId: 0 };
}

/**
 * Fills `out` from the IPv4 packet at buf[off, off+len). Returns false for anything that is not a
 * whole, unfragmented IPv4/TCP packet: such packets are dropped without a word, as hostile input must be.
 * The payload length comes from the IP total length, not the capture length, so Ethernet padding is ignored.
 * A packet cut short by the capture's snap length (a GRO-merged giant) keeps its headers and the
 * payload bytes that were captured; wireLen tells how long it really was.
 */
export function parseSegment(buf: Buffer, off: number, len: number, out: Segment): boolean {
  if (len < 40) return false;
  const vihl = buf[off];
  if (vihl >> 4 !== 4) return false;
  const ihl = (vihl & 0x0f) * 4;
  if (ihl < 20) return false;
  const total = buf.readUInt16BE(off + 2);
  if (total < ihl + 20) return false;
  const have = Math.min(total, len);
  // More-fragments flag or a fragment offset: not ours to reassemble.
  if ((buf.readUInt16BE(off + 6) & 0x3fff) !== 0) return false;
  if (buf[off + 9] !== 6) return false;
  const t = off + ihl;
  const doff = (buf[t + 12] >> 4) * 4;
  if (doff < 20 || ihl + doff > have) return false;
  out.srcIp = buf.readUInt32BE(off + 12);
  out.dstIp = buf.readUInt32BE(off + 16);
  out.srcPort = buf.readUInt16BE(t);
  out.dstPort = buf.readUInt16BE(t + 2);
  out.seq = buf.readUInt32BE(t + 4);
  out.ack = buf.readUInt32BE(t + 8);
  out.flags = buf[t + 13];
  out.window = buf.readUInt16BE(t + 14);
  out.payloadOff = t + doff;
  out.payloadLen = have - ihl - doff;
  out.wireLen = total - ihl - doff;
  out.ttl = buf[off + 8];
  out.ipId = buf.readUInt16BE(off + 4);
  readTimestamp(buf, t + 20, t + doff, out);
  return true;
}

const OPT_END = 0;
const OPT_NOP = 1;
const OPT_TS = 8;

/** Finds the timestamp option among the TCP options in buf[p, end). Malformed options: no timestamp. */
function readTimestamp(buf: Buffer, p: number, end: number, out: Segment): void {
  out.hasTs = false;
  while (p < end) {
    const kind = buf[p];
    if (kind === OPT_END) return;
    if (kind === OPT_NOP) {
      p++;
      continue;
    }
    if (p + 1 >= end) return;
    const len = buf[p + 1];
    if (len < 2 || p + len > end) return;
    if (kind === OPT_TS && len === 10) {
      out.hasTs = true;
      out.tsVal = buf.readUInt32BE(p + 2);
      out.tsEcr = buf.readUInt32BE(p + 6);
      return;
    }
    p += len;
  }
}
