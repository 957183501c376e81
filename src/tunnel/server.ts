// rsock-server: accepts fake-TCP connections on every port and forwards each app flow to the target
// over its own UDP socket. Who the clients are, which connection a reply goes on and when a connection
// is dead is the pure ServerSessions; this file wires it to the engine and logs what happens.
import { AllowedTarget, targetName } from '../core/forwards';
import { encodeJoinedPayload, NO_PARTITION, Partition } from '../core/partition';
import { FrameType, readJoin, WireMode } from '../core/frame';
import { checkClientGreeting, serverGreeting } from '../core/greeting';
import { hostPortText } from '../core/addr';
import { linkFromHandshake } from '../core/link';
import { DEFAULT_SESSION_OPTIONS, Goodbye, ServerSessions, Session, SessionCarrier, SessionDriver, SessionEvent, SessionLink } from '../core/server-sessions';
import { isUdpLink, TransportType } from '../core/udp-link';
import { UDP_RX, UDP_RX_STRIDE } from '../io/records';
import { Logger } from '../util/log';
import { Engine, EngineHandler } from './engine';
import { ipPort, logSessionEvent } from './server-events';
import { serverStatus } from './server-status';
import type { Status } from '../ops/status';
import { TunnelIo, WatcherEvent } from './io';
import { ServerUdp } from './server-udp';

export interface ServerConfig {
  /** IPv4 or IPv6 address of the target UDP service (resolved before start). */
  targetHost: string;
  targetPort: number;
  /** What a client's --forward may name besides --taddr (addresses resolved before start). */
  allow?: AllowedTarget[];
  /** --taddr as written, when it was a host name: a client's forward may name it so. */
  targetName?: string;
  ports: number[];
  device: string;
  /** Address to listen on; "" for all, IPv6 and IPv4 ("0.0.0.0": all IPv4, "::": all IPv6). */
  listenIp: string;
  key: string;
  mode: WireMode;
  /** For logs: where probes go (the I/O layer does the splicing), or null when they are just closed. */
  decoy: string | null;
  durationMs: number;
  /** Our own default for connections whose client did not say. */
  keepaliveMs: number;
  /** What clients may use: fake TCP, UDP paths, or both (--type). */
  transport: TransportType;
  /** One of several server workers (--workers): `ports` are its class's; every Joined says which. */
  partition?: Partition;
}

/** The answer's flight imitates a TLS 1.3 server's (ServerHello, then encrypted extensions and certificates). */
const FLIGHT_MIN = 1800;
const FLIGHT_SPREAD = 2400;

const LISTEN_BACKLOG = 128;

export class RsockServer implements EngineHandler<SessionLink>, SessionDriver {
  private readonly engine: Engine<SessionLink>;
  private readonly sessions: ServerSessions;
  private readonly listenFds = new Map<number, number>();
  private readonly udp: ServerUdp | null = null;
  private readonly startedAt = Date.now();
  readonly counters = { toTarget: 0, fromTarget: 0, bytesIn: 0, bytesOut: 0, droppedNoFlow: 0, droppedRefused: 0, droppedNoConn: 0, flowsOpened: 0, flowsExpired: 0, flowsRefused: 0, accepted: 0, probes: 0, droppedTooBig: 0 };

  constructor(
    private readonly cfg: ServerConfig,
    private readonly log: Logger,
    private readonly io: TunnelIo,
  ) {
    this.sessions = new ServerSessions(
      { ...DEFAULT_SESSION_OPTIONS, durationMs: cfg.durationMs, keepaliveMs: cfg.keepaliveMs, allowed: allowedTargets(cfg) },
      this,
    );
    this.engine = new Engine<SessionLink>(
      io,
      {
        capture: { device: cfg.device, ports: cfg.ports, portSide: 'dst', toHost: anyAddress(cfg.listenIp) ? undefined : cfg.listenIp },
        key: cfg.key,
        side: 'server',
        mode: cfg.mode,
      },
      this,
      log,
    );
    if (cfg.transport !== 'tcp') {
      const onFrame = this.onFrame.bind(this);
      this.udp = new ServerUdp(io, { ports: cfg.ports, listenIp: cfg.listenIp, mode: cfg.mode }, this.engine.keys, this.sessions, log, onFrame);
    }
  }

