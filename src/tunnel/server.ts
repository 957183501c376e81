// rsock-server: accepts fake-TCP connections on every port, groups them by client session, and
// forwards each app flow to the target over its own UDP socket; replies go back over any live
// connection of the same session, so flows survive reconnects.
import { CloseReason, FrameType, readHello } from '../core/frame';
import { FakeTcp } from '../core/fake-tcp';
import { Flow, FlowTable } from '../core/flow-table';
import { intToIp } from '../core/ipv4';
import { portFilter } from '../core/ports';
import { deriveKeys } from '../core/keys';
import { NativeAddon, UDP_RX_STRIDE, WatcherEvent } from '../io/native';
import { Clock } from '../util/clock';
import { Logger } from '../util/log';
import { Engine, EngineHandler } from './engine';

export interface ServerConfig {
  /** IPv4 address of the target UDP service (resolved before start). */
  targetHost: string;
  targetPort: number;
  ports: number[];
  device: string;
  /** Address to listen on; "" for all. */
  listenIp: string;
  key: string;
  durationMs: number;
  /** Our own default for connections whose client did not say. */
  keepaliveMs: number;
}

interface ServerLink {
  tcp: FakeTcp;
  /** The client's slot number, from its Hello. */
  slot: number;
  fd: number;
  session: Session | null;
  acceptedAt: number;
  deadAfterMs: number;
}

interface ServerFlow extends Flow {
  key: string;
  session: Session;
  /** The flow's own UDP socket towards the target, in the UdpMux. */
  sock: number;
  /**
   * The connection the client last used for this flow. Replies go back on it: the client only sends
   * on connections it believes live, while this side may still hold ones a middlebox has reset.
   */
  link: ServerLink | null;
}

interface Session {
  id: number;
  links: ServerLink[];
  rr: number;
  flows: Map<number, ServerFlow>;
  lastSeen: number;
}

/** A connection that has not said a valid Hello by then is dropped: the server keeps no state for strangers. */
const HELLO_DEADLINE_MS = 10000;
const SWEEP_BUDGET = 500;

export class RsockServer implements EngineHandler<ServerLink> {
  private readonly engine: Engine<ServerLink>;
  private readonly byFd = new Map<number, ServerLink>();
  private readonly listenFds = new Map<number, number>();
  private readonly sessions = new Map<number, Session>();
  private readonly flows: FlowTable<string, ServerFlow>;
  private lastSessionSweep = 0;
  private readonly flowsBySock = new Map<number, ServerFlow>();
  readonly counters = { toTarget: 0, fromTarget: 0, droppedNoConn: 0, flowsOpened: 0, flowsExpired: 0, accepted: 0 };

  constructor(
    private readonly cfg: ServerConfig,
    private readonly log: Logger,
    native: NativeAddon,
    private readonly clock: Clock,
  ) {
    const keys = deriveKeys(native.mac, cfg.key);
    this.flows = new FlowTable(cfg.durationMs);
    const host = cfg.listenIp && cfg.listenIp !== '0.0.0.0' ? ` and dst host ${cfg.listenIp}` : '';
    this.engine = new Engine<ServerLink>(
      native,
      {
        device: cfg.device,
        filter: `tcp and ${portFilter(cfg.ports, 'dst')}${host}`,
        sendKey: keys.serverToClient,
        recvKey: keys.clientToServer,
        tickMs: 10,
      },
      this,
      clock,
      log,
    );
  }

