// Reads the IP (v4 or v6) and TCP headers of a captured packet into a reused record, so the receive path allocates nothing.
import { u16, u32 } from './bytes';
import { key6 } from './addr';

export const FIN = 0x01;
export const SYN = 0x02;
export const RST = 0x04;
export const PSH = 0x08;
export const ACK = 0x10;

export interface Segment {
  /** Address keys (src/core/addr.ts): the IPv4 u32, or a hash of the IPv6 address; exact in src6/dst6. */
  srcIp: number;
  dstIp: number;
  ipVersion: number;
  /** IPv6 only: the addresses as four words each. */
  src6: Uint32Array;
  dst6: Uint32Array;
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
  /** IP header fields, for observers and the handshake's TTL (IPv6: hop limit, and ipId 0). */
  ttl: number;
  ipId: number;
  /** IPv6 only: the flow label. */
  flowLabel: number;
}

export function emptySegment(): Segment {
  return {
    srcIp: 0, dstIp: 0, ipVersion: 4, src6: new Uint32Array(4), dst6: new Uint32Array(4), srcPort: 0, dstPort: 0,
    seq: 0, ack: 0, flags: 0, window: 0, payloadOff: 0, payloadLen: 0, wireLen: 0, hasTs: false, tsVal: 0, tsEcr: 0,
    ttl: 0, ipId: 0, flowLabel: 0,
  };
}

/**
 * Fills `out` from the IPv4 or IPv6 packet at buf[off, off+len). Returns false for anything that is not
 * a whole, unfragmented IPv4/TCP packet or an IPv6 packet whose next header is TCP (extension headers
 * are not followed): such packets are dropped without a word, as hostile input must be.
 * The payload length comes from the IP header, not the capture length, so Ethernet padding is ignored.
 * A packet cut short by the capture's snap length (a GRO-merged giant) keeps its headers and the
 * payload bytes that were captured; wireLen tells how long it really was.
 */
export function parseSegment(buf: Buffer, off: number, len: number, out: Segment): boolean {
  if (len < 40) return false;
  const version = buf[off] >> 4;
  if (version === 6) return parseIpv6(buf, off, len, out);
  if (version !== 4) return false;
  const ihl = (buf[off] & 0x0f) * 4;
  if (ihl < 20) return false;
  const total = u16(buf, off + 2);
  if (total < ihl + 20) return false;
  // More-fragments flag or a fragment offset: not ours to reassemble.
  if ((u16(buf, off + 6) & 0x3fff) !== 0) return false;
  if (buf[off + 9] !== 6) return false;
  out.ipVersion = 4;
  out.srcIp = u32(buf, off + 12);
  out.dstIp = u32(buf, off + 16);
  out.ttl = buf[off + 8];
  out.ipId = u16(buf, off + 4);
  out.flowLabel = 0;
  return parseTcp(buf, off, ihl, total, Math.min(total, len), out);
}

const IP6_HEADER = 40;

function parseIpv6(buf: Buffer, off: number, len: number, out: Segment): boolean {
  if (len < IP6_HEADER + 20 || buf[off + 6] !== 6) return false;
  const total = IP6_HEADER + u16(buf, off + 4);
  if (total < IP6_HEADER + 20) return false;
  const s = out.src6;
  const d = out.dst6;
  for (let i = 0; i < 4; i++) {
    s[i] = u32(buf, off + 8 + 4 * i);
    d[i] = u32(buf, off + 24 + 4 * i);
  }
  out.ipVersion = 6;
  out.srcIp = key6(s[0], s[1], s[2], s[3]);
  out.dstIp = key6(d[0], d[1], d[2], d[3]);
  out.ttl = buf[off + 7];
  out.ipId = 0;
  out.flowLabel = u32(buf, off) & 0xfffff;
  return parseTcp(buf, off, IP6_HEADER, total, Math.min(total, len), out);
}

/** The TCP header after `ipLen` bytes of IP header; `total` is the packet's length on the wire, `have` what was captured. */
function parseTcp(buf: Buffer, off: number, ipLen: number, total: number, have: number, out: Segment): boolean {
  const t = off + ipLen;
  const doff = (buf[t + 12] >> 4) * 4;
  if (doff < 20 || ipLen + doff > have) return false;
  out.srcPort = u16(buf, t);
  out.dstPort = u16(buf, t + 2);
  out.seq = u32(buf, t + 4);
  out.ack = u32(buf, t + 8);
  out.flags = buf[t + 13];
  out.window = u16(buf, t + 14);
  out.payloadOff = t + doff;
  out.payloadLen = have - ipLen - doff;
  out.wireLen = total - ipLen - doff;
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
      out.tsVal = u32(buf, p + 2);
      out.tsEcr = u32(buf, p + 6);
      return;
    }
    p += len;
  }
}
