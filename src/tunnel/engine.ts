// What the client and the server share: the I/O handles, the batched send and receive paths, the table
// of live links, and the link control both sides speak — Ping answered by Pong, the peer's Close and
// FIN answered by our FIN, resets, ACK cadence, Close + FIN when we end a link.
import { CloseReason, FrameType, WireMode } from '../core/frame';
import { KeyTable } from '../core/key-table';
import { connectionKeys, DirectionKeys, HandshakeKeys, handshakeKeys } from '../core/keys';
import { Handshake, HandshakeExtras, Link } from '../core/link';
import { Logger } from '../util/log';
import { ConnTable } from './conn-table';
import { Datagrams } from './datagrams';
import { engineCounters } from './engine-counters';
import { CaptureSpec, Capture, Injector, SocketWatcher, TunnelIo, UdpMux, WatcherEvent } from './io';
import type { CaptureStats, InjectorStats, UdpMuxStats } from '../io/native';
import { RxHandler, RxPath } from './rx';
import { IDLE_TICK_MS, Ticker } from './ticker';
import { TxBatch } from './tx-batch';
import { UdpTxBatch } from './udp-tx';

export interface EngineOptions {
  capture: CaptureSpec;
  /** The shared secret: the root of the handshake keys and of every connection's own keys. */
  key: string;
  side: 'client' | 'server';
  mode: WireMode;
}

/** Challenge ACKs in all, per second (Linux: tcp_challenge_ack_limit), so a flood of blind RSTs draws few. */
const CHALLENGES_PER_SECOND = 100;

export interface EngineHandler<L extends Link> {
  /** A verified frame other than the link control's own (Ping, Close, Padding). */
  onFrame(link: L, type: number, arg: number, buf: Buffer, off: number, len: number, now: number): void;
  /** The peer's handshake message (see RxHandler.onGreeting). */
  onGreeting(link: L, buf: Buffer, off: number, len: number, at: number, now: number): number;
  afterGreeting(link: L, now: number): void;
  /** The peer or the path ended the link (reset, FIN, Close); what had to be answered was answered. */
  onLinkLost(link: L, reason: string, now: number, cause: 'reset' | 'fin' | 'close'): void;
  onSocketEvent(ev: WatcherEvent, now: number): void;
  /** Datagrams from local UDP sockets (UDP_RX_STRIDE words each in meta). */
  onUdp(data: Buffer, meta: Uint32Array, count: number, now: number): void;
  onTick(now: number): void;
  /** Nothing under way that needs the fine tick pace (no handshake, greeting or redial in progress). */
  settled(): boolean;
}

export class Engine<L extends Link> implements RxHandler<L> {
  private readonly links = new ConnTable<L>();
  private capture: Capture | null = null;
  private injector: Injector | null = null;
  private sockets: SocketWatcher | null = null;
  private txBatch: TxBatch | null = null;
  private rxPath: RxPath<L> | null = null;
  private mux: UdpMux | null = null;
  private udpBatch: UdpTxBatch | null = null;
  private readonly ticker: Ticker;
  private final: { capture?: CaptureStats; injector?: InjectorStats; mux?: UdpMuxStats } | null = null;
  readonly keys: HandshakeKeys;
  private readonly keyTable = new KeyTable();
  /** How log lines name the other side. */
  private readonly peer: string;
  private challenges = 0;
  private challengeSecond = 0;
  private readonly datagrams = new Datagrams<L>();

  constructor(
    private readonly io: TunnelIo,
    private readonly opts: EngineOptions,
    private readonly handler: EngineHandler<L>,
    private readonly log: Logger,
  ) {
    this.keys = handshakeKeys(io.crypto, opts.key, opts.mode);
    this.peer = opts.side === 'client' ? 'server' : 'client';
    this.ticker = new Ticker(io.timers, () => this.tick());
  }

  get tx(): TxBatch { return this.txBatch!; }
  get watcher(): SocketWatcher { return this.sockets!; }
  /** The local UDP sockets (the client's --ludp, the server's per-flow sockets). */
  get udp(): UdpMux { return this.mux!; }
  get udpTx(): UdpTxBatch { return this.udpBatch!; }
  get linkCount(): number { return this.links.size; }

