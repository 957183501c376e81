// Turns one capture batch into verified frames: parse every segment, find its connection, hand the
// handshake bytes to the handler, find the frames (unmasking their headers in rounds, since in
// --obfs=none only a header tells where the next frame starts), open them all with one native call,
// drop replays, then deliver what is left in order.
import { sameIp6 } from '../core/addr';
import { CRYPTO, CRYPTO_STRIDE, FRAME_HEADER, type Crypto } from '../core/crypto';
import { readRecordHeader, tagLen, WireMode } from '../core/frame';
import type { Endpoint } from '../core/fake-tcp';
import type { KeyTable } from '../core/key-table';
import type { Link } from '../core/link';
import { emptySegment, FIN, parseSegment, RST, Segment } from '../core/packet';
import { CAPTURE, CAPTURE_STRIDE } from '../io/records';
import { CCS_RECORD, RECORD_HEADER } from '../core/tls-record';
import { ConnTable } from './conn-table';
import { FrameList } from './frame-list';

const CCS = Buffer.from(CCS_RECORD);

export interface RxHandler<L extends Link> {
  onFrame(link: L, type: number, arg: number, buf: Buffer, off: number, len: number, now: number): void;
  /** A reset or FIN ended the connection's TCP. */
  onTcpEnd(link: L, verdict: 'reset' | 'fin', now: number): void;
  /** An RST or FIN in the window but not at the exact seq: a challenge ACK may be due (RFC 5961). */
  onChallenge(link: L, now: number): void;
  /**
   * Payload that comes before the peer's frames (its handshake message), starting at stream offset `at`.
   * Returns how many bytes were a valid handshake message (the rest of the segment are frames), or -1
   * when the segment is to be ignored.
   */
  onGreeting(link: L, buf: Buffer, off: number, len: number, at: number, now: number): number;
  /** The greeting's bytes are in our ack now: what answers it may go out (so that it acks them). */
  afterGreeting(link: L, now: number): void;
}

export interface RxStats {
  packets: number;
  /** Not TCP over IPv4 or IPv6, truncated, or for no connection we know. */
  unknown: number;
  /** Payload that does not split into frames. */
  malformed: number;
  /** Segments longer than the capture's snap length (GRO-merged); their tail frames are lost. */
  truncated: number;
  /** Frames whose tag failed. */
  forged: number;
  /** Frames seen before at the same stream offset, or too old to tell. */
  replayed: number;
  frames: number;
}

/** Handshake segments' TSvals, for the TSecr of a connection's first segment; bounded against floods. */
const TS_SEEN_MAX = 256;

export class RxPath<L extends Link> {
  readonly stats: RxStats = { packets: 0, unknown: 0, malformed: 0, truncated: 0, forged: 0, replayed: 0, frames: 0 };
  private segs: Segment[] = [];
  private segLinks: (L | null)[] = [];
  private readonly list = new FrameList();
  private readonly tag: number;
  private readonly tls: boolean;
  private tsSeen = new ConnTable<number>();

  constructor(
    private readonly links: ConnTable<L>,
    private readonly crypto: Crypto,
    private readonly keys: KeyTable,
    private readonly mode: WireMode,
    private readonly handler: RxHandler<L>,
  ) {
    this.tag = tagLen(mode);
    this.tls = mode.obfs === 'tls';
  }

  /** The latest TSval seen from this peer before its connection was known (the kernel handshake's). */
  handshakeTs(remoteIp: number, remotePort: number, localPort: number): number | undefined {
    return this.tsSeen.get(remoteIp, remotePort, localPort);
  }

  handle(data: Buffer, meta: Uint32Array, count: number, now: number): void {
    while (this.segs.length < count) {
      this.segs.push(emptySegment());
      this.segLinks.push(null);
    }
    this.stats.packets += count;
    for (let i = 0; i < count; i++) {
      const seg = this.segs[i];
      this.segLinks[i] = null;
      const c = i * CAPTURE_STRIDE;
      if (!parseSegment(data, meta[c + CAPTURE.OFFSET], meta[c + CAPTURE.LENGTH], seg)) {
        this.stats.unknown++;
        continue;
      }
      const link = this.links.get(seg.srcIp, seg.srcPort, seg.dstPort);
      if (!link || !fromPeer(link.tcp.remote, seg)) {
        this.stats.unknown++;
        if (seg.hasTs) this.noteTs(seg);
        continue;
      }
      // Frames that came before a RST or FIN are delivered first: a Bye or Close must not be lost behind the FIN that follows it.
      if (seg.flags & (RST | FIN) && this.list.heads + this.list.frames > 0) this.deliver(data, now);
      const verdict = link.tcp.onSegment(seg, now);
      if (verdict === 'data') this.take(link, seg, i, data, now);
      else if (verdict === 'challenge') this.handler.onChallenge(link, now);
      else if (verdict === 'reset' || verdict === 'fin') this.handler.onTcpEnd(link, verdict, now);
    }
    this.deliver(data, now);
  }

