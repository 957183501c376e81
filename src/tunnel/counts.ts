// Datagrams counted per connection and per flow, for --metrics' status, without a field on every
// link and flow type: a WeakMap keyed by the object, so what is gone is forgotten with it.
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

/** A client connection's way down, as rsock_reconnects_total{cause} counts it, from the reason the pool gives. */
export function reconnectCause(reason: string): 'reset' | 'fin' | 'close' | 'silence' | 'dial_failure' | 'handshake' {
  if (/handshake|greeting|answer/.test(reason)) return 'handshake';
  if (/reset/.test(reason)) return 'reset';
  if (/\bFIN\b/.test(reason)) return 'fin';
  if (/closed the connection|closed the udp path/.test(reason)) return 'close';
  if (/dial failed|no answer from port/.test(reason)) return 'dial_failure';
  return 'silence';
}