  /** Opens every handle. Throws the I/O layer's clear error (no permission, no such device, ...), with nothing left open. */
  start(): void {
    const io = this.io;
    try {
      this.mux = io.openUdp((data, meta, count) => {
        this.beginBatch(data);
        try { this.handler.onUdp(data, meta, count, io.clock()); } finally { this.endBatch(); }
      });
      this.udpBatch = new UdpTxBatch(this.mux, io.timers);
      this.injector = io.openInjector();
      this.txBatch = new TxBatch(this.injector, io.crypto, this.keyTable, this.opts.mode, io.timers);
      this.rxPath = new RxPath(this.links, io.crypto, this.keyTable, this.opts.mode, this);
      this.sockets = io.openSockets((ev) => {
        this.ticker.wake();
        this.handler.onSocketEvent(ev, io.clock());
      });
      const dev = this.opts.capture.device;
      this.capture = io.openCapture(
        this.opts.capture,
        (data, meta, count) => {
          this.beginBatch(data);
          try { this.rxPath!.handle(data, meta, count, io.clock()); } finally { this.endBatch(); }
        },
        (err) => this.log.error(`capture on ${dev}: ${err.message}`),
      );
    } catch (e) {
      this.stop();
      throw e;
    }
    this.ticker.start();
  }

  // What a batch of input causes leaves before its callback returns, not a loop phase later (the first
  // datagram of a burst saves that wait), and datagrams for local sockets go straight from the batch
  // buffer, valid and unchanged until then.
  private beginBatch(data: Buffer): void {
    this.txBatch!.hold(true);
    this.udpBatch!.hold(true);
    this.udpBatch!.lend(data);
  }

  private endBatch(): void {
    this.ticker.wake();
    this.txBatch!.hold(false);
    this.udpBatch!.hold(false);
    try { this.udpBatch!.flush(); } finally { this.udpBatch!.lend(null); }
    this.txBatch!.flush();
  }

  /** What a new link needs beyond the kernel's handshake: the peer's TSval from it, a random IP id start. */
  extras(hs: Handshake): HandshakeExtras {
    const crypto = this.io.crypto;
    // A label of its own per connection, never 0 (what Linux's auto flow labels look like; PROTOCOL.md §1).
    const flowLabel = hs.ipVersion === 6 ? (crypto.randomU32() & 0xfffff) || 1 : 0;
    return { tsRecent: this.rxPath?.handshakeTs(hs.remoteIp, hs.remotePort, hs.localPort), ipId: crypto.randomU32() & 0xffff, flowLabel };
  }

  /** A link starts carrying: captured segments of its 4-tuple now reach it. */
  add(link: L): void {
    const t = link.tcp;
    this.links.set(t.remote.ip, t.remote.port, t.local.port, link);
    this.datagrams.add(link);
  }

  /** The connection's own keys, from both ends' nonces: its frames can be sealed and opened from now on. */
  installKeys(link: L, clientNonce: Buffer, serverNonce: Buffer, rxFrom: number): void {
    const k = connectionKeys(this.io.crypto, this.keys.master, clientNonce, serverNonce);
    const client = this.opts.side === 'client';
    const slot = (d: DirectionKeys): number => {
      const i = this.keyTable.allocate();
      this.keyTable.write(i, d.mask, d.mac, d.aead);
      return i;
    };
    link.wire.txSlot = slot(client ? k.clientToServer : k.serverToClient);
    link.wire.rxSlot = slot(client ? k.serverToClient : k.clientToServer);
    link.wire.rxFrom = rxFrom;
  }

  private forget(link: L): void {
    const t = link.tcp;
    if (this.links.get(t.remote.ip, t.remote.port, t.local.port) === link) this.links.delete(t.remote.ip, t.remote.port, t.local.port);
    // Frames already queued for this link are sealed at flush time, so its key slot must not be reused before then.
    this.txBatch?.flush();
    if (link.wire.txSlot >= 0) this.keyTable.free(link.wire.txSlot);
    if (link.wire.rxSlot >= 0) this.keyTable.free(link.wire.rxSlot);
    link.wire.txSlot = link.wire.rxSlot = -1;
  }

  /** Forgets a link and closes its socket without the kernel sending anything. */
  remove(link: L): void {
    this.forget(link);
    this.sockets?.close(link.fd);
  }

  /** Gives a connection back to the kernel (an active probe): it serves the prober from now on. */
  handBack(link: L): void {
    this.forget(link);
    link.tcp.abort('handed back to the kernel');
    this.sockets?.handBack(link.fd);
    this.io.serveProbe(link.fd);
  }