  start(): void {
    this.engine.start();
    try {
      if (this.cfg.transport !== 'udp') {
        for (const port of this.cfg.ports) this.listenFds.set(this.engine.watcher.listen(this.cfg.listenIp, port, LISTEN_BACKLOG), port);
      }
      this.udp?.start();
    } catch (e) {
      this.listenFds.clear();
      this.engine.stop();
      throw e;
    }
    const over = { tcp: 'fake tcp', udp: 'udp', all: 'fake tcp and udp' }[this.cfg.transport];
    this.log.info(
      `rsock-server ready: ports ${this.cfg.ports.join(',')} (${over}) on ${this.cfg.device} -> udp ${hostPortText(this.cfg.targetHost, this.cfg.targetPort)}` +
        (this.cfg.allow?.length ? `; forwards allowed to ${this.cfg.allow.map(targetName).join(', ')}` : ''),
    );
  }

  get sessionCount(): number {
    return this.sessions.sessionCount;
  }

  onSocketEvent(ev: WatcherEvent, now: number): void {
    if (ev.type !== 'accepted') return;
    const link = this.sessions.accept(linkFromHandshake(ev, this.cfg.mode, this.engine.extras(ev), now), now);
    this.engine.add(link);
    this.counters.accepted++;
    this.log.debug(`accepted ${ipPort(link)} on port ${ev.localPort}`);
  }

  /** The client's first payload: its greeting, or a probe's request. */
  onGreeting(link: SessionLink, buf: Buffer, off: number, len: number, at: number, now: number): number {
    // Only a payload at exactly the first seq counts: a blind attacker cannot make a client's connection look like a probe.
    if (at !== 0 || link.session) return -1;
    const g = link.greeting;
    if (g) {
      // The client did not get our answer and sent its greeting again, as TCP would: answer again, at the same seq.
      if (len === g.client.length && buf.compare(g.client, 0, len, off, off + len) === 0) this.engine.tx.raw(link.tcp, g.answer, now, g.answerSeq);
      return -1;
    }
    const mode = this.cfg.mode;
    const r = checkClientGreeting(this.io.crypto, this.engine.keys, mode.obfs, buf, off, len);
    if (!r.ok) {
      this.counters.probes++;
      this.log.rateLimited(
        'warn',
        'probe',
        10000,
        `probe from ${ipPort(link)} on port ${link.tcp.local.port}: its first payload is ${r.why}; ` +
          `${this.cfg.decoy ? `spliced to the decoy ${this.cfg.decoy}` : 'closed'}. An rsock client that gets this needs the server's --key, --obfs and --crypt`,
      );
      this.sessions.probe(link);
      return -1;
    }
    const answer = serverGreeting(this.io.crypto, this.engine.keys, mode.obfs, r);
    this.engine.installKeys(link, r.nonce, answer.nonce, r.consumed);
    link.greeting = { client: Buffer.from(buf.subarray(off, off + len)), answer: answer.bytes, answerSeq: link.tcp.sndNxt };
    return r.consumed;
  }

  /** Our answer goes out once the greeting is in our ack, like a real server's ServerHello. */
  afterGreeting(link: SessionLink, now: number): void {
    const g = link.greeting;
    if (!g || link.session) return;
    const tx = this.engine.tx;
    g.answerSeq = link.tcp.sndNxt;
    tx.raw(link.tcp, g.answer, now);
    if (this.cfg.mode.obfs === 'tls') {
      // The rest of a TLS server's first flight: records of random length, the first filling the segment.
      let left = FLIGHT_MIN + (this.io.crypto.randomU32() % FLIGHT_SPREAD);
      let first = Math.max(0, Math.min(left, link.maxDatagram - g.answer.length));
      const pad = this.io.crypto.randomBytes(link.maxDatagram);
      tx.frame(link, FrameType.Padding, 0, pad, 0, first, now, true);
      left -= first;
      while (left > 0 && link.maxDatagram > 0) {
        first = Math.min(left, link.maxDatagram);
        tx.frame(link, FrameType.Padding, 0, pad, 0, first, now);
        left -= first;
      }
    }
  }

  onFrame(link: SessionCarrier, type: number, arg: number, buf: Buffer, off: number, len: number, now: number): void {
    switch (type) {
      case FrameType.Data: {
        link.received++;
        const flow = this.sessions.data(link, arg, now);
        if (!flow) {
          // A flow the sessions keep but return no socket for is a refused one.
          if (link.session?.flows.get(arg)) this.counters.droppedRefused++;
          else this.counters.droppedNoFlow++;
          return;
        }
        flow.sent++;
        this.counters.toTarget++;
        this.counters.bytesOut += len;
        this.engine.udpTx.add(flow.sock, buf, off, len, 0, 0);
        return;
      }
      case FrameType.Join:
        this.sessions.join(link, arg, readJoin(buf, off, len), now);
        return;
      case FrameType.Bye:
        this.sessions.bye(link, arg, now);
        return;
      default:
        return;
    }
  }

