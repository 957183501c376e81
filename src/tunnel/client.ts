// rsock-client: takes datagrams from a local UDP endpoint, one app flow per source address, and
// spreads them over fake-TCP connections to every server port; replies go back to each flow's source.
import { ClientPool, DEFAULT_POOL_OPTIONS, PoolDriver, Slot } from '../core/client-pool';
import { CloseReason, FrameType, HEADER, HELLO_LEN, PROTOCOL_VERSION, writeHello } from '../core/frame';
import { FakeTcp } from '../core/fake-tcp';
import { Flow, FlowTable } from '../core/flow-table';
import { intToIp, ipToInt } from '../core/ipv4';
import { portFilter } from '../core/ports';
import { deriveKeys } from '../core/keys';
import { NativeAddon, UDP_RX_STRIDE, WatcherEvent } from '../io/native';
import { Clock } from '../util/clock';
import { Logger } from '../util/log';
import { Engine, EngineHandler } from './engine';

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
  durationMs: number;
  keepaliveMs: number;
}

interface ClientLink {
  tcp: FakeTcp;
  slot: Slot;
  fd: number;
  /** Largest datagram this connection can carry in one segment. */
  maxDatagram: number;
}

interface ClientFlow extends Flow {
  ip: number;
  port: number;
}

/** A flow's key: its source address and port in one number (48 bits, exact in a double). */
function flowKey(ip: number, port: number): number {
  return ip * 65536 + port;
}

function keyText(key: number): string {
  return `${intToIp(Math.floor(key / 65536))}:${key % 65536}`;
}

const SWEEP_BUDGET = 500;

export class RsockClient implements EngineHandler<ClientLink>, PoolDriver {
  private readonly engine: Engine<ClientLink>;
  private readonly pool: ClientPool;
  private readonly flows: FlowTable<number, ClientFlow>;
  private readonly flowsById = new Map<number, ClientFlow>();
  private readonly byFd = new Map<number, ClientLink>();
  private readonly serverIpInt: number;
  private ludpId = -1;
  private nextFlowId = 1;
  readonly sessionId: number;
  private everUp = false;
  private readyWaiters: (() => void)[] = [];
  readonly counters = { udpIn: 0, udpOut: 0, droppedNoConn: 0, droppedTooBig: 0, droppedNoFlow: 0, flowsExpired: 0 };

