// Turns one capture batch into verified frames: parse every segment, find its connection, split the
// payloads, check every MAC with one native call, then hand over the frames that verified.
import type { Link } from '../core/link';
import { HEADER, TAG_LEN, splitFrames, FrameRef } from '../core/frame';
import { emptySegment, FIN, parseSegment, RST, Segment } from '../core/packet';
import { MAC, MAC_STRIDE } from '../core/mac';
import type { Mac } from '../core/mac';
import { CAPTURE, CAPTURE_STRIDE } from '../io/native';
import { ConnTable } from './conn-table';

/** What the receive path needs of a link: its TCP state. */
type RxLink = Pick<Link, 'tcp'>;

export interface RxHandler<L extends RxLink> {
  onFrame(link: L, type: number, arg: number, buf: Buffer, off: number, len: number, now: number): void;
  /** A reset or FIN ended the connection's TCP. */
  onTcpEnd(link: L, verdict: 'reset' | 'fin', now: number): void;
}

export interface RxStats {
  packets: number;
  /** Not IPv4/TCP, truncated, or for no connection we know. */
  unknown: number;
  /** Payload that does not split into frames. */
  malformed: number;
  /** Segments longer than the capture's snap length (GRO-merged); their tail frames are lost. */
  truncated: number;
  /** Frames whose MAC failed. */
  forged: number;
  frames: number;
}

export class RxPath<L extends RxLink> {
  readonly stats: RxStats = { packets: 0, unknown: 0, malformed: 0, truncated: 0, forged: 0, frames: 0 };
  private segs: Segment[] = [];
  private segLinks: (L | null)[] = [];
  /** Per frame: segment index, type, arg, payload offset, payload length. */
  private fSeg = new Uint32Array(1024);
  private fType = new Uint8Array(1024);
  private fArg = new Uint32Array(1024);
  private fOff = new Uint32Array(1024);
  private fLen = new Uint32Array(1024);
  private macMeta = new Uint32Array(1024 * MAC_STRIDE);
  private ok = new Uint8Array(1024);
  private nFrames = 0;
  private curSeg = 0;
  private readonly ref: FrameRef = { off: 0, type: 0, arg: 0, payloadOff: 0, payloadLen: 0 };

  constructor(
    private readonly links: ConnTable<L>,
    private readonly mac: Mac,
    private readonly key: Buffer,
    private readonly handler: RxHandler<L>,
  ) {}

  private readonly collect = (f: FrameRef): void => {
    const i = this.nFrames;
    if (i >= this.fSeg.length) this.grow();
    this.fSeg[i] = this.curSeg;
    this.fType[i] = f.type;
    this.fArg[i] = f.arg;
    this.fOff[i] = f.payloadOff;
    this.fLen[i] = f.payloadLen;
    const m = i * MAC_STRIDE;
    this.macMeta[m + MAC.OFFSET] = f.off + TAG_LEN;
    this.macMeta[m + MAC.LENGTH] = HEADER - TAG_LEN + f.payloadLen;
    this.macMeta[m + MAC.TAG] = f.off;
    this.nFrames++;
  };

  private grow(): void {
    const n = this.fSeg.length * 2;
    const g32 = (a: Uint32Array, size: number) => {
      const b = new Uint32Array(size);
      b.set(a);
      return b;
    };
    this.fSeg = g32(this.fSeg, n);
    this.fArg = g32(this.fArg, n);
    this.fOff = g32(this.fOff, n);
    this.fLen = g32(this.fLen, n);
    this.macMeta = g32(this.macMeta, n * MAC_STRIDE);
    const t = new Uint8Array(n);
    t.set(this.fType);
    this.fType = t;
    this.ok = new Uint8Array(n);
  }

  handle(data: Buffer, meta: Uint32Array, count: number, now: number): void {
    this.nFrames = 0;
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
      if (!link) {
        this.stats.unknown++;
        continue;
      }
      // Frames that came before a RST or FIN are delivered first: a Bye or Close must not be lost behind the FIN that follows it.
      if (seg.flags & (RST | FIN) && this.nFrames > 0) this.deliver(data, now);
      const verdict = link.tcp.onSegment(seg, now);
      if (verdict === 'data') {
        this.curSeg = i;
        const before = this.nFrames;
        if (splitFrames(data, seg.payloadOff, seg.payloadLen, this.collect, this.ref) < 0) {
          if (seg.payloadLen < seg.wireLen) {
            // Cut by the snap length: the whole frames before the cut are still good.
            this.stats.truncated++;
          } else {
            this.nFrames = before;
            this.stats.malformed++;
            continue;
          }
        }
        this.segLinks[i] = link;
      } else if (verdict === 'reset' || verdict === 'fin') {
        this.handler.onTcpEnd(link, verdict, now);
      }
    }
    this.deliver(data, now);
  }

  /** Checks every collected frame's MAC with one call and hands over the ones that verified. */
  private deliver(data: Buffer, now: number): void {
    const n = this.nFrames;
    if (n === 0) return;
    this.mac.verify(this.key, data, this.macMeta, n, this.ok);
    let lastAccepted = -1;
    for (let f = 0; f < n; f++) {
      const si = this.fSeg[f];
      const link = this.segLinks[si];
      if (!link) continue;
      if (!this.ok[f]) {
        this.stats.forged++;
        continue;
      }
      // One verified frame is enough to take the segment's bytes into our ack.
      if (lastAccepted !== si) {
        lastAccepted = si;
        link.tcp.acceptData(this.segs[si], now);
      }
      this.stats.frames++;
      this.handler.onFrame(link, this.fType[f], this.fArg[f], data, this.fOff[f], this.fLen[f], now);
    }
    this.nFrames = 0;
  }
}
