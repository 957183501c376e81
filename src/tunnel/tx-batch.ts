// Outgoing segments gathered into one buffer, sealed with one crypto call and sent with one inject
// call, flushed at the end of the current event-loop turn or when full. Each segment carries what the
// kernel would put on it (FakeTcp.fill); each frame is sealed with its connection's key at its stream offset.
import { CRYPTO, CRYPTO_STRIDE, FRAME_HEADER, type Crypto } from '../core/crypto';
import { FakeTcp, OutSegment } from '../core/fake-tcp';
import { emptyOut } from '../core/out-segment';
import { FrameType, recordPadding, tagLen, WireMode, writeHeader, writeRecordHeader } from '../core/frame';
import { RECORD_HEADER } from '../core/tls-record';
import type { KeyTable } from '../core/key-table';
import type { Link } from '../core/link';
import { TX, TX_STRIDE } from '../io/records';
import type { Injector, Timers } from './io';

export const MAX_BATCH = 256;
const SLOT_BYTES = 2048;
const MAX_FRAMES = MAX_BATCH * 2;

export class TxBatch {
  private readonly data = Buffer.allocUnsafe(MAX_BATCH * SLOT_BYTES);
  private readonly meta = new Uint32Array(MAX_BATCH * TX_STRIDE);
  private readonly cmeta = new Uint32Array(MAX_FRAMES * CRYPTO_STRIDE);
  private count = 0;
  private frames = 0;
  private used = 0;
  private scheduled = false;
  private held = false;
  /** The last segment pushed and its connection: appendFrame() may add to it. */
  private lastTcp: FakeTcp | null = null;
  private readonly seg: OutSegment = emptyOut();
  private readonly tls: boolean;
  private readonly tag: number;
  segmentsSent = 0;
  segmentsFailed = 0;

  constructor(
    private readonly injector: Injector,
    private readonly crypto: Crypto,
    private readonly keys: KeyTable,
    private readonly mode: WireMode,
    private readonly timers: Timers,
  ) {
    this.tls = mode.obfs === 'tls';
    this.tag = tagLen(mode);
  }

  /** While held, the owner flushes when its input batch is done: no end-of-turn flush is scheduled. */
  hold(on: boolean): void {
    this.held = on;
  }

  private room(bytes: number): void {
    if (this.count >= MAX_BATCH || this.frames >= MAX_FRAMES || this.used + bytes > this.data.length) this.flush();
    if (!this.scheduled && !this.held) {
      this.scheduled = true;
      this.timers.soon(this.flushLater);
    }
  }

  private readonly flushLater = (): void => {
    this.scheduled = false;
    this.flush();
  };

  /**
   * Appends a data segment holding one frame and returns the offset at which the caller must write
   * `len` payload bytes (before the batch is flushed, i.e. synchronously). With `append`, the frame
   * joins the segment pushed just before, when that was for the same connection.
   */
  reserveFrame(link: Link, type: FrameType, arg: number, len: number, now: number, append = false): number {
    // Records are never shorter than TLS 1.3's shortest: control frames get payload padding (which the
    // mask covers); a 0- or 1-byte datagram keeps its length, and its record gets bytes after the tag
    // instead (the reused buffer's previous wire bytes), which the receiver skips.
    const pad = recordPadding(this.mode, len);
    const data = type === FrameType.Data || type === FrameType.Fragment;
    const plen = data ? len : len + pad;
    const tail = data ? pad : 0;
    const total = (this.tls ? RECORD_HEADER : 0) + FRAME_HEADER + plen + this.tag + tail;
    this.room(total);
    const tcp = link.tcp;
    const off = this.used;
    // The nonce is where the frame starts in our stream: unique for the connection's life.
    const nonce = tcp.sndOff;
    let hdr = off;
    if (this.tls) {
      writeRecordHeader(this.data, off, FRAME_HEADER + plen + this.tag + tail);
      hdr += RECORD_HEADER;
    }
    writeHeader(this.data, hdr, type, arg, plen);
    if (plen > len) this.data.fill(0, hdr + FRAME_HEADER + len, hdr + FRAME_HEADER + plen);
    const c = this.frames * CRYPTO_STRIDE;
    this.cmeta[c + CRYPTO.KEY] = link.wire.txSlot;
    this.cmeta[c + CRYPTO.OFFSET] = hdr;
    this.cmeta[c + CRYPTO.LENGTH] = plen;
    this.cmeta[c + CRYPTO.NONCE_LO] = nonce >>> 0;
    this.cmeta[c + CRYPTO.NONCE_HI] = Math.floor(nonce / 4294967296);
    this.frames++;
    if (append && this.lastTcp === tcp) {
      this.meta[(this.count - 1) * TX_STRIDE + TX.PAYLOAD_LEN] += total;
      tcp.extend(total);
    } else {
      tcp.nextData(total, now, this.seg);
      this.push(tcp, off, total);
    }
    this.used += total;
    return hdr + FRAME_HEADER;
  }

