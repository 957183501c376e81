// Outgoing datagrams of the UDP transport, gathered like TxBatch's segments: frames sealed with one
// crypto call at flush, then each datagram's counter masked (src/core/udp-wire.ts), then one send call.
import { CRYPTO, CRYPTO_STRIDE, FRAME_HEADER, type Crypto } from '../core/crypto';
import { FrameType, tagLen, WireMode, writeHeader, writeRecordHeader } from '../core/frame';
import { RECORD_HEADER } from '../core/tls-record';
import type { KeyTable } from '../core/key-table';
import type { UdpLink } from '../core/udp-link';
import { COUNTER_BYTES, COUNTER_LIMIT, UDP_PAYLOAD_MAX, writeCounter } from '../core/udp-wire';
import { UDP_TX, UDP_TX_STRIDE } from '../io/records';
import type { Timers, UdpMux } from './io';

const MAX_BATCH = 256;
const SLOT_BYTES = 1536;

export class UdpPathTx {
  private readonly data = Buffer.allocUnsafe(MAX_BATCH * SLOT_BYTES);
  private readonly meta = new Uint32Array(MAX_BATCH * UDP_TX_STRIDE);
  private readonly cmeta = new Uint32Array(MAX_BATCH * CRYPTO_STRIDE);
  /** Per sealed frame: where its counter goes, the counter, and the key that masks it. */
  private readonly counterAt = new Uint32Array(MAX_BATCH);
  private readonly counters = new Float64Array(MAX_BATCH);
  private readonly counterKeys: Buffer[] = [];
  private count = 0;
  private frames = 0;
  private used = 0;
  private scheduled = false;
  private readonly tls: boolean;
  private readonly tag: number;
  sent = 0;
  failed = 0;

  constructor(
    private readonly mux: () => UdpMux,
    private readonly crypto: Crypto,
    private readonly keys: KeyTable,
    private readonly mode: WireMode,
    private readonly timers: Timers,
  ) {
    this.tls = mode.obfs === 'tls';
    this.tag = tagLen(mode);
  }

  get buffer(): Buffer {
    return this.data;
  }

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

  private push(link: UdpLink, off: number, len: number): void {
    const m = this.count * UDP_TX_STRIDE;
    this.meta[m + UDP_TX.SOCKET] = link.fd;
    this.meta[m + UDP_TX.OFFSET] = off;
    this.meta[m + UDP_TX.LENGTH] = len;
    // The server's port sockets are not connected: they send to the client's address. The client's are.
    this.meta[m + UDP_TX.DST_IP] = link.connected ? 0 : link.path.remote.ip;
    this.meta[m + UDP_TX.DST_PORT] = link.connected ? 0 : link.path.remote.port;
    this.count++;
    this.used += len;
  }

  /** A handshake message, as it is (a greeting or the server's answer). */
  raw(link: UdpLink, bytes: Buffer): void {
    if (bytes.length > this.data.length) return;
    this.room(bytes.length);
    bytes.copy(this.data, this.used);
    this.push(link, this.used, bytes.length);
  }

  /**
   * A datagram holding one frame; returns where the caller writes `len` payload bytes (synchronously,
   * before anything else is queued). Returns -1 when the path has no keys yet or its counter ran out.
   */
  reserveFrame(link: UdpLink, type: FrameType, arg: number, len: number, _now: number): number {
    const p = link.path;
    if (link.wire.txSlot < 0 || !p.txCounterKey || p.txCounter >= COUNTER_LIMIT) return -1;
    const start = this.tls ? RECORD_HEADER : 0;
    const total = start + FRAME_HEADER + len + this.tag + COUNTER_BYTES;
    if (total > UDP_PAYLOAD_MAX) throw new RangeError(`a ${len}-byte frame does not fit one UDP datagram`);
    this.room(total);
    const off = this.used;
    if (this.tls) writeRecordHeader(this.data, off, total - RECORD_HEADER);
    const hdr = off + start;
    writeHeader(this.data, hdr, type, arg, len);
    const f = this.frames++;
    const c = f * CRYPTO_STRIDE;
    const counter = p.txCounter++;
    this.cmeta[c + CRYPTO.KEY] = link.wire.txSlot;
    this.cmeta[c + CRYPTO.OFFSET] = hdr;
    this.cmeta[c + CRYPTO.LENGTH] = len;
    this.cmeta[c + CRYPTO.NONCE_LO] = counter >>> 0;
    this.cmeta[c + CRYPTO.NONCE_HI] = Math.floor(counter / 4294967296);
    this.counterAt[f] = off + total - COUNTER_BYTES;
    this.counters[f] = counter;
    this.counterKeys[f] = p.txCounterKey;
    this.push(link, off, total);
    return hdr + FRAME_HEADER;
  }

  /** A frame whose payload is copied from src[srcOff, srcOff+len). False when the path cannot send yet. */
  frame(link: UdpLink, type: FrameType, arg: number, src: Buffer | null, srcOff: number, len: number, now: number): boolean {
    const at = this.reserveFrame(link, type, arg, len, now);
    if (at < 0) return false;
    if (src && len > 0) src.copy(this.data, at, srcOff, srcOff + len);
    return true;
  }

  flush(): void {
    if (this.count === 0) return;
    const n = this.frames;
    if (n > 0) {
      this.crypto.seal(this.keys.buffer, this.data, this.cmeta, n, this.mode.aead);
      for (let f = 0; f < n; f++) {
        writeCounter(this.crypto, this.counterKeys[f], this.data, this.cmeta[f * CRYPTO_STRIDE + CRYPTO.OFFSET], this.counterAt[f], this.counters[f]);
      }
    }
    const sent = this.mux().send(this.data, this.meta, this.count);
    this.sent += sent;
    this.failed += this.count - sent;
    this.count = 0;
    this.frames = 0;
    this.used = 0;
    this.counterKeys.length = 0;
  }
}
