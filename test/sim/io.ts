// The tunnel's I/O on the simulated network: a TunnelIo for one process on one SimHost. kill() is a
// SIGKILL: the process's timers stop and its sockets and captures vanish without a word on the wire.
import type { Crypto } from '../../src/core/crypto';
import { OPT_TIMESTAMPS } from '../../src/core/out-segment';
import { Segment } from '../../src/core/packet';
import { TX, TX_STRIDE, UdpBatchFn, WatcherEvent } from '../../src/io/native';
import type { Capture, CaptureBatchFn, CaptureSpec, Injector, SocketWatcher, Timers, TunnelIo, UdpMux } from '../../src/tunnel/io';
import { simIp, simIp6 } from './addr';
import { CaptureSink, SimHost } from './network';
import { buildTcp, merge, packBatch, parse } from './packet';
import { SimSockets } from './sockets';
import { InstantBatcher } from './time';
import { SimUdpMux } from './udp-mux';

export class SimIo implements TunnelIo {
  alive = true;
  /** Every fd given to serveProbe, in order. */
  readonly probes: number[] = [];
  readonly clock: () => number;
  readonly timers: Timers;
  /** Timers armed with after(): the engine's ticks (nothing else on the data path uses one). */
  timersArmed = 0;
  private readonly closers: (() => void)[] = [];

  constructor(readonly host: SimHost, readonly crypto: Crypto) {
    const time = host.net.time;
    this.clock = () => time.now;
    const t = time.timers(() => this.alive);
    this.timers = { after: (ms, fn) => { this.timersArmed++; return t.after(ms, fn); }, soon: t.soon };
  }

  openCapture(spec: CaptureSpec, onBatch: CaptureBatchFn, _onError: (err: Error) => void): Capture {
    const c = new SimCapture(this, spec, onBatch);
    this.closers.push(() => c.close());
    return c;
  }

  openInjector(): Injector {
    return new SimInjector(this);
  }

  openSockets(onEvent: (ev: WatcherEvent) => void): SocketWatcher {
    const s = new SimSockets(this, onEvent);
    this.closers.push(() => s.stop());
    return s;
  }

  openUdp(onBatch: UdpBatchFn): UdpMux {
    const m = new SimUdpMux(this, onBatch);
    this.closers.push(() => m.stop());
    return m;
  }

  serveProbe(fd: number): void {
    this.probes.push(fd);
  }

  kill(): void {
    this.alive = false;
    for (const c of this.closers.splice(0)) c();
  }
}

class SimCapture implements Capture, CaptureSink {
  private readonly arrivals: InstantBatcher<Buffer>;
  private closed = false;
  private readonly fromIp: number | null;
  private readonly toIp: number | null;
  private readonly counts = { delivered: 0, batches: 0, dropped: 0, ifDropped: 0, skipped: 0 };

  constructor(private readonly io: SimIo, private readonly spec: CaptureSpec, private readonly onBatch: CaptureBatchFn) {
    this.fromIp = spec.fromHost ? simIp(spec.fromHost) : null;
    this.toIp = spec.toHost ? simIp(spec.toHost) : null;
    this.arrivals = new InstantBatcher(io.host.net.time, (pkts) => this.flush(pkts));
    io.host.captures.add(this);
  }

  wants(seg: Segment | null): boolean {
    if (!seg || this.closed) return false;
    const port = this.spec.portSide === 'src' ? seg.srcPort : seg.dstPort;
    if (!this.spec.ports.includes(port)) return false;
    if (this.fromIp !== null && seg.srcIp !== this.fromIp) return false;
    return this.toIp === null || seg.dstIp === this.toIp;
  }

  enqueue(pkt: Buffer): void {
    this.arrivals.add(pkt);
  }

  private flush(arrived: Buffer[]): void {
    if (this.closed || !this.io.alive) return;
    const net = this.io.host.net;
    const pkts = net.gro ? groMerge(arrived, net.stats) : arrived;
    const b = packBatch(pkts.map((p) => (p.length > net.snaplen ? p.subarray(0, net.snaplen) : p)));
    this.counts.delivered += b.count;
    this.counts.batches++;
    this.onBatch(b.data, b.meta, b.count);
  }

  stats() {
    return { ...this.counts };
  }

  close(): void {
    this.closed = true;
    this.io.host.captures.delete(this);
  }
}

/** Runs of data segments of one connection with contiguous seq become one packet. */
function groMerge(pkts: Buffer[], stats: { merged: number }): Buffer[] {
  const out: Buffer[] = [];
  let run: Buffer[] = [];
  let last: Segment | null = null;
  const end = () => {
    if (run.length > 1) stats.merged += run.length;
    if (run.length > 0) out.push(run.length > 1 ? merge(run) : run[0]);
    run = [];
  };
  for (const p of pkts) {
    const s = parse(p);
    const joins = s && last && s.payloadLen > 0 && last.payloadLen > 0 && s.srcIp === last.srcIp && s.srcPort === last.srcPort && s.dstPort === last.dstPort && s.seq === ((last.seq + last.wireLen) >>> 0);
    if (!joins) end();
    run.push(p);
    last = s;
  }
  end();
  return out;
}

class SimInjector implements Injector {
  private sent = 0;

  constructor(private readonly io: SimIo) {}

  send(data: Buffer, meta: Uint32Array, count: number): number {
    if (!this.io.alive) return 0;
    for (let i = 0; i < count; i++) {
      const b = i * TX_STRIDE;
      const off = meta[b + TX.PAYLOAD_OFF];
      const v6 = meta[b + TX.IP_VERSION] === 6;
      const pkt = buildTcp(
        {
          srcIp: v6 ? simIp6(meta, b + TX.SRC_IP6) : meta[b + TX.SRC_IP],
          dstIp: v6 ? simIp6(meta, b + TX.DST_IP6) : meta[b + TX.DST_IP],
          srcPort: meta[b + TX.SRC_PORT],
          dstPort: meta[b + TX.DST_PORT],
          seq: meta[b + TX.SEQ],
          ack: meta[b + TX.ACK],
          flags: meta[b + TX.FLAGS],
          window: meta[b + TX.WINDOW],
        },
        data.subarray(off, off + meta[b + TX.PAYLOAD_LEN]),
        {
          ts: meta[b + TX.OPTIONS] & OPT_TIMESTAMPS ? [meta[b + TX.TS_VAL], meta[b + TX.TS_ECR]] : undefined,
          ttl: meta[b + TX.TTL],
          ipId: meta[b + TX.IP_ID],
          flowLabel: meta[b + TX.FLOW_LABEL],
        },
      );
      this.io.host.net.transmit(this.io.host, pkt);
    }
    this.sent += count;
    return count;
  }

  stats() {
    return { sent: this.sent, errors: 0, lastError: '' };
  }

  close(): void {}
}