  start(): void {
    this.engine.start();
    try {
      for (const port of this.cfg.ports) {
        const fd = this.engine.watcher.listen(this.cfg.listenIp, port, 128);
        this.listenFds.set(fd, port);
      }
    } catch (e) {
      this.engine.stop();
      throw e;
    }
    this.log.info(
      `rsock-server ready: ports ${this.cfg.ports.join(',')} on ${this.cfg.device} -> udp ${this.cfg.targetHost}:${this.cfg.targetPort}`,
    );
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  onWatcher(ev: WatcherEvent, now: number): void {
    if (ev.type !== 'accepted') return;
    const tcp = new FakeTcp({
      local: { ip: ev.localIp, port: ev.localPort },
      remote: { ip: ev.remoteIp, port: ev.remotePort },
      sndNxt: ev.sndNxt,
      rcvNxt: ev.rcvNxt,
      now,
    });
    const link: ServerLink = { tcp, slot: -1, fd: ev.fd, session: null, acceptedAt: now, deadAfterMs: 3 * this.cfg.keepaliveMs + 500 };
    this.byFd.set(ev.fd, link);
    this.engine.links.set(tcp.remote.ip, tcp.remote.port, tcp.local.port, link);
    this.counters.accepted++;
    // Opens the large window for conntrack before the client's data arrives (FAKE-TCP-FACTS.md).
    this.engine.tx.pureAck(tcp, now);
    this.log.debug(`accepted ${intToIp(ev.remoteIp)}:${ev.remotePort} on port ${ev.localPort}`);
  }

  onFrame(link: ServerLink, type: number, arg: number, buf: Buffer, off: number, len: number, now: number): void {
    if (!link.tcp.open) return;
    const s = link.session;
    if (type === FrameType.Data) {
      if (!s) return;
      s.lastSeen = now;
      let flow = s.flows.get(arg);
      if (!flow) flow = this.openFlow(s, arg, now);
      flow.lastActive = now;
      flow.link = link;
      this.counters.toTarget++;
      this.engine.udpTx.add(flow.sock, buf, off, len, 0, 0);
      return;
    }
    switch (type) {
      case FrameType.Hello:
        this.onHello(link, arg, buf, off, len, now);
        return;
      case FrameType.Ping:
        if (s) s.lastSeen = now;
        this.engine.tx.frame(link.tcp, FrameType.Pong, arg, null, 0, 0, now);
        return;
      case FrameType.Close:
        this.engine.tx.fin(link.tcp, now);
        this.dropLink(link, 'the client closed it');
        return;
      case FrameType.Bye:
        if (s && s.id === arg) this.dropSession(s, 'the client shut down');
        return;
      default:
        return;
    }
  }

  private onHello(link: ServerLink, sessionId: number, buf: Buffer, off: number, len: number, now: number): void {
    const hello = readHello(buf, off, len);
    if (!hello || hello.version !== 1) {
      this.log.rateLimited('warn', 'version', 10000, `a client spoke protocol version ${hello?.version ?? '?'}; this server speaks 1`);
      return;
    }
    if (link.session && link.session.id !== sessionId) return;
    if (!link.session) {
      let s = this.sessions.get(sessionId);
      if (!s) {
        s = { id: sessionId, links: [], rr: 0, flows: new Map(), lastSeen: now };
        this.sessions.set(sessionId, s);
        this.log.info(`client ${hex(sessionId)} joined from ${ipPort(link)}`);
      }
      // The client redials a slot only after it gave up the old connection (reset, silence), which
      // this side may not have noticed: retire the old one now instead of sending replies into it.
      const old = s.links.find((l) => l.slot === hello.slot);
      if (old) this.dropLink(old, `replaced by a new connection from ${ipPort(link)}`);
      s.links.push(link);
      s.lastSeen = now;
      link.session = s;
      link.slot = hello.slot;
      const ka = Math.min(Math.max(hello.keepaliveMs, 200), 60000);
      link.deadAfterMs = 3 * ka + 500;
      this.log.info(`client ${hex(sessionId)}: connection from ${ipPort(link)} on port ${link.tcp.local.port} up; ${s.links.length} live`);
    }
    this.engine.tx.frame(link.tcp, FrameType.HelloAck, sessionId, null, 0, 0, now);
  }

  private openFlow(s: Session, id: number, now: number): ServerFlow {
    const sock = this.engine.udp.connect(this.cfg.targetHost, this.cfg.targetPort);
    const key = `${s.id.toString(16)}/${id}`;
    const flow: ServerFlow = { id, lastActive: now, key, session: s, sock, link: null };
    s.flows.set(id, flow);
    this.flows.set(key, flow);
    this.flowsBySock.set(sock, flow);
    this.counters.flowsOpened++;
    if (this.log.enabled('debug')) this.log.debug(`client ${hex(s.id)}: flow ${id} opened (udp port ${this.engine.udp.localPort(sock)})`);
    return flow;
  }

  private closeFlow(flow: ServerFlow): void {
    this.flowsBySock.delete(flow.sock);
    this.engine.udp.close(flow.sock);
  }

  /** Replies from the target, on the flows' own sockets. */
  onUdp(data: Buffer, meta: Uint32Array, count: number): void {
    const now = this.clock();
    for (let i = 0; i < count; i++) {
      const m = i * UDP_RX_STRIDE;
      const flow = this.flowsBySock.get(meta[m]);
      if (!flow) continue;
      flow.lastActive = now;
      let link = flow.link;
      if (!link || !link.tcp.open) {
        const s = flow.session;
        const n = s.links.length;
        if (n === 0) {
          this.counters.droppedNoConn++;
          continue;
        }
        if (s.rr >= n) s.rr = 0;
        link = flow.link = s.links[s.rr++];
      }
      this.counters.fromTarget++;
      this.engine.tx.frame(link.tcp, FrameType.Data, flow.id, data, meta[m + 1], meta[m + 2], now);
    }
  }

  onTcpEnd(link: ServerLink, verdict: 'reset' | 'fin', now: number): void {
    if (verdict === 'fin') this.engine.tx.fin(link.tcp, now);
    this.dropLink(link, verdict === 'reset' ? 'reset' : 'FIN from the client');
  }

  onTick(now: number): void {
    for (const link of this.byFd.values()) {
      if (!link.session) {
        if (now - link.acceptedAt >= HELLO_DEADLINE_MS) this.dropLink(link, 'no valid Hello');
      } else if (now - link.tcp.lastRecvAt >= link.deadAfterMs) {
        this.engine.tx.frame(link.tcp, FrameType.Close, CloseReason.Dead, null, 0, 0, now);
        this.engine.tx.fin(link.tcp, now);
        this.dropLink(link, `no traffic for ${Math.round((now - link.tcp.lastRecvAt) / 1000)} s`);
      }
    }
    this.flows.sweep(now, SWEEP_BUDGET, (key, flow) => {
      flow.session.flows.delete(flow.id);
      this.closeFlow(flow);
      this.counters.flowsExpired++;
      this.log.info(`flow ${key} expired after ${Math.round(this.cfg.durationMs / 1000)} s idle`);
    });
    // Sessions with no connection and no flow left are forgotten; their client will say Hello again.
    if (this.sessions.size > 0 && now - this.lastSessionSweep >= 1000) {
      this.lastSessionSweep = now;
      for (const s of this.sessions.values()) {
        if (s.links.length === 0 && s.flows.size === 0 && now - s.lastSeen >= this.cfg.durationMs) this.sessions.delete(s.id);
      }
    }
  }

  private dropLink(link: ServerLink, reason: string): void {
    if (!this.byFd.delete(link.fd)) return;
    link.tcp.abort(reason);
    this.engine.links.delete(link.tcp.remote.ip, link.tcp.remote.port, link.tcp.local.port);
    this.engine.watcher.close(link.fd);
    const s = link.session;
    if (s) {
      s.links = s.links.filter((l) => l !== link);
      this.log.info(`client ${hex(s.id)}: connection from ${ipPort(link)} closed: ${reason}; ${s.links.length} live`);
    }
  }

  private dropSession(s: Session, reason: string): void {
    for (const link of [...s.links]) {
      this.engine.tx.fin(link.tcp, this.clock());
      this.dropLink(link, reason);
    }
    for (const flow of s.flows.values()) {
      this.flows.delete(flow.key);
      this.closeFlow(flow);
    }
    s.flows.clear();
    this.sessions.delete(s.id);
    this.log.info(`client ${hex(s.id)} left: ${reason}`);
  }

  stats(): Record<string, number> {
    return { ...this.engine.counters(), ...this.counters, sessions: this.sessions.size, flows: this.flows.size };
  }

  /** Tells every client (Close + FIN on each connection), closes all sockets silently. */
  async stop(): Promise<void> {
    const now = this.clock();
    for (const link of [...this.byFd.values()]) {
      if (link.tcp.open) {
        this.engine.tx.frame(link.tcp, FrameType.Close, CloseReason.Shutdown, null, 0, 0, now);
        this.engine.tx.fin(link.tcp, now);
      }
      this.dropLink(link, 'server shutting down');
    }
    for (const fd of this.listenFds.keys()) this.engine.watcher.close(fd);
    this.listenFds.clear();
    this.flows.clear();
    this.flowsBySock.clear();
    this.engine.stop();
  }
}

function hex(n: number): string {
  return n.toString(16).padStart(8, '0');
}

function ipPort(link: ServerLink): string {
  const ip = link.tcp.remote.ip;
  return `${ip >>> 24}.${(ip >>> 16) & 255}.${(ip >>> 8) & 255}.${ip & 255}:${link.tcp.remote.port}`;
}
