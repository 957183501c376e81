// The client's UDP paths (--type=udp|all): one per server port, each its own connected socket, with
// the same life cycle as a fake TCP connection (ClientPool): greeting, answer, Join, Joined, Ping
// every keepalive; silence for 2 keepalives + 0.5 s marks it dead, and it redials (a new socket, a
// fresh greeting) with a backoff capped at a few seconds, which is how UDP is probed again.
import { ClientPool, DEFAULT_POOL_OPTIONS, DownCause, PoolDriver, Slot } from '../core/client-pool';
import type { ReconnectCause } from '../ops/status';
import { CloseReason, FrameType, JOIN_LEN, PROTOCOL_VERSION, WireMode, writeJoin } from '../core/frame';
import { checkServerGreeting, clientGreeting } from '../core/greeting';
import type { HandshakeKeys } from '../core/keys';
import { newUdpLink, UdpLink } from '../core/udp-link';
import { UDP_SLOT_BASE, udpMaxDatagram } from '../core/udp-wire';
import type { Logger } from '../util/log';
import type { TunnelIo } from './io';
import { UdpPathHandler, UdpTransport } from './udp-path';

interface ClientUdpLink extends UdpLink {
  slot: Slot<ClientUdpLink>;
  greeting: Buffer;
  nonce: Buffer;
  greetingSentAt: number;
  rtoMs: number;
}

export interface ClientUdpConfig {
  serverIp: number;
  ports: number[];
  mode: WireMode;
  sni: string;
  keepaliveMs: number;
  sessionId: number;
  /** The --forward table Join carries (null without --forward), as on fake TCP. */
  forwardTable: Buffer | null;
  /** --type=all: fake TCP carries the flows while no path is live (logged at each switch). */
  fallback: boolean;
}

export interface ClientUdpEvents {
  onData(link: ClientUdpLink, flowId: number, buf: Buffer, off: number, len: number, now: number): void;
  /** A path is live (the first one makes the client ready). */
  onUp(): void;
  /** The server's Joined, with its answers to the forward table. */
  onJoined(buf: Buffer, off: number, len: number): void;
}

const GREETING_RTO_MS = 300;
/** UDP is asked again this often at most while it does not answer (backoff from 200 ms, doubling, ±20 %). */
export const UDP_RETRY_MAX_MS = 4000;

export class ClientUdp implements UdpPathHandler<ClientUdpLink>, PoolDriver<ClientUdpLink> {
  private readonly transport: UdpTransport<ClientUdpLink>;
  readonly pool: ClientPool<ClientUdpLink>;
  readonly reconnects: Record<ReconnectCause, number> = { reset: 0, fin: 0, close: 0, silence: 0, dial_failure: 0, handshake: 0 };
  private readonly bySock = new Map<number, ClientUdpLink>();
  private readonly serverIpText: string;
  /** What carried the last datagram, to log the switches. */
  private carrying: 'udp' | 'tcp' | null = null;

  constructor(
    private readonly io: TunnelIo,
    private readonly cfg: ClientUdpConfig,
    private readonly keys: HandshakeKeys,
    private readonly log: Logger,
    private readonly events: ClientUdpEvents,
  ) {
    this.transport = new UdpTransport(io, cfg.mode, 'client', keys.master, this);
    const ka = cfg.keepaliveMs;
    this.pool = new ClientPool<ClientUdpLink>(
      cfg.ports,
      1,
      { ...DEFAULT_POOL_OPTIONS, keepaliveMs: ka, deadAfterMs: Math.max(2 * ka + 500, 1500), helloTimeoutMs: 3000, backoffMaxMs: UDP_RETRY_MAX_MS },
      this,
    );
    this.serverIpText = [24, 16, 8, 0].map((s) => (cfg.serverIp >>> s) & 255).join('.');
  }

  start(now: number): void {
    this.transport.open();
    this.pool.start(now);
  }

  get liveCount(): number {
    return this.pool.liveCount;
  }

  /** A live path, round-robin over ports; undefined when UDP does not answer. */
  pick(): ClientUdpLink | undefined {
    const link = this.pool.pick()?.link ?? undefined;
    const now = link ? 'udp' : 'tcp';
    if (this.cfg.fallback && this.carrying !== now) {
      if (this.carrying) this.log.info(link ? 'udp answers: the flows move to udp' : 'no udp path answers: the flows move to fake tcp');
      this.carrying = now;
    }
    return link;
  }

  sendDatagram(link: ClientUdpLink, flowId: number, src: Buffer, off: number, len: number, now: number): boolean {
    return this.transport.sendDatagram(link, flowId, src, off, len, now);
  }

  // ---- UDP path handler ----

  linkFor(sock: number): ClientUdpLink | undefined {
    return this.bySock.get(sock);
  }

  /** The server's answer to our greeting; anything else (not from the server, not authentic) is ignored. */
  onHandshake(_sock: number, ip: number, port: number, link: ClientUdpLink | undefined, buf: Buffer, off: number, len: number, now: number): void {
    if (!link || link.wire.txSlot >= 0 || ip !== this.cfg.serverIp || port !== link.slot.port) return;
    const r = checkServerGreeting(this.io.crypto, this.keys, this.cfg.mode.obfs, link.nonce, buf, off, len);
    if (!r.ok) {
      this.log.rateLimited('warn', 'udpanswer', 10000, `udp port ${port} answered with ${r.why}: --key, --obfs and --crypt must be the same on both ends`);
      return;
    }
    this.transport.installKeys(link, link.nonce, r.nonce);
    link.path.lastRecvAt = now;
    this.sendJoin(link, now);
  }

