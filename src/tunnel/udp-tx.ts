// Datagrams for local UDP sockets (the client's --ludp, the server's per-flow sockets), gathered and
// sent with one native call per event-loop turn, like TxBatch does for segments.
import { UDP_TX, UDP_TX_STRIDE } from '../io/native';
import type { Timers, UdpMux } from './io';

const MAX_BATCH = 256;

export class UdpTxBatch {
  private readonly data = Buffer.allocUnsafe(MAX_BATCH * 2048);
  private readonly meta = new Uint32Array(MAX_BATCH * UDP_TX_STRIDE);
  private count = 0;
  private used = 0;
  private scheduled = false;
  sent = 0;
  failed = 0;

  constructor(
    private readonly mux: UdpMux,
    private readonly timers: Timers,
  ) {}

  /**
   * Queues src[off, off+len) for socket `id`, to ip:port (0, 0 for a connected socket); `ip6` given,
   * to that IPv6 address instead of `ip`.
   */
  add(id: number, src: Buffer, off: number, len: number, ip: number, port: number, ip6: Uint32Array | null = null): void {
    if (this.count >= MAX_BATCH || this.used + len > this.data.length) this.flush();
    if (len > this.data.length) return;
    if (!this.scheduled) {
      this.scheduled = true;
      this.timers.soon(this.flushLater);
    }
    src.copy(this.data, this.used, off, off + len);
    const m = this.count * UDP_TX_STRIDE;
    this.meta[m + UDP_TX.SOCKET] = id;
    this.meta[m + UDP_TX.OFFSET] = this.used;
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
    this.used += len;
  }

  private readonly flushLater = (): void => {
    this.scheduled = false;
    this.flush();
  };

  flush(): void {
    if (this.count === 0) return;
    const n = this.mux.send(this.data, this.meta, this.count);
    this.sent += n;
    this.failed += this.count - n;
    this.count = 0;
    this.used = 0;
  }
}