  /** Our side ends the link: Close with `reason`, then FIN, if the connection is still open. */
  sayClose(link: L, reason: CloseReason, now: number): void {
    if (!link.tcp.open) return;
    // Before the connection has keys there is nothing to say Close with: the FIN alone ends it.
    if (link.wire.txSlot >= 0) this.txBatch!.frame(link, FrameType.Close, reason, null, 0, 0, now);
    this.txBatch!.fin(link.tcp, now);
  }

  onFrame(link: L, type: number, arg: number, buf: Buffer, off: number, len: number, now: number): void {
    if (!link.tcp.open) return;
    switch (type) {
      case FrameType.Ping:
        this.txBatch!.frame(link, FrameType.Pong, arg, null, 0, 0, now);
        return;
      case FrameType.Close:
        this.txBatch!.fin(link.tcp, now);
        this.handler.onLinkLost(link, `the ${this.peer} closed the connection`, now, 'close');
        return;
      case FrameType.Padding:
        return;
      case FrameType.Fragment: {
        const whole = this.datagrams.fragment(link, arg, buf, off, len, now);
        if (whole) this.handler.onFrame(link, FrameType.Data, arg, whole, 0, whole.length, now);
        return;
      }
      default:
        this.handler.onFrame(link, type, arg, buf, off, len, now);
    }
  }

  /**
   * Sends one datagram of a flow: one Data frame, or Fragment frames in consecutive segments of this
   * connection when it does not fit one. False when it is longer than any UDP datagram can be.
   */
  sendDatagram(link: L, flowId: number, src: Buffer, off: number, len: number, now: number): boolean {
    return this.datagrams.send(this.txBatch!, link, flowId, src, off, len, now);
  }

  onGreeting(link: L, buf: Buffer, off: number, len: number, at: number, now: number): number {
    return this.handler.onGreeting(link, buf, off, len, at, now);
  }

  afterGreeting(link: L, now: number): void {
    this.handler.afterGreeting(link, now);
  }

  /** The peer's TSval from the kernel handshake, if the capture has shown it by now. */
  handshakeTs(link: L): number | undefined {
    const t = link.tcp;
    return this.rxPath?.handshakeTs(t.remote.ip, t.remote.port, t.local.port);
  }

  onChallenge(link: L, now: number): void {
    const second = Math.floor(now / 1000);
    if (second !== this.challengeSecond) {
      this.challengeSecond = second;
      this.challenges = 0;
    }
    if (this.challenges >= CHALLENGES_PER_SECOND || !link.tcp.challengeDue(now)) return;
    this.challenges++;
    this.txBatch!.pureAck(link.tcp, now);
  }

  onTcpEnd(link: L, verdict: 'reset' | 'fin', now: number): void {
    if (verdict === 'fin') this.txBatch!.fin(link.tcp, now);
    this.handler.onLinkLost(link, verdict === 'reset' ? 'connection reset' : `FIN from the ${this.peer}`, now, verdict);
  }

  /** Timers, ACK cadence and expiry sweeps; true when the slow pace will do until the next input. */
  private tick(): boolean {
    const now = this.io.clock();
    let owed = false;
    for (const link of this.links.values()) {
      if (link.tcp.ackDue(now)) this.txBatch!.pureAck(link.tcp, now);
      else owed ||= link.tcp.ackDue(now + IDLE_TICK_MS); // it would fall due before a slow tick came
    }
    this.datagrams.reassembly.sweep(now);
    this.handler.onTick(now);
    return !owed && this.handler.settled();
  }

  counters(): Record<string, number> {
    const f = this.final;
    return engineCounters({ capture: this.capture?.stats() ?? f?.capture, injector: this.injector?.stats() ?? f?.injector, mux: this.mux?.stats() ?? f?.mux,
      rx: this.rxPath?.stats, datagrams: this.datagrams.counters(), connections: this.links.size });
  }

  /** Flushes what is queued and releases every handle. Idempotent. */
  stop(): void {
    this.ticker.stop();
    try {
      this.txBatch?.flush();
      this.udpBatch?.flush();
    } catch (e) {
      this.log.warn(`final send failed: ${(e as Error).message}`);
    }
    // The counters stay readable after the handles are gone (the line logged at shutdown).
    if (this.capture || this.injector || this.mux) {
      this.final = { capture: this.capture?.stats(), injector: this.injector?.stats(), mux: this.mux?.stats() };
    }
    this.capture?.close();
    this.sockets?.stop();
    this.injector?.close();
    this.mux?.stop();
    this.capture = null;
    this.sockets = null;
    this.injector = null;
    this.mux = null;
  }
}
