// IPv4/TCP and IPv6/TCP packets as the addon's injector builds them (DF, the given TTL and IP id, the timestamp
// option when asked), and the summary of one that the simulated network's routers and kernels look at.
import { emptySegment, parseSegment, Segment } from '../../src/core/packet';
import { ip6Of } from './addr';

export type TcpFields = Pick<Segment, 'srcIp' | 'dstIp' | 'srcPort' | 'dstPort' | 'seq' | 'ack' | 'flags' | 'window'>;

const IP_HEADER = 20;
const IP6_HEADER = 40;
const TCP_HEADER = 20;

export interface IpExtras {
  /** [TSval, TSecr]: adds NOP, NOP, timestamp (12 bytes), as Linux does. */
  ts?: [number, number];
  ttl?: number;
  ipId?: number;
  /** IPv6 only. */
  flowLabel?: number;
}

/** IPv6 when the addresses are IPv6 keys (registered in ./addr), else IPv4. */
export function buildTcp(f: TcpFields, payload: Buffer = Buffer.alloc(0), x: IpExtras = {}): Buffer {
  const tcpLen = TCP_HEADER + (x.ts ? 12 : 0);
  const src6 = ip6Of(f.srcIp);
  const dst6 = ip6Of(f.dstIp);
  if (!src6 !== !dst6) throw new Error('sim: a packet between an IPv4 and an IPv6 address');
  const ipLen = src6 ? IP6_HEADER : IP_HEADER;
  const total = ipLen + tcpLen + payload.length;
  const b = Buffer.alloc(total);
  if (src6 && dst6) {
    b.writeUInt32BE((0x60000000 | ((x.flowLabel ?? 0) & 0xfffff)) >>> 0, 0);
    b.writeUInt16BE(tcpLen + payload.length, 4);
    b[6] = 6;
    b[7] = x.ttl || 64;
    for (let i = 0; i < 4; i++) {
      b.writeUInt32BE(src6[i], 8 + 4 * i);
      b.writeUInt32BE(dst6[i], 24 + 4 * i);
    }
  } else {
    b[0] = 0x45;
    b.writeUInt16BE(total, 2);
    b.writeUInt16BE(x.ipId ?? 0, 4);
    b.writeUInt16BE(0x4000, 6); // DF
    b[8] = x.ttl || 64;
    b[9] = 6;
    b.writeUInt32BE(f.srcIp >>> 0, 12);
    b.writeUInt32BE(f.dstIp >>> 0, 16);
  }
  const t = ipLen;
  b.writeUInt16BE(f.srcPort, t);
  b.writeUInt16BE(f.dstPort, t + 2);
  b.writeUInt32BE(f.seq >>> 0, t + 4);
  b.writeUInt32BE(f.ack >>> 0, t + 8);
  b[t + 12] = (tcpLen / 4) << 4;
  b[t + 13] = f.flags;
  b.writeUInt16BE(f.window, t + 14);
  if (x.ts) {
    b[t + 20] = 1;
    b[t + 21] = 1;
    b[t + 22] = 8;
    b[t + 23] = 10;
    b.writeUInt32BE(x.ts[0] >>> 0, t + 24);
    b.writeUInt32BE(x.ts[1] >>> 0, t + 28);
  }
  payload.copy(b, t + tcpLen);
  return b;
}

/** The parsed view of a packet on the simulated wire (null for anything not TCP over IPv4 or IPv6). */
export function parse(pkt: Buffer): Segment | null {
  const s = emptySegment();
  return parseSegment(pkt, 0, pkt.length, s) ? s : null;
}

/** Packets back to back with their (offset, length) pairs: a capture batch. */
export function packBatch(pkts: Buffer[]): { data: Buffer; meta: Uint32Array; count: number } {
  const meta = new Uint32Array(pkts.length * 2);
  let off = 0;
  pkts.forEach((p, i) => {
    meta[2 * i] = off;
    meta[2 * i + 1] = p.length;
    off += p.length;
  });
  return { data: Buffer.concat(pkts), meta, count: pkts.length };
}

/** Joins packets of one 4-tuple with contiguous seq into one, as GRO does on a receiving NIC. */
export function merge(pkts: Buffer[]): Buffer {
  const first = parse(pkts[0])!;
  const payloads = pkts.map((p) => {
    const s = parse(p)!;
    return p.subarray(s.payloadOff, s.payloadOff + s.payloadLen);
  });
  const last = parse(pkts[pkts.length - 1])!;
  return buildTcp({ ...first, ack: last.ack, flags: last.flags | first.flags }, Buffer.concat(payloads), {
    ts: last.hasTs ? [last.tsVal, last.tsEcr] : undefined,
    ttl: first.ttl,
    ipId: first.ipId,
  });
}
