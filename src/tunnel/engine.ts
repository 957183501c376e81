// What the client and the server share: every native handle (capture, injector, socket watcher, the
// local UDP sockets), the batched send and receive paths, the table of connections, and the tick that
// drives ACK cadence and timers.
import { Capture, Injector, NativeAddon, SocketWatcher, UdpMux, WatcherEvent } from '../io/native';
import { Clock } from '../util/clock';
import { Logger } from '../util/log';
import { captureSnaplen } from '../util/route';
import { ConnTable } from './conn-table';
import { Link, RxHandler, RxPath } from './rx';
import { TxBatch } from './tx-batch';
import { UdpTxBatch } from './udp-tx';

export interface EngineOptions {
  device: string;
  /** libpcap filter selecting the tunnel's incoming segments. */
  filter: string;
  sendKey: Buffer;
  recvKey: Buffer;
  tickMs: number;
}

export interface EngineHandler<L extends Link> extends RxHandler<L> {
  onWatcher(ev: WatcherEvent, now: number): void;
  /** Datagrams from local UDP sockets (UDP_RX_STRIDE words each in meta). */
  onUdp(data: Buffer, meta: Uint32Array, count: number): void;
  onTick(now: number): void;
}

export class Engine<L extends Link> {
  readonly links = new ConnTable<L>();
  private capture: Capture | null = null;
  private injector: Injector | null = null;
  private watcherHandle: SocketWatcher | null = null;
  private txBatch: TxBatch | null = null;
  private rxPath: RxPath<L> | null = null;
  private mux: UdpMux | null = null;
  private udpBatch: UdpTxBatch | null = null;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly native: NativeAddon,
    private readonly opts: EngineOptions,
    private readonly handler: EngineHandler<L>,
    readonly clock: Clock,
    private readonly log: Logger,
  ) {}

  get tx(): TxBatch {
    return this.txBatch!;
  }
  get watcher(): SocketWatcher {
    return this.watcherHandle!;
  }
  get rx(): RxPath<L> {
    return this.rxPath!;
  }
  /** The local UDP sockets (the client's --ludp, the server's per-flow sockets). */
  get udp(): UdpMux {
    return this.mux!;
  }
  get udpTx(): UdpTxBatch {
    return this.udpBatch!;
  }

  /** Opens capture, injector and watcher. Throws the native layer's clear error (no permission, no such device, ...). */
  start(): void {
    const n = this.native;
    this.mux = new n.UdpMux((data, meta, count) => this.handler.onUdp(data, meta, count));
    this.udpBatch = new UdpTxBatch(this.mux);
    this.injector = new n.Injector();
    this.txBatch = new TxBatch(this.injector, n.mac, this.opts.sendKey);
    this.rxPath = new RxPath(this.links, n.mac, this.opts.recvKey, this.handler);
    this.watcherHandle = new n.SocketWatcher((ev) => this.handler.onWatcher(ev, this.clock()));
    this.capture = new n.Capture(
      { device: this.opts.device, filter: this.opts.filter, inboundOnly: true, snaplen: captureSnaplen(this.opts.device), bufferBytes: 2 << 20 },
      (data, meta, count) => this.rxPath!.handle(data, meta, count, this.clock()),
      (err) => this.log.error(`capture on ${this.opts.device}: ${err.message}`),
    );
    this.timer = setInterval(() => this.tick(), this.opts.tickMs);
  }

  private tick(): void {
    const now = this.clock();
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
      rxUnknown: r?.unknown ?? 0,
      captureDropped: c?.dropped ?? 0,
      txSegments: i?.sent ?? 0,
      txErrors: i?.errors ?? 0,
      udpSendErrors: this.mux?.stats().sendErrors ?? 0,
      connections: this.links.size,
    };
  }

  /** Flushes what is queued and releases every native resource. Idempotent. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    try {
      this.txBatch?.flush();
      this.udpBatch?.flush();
    } catch (e) {
      this.log.warn(`final send failed: ${(e as Error).message}`);
    }
    this.capture?.close();
    this.watcherHandle?.stop();
    this.injector?.close();
    this.mux?.stop();
    this.capture = null;
    this.watcherHandle = null;
    this.injector = null;
    this.mux = null;
  }
}