  constructor(
    private readonly cfg: ClientConfig,
    private readonly log: Logger,
    native: NativeAddon,
    private readonly clock: Clock,
  ) {
    const keys = deriveKeys(native.mac, cfg.key);
    this.serverIpInt = ipToInt(cfg.serverIp);
    this.sessionId = native.mac.randomU32() || 1;
    this.flows = new FlowTable(cfg.durationMs);
    this.engine = new Engine<ClientLink>(
      native,
      {
        device: cfg.device,
        filter: `tcp and src host ${cfg.serverIp} and ${portFilter(cfg.ports, 'src')}`,
        sendKey: keys.clientToServer,
        recvKey: keys.serverToClient,
        tickMs: 10,
      },
      this,
      clock,
      log,
    );
    const keepaliveMs = cfg.keepaliveMs;
    this.pool = new ClientPool(cfg.ports, cfg.connsPerPort, {
      ...DEFAULT_POOL_OPTIONS,
      keepaliveMs,
      deadAfterMs: Math.max(3 * keepaliveMs + 500, 1500),
    }, this);
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
    this.pool.start(this.clock());
    this.log.info(
      `dialing ${this.cfg.serverIp} on ${this.cfg.ports.length} port(s) x ${this.cfg.connsPerPort} via ${this.cfg.device}; ` +
        `local udp ${this.cfg.ludpHost}:${this.cfg.ludpPort}`,
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
  onUdp(data: Buffer, meta: Uint32Array, count: number): void {
    const now = this.clock();
    this.counters.udpIn += count;
    for (let i = 0; i < count; i++) {
      const m = i * UDP_RX_STRIDE;
      const off = meta[m + 1];
      const len = meta[m + 2];
      const ip = meta[m + 3];
      const port = meta[m + 4];
      const key = flowKey(ip, port);
      let flow = this.flows.get(key);
      if (!flow) {
        flow = { id: this.nextFlowId, lastActive: now, ip, port };
        this.nextFlowId = (this.nextFlowId + 1) >>> 0 || 1;
        this.flows.set(key, flow);
        this.flowsById.set(flow.id, flow);
        if (this.log.enabled('debug')) this.log.debug(`flow ${flow.id} from ${keyText(key)} opened`);
      }
      flow.lastActive = now;
      const slot = this.pool.pick();
      if (!slot) {
        this.counters.droppedNoConn++;
        this.log.rateLimited('warn', 'noconn', 5000, 'dropping datagrams: no connection to the server is up yet');
        continue;
      }
      const link = this.byFd.get(slot.fd)!;
      if (len > link.maxDatagram) {
        this.counters.droppedTooBig++;
        this.log.rateLimited(
          'warn',
          'toobig',
          5000,
          `dropped a ${len}-byte datagram: at most ${link.maxDatagram} fit in one segment; lower the app's MTU (e.g. kcptun --mtu 1350, WireGuard MTU 1380)`,
        );
        continue;
      }
      this.engine.tx.frame(link.tcp, FrameType.Data, flow.id, data, off, len, now);
    }
  }

  // ---- Engine callbacks ----

  onWatcher(ev: WatcherEvent, now: number): void {
    if (ev.type === 'connected') {
      if (!this.pool.slotByFd(ev.fd)) {
        this.engine.watcher.close(ev.fd);
        return;
      }
      const tcp = new FakeTcp({
        local: { ip: ev.localIp, port: ev.localPort },
        remote: { ip: this.serverIpInt, port: ev.remotePort },
        sndNxt: ev.sndNxt,
        rcvNxt: ev.rcvNxt,
        now,
      });
      const slot = this.pool.slotByFd(ev.fd)!;
      const link: ClientLink = { tcp, slot, fd: ev.fd, maxDatagram: Math.max(ev.mss - HEADER, 0) };
      this.byFd.set(ev.fd, link);
      this.engine.links.set(this.serverIpInt, ev.remotePort, ev.localPort, link);
      this.log.debug(`port ${ev.remotePort}: tcp up from ${intToIp(ev.localIp)}:${ev.localPort}, saying hello`);
      this.pool.onConnected(ev.fd, tcp, now);
    } else if (ev.type === 'failed') {
      this.pool.onDialFailed(ev.fd, ev.error, now);
    }
  }

  onFrame(link: ClientLink, type: number, arg: number, buf: Buffer, off: number, len: number, now: number): void {
    if (!link.tcp.open) return;
    switch (type) {
      case FrameType.Data: {
        const flow = this.flowsById.get(arg);
        if (!flow) {
          this.counters.droppedNoFlow++;
          return;
        }
        flow.lastActive = now;
        this.counters.udpOut++;
        this.engine.udpTx.add(this.ludpId, buf, off, len, flow.ip, flow.port);
        return;
      }
      case FrameType.HelloAck:
        if (arg === this.sessionId) this.pool.onHelloAck(link.slot, now);
        return;
      case FrameType.Ping:
        this.engine.tx.frame(link.tcp, FrameType.Pong, arg, null, 0, 0, now);
        return;
      case FrameType.Close:
        this.engine.tx.fin(link.tcp, now);
        this.pool.onLost(link.slot, now, 'the server closed the connection');
        return;
      default:
        return;
    }
  }

  onTcpEnd(link: ClientLink, verdict: 'reset' | 'fin', now: number): void {
    if (verdict === 'fin') this.engine.tx.fin(link.tcp, now);
    this.pool.onLost(link.slot, now, verdict === 'reset' ? 'connection reset' : 'the server sent FIN');
  }

  onTick(now: number): void {
    this.pool.tick(now);
    this.flows.sweep(now, SWEEP_BUDGET, (key, flow) => {
      this.flowsById.delete(flow.id);
      this.counters.flowsExpired++;
      this.log.info(`flow ${flow.id} from ${keyText(key)} expired after ${Math.round(this.cfg.durationMs / 1000)} s idle`);
    });
  }

  // ---- Pool driver ----

  dial(slot: Slot): number {
    return this.engine.watcher.connect(this.cfg.localIp, this.cfg.serverIp, slot.port);
  }

  closeSocket(fd: number): void {
    const link = this.byFd.get(fd);
    if (link) {
      this.byFd.delete(fd);
      this.engine.links.delete(link.tcp.remote.ip, link.tcp.remote.port, link.tcp.local.port);
    }
    this.engine.watcher.close(fd);
  }

  sendHello(slot: Slot): void {
    const off = this.engine.tx.reserveFrame(slot.conn!, FrameType.Hello, this.sessionId, HELLO_LEN, this.clock());
    writeHello(this.engine.tx.buffer, off, { version: PROTOCOL_VERSION, keepaliveMs: this.cfg.keepaliveMs, slot: slot.id });
  }

  sendPing(slot: Slot, nonce: number): void {
    const now = this.clock();
    const tcp = slot.conn!;
    this.engine.tx.frame(tcp, FrameType.Ping, nonce, null, 0, 0, now);
    // When the server has been quiet, add a pure ACK: if the server lost the connection (restart),
    // its kernel answers a payload-less segment with an RST at once, while data is dropped silently.
    if (now - tcp.lastRecvAt >= this.cfg.keepaliveMs) this.engine.tx.pureAck(tcp, now);
  }

  sendClose(slot: Slot): void {
    const tcp = slot.conn;
    if (!tcp || !tcp.open) return;
    const now = this.clock();
    this.engine.tx.frame(tcp, FrameType.Close, CloseReason.Shutdown, null, 0, 0, now);
    this.engine.tx.fin(tcp, now);
  }

  onUp(slot: Slot, reconnect: boolean): void {
    const link = this.byFd.get(slot.fd);
    const where = link ? `${intToIp(link.tcp.local.ip)}:${link.tcp.local.port}` : '?';
    this.log.info(
      `connection ${slot.id} to port ${slot.port} up${reconnect ? ' again' : ''} (from ${where}); ${this.pool.liveCount}/${this.pool.slots.length} live`,
    );
    if (!this.everUp) {
      this.everUp = true;
      this.log.info(`rsock-client ready: udp ${this.cfg.ludpHost}:${this.cfg.ludpPort} -> ${this.cfg.serverIp} ports ${this.cfg.ports.join(',')}`);
      for (const w of this.readyWaiters.splice(0)) w();
    }
  }

  onDown(slot: Slot, reason: string, retryInMs: number, wasUp: boolean): void {
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

  /** Tells the server (Bye on every live connection), closes everything. */
  async stop(): Promise<void> {
    const now = this.clock();
    for (const s of this.pool.slots) {
      if (s.conn?.open) this.engine.tx.frame(s.conn, FrameType.Bye, this.sessionId, null, 0, 0, now);
    }
    this.pool.stop(now);
    this.engine.stop();
  }
}
