// rsock-client: takes datagrams from a local UDP endpoint, one app flow per source address, and
// spreads them over fake-TCP connections to every server port; replies go back to each flow's source.
// The connection life cycle is the pure ClientPool; this file wires it to the engine and the flows.
import { ClientPool, DEFAULT_POOL_OPTIONS } from '../core/client-pool';
import { FrameType, WireMode } from '../core/frame';
import { decodePartition } from '../core/partition';
import { ipToInt } from '../core/ipv4';
import { hostPortText, parseIp } from '../core/addr';
import { Counted, linkFromHandshake } from '../core/link';
import { UDP_RX, UDP_RX_STRIDE } from '../io/records';
import { Logger } from '../util/log';
import { ClientEndpoints, ClientForward } from './client-endpoints';
import { ClientFlows, flowSource } from './client-flows';
import { ClientDialer, ClientLink } from './client-dialer';
import { clientStatus } from './client-status';
import type { Status } from '../ops/status';
import { ClientGreeter } from './client-greeting';
import { Engine, EngineHandler } from './engine';
import { TunnelIo, WatcherEvent } from './io';
import { ClientUdp } from './client-udp';
import type { TransportType } from '../core/udp-link';

export interface ClientConfig {
  serverIp: string;
  ports: number[];
  connsPerPort: number;
  ludpHost: string;
  ludpPort: number;
  /** --forward: more local endpoints, each to its own target behind the server. */
  forwards?: ClientForward[];
  device: string;
  /** Source address for the dials; "" lets the kernel choose. */
  localIp: string;
  key: string;
  mode: WireMode;
  /** The server name the TLS-shaped greeting carries. */
  sni: string;
  durationMs: number;
  keepaliveMs: number;
  /** Fake TCP, UDP paths, or UDP while it answers and fake TCP otherwise (--type). */
  transport: TransportType;
  /** One of several client workers (--workers): SO_REUSEPORT on the local endpoints; dials and capture on its own local ports. */
  worker?: { localPorts: [number, number] };
}

export class RsockClient implements EngineHandler<ClientLink> {
  private readonly engine: Engine<ClientLink>;
  private readonly pool: ClientPool<ClientLink>;
  private readonly flows: ClientFlows;
  private readonly greeter: ClientGreeter<ClientLink>;
  private readonly endpoints: ClientEndpoints;
  private readonly udp: ClientUdp | null = null;
  readonly sessionId: number;
  private everUp = false;
  private readonly dialer: ClientDialer;
  private readonly startedAt = Date.now();
  private readyWaiters: (() => void)[] = [];
  readonly counters = { udpIn: 0, udpOut: 0, bytesIn: 0, bytesOut: 0, droppedNoConn: 0, droppedTooBig: 0, droppedNoFlow: 0, droppedRefused: 0, flowsExpired: 0 };

  constructor(
    private readonly cfg: ClientConfig,
    private readonly log: Logger,
    private readonly io: TunnelIo,
  ) {
    if (!parseIp(cfg.serverIp)) throw new Error(`the server address "${cfg.serverIp}" is not an IPv4 or IPv6 address`);
    this.sessionId = io.crypto.randomU32() || 1;
    this.endpoints = new ClientEndpoints(cfg.forwards ?? [], log);
    this.flows = new ClientFlows(cfg.durationMs, (f) => {
      if (this.log.enabled('debug')) this.log.debug(`flow ${f.id} from ${flowSource(f)} opened`);
    });
    const capture = { device: cfg.device, ports: cfg.ports, portSide: 'src' as const, fromHost: cfg.serverIp, localPorts: cfg.worker?.localPorts };
    this.engine = new Engine<ClientLink>(io, { capture, key: cfg.key, side: 'client', mode: cfg.mode }, this, log);
    const keepaliveMs = cfg.keepaliveMs;
    this.dialer = new ClientDialer(this.engine, io, cfg, log, () => this.pathUp());
    this.pool = this.dialer.pool = new ClientPool<ClientLink>(
      cfg.ports,
      cfg.connsPerPort,
      { ...DEFAULT_POOL_OPTIONS, keepaliveMs, deadAfterMs: Math.max(3 * keepaliveMs + 500, 1500), quietProbeMs: Math.min(DEFAULT_POOL_OPTIONS.quietProbeMs, keepaliveMs) },
      this.dialer,
    );
    this.greeter = this.dialer.greeter = new ClientGreeter(this.engine, io, { mode: cfg.mode, sni: cfg.sni, keepaliveMs, sessionId: this.sessionId, forwardTable: this.endpoints.table });
    if (cfg.transport !== 'tcp') {
      if (parseIp(cfg.serverIp)?.ip6) throw new Error(`--type=${cfg.transport}: the UDP transport carries IPv4 only so far; use --type=tcp with the IPv6 server ${cfg.serverIp}`);
      const udpCfg = { serverIp: ipToInt(cfg.serverIp) >>> 0, ports: cfg.ports, mode: cfg.mode, sni: cfg.sni, keepaliveMs, sessionId: this.sessionId, forwardTable: this.endpoints.table, fallback: cfg.transport === 'all' };
      this.udp = new ClientUdp(io, udpCfg, this.engine.keys, log, {
        onData: (link, flowId, buf, off, len) => this.deliver(link.slot, flowId, buf, off, len, this.io.clock()),
        onUp: () => this.pathUp(),
        onJoined: (buf, off, len) => this.endpoints.onJoined(buf, off, len),
      });
    }
  }