  /** Appends a frame whose payload is copied from src[srcOff, srcOff+len). */
  frame(link: Link, type: FrameType, arg: number, src: Buffer | null, srcOff: number, len: number, now: number, append = false): void {
    const at = this.reserveFrame(link, type, arg, len, now, append);
    if (src && len > 0) src.copy(this.data, at, srcOff, srcOff + len);
  }

  /** A segment of bytes sent as they are (a handshake message), at the next seq or, to retransmit it, at `seq`. */
  raw(tcp: FakeTcp, bytes: Buffer, now: number, seq?: number): void {
    this.room(bytes.length);
    const off = this.used;
    bytes.copy(this.data, off);
    if (seq === undefined) tcp.nextData(bytes.length, now, this.seg);
    else tcp.resend(seq, now, this.seg);
    this.push(tcp, off, bytes.length);
    this.used += bytes.length;
    // Frames may join a fresh message's segment (ServerHello + ChangeCipherSpec + Padding), never a retransmission.
    if (seq !== undefined) this.lastTcp = null;
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
    const s = this.seg;
    m[b + TX.SRC_IP] = tcp.local.ip;
    m[b + TX.DST_IP] = tcp.remote.ip;
    m[b + TX.SRC_PORT] = tcp.local.port;
    m[b + TX.DST_PORT] = tcp.remote.port;
    m[b + TX.SEQ] = s.seq;
    m[b + TX.ACK] = s.ack;
    m[b + TX.FLAGS] = s.flags;
    m[b + TX.WINDOW] = s.window;
    m[b + TX.PAYLOAD_OFF] = off;
    m[b + TX.PAYLOAD_LEN] = len;
    m[b + TX.TS_VAL] = s.tsVal;
    m[b + TX.TS_ECR] = s.tsEcr;
    m[b + TX.OPTIONS] = s.options;
    m[b + TX.IP_ID] = s.ipId;
    m[b + TX.TTL] = s.ttl;
    const src6 = tcp.local.ip6;
    const dst6 = tcp.remote.ip6;
    if (src6 && dst6) {
      m[b + TX.IP_VERSION] = 6;
      m.set(src6, b + TX.SRC_IP6);
      m.set(dst6, b + TX.DST_IP6);
    } else {
      m[b + TX.IP_VERSION] = 4;
    }
    m[b + TX.FLOW_LABEL] = tcp.local.flowLabel ?? 0;
    this.count++;
    this.lastTcp = len > 0 ? tcp : null;
  }

  flush(): void {
    if (this.count === 0) return;
    if (this.frames > 0) this.crypto.seal(this.keys.buffer, this.data, this.cmeta, this.frames, this.mode.aead);
    const sent = this.injector.send(this.data, this.meta, this.count);
    this.segmentsSent += sent;
    this.segmentsFailed += this.count - sent;
    this.count = 0;
    this.frames = 0;
    this.used = 0;
    this.lastTcp = null;
  }
}
