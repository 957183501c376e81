// Datagrams larger than one segment (issue 8): split into Fragment frames sent in consecutive
// segments of one connection, and put back together on the other side. A lost fragment loses only its
// datagram; memory for incomplete datagrams is bounded per flow and in total, and they time out.

/** Fragment payload header: datagram id u16, index u8, count u8. */
export const FRAG_HEADER = 4;
export const MAX_FRAGMENTS = 255;
/** The largest UDP datagram over IPv4. */
export const MAX_DATAGRAM = 65507;

export function writeFragHeader(buf: Buffer, off: number, id: number, index: number, count: number): void {
  buf.writeUInt16BE(id & 0xffff, off);
  buf[off + 2] = index;
  buf[off + 3] = count;
}

export interface ReassemblyOptions {
  /** Bytes held for incomplete datagrams, all flows together. */
  maxBytes: number;
  /** Incomplete datagrams per flow; the oldest goes when a new one would pass it. */
  maxPerFlow: number;
  timeoutMs: number;
}

export const DEFAULT_REASSEMBLY: ReassemblyOptions = { maxBytes: 4 << 20, maxPerFlow: 8, timeoutMs: 1000 };

interface Pending {
  key: string;
  flow: string;
  count: number;
  got: number;
  bytes: number;
  parts: (Buffer | undefined)[];
  firstAt: number;
}

export class Reassembly {
  private readonly pending = new Map<string, Pending>();
  private readonly perFlow = new Map<string, number>();
  private bytes = 0;
  readonly stats = { fragments: 0, completed: 0, expired: 0, evicted: 0, malformed: 0 };

  constructor(private readonly opts: ReassemblyOptions = DEFAULT_REASSEMBLY) {}

  get held(): number {
    return this.bytes;
  }

  /**
   * One Fragment frame's payload for `flowId` on connection `conn` (a datagram's fragments all travel
   * on one connection, and flow ids are only unique per client); the whole datagram when this was its
   * last missing part.
   */
  add(conn: number, flowId: number, buf: Buffer, off: number, len: number, now: number): Buffer | null {
    this.stats.fragments++;
    if (len < FRAG_HEADER) return this.bad();
    const id = buf.readUInt16BE(off);
    const index = buf[off + 2];
    const count = buf[off + 3];
    const chunk = len - FRAG_HEADER;
    if (count < 2 || index >= count || chunk === 0) return this.bad();
    const flow = `${conn}/${flowId}`;
    const key = `${flow}/${id}`;
    let p = this.pending.get(key);
    if (p && p.count !== count) {
      this.drop(p);
      p = undefined;
    }
    if (!p) {
      while ((this.perFlow.get(flow) ?? 0) >= this.opts.maxPerFlow) this.evictOldest(flow);
      p = { key, flow, count, got: 0, bytes: 0, parts: new Array(count), firstAt: now };
      this.pending.set(key, p);
      this.perFlow.set(flow, (this.perFlow.get(flow) ?? 0) + 1);
    }
    if (p.parts[index]) return null;
    while (this.bytes + chunk > this.opts.maxBytes && this.pending.size > 1) this.evictOldest(null, p);
    if (this.bytes + chunk > this.opts.maxBytes) {
      this.drop(p);
      this.stats.evicted++;
      return null;
    }
    p.parts[index] = Buffer.from(buf.subarray(off + FRAG_HEADER, off + len));
    p.got++;
    p.bytes += chunk;
    this.bytes += chunk;
    if (p.got < p.count) return null;
    this.drop(p);
    this.stats.completed++;
    return Buffer.concat(p.parts as Buffer[]);
  }

  /** Drops incomplete datagrams older than the timeout. */
  sweep(now: number): void {
    for (const p of this.pending.values()) {
      if (now - p.firstAt < this.opts.timeoutMs) break; // insertion order is age order
      this.drop(p);
      this.stats.expired++;
    }
  }

  private bad(): null {
    this.stats.malformed++;
    return null;
  }

  private evictOldest(flow: string | null, keep?: Pending): void {
    for (const p of this.pending.values()) {
      if ((flow === null || p.flow === flow) && p !== keep) {
        this.drop(p);
        this.stats.evicted++;
        return;
      }
    }
  }

  private drop(p: Pending): void {
    if (!this.pending.delete(p.key)) return;
    this.bytes -= p.bytes;
    const n = (this.perFlow.get(p.flow) ?? 1) - 1;
    if (n > 0) this.perFlow.set(p.flow, n);
    else this.perFlow.delete(p.flow);
  }
}
