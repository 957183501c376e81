// Reconnect delays: doubling from `first` to `max`, with jitter so that many connections cut at once
// don't redial in lockstep. It never gives up: a tunnel must come back whenever the path does.

export interface BackoffOptions {
  firstMs: number;
  maxMs: number;
  /** Fraction of the delay to randomise, 0..1. */
  jitter: number;
  /** Injected for tests; returns [0, 1). */
  random?: () => number;
}

export class Backoff {
  private attempt = 0;
  private readonly random: () => number;

  constructor(private readonly opts: BackoffOptions) {
    this.random = opts.random ?? Math.random;
  }

  /** The delay before the next attempt; each call counts one failure. */
  next(): number {
    const base = Math.min(this.opts.maxMs, this.opts.firstMs * 2 ** Math.min(this.attempt, 30));
    this.attempt++;
    const spread = base * this.opts.jitter;
    return Math.round(base - spread + 2 * spread * this.random());
  }

  get failures(): number {
    return this.attempt;
  }

  reset(): void {
    this.attempt = 0;
  }
}
