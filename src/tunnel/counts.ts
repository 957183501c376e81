// Datagrams counted per connection and per flow, for --metrics' status, without a field on every
// link and flow type: a WeakMap keyed by the object, so what is gone is forgotten with it.
import type { DropCause } from '../ops/status';

export interface Counted {
  /** Connection: Data frames (whole datagrams) received on it; flow: datagrams from its app. */
  received: number;
  /** Connection: datagrams sent on it; flow: datagrams delivered to its app. */
  sent: number;
}

export class Counts {
  private readonly m = new WeakMap<object, Counted>();

  of(o: object): Counted {
    let c = this.m.get(o);
    if (!c) this.m.set(o, (c = { received: 0, sent: 0 }));
    return c;
  }
}

/** The drops by cause, from the engine's, the UDP transport's and the program's own counters. */
export function dropCounts(engine: Record<string, number>, udp: Record<string, number>, own: Record<string, number>): Record<DropCause, number> {
  const n = (r: Record<string, number>, k: string) => r[k] ?? 0;
  return {
    forged: n(engine, 'rxForged') + n(udp, 'udpPathForged'),
    replayed: n(engine, 'rxReplayed') + n(udp, 'udpPathReplayed'),
    malformed: n(engine, 'rxMalformed') + n(engine, 'rxTruncated') + n(udp, 'udpPathMalformed'),
    too_big: n(own, 'droppedTooBig'),
    no_flow: n(own, 'droppedNoFlow'),
    no_connection: n(own, 'droppedNoConn'),
    refused: n(own, 'droppedRefused'),
  };
}

/** A client connection's way down, as rsock_reconnects_total{cause} counts it, from the reason the pool gives. */
export function reconnectCause(reason: string): 'reset' | 'fin' | 'close' | 'silence' | 'dial_failure' | 'handshake' {
  if (/handshake|greeting|answer/.test(reason)) return 'handshake';
  if (/reset/.test(reason)) return 'reset';
  if (/\bFIN\b/.test(reason)) return 'fin';
  if (/closed the connection|closed the udp path/.test(reason)) return 'close';
  if (/dial failed|no answer from port/.test(reason)) return 'dial_failure';
  return 'silence';
}
