// A small simulated IPv4 and IPv6 network for the tunnel's in-memory tests: hosts joined by one link with a
// fixed latency; each host has a kernel that does TCP handshakes and answers strangers' segments with
// RSTs as Linux does, local UDP sockets, and the captures of the tunnels running on it. Rules on the
// link can drop, reject with a reset, or rewrite packets; GRO merging and a capture snap length are
// switches. Everything runs on VirtualTime, so a test of minutes takes milliseconds.
import { ACK, RST, Segment } from '../../src/core/packet';
import { isV6Key } from '../../src/core/addr';
import { isLoopback, simIp } from './addr';
import { buildTcp, parse } from './packet';
import { VirtualTime } from './time';

/** What a rule on the link decides for one packet. */
export type Verdict = 'pass' | 'drop';
export type Rule = (pkt: Buffer, seg: Segment | null, net: SimNetwork) => Verdict;

export interface KernelSocket {
  fd: number;
  kind: 'listen' | 'connecting' | 'established';
  localIp: number;
  localPort: number;
  remoteIp: number;
  remotePort: number;
  /** Who hears about this socket's handshake (the SimIo that opened it or its listener). */
  owner: { alive: boolean; socketEvent(ev: object): void };
  /** Handed back to the kernel (SocketWatcher.handBack): no filter, the kernel serves it (not modelled beyond counting). */
  handedBack?: boolean;
}

export interface UdpEndpoint {
  port: number;
  /** Only this peer's datagrams are taken (a connected socket). */
  peer?: { ip: number; port: number };
  deliver(srcIp: number, srcPort: number, data: Buffer): void;
}

export interface CaptureSink {
  wants(seg: Segment | null): boolean;
  enqueue(pkt: Buffer): void;
}

export const LOOPBACK = 0x7f000001;
export const LOOPBACK6 = simIp('::1');

export class SimHost {
  readonly listeners = new Map<number, KernelSocket>();
  readonly sockets = new Map<number, KernelSocket>();
  private readonly tuples = new Map<string, KernelSocket>();
  readonly captures = new Set<CaptureSink>();
  readonly udp = new Map<number, UdpEndpoint>();
  private nextPort = 40000;
  private nextFd = 3;

  /** `ip6`: the host's IPv6 address key, when it has one. */
  constructor(readonly net: SimNetwork, readonly ip: number, readonly name: string, readonly ip6: number | null = null) {}

  allocFd(): number {
    return this.nextFd++;
  }

  ephemeralPort(inUse: (p: number) => boolean): number {
    for (let i = 0; i < 20000; i++) {
      const p = this.nextPort;
      this.nextPort = this.nextPort >= 60999 ? 40000 : this.nextPort + 1;
      if (!inUse(p)) return p;
    }
    throw new Error(`${this.name}: no free ephemeral port`);
  }

  addSocket(s: KernelSocket): void {
    this.sockets.set(s.fd, s);
    if (s.kind === 'listen') this.listeners.set(s.localPort, s);
    else this.tuples.set(tupleKey(s.localPort, s.remoteIp, s.remotePort), s);
  }

  closeSocket(fd: number): void {
    const s = this.sockets.get(fd);
    if (!s) return;
    this.sockets.delete(fd);
    if (s.kind === 'listen') this.listeners.delete(s.localPort);
    else this.tuples.delete(tupleKey(s.localPort, s.remoteIp, s.remotePort));
  }

  hasTuple(localPort: number, remoteIp: number, remotePort: number): boolean {
    return this.tuples.has(tupleKey(localPort, remoteIp, remotePort));
  }

  /** A packet arrives from the link: the captures see it, then the kernel decides. */
  receive(pkt: Buffer): void {
    const seg = parse(pkt);
    for (const c of this.captures) if (c.wants(seg)) c.enqueue(pkt);
    if (!seg) return;
    // A tunnel socket's drop-everything filter keeps the kernel out of its connection.
    const sock = this.tuples.get(tupleKey(seg.dstPort, seg.srcIp, seg.srcPort));
    if (sock) {
      if (sock.handedBack) this.net.stats.servedByKernel++;
      return;
    }
    if (seg.flags & RST) return;
    // A listener's filter drops payload; a payload-less stray gets the kernel's RST, as on Linux.
    if (this.listeners.has(seg.dstPort) && seg.wireLen > 0) return;
    this.net.stats.kernelRsts++;
    const hasAck = (seg.flags & ACK) !== 0;
    const rst = buildTcp({
      srcIp: seg.dstIp,
      dstIp: seg.srcIp,
      srcPort: seg.dstPort,
      dstPort: seg.srcPort,
      seq: hasAck ? seg.ack : 0,
      ack: hasAck ? 0 : (seg.seq + seg.wireLen) >>> 0,
      flags: hasAck ? RST : RST | ACK,
      window: 0,
    });
    this.net.transmit(this, rst);
  }

  /** A UDP app socket on this host, bound to `port` (0: an ephemeral one). */
  udpSocket(port = 0): UdpApp {
    return new UdpApp(this, port || this.ephemeralPort((p) => this.udp.has(p)));
  }
}

/** A local application's UDP socket: records what it receives, and can echo it back. */
export class UdpApp {
  readonly received: { ip: number; port: number; data: Buffer }[] = [];
  echo = false;

