// Datagrams for local UDP sockets (the client's --ludp, the server's per-flow sockets), gathered and
// sent with one native call per event-loop turn, like TxBatch does for segments.
import { UDP_TX, UDP_TX_STRIDE } from '../io/records';
import type { Timers, UdpMux } from './io';

const MAX_BATCH = 256;

export class UdpTxBatch {
  private readonly data = Buffer.allocUnsafe(MAX_BATCH * 2048);
  private readonly meta = new Uint32Array(MAX_BATCH * UDP_TX_STRIDE);
  private count = 0;
  private used = 0;
  private scheduled = false;
  private held = false;
  /** A buffer that stays valid and unchanged until the next flush: datagrams in it are sent from where they are. */
  private lent: Buffer | null = null;
  /** The buffer the queued records point into when it is not our own (the lent one). */
  private from: Buffer | null = null;
  sent = 0;
  failed = 0;

  constructor(
    private readonly mux: UdpMux,
    private readonly timers: Timers,
  ) {}

  /** While held, the owner flushes when its input batch is done: no end-of-turn flush is scheduled. */
  hold(on: boolean): void {
    this.held = on;
  }

  /** `buf` (or nothing) may be sent from in place until the next flush, which must come before it changes. */
  lend(buf: Buffer | null): void {
    if (this.from && buf !== this.from) this.flush();
    this.lent = buf;
  }

  /**
   * Queues src[off, off+len) for socket `id`, to ip:port (0, 0 for a connected socket); `ip6` given,
   * to that IPv6 address instead of `ip`.
   */
  add(id: number, src: Buffer, off: number, len: number, ip: number, port: number, ip6: Uint32Array | null = null): void {
    const inPlace = src === this.lent;
    // One send takes one buffer: records in the lent one and in ours do not mix.
    if (this.count > 0 && inPlace !== (this.from !== null)) this.flush();
    if (this.count >= MAX_BATCH || (!inPlace && this.used + len > this.data.length)) this.flush();
    if (!inPlace && len > this.data.length) return;
    if (!this.scheduled && !this.held) {
      this.scheduled = true;
      this.timers.soon(this.flushLater);
    }
    const m = this.count * UDP_TX_STRIDE;
    if (inPlace) {
      this.from = src;
      this.meta[m + UDP_TX.OFFSET] = off;
    } else {
      src.copy(this.data, this.used, off, off + len);
      this.meta[m + UDP_TX.OFFSET] = this.used;
      this.used += len;
    }
    this.meta[m + UDP_TX.SOCKET] = id;
    this.meta[m + UDP_TX.LENGTH] = len;
    this.meta[m + UDP_TX.DST_PORT] = port;
    if (ip6) {
      this.meta[m + UDP_TX.IP_VERSION] = 6;
      this.meta[m + UDP_TX.DST_IP] = 0;
      this.meta.set(ip6, m + UDP_TX.DST_IP6);
    } else {
      this.meta[m + UDP_TX.IP_VERSION] = 4;
      this.meta[m + UDP_TX.DST_IP] = ip;
    }
    this.count++;
  }

  private readonly flushLater = (): void => {
    this.scheduled = false;
    this.flush();
  };

  flush(): void {
    const count = this.count;
    if (count === 0) return;
    const data = this.from ?? this.data;
    // Reset first: a send that throws must not leave records pointing into a lent buffer.
    this.count = 0;
    this.used = 0;
    this.from = null;
    const n = this.mux.send(data, this.meta, count);
    this.sent += n;
    this.failed += count - n;
  }
}
