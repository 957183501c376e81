// Virtual time for the in-memory network: a clock that moves only when the test says so, timers and
// packet deliveries as events in time order, and "soon" work (the end of an event-loop turn) run
// after each event, the way Node runs setImmediate callbacks after I/O.
import type { Timers } from '../../src/tunnel/io';

interface Event {
  at: number;
  seq: number;
  fn: () => void;
}

/** Bounds every run: a tunnel stuck in a loop fails the test instead of hanging it. */
const MAX_EVENTS_PER_RUN = 5_000_000;
const MAX_SOON_PER_TURN = 100_000;

export class VirtualTime {
  now = 0;
  private heap: Event[] = [];
  private seq = 0;
  private soonQ: (() => void)[] = [];

  at(t: number, fn: () => void): void {
    this.push({ at: Math.max(t, this.now), seq: this.seq++, fn });
  }

  after(ms: number, fn: () => void): void {
    this.at(this.now + ms, fn);
  }

  soon(fn: () => void): void {
    this.soonQ.push(fn);
  }

  /** Timers whose callbacks stop when `alive()` turns false (a killed process runs nothing more). */
  timers(alive: () => boolean): Timers {
    return {
      after: (ms, fn) => {
        let live = true;
        this.after(ms, () => live && alive() && fn());
        return () => { live = false; };
      },
      soon: (fn) => this.soon(() => alive() && fn()),
    };
  }

  /** Advances the clock by `ms`, running everything that falls due, in order. */
  run(ms: number): void {
    const end = this.now + ms;
    this.drainSoon();
    for (let n = 0; ; n++) {
      if (n >= MAX_EVENTS_PER_RUN) throw new Error(`virtual time: more than ${MAX_EVENTS_PER_RUN} events in one run`);
      const top = this.heap[0];
      if (!top || top.at > end) break;
      this.pop();
      this.now = top.at;
      top.fn();
      this.drainSoon();
    }
    this.now = end;
  }

  /** Runs in steps of `stepMs` until `cond()` holds or `maxMs` passed; returns the time it took, or -1. */
  runUntil(cond: () => boolean, maxMs: number, stepMs = 1): number {
    const start = this.now;
    while (this.now - start < maxMs) {
      if (cond()) return this.now - start;
      this.run(stepMs);
    }
    return cond() ? this.now - start : -1;
  }

  private drainSoon(): void {
    for (let n = 0; this.soonQ.length > 0; n++) {
      if (n >= MAX_SOON_PER_TURN) throw new Error('virtual time: soon() work keeps scheduling itself');
      const q = this.soonQ;
      this.soonQ = [];
      for (const fn of q) fn();
    }
  }

  private push(e: Event): void {
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(h[i], h[p])) break;
      [h[i], h[p]] = [h[p], h[i]];
      i = p;
    }
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop()!;
    if (h.length === 0) return;
    h[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && before(h[l], h[m])) m = l;
      if (r < h.length && before(h[r], h[m])) m = r;
      if (m === i) break;
      [h[i], h[m]] = [h[m], h[i]];
      i = m;
    }
  }
}

function before(a: Event, b: Event): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

/**
 * Gathers what arrives at one instant into one batch, as a capture ring or a socket's queue holds
 * what came in while the process was busy: the batch runs as an event queued after the arrivals.
 */
export class InstantBatcher<T> {
  private items: T[] = [];
  private scheduled = false;

  constructor(private readonly time: VirtualTime, private readonly run: (items: T[]) => void) {}

  add(item: T): void {
    this.items.push(item);
    if (this.scheduled) return;
    this.scheduled = true;
    this.time.at(this.time.now, () => {
      this.scheduled = false;
      const items = this.items;
      this.items = [];
      if (items.length > 0) this.run(items);
    });
  }
}
