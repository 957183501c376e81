// The header fields of one segment we inject, as FakeTcp fills them and the injector's TX record carries them.

export const OPT_TIMESTAMPS = 1;

export interface OutSegment {
  seq: number;
  ack: number;
  flags: number;
  window: number;
  /** OPT_TIMESTAMPS when the segment carries the timestamp option. */
  options: number;
  tsVal: number;
  tsEcr: number;
  ipId: number;
  ttl: number;
}

export function emptyOut(): OutSegment {
  return { seq: 0, ack: 0, flags: 0, window: 0, options: 0, tsVal: 0, tsEcr: 0, ipId: 0, ttl: 0 };
}

