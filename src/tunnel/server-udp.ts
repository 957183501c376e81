// The server's UDP transport (--type=udp|all): one socket per --ports port; a client's path is its
// address on one port. A datagram from an unknown address is taken only when it is a valid client
// greeting; anything else gets no answer at all, so a prober learns nothing. After the greeting the
// path joins a session like a fake TCP connection does (ServerSessions), and replies go on it while
// it is the path the client last used for their flow.
import { CloseReason, FrameType, WireMode } from '../core/frame';
import { checkClientGreeting, serverGreeting } from '../core/greeting';
import { ipToInt, intToIp } from '../core/ipv4';
import type { HandshakeKeys } from '../core/keys';
import type { Goodbye, ServerSessions, SessionState } from '../core/server-sessions';
import { newUdpLink, UdpLink } from '../core/udp-link';
import { udpMaxDatagram } from '../core/udp-wire';
import type { Logger } from '../util/log';
import { ConnTable } from './conn-table';
import type { TunnelIo } from './io';
import { UdpPathHandler, UdpTransport } from './udp-path';

export interface UdpSessionLink extends UdpLink, SessionState {}

export interface ServerUdpConfig {
  ports: number[];
  /** "" or "0.0.0.0" for every address. */
  listenIp: string;
  mode: WireMode;
}

/** Greeted paths waiting for their Join, at most: only a recorded greeting replayed from many addresses fills it. */
const MAX_UNJOINED = 1024;

export class ServerUdp implements UdpPathHandler<UdpSessionLink> {
  private readonly transport: UdpTransport<UdpSessionLink>;
  /** Port of each transport socket. */
  private readonly portOf = new Map<number, number>();
  private readonly paths = new ConnTable<UdpSessionLink>();
  private readonly unjoined = new Set<UdpSessionLink>();
  private readonly localIp: number;
  readonly counters = { udpGreeted: 0, udpProbes: 0 };

  constructor(
    private readonly io: TunnelIo,
    private readonly cfg: ServerUdpConfig,
    private readonly keys: HandshakeKeys,
    private readonly sessions: ServerSessions,
    private readonly log: Logger,
    private readonly onFrameOf: (link: UdpSessionLink, type: number, arg: number, buf: Buffer, off: number, len: number, now: number) => void,
  ) {
    this.transport = new UdpTransport(io, cfg.mode, 'server', keys.master, this);
    this.localIp = cfg.listenIp && cfg.listenIp !== '0.0.0.0' ? ipToInt(cfg.listenIp) >>> 0 : 0;
  }

  /** Binds every port's socket; throws a clear error naming the port (nothing left open). */
  start(): void {
    this.transport.open();
    try {
      for (const port of this.cfg.ports) {
        try {
          this.portOf.set(this.transport.sockets.bind(this.cfg.listenIp || '0.0.0.0', port), port);
        } catch (e) {
          throw new Error(`udp port ${port}: ${(e as Error).message}`);
        }
      }
    } catch (e) {
      this.transport.stop();
      throw e;
    }
  }

  linkFor(sock: number, ip: number, port: number): UdpSessionLink | undefined {
    const local = this.portOf.get(sock);
    return local === undefined ? undefined : this.paths.get(ip, port, local);
  }

  onHandshake(sock: number, ip: number, port: number, link: UdpSessionLink | undefined, buf: Buffer, off: number, len: number, now: number): void {
    const localPort = this.portOf.get(sock);
    if (link || localPort === undefined) return;
    const mode = this.cfg.mode;
    const r = checkClientGreeting(this.io.crypto, this.keys, mode.obfs, buf, off, len);
    if (!r.ok) {
      this.counters.udpProbes++;
      this.log.rateLimited('warn', 'udpprobe', 10000, `udp datagram from ${intToIp(ip)}:${port} on port ${localPort} dropped unanswered: it is ${r.why}`);
      return;
    }
    if (this.unjoined.size >= MAX_UNJOINED) {
      this.log.rateLimited('warn', 'udpfull', 10000, `udp greeting from ${intToIp(ip)}:${port} dropped: ${MAX_UNJOINED} paths already wait for their Join`);
      return;
    }
    const answer = serverGreeting(this.io.crypto, this.keys, mode.obfs, r);
    const base = newUdpLink(sock, false, { ip: this.localIp, port: localPort }, { ip, port }, udpMaxDatagram(mode), now);
    const path = this.sessions.accept(base, now);
    path.greeting = { client: Buffer.from(buf.subarray(off, off + len)), answer: answer.bytes, answerSeq: 0 };
    this.transport.installKeys(path, r.nonce, answer.nonce);
    this.paths.set(ip, port, localPort, path);
    this.unjoined.add(path);
    this.counters.udpGreeted++;
    this.transport.tx.raw(path, answer.bytes);
  }

  /** The client's greeting again (our answer was lost): the same answer again. */
  onRepeat(link: UdpSessionLink, buf: Buffer, off: number, len: number): boolean {
    const g = link.greeting;
    if (!g || link.session || len !== g.client.length || buf.compare(g.client, 0, len, off, off + len) !== 0) return false;
    this.transport.tx.raw(link, g.answer);
    return true;
  }

  onFrame(link: UdpSessionLink, type: number, arg: number, buf: Buffer, off: number, len: number, now: number): void {
    this.onFrameOf(link, type, arg, buf, off, len, now);
    if (link.session) this.unjoined.delete(link);
  }

  onClosed(link: UdpSessionLink, now: number): void {
    this.sessions.lost(link, 'the client closed the udp path', now);
  }

  sendJoined(link: UdpSessionLink, sessionId: number, payload: Buffer | null): void {
    this.transport.tx.frame(link, FrameType.Joined, sessionId, payload, 0, payload?.length ?? 0, this.io.clock());
  }

  sendDatagram(link: UdpSessionLink, flowId: number, src: Buffer, off: number, len: number, now: number): boolean {
    return this.transport.sendDatagram(link, flowId, src, off, len, now);
  }

  /** Ends a path: Close when there is a reason to tell (a FIN has no UDP counterpart), then its keys go. */
  endLink(link: UdpSessionLink, goodbye: Goodbye): void {
    if (typeof goodbye === 'number' && link.wire.txSlot >= 0) {
      this.transport.tx.frame(link, FrameType.Close, goodbye as CloseReason, null, 0, 0, this.io.clock());
    }
    this.transport.forget(link);
    this.unjoined.delete(link);
    const t = link.path;
    if (this.paths.get(t.remote.ip, t.remote.port, t.local.port) === link) this.paths.delete(t.remote.ip, t.remote.port, t.local.port);
  }

  tick(now: number): void {
    this.transport.tick(now);
  }

  stats(): Record<string, number> {
    return { ...this.transport.counters(), ...this.counters, udpPaths: this.paths.size };
  }

  stop(): void {
    this.transport.stop();
  }
}
