// rsock-client: takes datagrams from a local UDP endpoint, one app flow per source address, and
// spreads them over fake-TCP connections to every server port; replies go back to each flow's source.
// The connection life cycle is the pure ClientPool; this file wires it to the engine and the flows.
import { ClientPool, DEFAULT_POOL_OPTIONS, PoolDriver, Slot } from '../core/client-pool';
import { CloseReason, FrameType, WireMode } from '../core/frame';
import { endpointText, hostPortText, parseIp } from '../core/addr';
import { linkFromHandshake } from '../core/link';
import { UDP_RX, UDP_RX_STRIDE } from '../io/native';
import { Logger } from '../util/log';
import { ClientFlows, flowSource } from './client-flows';
import { ClientGreeter, GreetingLink } from './client-greeting';
import { Engine, EngineHandler } from './engine';
import { TunnelIo, WatcherEvent } from './io';

export interface ClientConfig {
  serverIp: string;
  ports: number[];
  connsPerPort: number;
  ludpHost: string;
  ludpPort: number;
  device: string;
  /** Source address for the dials; "" lets the kernel choose. */
  localIp: string;
  key: string;
  mode: WireMode;
  /** The server name the TLS-shaped greeting carries. */
  sni: string;
  durationMs: number;
  keepaliveMs: number;
}

interface ClientLink extends GreetingLink {
  slot: Slot<ClientLink>;
}

export class RsockClient implements EngineHandler<ClientLink>, PoolDriver<ClientLink> {
  private readonly engine: Engine<ClientLink>;
  private readonly pool: ClientPool<ClientLink>;
  private readonly flows: ClientFlows;
  private readonly greeter: ClientGreeter<ClientLink>;
  private ludpId = -1;
  readonly sessionId: number;
  private everUp = false;
  private readyWaiters: (() => void)[] = [];
  readonly counters = { udpIn: 0, udpOut: 0, droppedNoConn: 0, droppedTooBig: 0, droppedNoFlow: 0, flowsExpired: 0 };

  constructor(
    private readonly cfg: ClientConfig,
    private readonly log: Logger,
    private readonly io: TunnelIo,
  ) {
    if (!parseIp(cfg.serverIp)) throw new Error(`the server address "${cfg.serverIp}" is not an IPv4 or IPv6 address`);
    this.sessionId = io.crypto.randomU32() || 1;
    this.flows = new ClientFlows(cfg.durationMs, (f) => {
      if (this.log.enabled('debug')) this.log.debug(`flow ${f.id} from ${flowSource(f)} opened`);
    });
    this.engine = new Engine<ClientLink>(
      io,
      {
        capture: { device: cfg.device, ports: cfg.ports, portSide: 'src', fromHost: cfg.serverIp },
        key: cfg.key,
        side: 'client',
        mode: cfg.mode,
      },
      this,
      log,
    );
    const keepaliveMs = cfg.keepaliveMs;
    this.pool = new ClientPool<ClientLink>(
      cfg.ports,
      cfg.connsPerPort,
      { ...DEFAULT_POOL_OPTIONS, keepaliveMs, deadAfterMs: Math.max(3 * keepaliveMs + 500, 1500) },
      this,
    );
    this.greeter = new ClientGreeter(this.engine, io, { mode: cfg.mode, sni: cfg.sni, keepaliveMs, sessionId: this.sessionId });
  }

