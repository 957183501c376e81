// What the client and the server share: the I/O handles, the batched send and receive paths, the table
// of live links, and the link control both sides speak — Ping answered by Pong, the peer's Close and
// FIN answered by our FIN, resets, ACK cadence, Close + FIN when we end a link.
import { CloseReason, FrameType } from '../core/frame';
import { deriveKeys } from '../core/keys';
import { Link } from '../core/link';
import { Logger } from '../util/log';
import { ConnTable } from './conn-table';
import { CaptureSpec, Capture, Injector, SocketWatcher, TunnelIo, UdpMux, WatcherEvent } from './io';
import { RxHandler, RxPath } from './rx';
import { TxBatch } from './tx-batch';
import { UdpTxBatch } from './udp-tx';

export interface EngineOptions {
  capture: CaptureSpec;
  /** The shared secret; each side signs with its own direction's key and checks the other's. */
  key: string;
  side: 'client' | 'server';
}

/** Timers, ACK cadence and expiry sweeps run every tick. */
const TICK_MS = 10;

export interface EngineHandler<L extends Link> {
  /** A verified frame other than the link control's own (Ping, Close). */
  onFrame(link: L, type: number, arg: number, buf: Buffer, off: number, len: number, now: number): void;
  /** The peer or the path ended the link (reset, FIN, Close); what had to be answered was answered. */
  onLinkLost(link: L, reason: string, now: number): void;
  onSocketEvent(ev: WatcherEvent, now: number): void;
  /** Datagrams from local UDP sockets (UDP_RX_STRIDE words each in meta). */
  onUdp(data: Buffer, meta: Uint32Array, count: number, now: number): void;
  onTick(now: number): void;
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
  private cancelTick: (() => void) | null = null;
  private readonly sendKey: Buffer;
  private readonly recvKey: Buffer;
  /** How log lines name the other side. */
  private readonly peer: string;

  constructor(
    private readonly io: TunnelIo,
    private readonly opts: EngineOptions,
    private readonly handler: EngineHandler<L>,
    private readonly log: Logger,
  ) {
    const keys = deriveKeys(io.mac, opts.key);
    const client = opts.side === 'client';
    this.sendKey = client ? keys.clientToServer : keys.serverToClient;
    this.recvKey = client ? keys.serverToClient : keys.clientToServer;
    this.peer = client ? 'server' : 'client';
  }

  get tx(): TxBatch {
    return this.txBatch!;
  }
  get watcher(): SocketWatcher {
    return this.sockets!;
  }
  /** The local UDP sockets (the client's --ludp, the server's per-flow sockets). */
  get udp(): UdpMux {
    return this.mux!;
  }
  get udpTx(): UdpTxBatch {
    return this.udpBatch!;
  }
  get linkCount(): number {
    return this.links.size;
  }

  /** Opens every handle. Throws the I/O layer's clear error (no permission, no such device, ...), with nothing left open. */
  start(): void {
    const io = this.io;
    try {
      this.mux = io.openUdp((data, meta, count) => this.handler.onUdp(data, meta, count, io.clock()));
      this.udpBatch = new UdpTxBatch(this.mux, io.timers);
      this.injector = io.openInjector();
      this.txBatch = new TxBatch(this.injector, io.mac, this.sendKey, io.timers);
      this.rxPath = new RxPath(this.links, io.mac, this.recvKey, this);
      this.sockets = io.openSockets((ev) => this.handler.onSocketEvent(ev, io.clock()));
      const dev = this.opts.capture.device;
      this.capture = io.openCapture(
        this.opts.capture,
        (data, meta, count) => this.rxPath!.handle(data, meta, count, io.clock()),
        (err) => this.log.error(`capture on ${dev}: ${err.message}`),
      );
    } catch (e) {
      this.stop();
      throw e;
    }
    this.cancelTick = io.timers.every(TICK_MS, () => this.tick());
  }

  /** A link starts carrying: captured segments of its 4-tuple now reach it. */
  add(link: L): void {
    const t = link.tcp;
    this.links.set(t.remote.ip, t.remote.port, t.local.port, link);
  }

  /** Forgets a link and closes its socket without the kernel sending anything. */
  remove(link: L): void {
    const t = link.tcp;
    if (this.links.get(t.remote.ip, t.remote.port, t.local.port) === link) this.links.delete(t.remote.ip, t.remote.port, t.local.port);
    this.sockets?.close(link.fd);
  }

  /** Our side ends the link: Close with `reason`, then FIN, if the connection is still open. */
  sayClose(link: L, reason: CloseReason, now: number): void {
    if (!link.tcp.open) return;
    this.txBatch!.frame(link.tcp, FrameType.Close, reason, null, 0, 0, now);
    this.txBatch!.fin(link.tcp, now);
  }

  onFrame(link: L, type: number, arg: number, buf: Buffer, off: number, len: number, now: number): void {
    if (!link.tcp.open) return;
    switch (type) {
      case FrameType.Ping:
        this.txBatch!.frame(link.tcp, FrameType.Pong, arg, null, 0, 0, now);
        return;
      case FrameType.Close:
        this.txBatch!.fin(link.tcp, now);
        this.handler.onLinkLost(link, `the ${this.peer} closed the connection`, now);
        return;
      default:
        this.handler.onFrame(link, type, arg, buf, off, len, now);
    }
  }

  onTcpEnd(link: L, verdict: 'reset' | 'fin', now: number): void {
    if (verdict === 'fin') this.txBatch!.fin(link.tcp, now);
    this.handler.onLinkLost(link, verdict === 'reset' ? 'connection reset' : `FIN from the ${this.peer}`, now);
  }

  private tick(): void {
    const now = this.io.clock();
    for (const link of this.links.values()) {
      if (link.tcp.ackDue(now)) this.txBatch!.pureAck(link.tcp, now);
    }
    this.handler.onTick(now);
  }

  counters(): Record<string, number> {
    const c = this.capture?.stats();
    const i = this.injector?.stats();
    const r = this.rxPath?.stats;
    return {
      rxPackets: r?.packets ?? 0,
      rxFrames: r?.frames ?? 0,
      rxForged: r?.forged ?? 0,
      rxMalformed: r?.malformed ?? 0,
      rxTruncated: r?.truncated ?? 0,
      rxUnknown: r?.unknown ?? 0,
      captureDropped: c?.dropped ?? 0,
      txSegments: i?.sent ?? 0,
      txErrors: i?.errors ?? 0,
      udpSendErrors: this.mux?.stats().sendErrors ?? 0,
      connections: this.links.size,
    };
  }

  /** Flushes what is queued and releases every handle. Idempotent. */
  stop(): void {
    this.cancelTick?.();
    this.cancelTick = null;
    try {
      this.txBatch?.flush();
      this.udpBatch?.flush();
    } catch (e) {
      this.log.warn(`final send failed: ${(e as Error).message}`);
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
