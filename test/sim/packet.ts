// IPv4/TCP packets as the addon's injector builds them (DF, the given TTL and IP id, the timestamp
// option when asked), and the summary of one that the simulated network's routers and kernels look at.
import { emptySegment, parseSegment, Segment } from '../../src/core/packet';

export type TcpFields = Pick<Segment, 'srcIp' | 'dstIp' | 'srcPort' | 'dstPort' | 'seq' | 'ack' | 'flags' | 'window'>;

const IP_HEADER = 20;
const TCP_HEADER = 20;

export interface IpExtras {
  /** [TSval, TSecr]: adds NOP, NOP, timestamp (12 bytes), as Linux does. */
  ts?: [number, number];
  ttl?: number;
  ipId?: number;
}

export function buildTcp(f: TcpFields, payload: Buffer = Buffer.alloc(0), x: IpExtras = {}): Buffer {
  const tcpLen = TCP_HEADER + (x.ts ? 12 : 0);
  const total = IP_HEADER + tcpLen + payload.length;
  const b = Buffer.alloc(total);
  b[0] = 0x45;
  b.writeUInt16BE(total, 2);
  b.writeUInt16BE(x.ipId ?? 0, 4);
  b.writeUInt16BE(0x4000, 6); // DF
  b[8] = x.ttl || 64;
  b[9] = 6;
  b.writeUInt32BE(f.srcIp >>> 0, 12);
  b.writeUInt32BE(f.dstIp >>> 0, 16);
  b.writeUInt16BE(f.srcPort, 20);
  b.writeUInt16BE(f.dstPort, 22);
  b.writeUInt32BE(f.seq >>> 0, 24);
  b.writeUInt32BE(f.ack >>> 0, 28);
  b[32] = (tcpLen / 4) << 4;
  b[33] = f.flags;
  b.writeUInt16BE(f.window, 34);
  if (x.ts) {
    b[40] = 1;
    b[41] = 1;
    b[42] = 8;
    b[43] = 10;
    b.writeUInt32BE(x.ts[0] >>> 0, 44);
    b.writeUInt32BE(x.ts[1] >>> 0, 48);
  }
  payload.copy(b, IP_HEADER + tcpLen);
  return b;
}

/** The parsed view of a packet on the simulated wire (null fields for anything not IPv4/TCP). */
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