  /** Replies from the target, on the flows' own sockets. */
  onUdp(data: Buffer, meta: Uint32Array, count: number, now: number): void {
    for (let i = 0; i < count; i++) {
      const m = i * UDP_RX_STRIDE;
      const r = this.sessions.reply(meta[m + UDP_RX.SOCKET], now);
      const len = meta[m + UDP_RX.LENGTH];
      if (!r) continue;
      if (!r.link) {
        this.counters.droppedNoConn++;
        continue;
      }
      this.counters.fromTarget++;
      this.counters.bytesIn += len;
      r.flow.received++;
      const sent = isUdpLink(r.link)
        ? this.udp!.sendDatagram(r.link, r.flow.id, data, meta[m + UDP_RX.OFFSET], len, now)
        : this.engine.sendDatagram(r.link as SessionLink, r.flow.id, data, meta[m + UDP_RX.OFFSET], len, now);
      if (sent) r.link.sent++;
      else {
        this.counters.droppedTooBig++;
        this.log.rateLimited('warn', 'toobig', 5000, `dropped a ${len}-byte reply from the target: more than 255 fragments of ${r.link.maxDatagram} bytes`);
      }
    }
  }

  onLinkLost(link: SessionLink, reason: string, now: number): void {
    this.sessions.lost(link, reason, now);
  }

  onTick(now: number): void {
    this.sessions.tick(now);
    this.udp?.tick(now);
  }

  /** A server's own deadlines are seconds long (greeting, silence, flow expiry): the slow pace does. */
  settled(): boolean {
    return true;
  }

  // ---- Session driver ----

  sendJoined(link: SessionCarrier, sessionId: number, answers: boolean[] | null): void {
    const payload = encodeJoinedPayload(answers, this.cfg.partition ?? NO_PARTITION);
    if (isUdpLink(link)) return this.udp!.sendJoined(link, sessionId, payload);
    this.engine.tx.frame(link as SessionLink, FrameType.Joined, sessionId, payload, 0, payload?.length ?? 0, this.io.clock());
  }

  handBack(link: SessionCarrier): void {
    if (!isUdpLink(link)) this.engine.handBack(link as SessionLink);
  }

  endLink(carrier: SessionCarrier, goodbye: Goodbye, _reason: string): void {
    if (isUdpLink(carrier)) return this.udp!.endLink(carrier, goodbye);
    const link = carrier as SessionLink;
    const now = this.io.clock();
    if (goodbye === 'fin') {
      if (link.tcp.open) this.engine.tx.fin(link.tcp, now);
    } else if (goodbye !== 'none') {
      this.engine.sayClose(link, goodbye, now);
    }
    this.engine.remove(link);
  }

  openFlow(_session: Session, _flowId: number, target: AllowedTarget | undefined): number {
    return target ? this.engine.udp.connect(target.ip, target.port) : this.engine.udp.connect(this.cfg.targetHost, this.cfg.targetPort);
  }

  closeFlow(sock: number): void {
    this.engine.udp.close(sock);
  }

  onEvent(ev: SessionEvent): void {
    logSessionEvent(ev, this.log, this.counters, this.cfg.durationMs, (sock) => this.engine.udp.localPort(sock));
  }

  /** What --metrics serves (src/ops/status.ts). */
  status(): Status {
    return serverStatus(this.sessions, this.counters, this.engine.counters(), this.udp?.stats() ?? {}, this.io.clock(), this.startedAt);
  }

  stats(): Record<string, number> {
    return { ...this.engine.counters(), ...this.udp?.stats(), ...this.counters, sessions: this.sessions.sessionCount, flows: this.sessions.flowCount };
  }

  /** Tells every client (Close + FIN on each connection), closes all sockets silently. */
  async stop(): Promise<void> {
    this.sessions.stop(this.io.clock());
    for (const fd of this.listenFds.keys()) this.engine.watcher.close(fd);
    this.listenFds.clear();
    this.udp?.stop();
    this.engine.stop();
  }
}

/** --taddr (by address, and by name if it was given as one) and the --allow list. */
function allowedTargets(cfg: ServerConfig): AllowedTarget[] {
  const taddr = { host: cfg.targetName ?? cfg.targetHost, ip: cfg.targetHost, port: cfg.targetPort };
  return [taddr, ...(cfg.allow ?? [])];
}

function anyAddress(ip: string): boolean {
  return ip === '' || ip === '0.0.0.0' || ip === '::';
}