  onRepeat(): boolean {
    return false;
  }

  onFrame(link: ClientUdpLink, type: number, arg: number, buf: Buffer, off: number, len: number, now: number): void {
    if (type === FrameType.Data) this.events.onData(link, arg, buf, off, len, now);
    else if (type === FrameType.Pong) this.pool.onPong(link.slot, arg, now);
    else if (type === FrameType.Joined && arg === this.cfg.sessionId) {
      this.events.onJoined(buf, off, len);
      this.pool.onJoined(link.slot, now);
    }
  }

  onClosed(link: ClientUdpLink, now: number): void {
    this.pool.onLost(link.slot, now, 'the server closed the udp path', 'close');
  }

  // ---- Pool driver ----

  dial(slot: Slot<ClientUdpLink>): number {
    const sock = this.transport.sockets.connect(this.serverIpText, slot.port);
    // The pool learns the socket when dial() returns; the path starts right after.
    this.io.timers.soon(() => this.opened(slot, sock));
    return sock;
  }

  private opened(slot: Slot<ClientUdpLink>, sock: number): void {
    if (this.pool.slotByFd(sock) !== slot) return;
    const now = this.io.clock();
    const g = clientGreeting(this.io.crypto, this.keys, this.cfg.mode.obfs, this.cfg.sni);
    const local = { ip: 0, port: this.transport.sockets.localPort(sock) };
    const base = newUdpLink(sock, true, local, { ip: this.cfg.serverIp, port: slot.port }, udpMaxDatagram(this.cfg.mode), now);
    const link: ClientUdpLink = { ...base, slot, greeting: g.bytes, nonce: g.nonce, greetingSentAt: -1, rtoMs: GREETING_RTO_MS };
    this.bySock.set(sock, link);
    this.pool.onConnected(sock, link, now);
  }

  closeSocket(fd: number, link: ClientUdpLink | null): void {
    if (link) this.transport.forget(link);
    this.bySock.delete(fd);
    this.transport.sockets.close(fd);
  }

  /** Every 100 ms until Joined: the greeting, retransmitted like a lost segment would be, or Join once keyed. */
  sendHello(slot: Slot<ClientUdpLink>): void {
    const link = slot.link!;
    const now = this.io.clock();
    if (link.wire.txSlot >= 0) return this.sendJoin(link, now);
    if (link.greetingSentAt >= 0 && now - link.greetingSentAt < link.rtoMs) return;
    if (link.greetingSentAt >= 0) link.rtoMs *= 2;
    link.greetingSentAt = now;
    this.transport.tx.raw(link, link.greeting);
  }

  private sendJoin(link: ClientUdpLink, now: number): void {
    const tx = this.transport.tx;
    const table = this.cfg.forwardTable;
    const off = tx.reserveFrame(link, FrameType.Join, this.cfg.sessionId, JOIN_LEN + (table?.length ?? 0), now);
    if (off < 0) return;
    writeJoin(tx.buffer, off, { version: PROTOCOL_VERSION, keepaliveMs: this.cfg.keepaliveMs, slot: UDP_SLOT_BASE + link.slot.id });
    table?.copy(tx.buffer, off + JOIN_LEN);
  }

  sendPing(slot: Slot<ClientUdpLink>, nonce: number): void {
    this.transport.tx.frame(slot.link!, FrameType.Ping, nonce, null, 0, 0, this.io.clock());
  }

  sendClose(slot: Slot<ClientUdpLink>): void {
    if (slot.link) this.transport.tx.frame(slot.link, FrameType.Close, CloseReason.Shutdown, null, 0, 0, this.io.clock());
  }

  onUp(slot: Slot<ClientUdpLink>, reconnect: boolean): void {
    this.log.info(`udp path to port ${slot.port} up${reconnect ? ' again' : ''}; ${this.pool.liveCount}/${this.pool.slots.length} live`);
    this.events.onUp();
  }

  onDown(slot: Slot<ClientUdpLink>, reason: string, retryInMs: number, wasUp: boolean, cause: DownCause): void {
    this.reconnects[cause]++;
    const line = `udp path to port ${slot.port} down: ${reason}; asking again in ${(retryInMs / 1000).toFixed(1)} s; ${this.pool.liveCount}/${this.pool.slots.length} live`;
    // A path lost is always worth a line; while UDP is blocked every port's probes fail: one line now and then.
    if (wasUp) this.log.warn(line);
    else this.log.rateLimited('warn', 'udpprobe', 30000, `${line} (is UDP blocked on the way, or does the server run without --type=udp or all? Failed udp probes are logged once per 30 s)`);
  }

  /** Every path carrying: none probing, greeting or waiting to ask again. */
  settled(): boolean {
    return this.pool.liveCount === this.pool.slots.length;
  }

  tick(now: number): void {
    this.pool.tick(now);
    this.transport.tick(now);
  }

  stats(): Record<string, number> {
    return { ...this.transport.counters(), udpLive: this.pool.liveCount };
  }

  /** Bye, then Close, on every live path; then every socket closes. */
  stop(now: number): void {
    for (const s of this.pool.slots) {
      if (s.link && s.link.wire.txSlot >= 0) this.transport.tx.frame(s.link, FrameType.Bye, this.cfg.sessionId, null, 0, 0, now);
    }
    this.pool.stop(now);
    this.transport.stop();
  }
}
