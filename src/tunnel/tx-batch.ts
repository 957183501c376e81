// Outgoing segments gathered into one buffer and sent with one MAC call and one inject call,
// flushed at the end of the current event-loop turn or when full.
import { FakeTcp, OutSegment } from '../core/fake-tcp';
import { FrameType, HEADER, TAG_LEN, writeHeader } from '../core/frame';
import { MAC, MAC_STRIDE } from '../core/mac';
import type { Mac } from '../core/mac';
import { TX, TX_STRIDE } from '../io/native';
import type { Injector, Timers } from './io';

export const MAX_BATCH = 256;
const SLOT_BYTES = 2048;

export class TxBatch {
  private readonly data = Buffer.allocUnsafe(MAX_BATCH * SLOT_BYTES);
  private readonly meta = new Uint32Array(MAX_BATCH * TX_STRIDE);
  private readonly macMeta = new Uint32Array(MAX_BATCH * MAC_STRIDE);
  private count = 0;
  private frames = 0;
  private used = 0;
  private scheduled = false;
  private readonly seg: OutSegment = { seq: 0, ack: 0, flags: 0, window: 0 };
  segmentsSent = 0;
  segmentsFailed = 0;

  constructor(
    private readonly injector: Injector,
    private readonly mac: Mac,
    private readonly key: Buffer,
    private readonly timers: Timers,
  ) {}

  private room(bytes: number): void {
    if (this.count >= MAX_BATCH || this.used + bytes > this.data.length) this.flush();
    if (!this.scheduled) {
      this.scheduled = true;
      this.timers.soon(this.flushLater);
    }
  }

  private readonly flushLater = (): void => {
    this.scheduled = false;
    this.flush();
  };

  /**
   * Appends a one-frame data segment and returns the offset at which the caller must write `len`
   * payload bytes (before the batch is flushed, i.e. synchronously).
   */
  reserveFrame(tcp: FakeTcp, type: FrameType, arg: number, len: number, now: number): number {
    const total = HEADER + len;
    this.room(total);
    const off = this.used;
    writeHeader(this.data, off, type, arg, len);
    const m = this.frames * MAC_STRIDE;
    this.macMeta[m + MAC.OFFSET] = off + TAG_LEN;
    this.macMeta[m + MAC.LENGTH] = total - TAG_LEN;
    this.macMeta[m + MAC.TAG] = off;
    this.frames++;
    tcp.nextData(total, now, this.seg);
    this.push(tcp, off, total);
    this.used += total;
    return off + HEADER;
  }

  /** Appends a frame whose payload is copied from src[srcOff, srcOff+len). */
  frame(tcp: FakeTcp, type: FrameType, arg: number, src: Buffer | null, srcOff: number, len: number, now: number): void {
    const at = this.reserveFrame(tcp, type, arg, len, now);
    if (src && len > 0) src.copy(this.data, at, srcOff, srcOff + len);
  }

  get buffer(): Buffer {
    return this.data;
  }

  pureAck(tcp: FakeTcp, now: number): void {
    this.room(0);
    tcp.pureAck(now, this.seg);
    this.push(tcp, this.used, 0);
  }

  fin(tcp: FakeTcp, now: number): void {
    this.room(0);
    tcp.fin(now, this.seg);
    this.push(tcp, this.used, 0);
  }

  private push(tcp: FakeTcp, off: number, len: number): void {
    const b = this.count * TX_STRIDE;
    const m = this.meta;
    m[b + TX.SRC_IP] = tcp.local.ip;
    m[b + TX.DST_IP] = tcp.remote.ip;
    m[b + TX.SRC_PORT] = tcp.local.port;
    m[b + TX.DST_PORT] = tcp.remote.port;
    m[b + TX.SEQ] = this.seg.seq;
    m[b + TX.ACK] = this.seg.ack;
    m[b + TX.FLAGS] = this.seg.flags;
    m[b + TX.WINDOW] = this.seg.window;
    m[b + TX.PAYLOAD_OFF] = off;
    m[b + TX.PAYLOAD_LEN] = len;
    // No timestamp option; IP id and TTL left to the injector's defaults.
    m[b + TX.TS_VAL] = 0;
    m[b + TX.TS_ECR] = 0;
    m[b + TX.OPTIONS] = 0;
    m[b + TX.IP_ID] = 0;
    m[b + TX.TTL] = 0;
    this.count++;
  }

  flush(): void {
    if (this.count === 0) return;
    if (this.frames > 0) this.mac.sign(this.key, this.data, this.macMeta, this.frames);
    const sent = this.injector.send(this.data, this.meta, this.count);
    this.segmentsSent += sent;
    this.segmentsFailed += this.count - sent;
    this.count = 0;
    this.frames = 0;
    this.used = 0;
  }
}
