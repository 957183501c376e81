// The UdpMux interface on a simulated host: bound and connected UDP sockets, datagrams handed to the
// tunnel in batches of UDP_RX records, sends of UDP_TX records.
import { isV6Key } from '../../src/core/addr';
import { ip6Of, simIp, simIp6 } from './addr';
import { UDP_RX, UDP_RX_STRIDE, UDP_TX, UDP_TX_STRIDE, UdpBatchFn } from '../../src/io/native';
import type { UdpMux } from '../../src/tunnel/io';
import type { SimIo } from './io';
import { InstantBatcher } from './time';

interface Sock {
  port: number;
  peer?: { ip: number; port: number };
}

interface Pending {
  id: number;
  ip: number;
  port: number;
  data: Buffer;
}

export class SimUdpMux implements UdpMux {
  private readonly socks = new Map<number, Sock>();
  private readonly arrivals: InstantBatcher<Pending>;
  private stopped = false;
  private readonly counts = { received: 0, batches: 0, sent: 0, coalesced: 0, gsoRefused: 0, sendErrors: 0, recvErrors: 0, lastError: '' };

  constructor(private readonly io: SimIo, private readonly onBatch: UdpBatchFn) {
    this.arrivals = new InstantBatcher(io.host.net.time, (batch) => this.flush(batch));
  }

  bind(ip: string, port: number): number {
    const host = this.io.host;
    if (host.udp.has(port)) throw new Error(`udp bind ${ip}:${port}: Address already in use`);
    return this.open(port || host.ephemeralPort((p) => host.udp.has(p)));
  }

  connect(ip: string, port: number): number {
    const host = this.io.host;
    return this.open(host.ephemeralPort((p) => host.udp.has(p)), { ip: simIp(ip), port });
  }

  private open(port: number, peer?: { ip: number; port: number }): number {
    let id = 0;
    while (this.socks.has(id)) id++;
    this.socks.set(id, { port, peer });
    this.io.host.udp.set(port, {
      port,
      peer,
      deliver: (srcIp, srcPort, data) => this.receive(id, port, srcIp, srcPort, data),
    });
    return id;
  }

  private receive(id: number, port: number, ip: number, srcPort: number, data: Buffer): void {
    if (this.stopped || this.socks.get(id)?.port !== port) return;
    this.arrivals.add({ id, ip, port: srcPort, data });
  }

  private flush(batch: Pending[]): void {
    if (this.stopped || !this.io.alive) return;
    const meta = new Uint32Array(batch.length * UDP_RX_STRIDE);
    let off = 0;
    batch.forEach((d, i) => {
      const m = i * UDP_RX_STRIDE;
      meta[m + UDP_RX.SOCKET] = d.id;
      meta[m + UDP_RX.OFFSET] = off;
      meta[m + UDP_RX.LENGTH] = d.data.length;
      meta[m + UDP_RX.SRC_PORT] = d.port;
      if (isV6Key(d.ip)) {
        meta[m + UDP_RX.IP_VERSION] = 6;
        meta.set(ip6Of(d.ip)!, m + UDP_RX.SRC_IP6);
      } else {
        meta[m + UDP_RX.IP_VERSION] = 4;
        meta[m + UDP_RX.SRC_IP] = d.ip;
      }
      off += d.data.length;
    });
    this.counts.received += batch.length;
    this.counts.batches++;
    this.onBatch(Buffer.concat(batch.map((d) => d.data)), meta, batch.length);
  }

  localPort(id: number): number {
    const s = this.socks.get(id);
    if (!s) throw new RangeError(`udp socket ${id} is not open`);
    return s.port;
  }

  send(data: Buffer, meta: Uint32Array, count: number): number {
    let sent = 0;
    for (let i = 0; i < count; i++) {
      const m = i * UDP_TX_STRIDE;
      const s = this.socks.get(meta[m + UDP_TX.SOCKET]);
      const v6 = meta[m + UDP_TX.IP_VERSION] === 6;
      const given = v6 || meta[m + UDP_TX.DST_IP] !== 0;
      const dstIp = v6 ? simIp6(meta, m + UDP_TX.DST_IP6) : given ? meta[m + UDP_TX.DST_IP] : s?.peer?.ip;
      const dstPort = given ? meta[m + UDP_TX.DST_PORT] : s?.peer?.port;
      if (!s || !this.io.alive || dstIp === undefined || dstPort === undefined) {
        this.counts.sendErrors++;
        continue;
      }
      const off = meta[m + UDP_TX.OFFSET];
      this.io.host.net.sendUdp(this.io.host, s.port, dstIp, dstPort, data.subarray(off, off + meta[m + UDP_TX.LENGTH]));
      sent++;
    }
    this.counts.sent += sent;
    return sent;
  }

  close(id: number): void {
    const s = this.socks.get(id);
    if (!s) return;
    this.socks.delete(id);
    this.io.host.udp.delete(s.port);
  }

  stats() {
    return { ...this.counts, sockets: this.socks.size };
  }

  stop(): void {
    this.stopped = true;
    for (const id of [...this.socks.keys()]) this.close(id);
  }
}