  /** Binds the local UDP endpoint and starts dialing. Resolves once the UDP endpoint is bound. */
  async start(): Promise<void> {
    this.engine.start();
    try {
      this.ludpId = this.engine.udp.bind(this.cfg.ludpHost, this.cfg.ludpPort);
    } catch (e) {
      this.engine.stop();
      throw new Error(`--ludp: ${(e as Error).message}`);
    }
    this.pool.start(this.io.clock());
    this.log.info(
      `dialing ${this.cfg.serverIp} on ${this.cfg.ports.length} port(s) x ${this.cfg.connsPerPort} via ${this.cfg.device}; ` +
        `local udp ${hostPortText(this.cfg.ludpHost, this.cfg.ludpPort)}`,
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

  get flowCount(): number {
    return this.flows.size;
  }

  /** Datagrams from the app(s) on --ludp. */
  onUdp(data: Buffer, meta: Uint32Array, count: number, now: number): void {
    this.counters.udpIn += count;
    for (let i = 0; i < count; i++) {
      const m = i * UDP_RX_STRIDE;
      const len = meta[m + UDP_RX.LENGTH];
      const flow = this.flows.fromRecord(meta, m, now);
      if (!flow) {
        this.counters.droppedNoFlow++;
        continue;
      }
      const link = this.pool.pick()?.link;
      if (!link) {
        this.counters.droppedNoConn++;
        this.log.rateLimited('warn', 'noconn', 5000, 'dropping datagrams: no connection to the server is up yet');
        continue;
      }
      // Datagrams larger than a segment go as fragments: nothing an app sends over UDP is too big.
      if (!this.engine.sendDatagram(link, flow.id, data, meta[m + UDP_RX.OFFSET], len, now)) {
        this.counters.droppedTooBig++;
        this.log.rateLimited('warn', 'toobig', 5000, `dropped a ${len}-byte datagram: more than 255 fragments of ${link.maxDatagram} bytes`);
      }
    }
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
      this.pool.onLost(link.slot, now, `the server's answer is ${r}`);
      return -1;
    }
    return r;
  }

  /** Join goes out once the server's answer is in our ack. */
  afterGreeting(link: ClientLink, now: number): void {
    if (link.wire.txSlot >= 0) this.greeter.sendJoin(link, now, true);
  }

  onFrame(link: ClientLink, type: number, arg: number, buf: Buffer, off: number, len: number, now: number): void {
    if (type === FrameType.Data) {
      const flow = this.flows.byFlowId(arg);
      if (!flow) {
        this.counters.droppedNoFlow++;
        return;
      }
      flow.lastActive = now;
      this.counters.udpOut++;
      this.engine.udpTx.add(this.ludpId, buf, off, len, flow.ip, flow.port, flow.ip6);
    } else if (type === FrameType.Joined) {
      if (arg === this.sessionId) this.pool.onJoined(link.slot, now);
    }
  }

  onLinkLost(link: ClientLink, reason: string, now: number): void {
    this.pool.onLost(link.slot, now, reason);
  }

  onTick(now: number): void {
    this.greeter.tick(now, (link) => link.slot.link === link);
    this.pool.tick(now);
    this.flows.sweep(now, (flow) => {
      this.counters.flowsExpired++;
      this.log.info(`flow ${flow.id} from ${flowSource(flow)} expired after ${Math.round(this.cfg.durationMs / 1000)} s idle`);
    });
  }

  // ---- Pool driver ----

  dial(slot: Slot<ClientLink>): number {
    return this.engine.watcher.connect(this.cfg.localIp, this.cfg.serverIp, slot.port);
  }

  closeSocket(fd: number, link: ClientLink | null): void {
    if (link) this.engine.remove(link);
    else this.engine.watcher.close(fd);
  }

  /** Called every 100 ms until Joined. */
  sendHello(slot: Slot<ClientLink>): void {
    this.greeter.step(slot.link!, this.io.clock());
  }

  sendPing(slot: Slot<ClientLink>, nonce: number): void {
    const now = this.io.clock();
    const tcp = slot.link!.tcp;
    this.engine.tx.frame(slot.link!, FrameType.Ping, nonce, null, 0, 0, now);
    // When the server has been quiet, add a pure ACK: if the server lost the connection (restart),
    // its kernel answers a payload-less segment with an RST at once, while data is dropped silently.
    if (now - tcp.lastRecvAt >= this.cfg.keepaliveMs) this.engine.tx.pureAck(tcp, now);
  }

  sendClose(slot: Slot<ClientLink>): void {
    if (slot.link) this.engine.sayClose(slot.link, CloseReason.Shutdown, this.io.clock());
  }

  onUp(slot: Slot<ClientLink>, reconnect: boolean): void {
    const t = slot.link?.tcp;
    const where = t ? endpointText(t.local) : '?';
    this.log.info(
      `connection ${slot.id} to port ${slot.port} up${reconnect ? ' again' : ''} (from ${where}); ${this.pool.liveCount}/${this.pool.slots.length} live`,
    );
    if (!this.everUp) {
      this.everUp = true;
      this.log.info(`rsock-client ready: udp ${hostPortText(this.cfg.ludpHost, this.cfg.ludpPort)} -> ${this.cfg.serverIp} ports ${this.cfg.ports.join(',')}`);
      for (const w of this.readyWaiters.splice(0)) w();
    }
  }

  onDown(slot: Slot<ClientLink>, reason: string, retryInMs: number, wasUp: boolean): void {
    // Losing a live connection is always worth a line; repeated failed redials only now and then.
    this.log.rateLimited(
      'warn',
      `down${slot.id}`,
      wasUp || slot.backoff.failures <= 3 ? 0 : 30000,
      `connection ${slot.id} to port ${slot.port} down: ${reason}; retrying in ${(retryInMs / 1000).toFixed(1)} s; ${this.pool.liveCount}/${this.pool.slots.length} live`,
    );
  }

  stats(): Record<string, number> {
    return { ...this.engine.counters(), ...this.counters, flows: this.flows.size, live: this.pool.liveCount };
  }

  /** Tells the server (Bye, then Close and FIN on every live connection), closes everything. */
  async stop(): Promise<void> {
    const now = this.io.clock();
    for (const s of this.pool.slots) {
      if (s.link?.tcp.open && s.link.wire.txSlot >= 0) this.engine.tx.frame(s.link, FrameType.Bye, this.sessionId, null, 0, 0, now);
    }
    this.pool.stop(now);
    this.engine.stop();
  }
}