  /** Binds the local UDP endpoint and starts dialing. Resolves once the UDP endpoint is bound. */
  async start(): Promise<void> {
    this.engine.start();
    try {
      this.endpoints.bind(this.engine.udp, this.cfg.ludpHost, this.cfg.ludpPort, !!this.cfg.worker);
    } catch (e) {
      this.engine.stop();
      throw e;
    }
    try {
      this.udp?.start(this.io.clock());
    } catch (e) {
      this.engine.stop();
      throw new Error(`udp transport: ${(e as Error).message}`);
    }
    if (this.cfg.transport !== 'udp') this.pool.start(this.io.clock());
    // A missing capability is not a network failure: retrying cannot help, so say so and give up.
    if (this.dialer.missingPrivilege) {
      await this.stop();
      throw new Error(this.dialer.missingPrivilege);
    }
    this.log.info(
      `dialing ${this.cfg.serverIp} on ${this.cfg.ports.length} port(s) x ${this.cfg.connsPerPort} (--type=${this.cfg.transport}) via ${this.cfg.device}; ` +
        `local udp ${hostPortText(this.cfg.ludpHost, this.cfg.ludpPort)}` +
        (this.endpoints.count ? ` and ${this.endpoints.count} forward(s): ${this.cfg.forwards!.map((_f, i) => this.endpoints.name(i + 1)).join(', ')}` : ''),
    );
  }

