// App flows keyed by whatever identifies them on each side, expiring after a time with no traffic in
// either direction. Sweeps visit a bounded number of entries per call, so 100k flows never stall a tick.

export interface Flow {
  id: number;
  lastActive: number;
}

export class FlowTable<K, F extends Flow> {
  private readonly map = new Map<K, F>();
  private cursor: IterableIterator<[K, F]> | null = null;

  constructor(private readonly idleMs: number) {}

  get size(): number {
    return this.map.size;
  }

  get(key: K): F | undefined {
    return this.map.get(key);
  }

  set(key: K, flow: F): void {
    this.map.set(key, flow);
  }

  delete(key: K): boolean {
    return this.map.delete(key);
  }

  values(): IterableIterator<F> {
    return this.map.values();
  }

  /**
   * Visits at most `budget` flows, continuing where the last sweep stopped, and removes those idle for
   * at least idleMs, calling `onExpire` for each. Returns how many expired.
   */
  sweep(now: number, budget: number, onExpire: (key: K, flow: F) => void): number {
    let expired = 0;
    for (let i = 0; i < budget && this.map.size > 0; i++) {
      if (!this.cursor) this.cursor = this.map.entries();
      const r = this.cursor.next();
      if (r.done) {
        this.cursor = null;
        // A whole pass done: start the next one on the next call, so each call sees every flow at most once.
        break;
      }
      const [key, flow] = r.value;
      if (now - flow.lastActive >= this.idleMs) {
        this.map.delete(key);
        expired++;
        onExpire(key, flow);
      }
    }
    return expired;
  }

  clear(): void {
    this.map.clear();
    this.cursor = null;
  }
}
