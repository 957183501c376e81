// Kernel TCP sockets on a simulated host, behind the SocketWatcher interface: listeners, dials whose
// SYN and SYN-ACK cross the link's rules, accepted connections, and close() that sends nothing.
import { isV6Key } from '../../src/core/addr';
import { SYN, ACK } from '../../src/core/packet';
import type { SocketWatcher, WatcherEvent } from '../../src/tunnel/io';
import type { SimIo } from './io';
import { KernelSocket } from './network';
import { buildTcp, parse } from './packet';
import { simIp, simIpText } from './addr';

const ECONNREFUSED = 111;
const WSCALE = 7;
const TTL = 64;
/** What a Linux kernel's receive window is right after a handshake on a 1500-byte path. */
const RCV_WND = 64256;

/** The owner of a socket no watcher owns any more. */
const HANDED_BACK = { alive: false, socketEvent(): void {} };

export class SimSockets implements SocketWatcher {
  private readonly mine = new Set<number>();

  constructor(private readonly io: SimIo, private readonly onEvent: (ev: WatcherEvent) => void) {}

  get alive(): boolean {
    return this.io.alive;
  }

  socketEvent(ev: WatcherEvent): void {
    if (this.io.alive) this.onEvent(ev);
  }

  listen(ip: string, port: number, _backlog: number): number {
    const host = this.io.host;
    if (host.listeners.has(port)) throw new Error(`listen ${ip || '0.0.0.0'}:${port}: Address already in use`);
    const fd = host.allocFd();
    const localIp = ip && ip !== '0.0.0.0' && ip !== '::' ? simIp(ip) : 0;
    host.addSocket({ fd, kind: 'listen', localIp, localPort: port, remoteIp: 0, remotePort: 0, owner: this });
    this.mine.add(fd);
    return fd;
  }

  connect(srcIp: string, dstIp: string, dstPort: number): number {
    const host = this.io.host;
    const net = host.net;
    const remoteIp = simIp(dstIp);
    const v6 = isV6Key(remoteIp);
    const fd = host.allocFd();
    const localPort = host.ephemeralPort((p) => host.hasTuple(p, remoteIp, dstPort));
    const sock: KernelSocket = { fd, kind: 'connecting', localIp: srcIp ? simIp(srcIp) : v6 ? host.ip6 ?? 0 : host.ip, localPort, remoteIp, remotePort: dstPort, owner: this };
    host.addSocket(sock);
    this.mine.add(fd);
    net.stats.dials++;
    const cIsn = net.random32();
    const syn = buildTcp({ srcIp: sock.localIp, dstIp: remoteIp, srcPort: localPort, dstPort, seq: cIsn, ack: 0, flags: SYN, window: 64240 });
    if (net.judge(syn, parse(syn)) === 'drop') return fd;
    const open = () => host.sockets.get(fd) === sock;
    net.time.after(net.latencyMs, () => {
      const server = net.hosts.get(remoteIp);
      if (!server) return;
      const l = server.listeners.get(dstPort);
      if (!l || (l.localIp !== 0 && l.localIp !== remoteIp)) {
        net.time.after(net.latencyMs, () => open() && this.socketEvent({ type: 'failed', fd, errno: ECONNREFUSED, error: 'Connection refused' }));
        return;
      }
      const sIsn = net.random32();
      const synAck = buildTcp({ srcIp: remoteIp, dstIp: sock.localIp, srcPort: dstPort, dstPort: localPort, seq: sIsn, ack: cIsn + 1, flags: SYN | ACK, window: 65160 });
      if (net.judge(synAck, parse(synAck)) === 'drop') return;
      const afd = server.allocFd();
      const acc: KernelSocket = { fd: afd, kind: 'established', localIp: remoteIp, localPort: dstPort, remoteIp: sock.localIp, remotePort: localPort, owner: l.owner };
      server.addSocket(acc);
      const hs = { rcvWscale: WSCALE, sndWscale: WSCALE, mss: v6 ? net.mss - 20 : net.mss, tsOk: true, ttl: TTL, rcvWnd: RCV_WND };
      // As the addon reports them: IPv6 addresses only as text.
      const addrs = (local: number, remote: number) => ({
        ipVersion: v6 ? (6 as const) : (4 as const),
        localIp: v6 ? 0 : local,
        remoteIp: v6 ? 0 : remote,
        localAddr: simIpText(local),
        remoteAddr: simIpText(remote),
      });
      // Each side's TS clock: virtual milliseconds plus a random offset, as Linux gives each connection.
      const cTs = net.random32();
      const sTs = net.random32();
      const tsNow = (offset: number) => (Math.floor(net.time.now) + offset) >>> 0;
      net.time.after(net.latencyMs, () => {
        if (!open()) return;
        sock.kind = 'established';
        this.socketEvent({ type: 'connected', fd, ...addrs(sock.localIp, remoteIp), localPort, remotePort: dstPort, sndNxt: (cIsn + 1) >>> 0, rcvNxt: (sIsn + 1) >>> 0, tsVal: tsNow(cTs), ...hs });
        net.time.after(net.latencyMs, () => {
          if (server.sockets.get(afd) !== acc || server.listeners.get(dstPort) !== l) return;
          l.owner.socketEvent({ type: 'accepted', listenFd: l.fd, fd: afd, ...addrs(remoteIp, sock.localIp), localPort: dstPort, remotePort: localPort, sndNxt: (sIsn + 1) >>> 0, rcvNxt: (cIsn + 1) >>> 0, tsVal: tsNow(sTs), ...hs });
        });
      });
    });
    return fd;
  }

  close(fd: number): void {
    if (!this.mine.delete(fd)) {
      // Accepted sockets belong to the listener's owner: they are ours too.
      const s = this.io.host.sockets.get(fd);
      if (!s || s.owner !== this) return;
    }
    this.io.host.closeSocket(fd);
  }

  /** The watcher forgets the socket; it stays on the host (the kernel serves it) until its new owner closes it. */
  handBack(fd: number): void {
    const s = this.io.host.sockets.get(fd);
    if (!s || s.owner !== this || s.kind !== 'established') throw new Error(`SocketWatcher.handBack(${fd}): not an established connection of this watcher`);
    this.mine.delete(fd);
    s.owner = HANDED_BACK;
    s.handedBack = true;
  }

  stop(): void {
    for (const s of [...this.io.host.sockets.values()]) if (s.owner === this) this.io.host.closeSocket(s.fd);
    this.mine.clear();
  }
}
