// The pace of the engine's clock-driven work (ACKs owed, handshakes, keepalives, expiry sweeps): every
// 10 ms while input keeps coming or something may fall due within tens of milliseconds (an ACK owed, a
// handshake or a redial under way), else every 100 ms, and back to 10 ms as soon as input arrives. Each
// wake-up of an idle Node process costs about 0.2 ms of CPU on the benchmark's VM (the vCPU's exit from
// halt, the timer's reprogramming, the loop's turn): an idle pair of ends with 10 connections took 3.25 %
// of a core at 100 ticks a second, and 0.9 % at this pace (BENCHMARKS.md, cut 5).
import type { Timers } from './io';

export const FINE_TICK_MS = 10;
export const IDLE_TICK_MS = 100;

export class Ticker {
  private cancel: (() => void) | null = null;
  private pace = 0;
  /** Input since the last tick: under traffic the pace stays fine, without re-arming the timer per batch. */
  private input = false;

  /** run: the work of one tick; returns true when nothing it knows of needs the fine pace. */
  constructor(private readonly timers: Timers, private readonly run: () => boolean) {}

  start(): void {
    this.arm(FINE_TICK_MS);
  }

  /** Input arrived: what it started (an ACK owed, a dial) may fall due within the fine pace. */
  wake(): void {
    this.input = true;
    if (this.pace === IDLE_TICK_MS) this.arm(FINE_TICK_MS);
  }

  stop(): void {
    this.cancel?.();
    this.cancel = null;
    this.pace = 0;
  }

  private arm(ms: number): void {
    this.cancel?.();
    this.pace = ms;
    this.cancel = this.timers.after(ms, () => {
      this.cancel = null;
      const settled = this.run() && !this.input;
      this.input = false;
      // Not when the tick stopped the engine, nor when it was re-armed meanwhile (wake() during run()).
      if (this.pace !== 0 && this.cancel === null) this.arm(settled ? IDLE_TICK_MS : FINE_TICK_MS);
    });
  }
}
