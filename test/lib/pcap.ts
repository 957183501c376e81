// A small reader for the pcap files tcpdump writes in the tests (Ethernet or Linux cooked link
// layer, IPv4 or IPv6, TCP), so the wire analyses need no dissector: every header field and every TCP
// option is read here from the bytes as they crossed the router.
import * as fs from 'fs';

export interface TcpPacket {
  /** Index in the capture file, from 0. */
  index: number;
  /** Capture time in ms (fractional). */
  timeMs: number;
  src: string; dst: string; sport: number; dport: number;
  /** IPv6: ttl is the hop limit, df true (IPv6 routers never fragment), ipId 0. */
  ipVersion: 4 | 6;
  ttl: number; df: boolean; ipId: number;
  /** IPv6 only (0 for IPv4). */
  flowLabel: number;
  seq: number; ack: number;
  /** TCP flags byte (FIN 1, SYN 2, RST 4, PSH 8, ACK 16, URG 32, ECE 64, CWR 128). */
  flags: number;
  window: number;
  /** TCP timestamp option, when present. */
  ts?: { val: number; ecr: number };
  /** Raw option kinds in order (NOP 1, MSS 2, WS 3, SACK_OK 4, TS 8, ...). */
  optionKinds: number[];
  payload: Buffer;
  /** The whole IP packet (header, TCP header and payload) as captured. */
  ip: Buffer;
  /** The whole link-layer frame as captured. */
  frame: Buffer;
}

export const FIN = 0x01, SYN = 0x02, RST = 0x04, PSH = 0x08, ACK = 0x10;

const LINKTYPE_ETHERNET = 1;
const LINKTYPE_LINUX_SLL = 113;

function ipText(b: Buffer, off: number): string {
  return `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`;
}

function ip6Text(b: Buffer, off: number): string {
  const g: string[] = [];
  for (let i = 0; i < 8; i++) g.push(b.readUInt16BE(off + 2 * i).toString(16));
  // The longest run of zero groups becomes "::" (RFC 5952), as rsock and ip(8) print them.
  const s = g.join(':');
  const runs = s.match(/(^|:)0(:0)+(:|$)/g);
  if (!runs) return s;
  const longest = runs.reduce((a, b) => (b.length > a.length ? b : a));
  return s.replace(longest, '::');
}

/** Parses one IPv4+TCP or IPv6+TCP packet; undefined for anything else (ARP, UDP, fragments, extension headers, truncated). */
export function parseIpTcp(ip: Buffer): Omit<TcpPacket, 'index' | 'timeMs' | 'frame'> | undefined {
  const v6 = ip.length >= 40 && ip[0] >> 4 === 6;
  if (!v6 && (ip.length < 20 || ip[0] >> 4 !== 4)) return undefined;
  const ihl = v6 ? 40 : (ip[0] & 0x0f) * 4;
  const total = v6 ? 40 + ip.readUInt16BE(4) : ip.readUInt16BE(2);
  if ((v6 ? ip[6] : ip[9]) !== 6 || ihl < 20 || ip.length < ihl + 20) return undefined;
  const fragOff = v6 ? 0 : ip.readUInt16BE(6) & 0x1fff;
  if (fragOff !== 0) return undefined;
  const t = ihl;
  const doff = (ip[t + 12] >> 4) * 4;
  const end = Math.min(ip.length, total || ip.length);
  if (doff < 20 || t + doff > end) return undefined;
  const optionKinds: number[] = [];
  let ts: { val: number; ecr: number } | undefined;
  for (let o = t + 20; o < t + doff;) {
    const kind = ip[o];
    optionKinds.push(kind);
    if (kind === 0) break;
    if (kind === 1) { o++; continue; }
    const len = ip[o + 1];
    if (len < 2 || o + len > t + doff) break;
    if (kind === 8 && len === 10) ts = { val: ip.readUInt32BE(o + 2), ecr: ip.readUInt32BE(o + 6) };
    o += len;
  }
  const addrs = v6
    ? { ipVersion: 6 as const, src: ip6Text(ip, 8), dst: ip6Text(ip, 24), ttl: ip[7], df: true, ipId: 0, flowLabel: ip.readUInt32BE(0) & 0xfffff }
    : { ipVersion: 4 as const, src: ipText(ip, 12), dst: ipText(ip, 16), ttl: ip[8], df: (ip.readUInt16BE(6) & 0x4000) !== 0, ipId: ip.readUInt16BE(4), flowLabel: 0 };
  return {
    ...addrs, sport: ip.readUInt16BE(t), dport: ip.readUInt16BE(t + 2),
    seq: ip.readUInt32BE(t + 4), ack: ip.readUInt32BE(t + 8), flags: ip[t + 13], window: ip.readUInt16BE(t + 14),
    ts, optionKinds, payload: ip.subarray(t + doff, end), ip: ip.subarray(0, end),
  };
}