  private noteTs(seg: Segment): void {
    // Indexed like the connections, without a string per packet: strays can come in floods.
    if (this.tsSeen.size >= TS_SEEN_MAX) this.tsSeen = new ConnTable<number>();
    this.tsSeen.set(seg.srcIp, seg.srcPort, seg.dstPort, seg.tsVal);
  }

  private take(link: L, seg: Segment, i: number, data: Buffer, now: number): void {
    let off = seg.payloadOff;
    let at = link.tcp.rcvOffsetOf(seg.seq);
    const w = link.wire;
    if (w.rxSlot < 0 || at < w.rxFrom) {
      const used = this.handler.onGreeting(link, data, off, seg.payloadLen, at, now);
      if (used < 0) return;
      link.tcp.acceptData(seg, now);
      this.handler.afterGreeting(link, now);
      if (used >= seg.payloadLen || w.rxSlot < 0) return;
      off += used;
      at += used;
    }
    this.segLinks[i] = link;
    const end = seg.payloadOff + seg.payloadLen;
    const cut = seg.payloadLen < seg.wireLen;
    if (!this.tls) {
      this.list.addHead(i, w.rxSlot, off, end, at, cut);
      return;
    }
    // TLS records say their own lengths: every frame of the segment is known at once.
    for (let p = off; p < end; ) {
      // The client's ChangeCipherSpec before its first record (TLS 1.3 middlebox compatibility).
      if (end - p >= CCS.length && data[p] === CCS[0] && data.compare(CCS, 0, CCS.length, p, p + CCS.length) === 0) {
        p += CCS.length;
        continue;
      }
      const inner = end - p >= RECORD_HEADER ? readRecordHeader(data, p) : -1;
      if (inner >= 0 && p + RECORD_HEADER + inner > end && cut) {
        this.stats.truncated++;
        return;
      }
      if (inner < FRAME_HEADER + this.tag || p + RECORD_HEADER + inner > end) {
        this.list.spoil(i);
        this.stats.malformed++;
        return;
      }
      this.list.addHead(i, w.rxSlot, p + RECORD_HEADER, p + RECORD_HEADER + inner, at + (p - off), false);
      p += RECORD_HEADER + inner;
    }
  }

  /** Unmasks headers (round after round in none mode), opens every frame with one call, hands over the good ones. */
  private deliver(data: Buffer, now: number): void {
    const list = this.list;
    const keys = this.keys.buffer;
    while (list.heads > 0) {
      this.crypto.unmaskHeaders(keys, data, list.headMeta, list.heads);
      list.resolveHeads(data, this.tag, !this.tls, this.stats);
    }
    const n = list.frames;
    if (n === 0) {
      list.clear();
      return;
    }
    this.crypto.open(keys, data, list.frameMeta, n, this.mode.aead, list.ok);
    let lastAccepted = -1;
    for (let f = 0; f < n; f++) {
      const si = list.seg[f];
      const link = this.segLinks[si];
      if (!link || list.spoiled(si)) continue;
      if (!list.ok[f]) {
        this.stats.forged++;
        continue;
      }
      const nonce = list.nonce[f];
      if (!link.wire.replay.fresh(nonce)) {
        this.stats.replayed++;
        continue;
      }
      link.wire.replay.accept(nonce);
      // One fresh, verified frame is enough to take the segment's bytes into our ack.
      if (lastAccepted !== si) {
        lastAccepted = si;
        link.tcp.acceptData(this.segs[si], now);
      }
      this.stats.frames++;
      const m = f * CRYPTO_STRIDE;
      this.handler.onFrame(link, list.type[f], list.arg[f], data, list.frameMeta[m + CRYPTO.OFFSET] + FRAME_HEADER, list.frameMeta[m + CRYPTO.LENGTH], now);
    }
    list.clear();
  }
}

/** Whether a segment that found a connection by key really comes from its peer: IPv6 keys are hashes. */
function fromPeer(peer: Endpoint, seg: Segment): boolean {
  if (seg.ipVersion !== 6) return !peer.ip6;
  return !!peer.ip6 && sameIp6(peer.ip6, seg.src6);
}
