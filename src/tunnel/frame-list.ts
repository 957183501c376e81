// The receive path's scratch space for one capture batch: frame headers still to unmask ("heads") and
// frames found, as flat typed arrays laid out for the native crypto calls, reused batch after batch.
import { u16, u32 } from '../core/bytes';
import { CRYPTO, CRYPTO_STRIDE, FRAME_HEADER } from '../core/crypto';

const TWO32 = 4294967296;

function grown<T extends Uint32Array | Uint8Array | Float64Array>(a: T, size: number): T {
  const b = new (a.constructor as { new (n: number): T })(size);
  b.set(a);
  return b;
}

class Heads {
  n = 0;
  seg = new Uint32Array(256);
  end = new Uint32Array(256);
  nonce = new Float64Array(256);
  cut = new Uint8Array(256);
  meta = new Uint32Array(256 * CRYPTO_STRIDE);

  add(seg: number, slot: number, off: number, end: number, nonce: number, cut: boolean): void {
    const i = this.n;
    if (i >= this.seg.length) {
      const size = this.seg.length * 2;
      this.seg = grown(this.seg, size);
      this.end = grown(this.end, size);
      this.nonce = grown(this.nonce, size);
      this.cut = grown(this.cut, size);
      this.meta = grown(this.meta, size * CRYPTO_STRIDE);
    }
    this.seg[i] = seg;
    this.end[i] = end;
    this.nonce[i] = nonce;
    this.cut[i] = cut ? 1 : 0;
    setRecord(this.meta, i, slot, off, 0, nonce);
    this.n++;
  }
}

function setRecord(meta: Uint32Array, i: number, slot: number, off: number, len: number, nonce: number): void {
  const m = i * CRYPTO_STRIDE;
  meta[m + CRYPTO.KEY] = slot;
  meta[m + CRYPTO.OFFSET] = off;
  meta[m + CRYPTO.LENGTH] = len;
  meta[m + CRYPTO.NONCE_LO] = nonce >>> 0;
  meta[m + CRYPTO.NONCE_HI] = Math.floor(nonce / TWO32);
}

export interface FrameListStats {
  malformed: number;
  truncated: number;
}

export class FrameList {
  private cur = new Heads();
  private next = new Heads();
  frames = 0;
  seg = new Uint32Array(1024);
  type = new Uint8Array(1024);
  arg = new Uint32Array(1024);
  nonce = new Float64Array(1024);
  frameMeta = new Uint32Array(1024 * CRYPTO_STRIDE);
  ok = new Uint8Array(1024);
  private readonly spoilt = new Set<number>();

  get heads(): number {
    return this.cur.n;
  }
  get headMeta(): Uint32Array {
    return this.cur.meta;
  }

  /** A frame header at data[off] whose frame must end by `end`; `cut`: the segment was cut by the snap length. */
  addHead(seg: number, slot: number, off: number, end: number, nonce: number, cut: boolean): void {
    this.cur.add(seg, slot, off, end, nonce, cut);
  }

  /** Drops every frame of segment `seg`: its bytes do not split into frames, so none of them can be trusted. */
  spoil(seg: number): void {
    this.spoilt.add(seg);
  }
  spoiled(seg: number): boolean {
    return this.spoilt.size > 0 && this.spoilt.has(seg);
  }

  /**
   * Reads the unmasked headers: each becomes a frame if it fits before its end. With `chained` (no
   * record headers) a frame that ends before its segment does is followed by the next head.
   */
  resolveHeads(data: Buffer, tag: number, chained: boolean, stats: FrameListStats): void {
    const h = this.cur;
    const nx = this.next;
    nx.n = 0;
    for (let i = 0; i < h.n; i++) {
      const seg = h.seg[i];
      if (this.spoiled(seg)) continue;
      const m = i * CRYPTO_STRIDE;
      const off = h.meta[m + CRYPTO.OFFSET];
      const len = u16(data, off);
      const frameEnd = off + FRAME_HEADER + len + tag;
      if (frameEnd > h.end[i]) {
        if (h.cut[i]) stats.truncated++;
        else {
          this.spoil(seg);
          stats.malformed++;
        }
        continue;
      }
      this.addFrame(seg, h.meta[m + CRYPTO.KEY], off, len, data[off + 2], u32(data, off + 3), h.nonce[i]);
      if (chained && frameEnd < h.end[i]) {
        if (h.end[i] - frameEnd < FRAME_HEADER + tag) {
          if (h.cut[i]) stats.truncated++;
          else {
            this.spoil(seg);
            stats.malformed++;
          }
        } else nx.add(seg, h.meta[m + CRYPTO.KEY], frameEnd, h.end[i], h.nonce[i] + (frameEnd - off), h.cut[i] === 1);
      }
    }
    this.next = h;
    this.cur = nx;
  }

  private addFrame(seg: number, slot: number, off: number, len: number, type: number, arg: number, nonce: number): void {
    const f = this.frames;
    if (f >= this.seg.length) {
      const size = this.seg.length * 2;
      this.seg = grown(this.seg, size);
      this.type = grown(this.type, size);
      this.arg = grown(this.arg, size);
      this.nonce = grown(this.nonce, size);
      this.frameMeta = grown(this.frameMeta, size * CRYPTO_STRIDE);
      this.ok = new Uint8Array(size);
    }
    this.seg[f] = seg;
    this.type[f] = type;
    this.arg[f] = arg;
    this.nonce[f] = nonce;
    setRecord(this.frameMeta, f, slot, off, len, nonce);
    this.frames++;
  }

  clear(): void {
    this.frames = 0;
    this.cur.n = 0;
    this.spoilt.clear();
  }
}