  /** Resolves when the first connection is up, or after timeoutMs (false). */
  waitUp(timeoutMs: number): Promise<boolean> {
    if (this.everUp) return Promise.resolve(true);
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(false), timeoutMs);
      this.readyWaiters.push(() => {
        clearTimeout(t);
        resolve(true);
      });
    });
  }

  get liveConnections(): number {
    return this.pool.liveCount;
  }

  get liveUdpPaths(): number {
    return this.udp?.liveCount ?? 0;
  }

  get flowCount(): number {
    return this.flows.size;
  }

  /** Datagrams from the app(s) on --ludp. */
  onUdp(data: Buffer, meta: Uint32Array, count: number, now: number): void {
    this.counters.udpIn += count;
    for (let i = 0; i < count; i++) {
      const m = i * UDP_RX_STRIDE;
      const len = meta[m + UDP_RX.LENGTH];
      const flow = this.flows.fromRecord(this.endpoints.index(meta[m + UDP_RX.SOCKET]), meta, m, now);
      if (!flow) {
        this.counters.droppedNoFlow++;
        continue;
      }
      flow.received++;
      this.counters.bytesIn += len;
      if (!this.endpoints.allowed(flow.fwd)) {
        this.counters.droppedRefused++;
        if (!flow.refusedLogged) {
          flow.refusedLogged = true;
          this.log.warn(`flow ${flow.id} from ${flowSource(flow)} to ${this.endpoints.name(flow.fwd)}: dropped, the server has not allowed this forward`);
        }
        continue;
      }
      const path = this.udp?.pick();
      if (path) {
        if (this.udp!.sendDatagram(path, flow.id, data, meta[m + UDP_RX.OFFSET], len, now)) path.slot.sent++;
        else this.counters.droppedTooBig++;
        continue;
      }
      const link = this.cfg.transport === 'udp' ? undefined : this.pool.pick(flow.id)?.link;
      if (!link) {
        this.counters.droppedNoConn++;
        this.log.rateLimited('warn', 'noconn', 5000, `dropping datagrams: no connection ${this.pool.liveCount ? "to this flow's server worker" : 'to the server'} is up yet`);
        continue;
      }
      // Datagrams larger than a segment go as fragments: nothing an app sends over UDP is too big.
      if (this.engine.sendDatagram(link, flow.id, data, meta[m + UDP_RX.OFFSET], len, now)) link.slot.sent++;
      else {
        this.counters.droppedTooBig++;
        this.log.rateLimited('warn', 'toobig', 5000, `dropped a ${len}-byte datagram: more than 255 fragments of ${link.maxDatagram} bytes`);
      }
    }
  }

  /** A datagram from the server, on the connection or path of `slot`, to its flow's app. */
  private deliver(slot: Counted, flowId: number, buf: Buffer, off: number, len: number, now: number): void {
    slot.received++;
    const flow = this.flows.byFlowId(flowId);
    if (!flow) {
      this.counters.droppedNoFlow++;
      return;
    }
    flow.lastActive = now;
    flow.sent++;
    this.counters.udpOut++;
    this.counters.bytesOut += len;
    this.engine.udpTx.add(this.endpoints.socks[flow.fwd], buf, off, len, flow.ip, flow.port, flow.ip6);
  }

  // ---- Engine callbacks ----

  onSocketEvent(ev: WatcherEvent, now: number): void {
    if (ev.type === 'failed') {
      this.pool.onDialFailed(ev.fd, ev.error, now);
      return;
    }
    const slot = this.pool.slotByFd(ev.fd);
    if (ev.type !== 'connected' || !slot) {
      this.engine.watcher.close(ev.fd);
      return;
    }
    const base = linkFromHandshake(ev, this.cfg.mode, this.engine.extras(ev), now);
    const link: ClientLink = { ...base, slot, slotId: slot.id, hello: this.greeter.create(now) };
    this.engine.add(link);
    this.log.debug(`port ${ev.remotePort}: tcp up from ${ev.localAddr}:${ev.localPort}, greeting`);
    this.pool.onConnected(ev.fd, link, now);
  }

  /** The server's answer to our greeting: then the connection's keys, and Join. */
  onGreeting(link: ClientLink, buf: Buffer, off: number, len: number, at: number, now: number): number {
    if (at !== 0 || link.wire.rxSlot >= 0) return -1;
    const r = this.greeter.answer(link, buf, off, len);
    if (typeof r === 'string') {
      this.log.rateLimited('warn', 'badanswer', 10000, `the server on port ${link.tcp.remote.port} answered with ${r}: --key, --obfs and --crypt must be the same on both ends`);
      this.pool.onLost(link.slot, now, `the server's answer is ${r}`, 'handshake');
      return -1;
    }
    return r;
  }

  /** Join goes out once the server's answer is in our ack. */
  afterGreeting(link: ClientLink, now: number): void {
    if (link.wire.txSlot >= 0) this.greeter.sendJoin(link, now, true);
  }

  onFrame(link: ClientLink, type: number, arg: number, buf: Buffer, off: number, len: number, now: number): void {
    if (type === FrameType.Data) this.deliver(link.slot, arg, buf, off, len, now);
    else if (type === FrameType.Pong) this.pool.onPong(link.slot, arg, now);
    else if (type === FrameType.Joined) {
      if (arg !== this.sessionId) return;
      this.endpoints.onJoined(buf, off, len);
      this.pool.onJoined(link.slot, now, decodePartition(buf, off, len));
    }
  }

  onLinkLost(link: ClientLink, reason: string, now: number, cause: 'reset' | 'fin' | 'close'): void {
    this.pool.onLost(link.slot, now, reason, cause);
  }

  onTick(now: number): void {
    this.greeter.tick(now, (link) => link.slot.link === link);
    if (this.cfg.transport !== 'udp') this.pool.tick(now);
    this.udp?.tick(now);
    this.flows.sweep(now, (flow) => {
      this.counters.flowsExpired++;
      this.log.info(`flow ${flow.id} from ${flowSource(flow)} expired after ${Math.round(this.cfg.durationMs / 1000)} s idle`);
    });
  }

  settled(): boolean {
    return this.dialer.settled(this.cfg.transport !== 'udp') && (this.udp?.settled() ?? true);
  }

  private pathUp(): void {
    if (!this.everUp) {
      this.everUp = true;
      this.log.info(`rsock-client ready: udp ${hostPortText(this.cfg.ludpHost, this.cfg.ludpPort)} -> ${this.cfg.serverIp} ports ${this.cfg.ports.join(',')}`);
      for (const w of this.readyWaiters.splice(0)) w();
    }
  }

  /** What --metrics serves (src/ops/status.ts). */
  status(): Status {
    return clientStatus({ cfg: this.cfg, now: this.io.clock(), startedAt: this.startedAt, counters: this.counters, engine: this.engine.counters(),
      udp: this.udp, pool: this.pool, flows: this.flows, reconnects: this.dialer.reconnects, name: (f) => this.endpoints.name(f) });
  }

  stats(): Record<string, number> {
    return { ...this.engine.counters(), ...this.udp?.stats(), ...this.counters, flows: this.flows.size, live: this.pool.liveCount };
  }

  /** Tells the server (Bye, then Close and FIN on every live connection), closes everything. */
  async stop(): Promise<void> {
    const now = this.io.clock();
    for (const s of this.pool.slots) {
      if (s.link?.tcp.open && s.link.wire.txSlot >= 0) this.engine.tx.frame(s.link, FrameType.Bye, this.sessionId, null, 0, 0, now);
    }
    this.pool.stop(now);
    this.udp?.stop(now);
    this.engine.stop();
  }
}
