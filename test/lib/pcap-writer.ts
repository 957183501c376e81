// Writes pcap files of one TCP connection as Linux would put it on the wire: Ethernet, IPv4 with DF and
// a counting id, TCP with the SYN options Linux sends (MSS, SACK-permitted, timestamps, window scale)
// and NOP,NOP,timestamps on every later segment, correct checksums. Observers (tshark, ndpiReader) read
// such a file as they would read a capture of a real connection, so what they say of it is what they
// would say on a real link.
import * as fs from 'fs';

const SYN = 0x02;
const FIN = 0x01;
const PSH = 0x08;
const ACK = 0x10;

export interface Endpoint {
  ip: string;
  port: number;
}

function ipBytes(ip: string): Buffer {
  const parts = ip.split('.').map(Number);
  if (parts.length !== 4 || parts.some((x) => !(x >= 0 && x <= 255))) throw new Error(`bad IPv4 address ${ip}`);
  return Buffer.from(parts);
}

/** The Internet checksum (RFC 1071) of the given byte runs, concatenated. */
export function inetChecksum(...runs: Buffer[]): number {
  let sum = 0;
  let odd = -1;
  for (const r of runs) {
    for (let i = 0; i < r.length; i++) {
      if (odd < 0) odd = r[i];
      else {
        sum += (odd << 8) | r[i];
        odd = -1;
      }
    }
  }
  if (odd >= 0) sum += odd << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** Offsets inside a frame written by TcpFlow: Ethernet 14, IPv4 20. */
export const TCP_AT = 14 + 20;

export class PcapWriter {
  /** Ethernet frames in order; a test may spoil one before saving, to see an observer object. */
  readonly frames: { data: Buffer; timeUs: number }[] = [];

  frame(data: Buffer, timeUs: number): void {
    this.frames.push({ data, timeUs });
  }

  toBuffer(): Buffer {
    const g = Buffer.alloc(24);
    g.writeUInt32LE(0xa1b2c3d4, 0);
    g.writeUInt16LE(2, 4);
    g.writeUInt16LE(4, 6);
    g.writeUInt32LE(65535, 16);
    g.writeUInt32LE(1, 20); // LINKTYPE_ETHERNET
    const parts: Buffer[] = [g];
    for (const { data, timeUs } of this.frames) {
      const h = Buffer.alloc(16);
      h.writeUInt32LE(Math.floor(timeUs / 1e6), 0);
      h.writeUInt32LE(Math.floor(timeUs % 1e6), 4);
      h.writeUInt32LE(data.length, 8);
      h.writeUInt32LE(data.length, 12);
      parts.push(h, data);
    }
    return Buffer.concat(parts);
  }

  save(path: string): void {
    fs.writeFileSync(path, this.toBuffer());
  }
}

interface Side {
  ep: Endpoint;
  ip: Buffer;
  mac: Buffer;
  seq: number;
  ipId: number;
  tsBase: number;
}

/**
 * One TCP connection, client and server, written to `pcap` packet by packet. Time advances by a
 * fixed step per packet plus an RTT on each reply, so timestamps and TSval/TSecr move as on a real path.
 */
export class TcpFlow {
  private readonly c: Side;
  private readonly s: Side;
  private timeUs: number;
  private readonly rttUs: number;
  /** The last TSval each side sent, echoed by the other. */
  private lastTs = new Map<Side, number>();
  readonly mss = 1448;

  constructor(private readonly pcap: PcapWriter, client: Endpoint, server: Endpoint, opts: { startUs?: number; rttUs?: number } = {}) {
    this.c = { ep: client, ip: ipBytes(client.ip), mac: Buffer.from('020000000001', 'hex'), seq: 0x1a2b3c4d, ipId: 0x1111, tsBase: 1_000_000 };
    this.s = { ep: server, ip: ipBytes(server.ip), mac: Buffer.from('020000000002', 'hex'), seq: 0x9e8d7c6b, ipId: 0x7777, tsBase: 3_000_000 };
    this.timeUs = opts.startUs ?? 1_700_000_000_000_000;
    this.rttUs = opts.rttUs ?? 20_000;
  }

  private side(fromClient: boolean): [Side, Side] {
    return fromClient ? [this.c, this.s] : [this.s, this.c];
  }

  private tsOption(from: Side, to: Side): Buffer {
    const tsval = (from.tsBase + Math.floor(this.timeUs / 1000)) >>> 0;
    this.lastTs.set(from, tsval);
    const o = Buffer.alloc(10);
    o[0] = 8;
    o[1] = 10;
    o.writeUInt32BE(tsval, 2);
    o.writeUInt32BE(this.lastTs.get(to) ?? 0, 6);
    return o;
  }

  private segment(fromClient: boolean, flags: number, payload: Buffer, delayUs: number): void {
    this.timeUs += delayUs;
    const [from, to] = this.side(fromClient);
    const ts = this.tsOption(from, to);
    const opts =
      flags & SYN
        ? Buffer.concat([Buffer.from([2, 4, 0x05, 0xb4, 4, 2]), ts, Buffer.from([1, 3, 3, 7])]) // MSS 1460, SACK_PERM, TS, NOP, WS 7
        : Buffer.concat([Buffer.from([1, 1]), ts]);
    const tcp = Buffer.alloc(20 + opts.length);
    tcp.writeUInt16BE(from.ep.port, 0);
    tcp.writeUInt16BE(to.ep.port, 2);
    tcp.writeUInt32BE(from.seq >>> 0, 4);
    tcp.writeUInt32BE(flags & ACK ? to.seq >>> 0 : 0, 8);
    tcp[12] = (tcp.length / 4) << 4;
    tcp[13] = flags;
    tcp.writeUInt16BE(flags & SYN ? 64240 : 502, 14); // 502 << 7 = 64 KiB, Linux's scaled window early on
    opts.copy(tcp, 20);
    const pseudo = Buffer.alloc(12);
    from.ip.copy(pseudo, 0);
    to.ip.copy(pseudo, 4);
    pseudo[9] = 6;
    pseudo.writeUInt16BE(tcp.length + payload.length, 10);
    tcp.writeUInt16BE(inetChecksum(pseudo, tcp, payload), 16);

    const ip = Buffer.alloc(20);
    ip[0] = 0x45;
    ip.writeUInt16BE(20 + tcp.length + payload.length, 2);
    ip.writeUInt16BE(from.ipId, 4);
    from.ipId = (from.ipId + 1) & 0xffff;
    ip.writeUInt16BE(0x4000, 6); // DF
    ip[8] = 64;
    ip[9] = 6;
    from.ip.copy(ip, 12);
    to.ip.copy(ip, 16);
    ip.writeUInt16BE(inetChecksum(ip), 10);

    const eth = Buffer.alloc(14);
    to.mac.copy(eth, 0);
    from.mac.copy(eth, 6);
    eth.writeUInt16BE(0x0800, 12);
    this.pcap.frame(Buffer.concat([eth, ip, tcp, payload]), this.timeUs);
    from.seq = (from.seq + payload.length + (flags & (SYN | FIN) ? 1 : 0)) >>> 0;
  }

  handshake(): void {
    this.segment(true, SYN, Buffer.alloc(0), 0);
    this.segment(false, SYN | ACK, Buffer.alloc(0), this.rttUs / 2);
    this.segment(true, ACK, Buffer.alloc(0), this.rttUs / 2);
  }

  /** Sends bytes in MSS-sized PSH segments; the receiver acknowledges each flight, as delayed ACKs would. */
  send(fromClient: boolean, data: Buffer): void {
    for (let off = 0; off < data.length; off += this.mss) {
      this.segment(fromClient, PSH | ACK, data.subarray(off, off + this.mss), 200);
    }
    this.segment(!fromClient, ACK, Buffer.alloc(0), this.rttUs / 2);
  }

  /** The client closes: FIN, the server's FIN+ACK, the client's last ACK. */
  close(): void {
    this.segment(true, FIN | ACK, Buffer.alloc(0), 1000);
    this.segment(false, FIN | ACK, Buffer.alloc(0), this.rttUs / 2);
    this.segment(true, ACK, Buffer.alloc(0), this.rttUs / 2);
  }
}
