// Milliseconds from a monotonic clock; wall-clock jumps must not expire flows or kill connections.
import { performance } from 'perf_hooks';

export type Clock = () => number;
export const monotonic: Clock = () => performance.now();