  constructor(readonly host: SimHost, readonly port: number) {
    if (host.udp.has(port)) throw new Error(`udp port ${port} on ${host.name} is in use`);
    host.udp.set(port, {
      port,
      deliver: (ip, sport, data) => {
        this.received.push({ ip, port: sport, data });
        if (this.echo) this.send(ip, sport, data);
      },
    });
  }

  send(ip: number, port: number, data: Buffer): void {
    this.host.net.sendUdp(this.host, this.port, ip, port, data);
  }

  close(): void {
    this.host.udp.delete(this.port);
  }
}

export class SimNetwork {
  readonly time = new VirtualTime();
  readonly hosts = new Map<number, SimHost>();
  readonly rules: Rule[] = [];
  /** Rules for UDP between hosts (loopback never sees them): 'drop' loses the datagram. */
  readonly udpRules: ((srcIp: number, srcPort: number, dstIp: number, dstPort: number, data: Buffer) => Verdict)[] = [];
  latencyMs = 1;
  /** Merge contiguous segments of one connection arriving together, as GRO does. */
  gro = false;
  /** Bytes a capture keeps of each packet. */
  snaplen = 65535;
  /** The MSS the simulated kernels negotiate (1500-byte MTU with TCP timestamps). */
  mss = 1448;
  readonly stats = { packets: 0, dropped: 0, kernelRsts: 0, merged: 0, udp: 0, udpLost: 0, udpBetweenHosts: 0, udpDropped: 0, dials: 0, servedByKernel: 0 };
  /** Every packet put on the link, when set: for tests that judge the wire. */
  wire: { at: number; from: string; seg: Segment | null; pkt: Buffer }[] | null = null;
  private seed = 0x2545f491;

  host(name: string, ip: number, ip6: number | null = null): SimHost {
    const h = new SimHost(this, ip >>> 0, name, ip6);
    this.hosts.set(h.ip, h);
    if (ip6 !== null) this.hosts.set(ip6, h);
    return h;
  }

  /** Deterministic 32-bit numbers (ISNs): the same test sees the same run. */
  random32(): number {
    let x = this.seed;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.seed = x >>> 0;
    return this.seed;
  }

  /** Puts a packet on the link: rules first, then delivery after the latency. */
  transmit(from: SimHost, pkt: Buffer): void {
    const seg = parse(pkt);
    this.stats.packets++;
    this.wire?.push({ at: this.time.now, from: from.name, seg, pkt });
    if (this.judge(pkt, seg) === 'drop') return;
    const to = seg ? this.hosts.get(seg.dstIp) : undefined;
    if (!to) return;
    this.time.after(this.latencyMs, () => to.receive(pkt));
  }

  /** Applies the rules; `drop` counts. Handshakes are judged too, as SYN and SYN-ACK packets. */
  judge(pkt: Buffer, seg: Segment | null): Verdict {
    for (const r of this.rules) {
      if (r(pkt, seg, this) === 'drop') {
        this.stats.dropped++;
        return 'drop';
      }
    }
    return 'pass';
  }

  /** Like a router's `reject with tcp reset`: drops matching segments and resets their sender. */
  rejectWithReset(match: (seg: Segment) => boolean): Rule {
    return (_pkt, seg) => {
      if (!seg || !match(seg) || seg.flags & RST) return 'pass';
      const from = this.hosts.get(seg.srcIp);
      if (from) {
        const rst = buildTcp({ srcIp: seg.dstIp, dstIp: seg.srcIp, srcPort: seg.dstPort, dstPort: seg.srcPort, seq: seg.ack, ack: 0, flags: RST, window: 0 });
        this.time.after(this.latencyMs, () => from.receive(rst));
      }
      return 'drop';
    };
  }

  /** UDP: loopback stays on the host, other addresses go to the host that has them (lost only by udpRules). */
  sendUdp(from: SimHost, srcPort: number, dstIp: number, dstPort: number, data: Buffer): void {
    const v6 = isV6Key(dstIp);
    const loop = isLoopback(dstIp) || dstIp === from.ip || dstIp === from.ip6;
    const to = loop ? from : this.hosts.get(dstIp);
    const srcIp = loop ? (v6 ? LOOPBACK6 : LOOPBACK) : v6 ? from.ip6 ?? 0 : from.ip;
    const copy = Buffer.from(data);
    this.stats.udp++;
    if (!loop) {
      this.stats.udpBetweenHosts++;
      if (this.udpRules.some((r) => r(from.ip, srcPort, dstIp >>> 0, dstPort, copy) === 'drop')) {
        this.stats.udpDropped++;
        return;
      }
    }
    this.time.after(0, () => {
      const ep = to?.udp.get(dstPort);
      if (!ep || (ep.peer && (ep.peer.port !== srcPort || !sameHost(ep.peer.ip, srcIp)))) {
        this.stats.udpLost++;
        return;
      }
      ep.deliver(srcIp, srcPort, copy);
    });
  }
}

function sameHost(a: number, b: number): boolean {
  return a === b || (isLoopback(a) && isLoopback(b) && isV6Key(a) === isV6Key(b));
}

function tupleKey(localPort: number, remoteIp: number, remotePort: number): string {
  return `${localPort}/${remoteIp}/${remotePort}`;
}
