// A sliding anti-replay window (RFC 6479's ring of bitmap words, as in WireGuard's replay package).
// Frames carry no counter: the counter is the frame's stream offset divided by the smallest frame
// size, which is unique per frame because no two frames of a stream start closer than that.
import { MIN_FRAME_BYTES } from './frame';

const WORD_BITS = 32;
/** Ring size in words; a power of two. 1024 words track the last ~32k frames (~480 KiB of stream). */
const WORDS = 1024;
const BITS = WORDS * WORD_BITS;
/** How far behind the newest frame one may still arrive (one word is kept as slack, as in RFC 6479). */
export const REPLAY_WINDOW_FRAMES = BITS - WORD_BITS;

export class ReplayWindow {
  private readonly ring = new Uint32Array(WORDS);
  /** Counter of the newest frame accepted; -1 before the first. */
  private top = -1;

  /** True when a frame at this stream offset may be new: not seen, and not too old to tell. */
  fresh(offset: number): boolean {
    const n = Math.floor(offset / MIN_FRAME_BYTES);
    if (n > this.top) return true;
    if (this.top - n >= REPLAY_WINDOW_FRAMES) return false;
    return (this.ring[(n >>> 5) & (WORDS - 1)] & (1 << (n & 31))) === 0;
  }

  /** Records a frame that verified. Call only after fresh() said true and the tag checked out. */
  accept(offset: number): void {
    const n = Math.floor(offset / MIN_FRAME_BYTES);
    if (n > this.top) {
      const from = this.top < 0 ? 0 : Math.floor(this.top / WORD_BITS) + 1;
      const to = Math.floor(n / WORD_BITS);
      // Words the window slides over are cleared; a jump of a whole ring or more clears it all.
      for (let w = from, k = 0; w <= to && k < WORDS; w++, k++) this.ring[w & (WORDS - 1)] = 0;
      this.top = n;
    }
    this.ring[(n >>> 5) & (WORDS - 1)] |= 1 << (n & 31);
  }
}
