// Server workers (--workers): a server with Ns workers splits its ports into Ns classes (port index
// mod Ns), one worker each, and each worker keeps its own sessions and flow sockets. So that a flow
// reaches one worker only (one socket towards the target, datagrams in order), every Joined tells the
// client its connection's class, and the client pins each app flow to one class and spreads that
// flow's datagrams over the live connections of that class only (docs/PROTOCOL.md §4, "Workers").
import { encodeForwardAnswers } from './forwards';

/** Which class of how many a server's connection belongs to; count 1 is a server without workers. */
export interface Partition {
  count: number;
  index: number;
}

export const NO_PARTITION: Partition = { count: 1, index: 0 };

/** At most this many server workers: the count travels in one byte, and no machine here needs more. */
export const MAX_WORKERS = 64;

/** The server class of listening port number `i` of its --ports list, out of `count`. */
export function portClass(i: number, count: number): number {
  return count <= 1 ? 0 : i % count;
}

/**
 * The class an app flow is pinned to. Mixed, so that flow ids that differ in any bit spread over
 * the classes, and fixed for the flow's life, so that its datagrams never reach two workers.
 */
export function flowClass(flowId: number, count: number): number {
  if (count <= 1) return 0;
  let h = Math.imul(flowId ^ (flowId >>> 16), 0x45d9f3b);
  h = Math.imul(h ^ (h >>> 16), 0x45d9f3b);
  return ((h ^ (h >>> 16)) >>> 0) % count;
}

/**
 * Joined's payload: the forward answers (count u8, then one byte each; a single 0 when the Join had
 * no table), then `workers u8, class u8` when the server has 2 or more workers. A server with one
 * worker sends what it sent before workers existed, so old and new peers read each other.
 */
export function encodeJoinedPayload(answers: boolean[] | null, p: Partition): Buffer | null {
  if (p.count <= 1) return answers ? encodeForwardAnswers(answers) : null;
  const a = answers ? encodeForwardAnswers(answers) : Buffer.from([0]);
  return Buffer.concat([a, Buffer.from([p.count, p.index])]);
}

/**
 * The partition in a Joined's payload. No trailer, a count below 2 (an older server, or the zeros
 * that pad a tls record) or a class out of range all mean one class: every connection is equal.
 */
export function decodePartition(buf: Buffer, off: number, len: number): Partition {
  if (len < 1) return NO_PARTITION;
  const at = 1 + buf[off];
  if (len < at + 2) return NO_PARTITION;
  const count = buf[off + at];
  const index = buf[off + at + 1];
  return count >= 2 && index < count ? { count, index } : NO_PARTITION;
}

/** What LiveSet keeps per connection: its class, and the count that class is out of. */
export interface Classed {
  cls: number;
  classes: number;
}

/**
 * The live connections, per class of the latest partition a Joined announced. With one class it is
 * one round robin over every live connection, as before workers. A connection joined under another
 * count (a server restarted with other --workers) carries nothing until it is replaced.
 */
export class LiveSet<S extends Classed> {
  private all: S[] = [];
  private byClass: S[][] = [[]];
  private rr: number[] = [0];
  classes = 1;

  get size(): number {
    return this.all.length;
  }

  /** Live connections of class `c` (for tests and status). */
  ofClass(c: number): readonly S[] {
    return this.byClass[c] ?? [];
  }

  add(s: S, p: Partition): void {
    s.cls = p.index;
    s.classes = p.count;
    this.all.push(s);
    if (p.count !== this.classes) this.repartition(p.count);
    else this.byClass[p.index].push(s);
  }

  remove(s: S): void {
    const before = this.all.length;
    this.all = this.all.filter((x) => x !== s);
    if (this.all.length !== before && s.classes === this.classes) this.byClass[s.cls] = this.byClass[s.cls].filter((x) => x !== s);
  }

  /** The next live connection of the class flow `flowId` is pinned to; undefined when that class has none. */
  pick(flowId: number): S | undefined {
    const c = this.classes === 1 ? 0 : flowClass(flowId, this.classes);
    const list = this.byClass[c];
    const n = list.length;
    if (n === 0) return undefined;
    if (this.rr[c] >= n) this.rr[c] = 0;
    return list[this.rr[c]++];
  }

  clear(): void {
    this.all = [];
    this.repartition(this.classes);
  }

  private repartition(count: number): void {
    this.classes = count;
    this.byClass = Array.from({ length: count }, () => []);
    this.rr = new Array<number>(count).fill(0);
    for (const s of this.all) if (s.classes === count) this.byClass[s.cls].push(s);
  }
}