/** One record of a pcap file: its capture time and, for IPv4 and IPv6 frames, the IP packet. */
export interface PcapFrame { index: number; timeMs: number; frame: Buffer; ip?: Buffer }

/** Reads every record of a pcap file (microsecond or nanosecond, either byte order; Ethernet or Linux cooked). */
export function readPcapFrames(file: string): PcapFrame[] {
  const b = fs.readFileSync(file);
  if (b.length < 24) return [];
  const magicLE = b.readUInt32LE(0);
  let le: boolean;
  let nano: boolean;
  if (magicLE === 0xa1b2c3d4 || magicLE === 0xa1b23c4d) { le = true; nano = magicLE === 0xa1b23c4d; }
  else if (b.readUInt32BE(0) === 0xa1b2c3d4 || b.readUInt32BE(0) === 0xa1b23c4d) { le = false; nano = b.readUInt32BE(0) === 0xa1b23c4d; }
  else throw new Error(`${file}: not a pcap file (pcapng is not read here; tcpdump -w writes pcap)`);
  const u32 = (o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
  const link = u32(20) & 0xffff;
  if (link !== LINKTYPE_ETHERNET && link !== LINKTYPE_LINUX_SLL) throw new Error(`${file}: link type ${link} not supported`);
  const out: PcapFrame[] = [];
  let index = 0;
  for (let o = 24; o + 16 <= b.length; index++) {
    const sec = u32(o);
    const frac = u32(o + 4);
    const incl = u32(o + 8);
    const frame = b.subarray(o + 16, Math.min(b.length, o + 16 + incl));
    o += 16 + incl;
    const timeMs = sec * 1000 + (nano ? frac / 1e6 : frac / 1e3);
    let ipOff = -1;
    let etherType = 0;
    if (link === LINKTYPE_ETHERNET && frame.length >= 14) {
      etherType = frame.readUInt16BE(12);
      ipOff = 14;
      if (etherType === 0x8100 && frame.length >= 18) { etherType = frame.readUInt16BE(16); ipOff = 18; }
    } else if (link === LINKTYPE_LINUX_SLL && frame.length >= 16) {
      etherType = frame.readUInt16BE(14);
      ipOff = 16;
    }
    const isIp = ipOff >= 0 && (etherType === 0x0800 || etherType === 0x86dd);
    out.push({ index, timeMs, frame, ip: isIp ? frame.subarray(ipOff) : undefined });
  }
  return out;
}

/** Reads every IPv4/TCP and IPv6/TCP packet of a pcap file (microsecond or nanosecond, either byte order). */
export function readPcap(file: string): TcpPacket[] {
  const out: TcpPacket[] = [];
  for (const f of readPcapFrames(file)) {
    const p = f.ip && parseIpTcp(f.ip);
    if (p) out.push({ ...p, index: f.index, timeMs: f.timeMs, frame: f.frame });
  }
  return out;
}

/** Writes link-layer frames as a microsecond pcap (Ethernet), e.g. a subset of a capture to replay. */
export function writePcap(file: string, frames: Array<{ timeMs: number; frame: Buffer }>): void {
  const parts: Buffer[] = [];
  const gh = Buffer.alloc(24);
  gh.writeUInt32LE(0xa1b2c3d4, 0);
  gh.writeUInt16LE(2, 4);
  gh.writeUInt16LE(4, 6);
  gh.writeUInt32LE(262144, 16);
  gh.writeUInt32LE(LINKTYPE_ETHERNET, 20);
  parts.push(gh);
  for (const f of frames) {
    const h = Buffer.alloc(16);
    const us = Math.round(f.timeMs * 1000);
    h.writeUInt32LE(Math.floor(us / 1e6), 0);
    h.writeUInt32LE(us % 1e6, 4);
    h.writeUInt32LE(f.frame.length, 8);
    h.writeUInt32LE(f.frame.length, 12);
    parts.push(h, f.frame);
  }
  fs.writeFileSync(file, Buffer.concat(parts));
}
