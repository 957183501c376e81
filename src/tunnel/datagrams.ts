// Datagrams of any size over one link: a datagram that fits one segment is one Data frame; a longer one
// is split into Fragment frames sent in consecutive segments of the same connection, and put back
// together on the other side by the bounded Reassembly.
import { FrameType } from '../core/frame';
import { FRAG_HEADER, MAX_DATAGRAM, MAX_FRAGMENTS, Reassembly, writeFragHeader } from '../core/fragment';
import { Carrier } from '../core/link';

/** Where frames are queued: a fake TCP connection's TxBatch or a UDP path's batch. */
export interface FrameSink<L> {
  readonly buffer: Buffer;
  frame(link: L, type: FrameType, arg: number, src: Buffer | null, srcOff: number, len: number, now: number): unknown;
  /** The offset in `buffer` where the frame's payload goes, or < 0 when the link cannot send. */
  reserveFrame(link: L, type: FrameType, arg: number, len: number, now: number): number;
}

export class Datagrams<L extends Carrier> {
  readonly reassembly = new Reassembly();
  private nextId = 0;
  /** A serial per link, so that reassembly never mixes fragments of two connections (fds are reused). */
  private readonly serials = new WeakMap<L, number>();
  private nextSerial = 1;

  /** A new link: its fragments are reassembled apart from every other link's. */
  add(link: L): void {
    this.serials.set(link, this.nextSerial++);
  }

  /** A Fragment frame arrived: the whole datagram once its last missing fragment is here, else null. */
  fragment(link: L, flowId: number, buf: Buffer, off: number, len: number, now: number): Buffer | null {
    return this.reassembly.add(this.serials.get(link) ?? 0, flowId, buf, off, len, now);
  }

  /** False when the datagram is longer than any UDP datagram can be. */
  send(tx: FrameSink<L>, link: L, flowId: number, src: Buffer, off: number, len: number, now: number): boolean {
    if (len <= link.maxDatagram) {
      tx.frame(link, FrameType.Data, flowId, src, off, len, now);
      return true;
    }
    const chunk = link.maxDatagram - FRAG_HEADER;
    const count = chunk > 0 ? Math.ceil(len / chunk) : Infinity;
    if (len > MAX_DATAGRAM || count > MAX_FRAGMENTS) return false;
    const id = this.nextId;
    this.nextId = (id + 1) & 0xffff;
    for (let i = 0, at = off; i < count; i++, at += chunk) {
      const n = Math.min(chunk, off + len - at);
      const p = tx.reserveFrame(link, FrameType.Fragment, flowId, FRAG_HEADER + n, now);
      if (p < 0) return true;
      writeFragHeader(tx.buffer, p, id, i, count);
      src.copy(tx.buffer, p + FRAG_HEADER, at, at + n);
    }
    return true;
  }

  counters(): Record<string, number> {
    const s = this.reassembly.stats;
    return { rxFragments: s.fragments, reassembled: s.completed, reassemblyLost: s.expired + s.evicted };
  }
}
